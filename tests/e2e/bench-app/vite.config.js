// The browser benchmark page: our package (from pkg/, as built) beside the Automerge peers.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  resolve: {
    alias: { '@cairn/client': fileURLToPath(new URL('../../../pkg/index.js', import.meta.url)) },
  },
  build: { target: 'es2022' },
  logLevel: 'warn',
});
