// Cairn Notes is built like any app on @cairn/client: the package comes from node_modules
// (here linked to ../pkg), Vite bundles the page and the Service Worker, and copies the wasm
// module. The worker is its own entry, emitted as /sw.js (its scope is the whole app), with
// the list of files to precache written into it: every file of the build.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { cairn } from '@cairn/client/vite';

const here = fileURLToPath(new URL('.', import.meta.url));

function files(dir, base = dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path, base) : [relative(base, path)];
  });
}

/** Writes the app shell's file list (and a version that changes with it) into sw.js. */
function precache() {
  return {
    name: 'cairn-precache',
    generateBundle(_, bundle) {
      const built = Object.keys(bundle).filter((f) => f !== 'sw.js');
      const shell = ['/', ...built.map((f) => `/${f}`), ...files(join(here, 'public')).map((f) => `/${f}`)];
      const version = built.filter((f) => f.startsWith('assets/')).sort().join(',');
      const sw = bundle['sw.js'];
      sw.code = sw.code
        .replace('self.__PRECACHE__', JSON.stringify(shell))
        .replace('self.__VERSION__', JSON.stringify(String(hash(version))));
    },
  };
}

function hash(text) {
  let h = 5381;
  for (let i = 0; i < text.length; i++) h = (h * 33) ^ text.charCodeAt(i);
  return (h >>> 0).toString(36);
}

export default defineConfig({
  build: {
    target: 'es2022',
    rollupOptions: {
      input: { main: join(here, 'index.html'), sw: join(here, 'src/sw.js') },
      output: { entryFileNames: (chunk) => (chunk.name === 'sw' ? 'sw.js' : 'assets/[name]-[hash].js') },
    },
  },
  plugins: [cairn(), precache()],
  logLevel: 'warn',
});
