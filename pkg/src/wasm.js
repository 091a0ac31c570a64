// Loads the WebAssembly module once (in a window, a worker or a Service Worker).
import init, { cidOf as wasmCidOf, FileImporter, WasmRepo } from '../wasm/cairn_client.js';

let ready;

/** The `WasmRepo` class, once the module is loaded. */
export async function wasm() {
  ready ??= init();
  await ready;
  return WasmRepo;
}

/** The `FileImporter` class, once the module is loaded. */
export async function fileImporter() {
  ready ??= init();
  await ready;
  return FileImporter;
}

/** The wasm `cidOf` function, once the module is loaded. */
export async function cidOf() {
  ready ??= init();
  await ready;
  return wasmCidOf;
}
