import type { Plugin } from 'vite';

/**
 * A Vite plugin: adds `<link rel="preload" as="fetch" crossorigin>` for the package's
 * WebAssembly module to every built HTML page, so a first visit fetches it while the app's
 * JavaScript loads. Does nothing in `vite dev`.
 */
export function cairn(): Plugin;
export default cairn;
