// Builds the bench page (this directory) with Vite and serves it on loopback, with the
// editing trace at /trace.json: shared by tests/e2e/bench.mjs and tests/e2e/profile.mjs.
// Static files are sent with `cache-control: max-age` so a reload measures a warm cache.
import { execFileSync } from 'node:child_process';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, resolve } from 'node:path';

export const root = resolve(new URL('../../..', import.meta.url).pathname);

const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

const files = new Map();
const cached = (file) => {
  if (!files.has(file)) files.set(file, readFileSync(file));
  return files.get(file);
};

/** Builds the page and serves it; resolves to `{url, close()}`. */
export async function serveBenchApp(tracePath) {
  const outDir = join(root, 'target/bench-app');
  execFileSync(join(root, 'node_modules/.bin/vite'), ['build', '--outDir', outDir, '--emptyOutDir'], { cwd: join(root, 'tests/e2e/bench-app'), stdio: ['ignore', 'ignore', 'inherit'] });
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    const file = path === '/trace.json' && tracePath ? resolve(tracePath) : join(outDir, path === '/' ? 'index.html' : path);
    try {
      statSync(file);
    } catch {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream', 'cache-control': 'max-age=3600' });
    // Built files are sent whole from memory, as a static server's sendfile would (a read
    // stream hands them out 64 KiB at a time); the trace is streamed.
    if (file === resolve(tracePath ?? '')) createReadStream(file).pipe(res);
    else res.end(cached(file));
  }).listen(0, '127.0.0.1');
  await new Promise((r) => server.on('listening', r));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() };
}
