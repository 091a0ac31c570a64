// The browser benchmark pages: our package (from pkg/, as built) beside the Automerge peers
// (index.html), and first.html with our package alone.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { cairn } from '../../../pkg/vite.js';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  resolve: {
    alias: { '@cairn/client': here('../../../pkg/index.js') },
  },
  build: {
    target: 'es2022',
    chunkSizeWarningLimit: 4096,
    rollupOptions: { input: { index: here('index.html'), first: here('first.html') } },
  },
  plugins: [cairn()],
  logLevel: 'warn',
});
