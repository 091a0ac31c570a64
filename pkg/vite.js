// @cairn/client/vite: a Vite plugin that makes the browser fetch the WebAssembly module as the
// page's HTML arrives, instead of once the app's JavaScript has loaded and run (about 50 ms
// later on a first visit). It adds `<link rel="preload" as="fetch" crossorigin>` for the
// module Vite emitted to every built HTML page; the package's own fetch of the module (a
// same-origin CORS fetch, as the link asks for) then takes the preloaded response.
//
//   import { cairn } from '@cairn/client/vite';
//   export default defineConfig({ plugins: [cairn()] });

const MODULE = /(^|\/)cairn_client_bg[^/]*\.wasm$/;

/** The plugin. In `vite dev` it does nothing (the module is served unbundled there). */
export function cairn() {
  let base = '/';
  return {
    name: 'cairn-client-preload',
    apply: 'build',
    configResolved(config) {
      base = config.base;
    },
    transformIndexHtml: {
      order: 'post',
      handler(_html, { bundle }) {
        const module = Object.values(bundle ?? {}).find((file) => file.type === 'asset' && MODULE.test(file.fileName));
        if (!module) return [];
        return [
          {
            tag: 'link',
            attrs: { rel: 'preload', href: `${base}${module.fileName}`, as: 'fetch', type: 'application/wasm', crossorigin: '' },
            injectTo: 'head-prepend',
          },
        ];
      },
    },
  };
}

export default cairn;
