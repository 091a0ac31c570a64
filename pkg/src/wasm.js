// Loads the WebAssembly module once (in a window, a worker or a Service Worker).
import init, { cidOf as wasmCidOf, FileImporter, WasmRepo } from '../wasm/cairn_client.js';

let ready;

/** The module's loading, started on first use. */
function load() {
  ready ??= init();
  return ready;
}

/**
 * Starts loading the module (fetch and streaming compile) without waiting for it: the package
 * calls this when it is imported in a page or worker, so the module is compiling while the
 * app's own code runs and the first `open()` finds it (nearly) ready. A failure surfaces at
 * the first `open()`.
 */
export function preload() {
  load().catch(() => {});
}

/** The `WasmRepo` class, once the module is loaded. */
export async function wasm() {
  await load();
  return WasmRepo;
}

/** The `FileImporter` class, once the module is loaded. */
export async function fileImporter() {
  await load();
  return FileImporter;
}

/** The wasm `cidOf` function, once the module is loaded. */
export async function cidOf() {
  await load();
  return wasmCidOf;
}
