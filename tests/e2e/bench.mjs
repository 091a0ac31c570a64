// Browser benchmarks, printed as tables: builds the bench page (tests/e2e/bench-app) with
// Vite, serves it with the trace, and runs everything in one headless Chromium page.
// Usage: node tests/e2e/bench.mjs <path to automerge-paper-edits.json> [--quick]
//        node tests/e2e/bench.mjs --files   (the files table only)
import { execFileSync } from 'node:child_process';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { gzipSync } from 'node:zlib';
import { extname, join, resolve } from 'node:path';
import { launch } from './lib.mjs';

const [tracePath, flag] = process.argv.slice(2);
if (!tracePath) throw new Error('usage: bench.mjs <automerge-paper-edits.json> [--quick] | --files');
const filesOnly = tracePath === '--files';
const quick = flag === '--quick';
const root = resolve(new URL('../..', import.meta.url).pathname);
const outDir = join(root, 'target/bench-app');
execFileSync(join(root, 'node_modules/.bin/vite'), ['build', '--outDir', outDir, '--emptyOutDir'], { cwd: join(root, 'tests/e2e/bench-app'), stdio: 'inherit' });

const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
const server = createServer((req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  const file = path === '/trace.json' && !filesOnly ? resolve(tracePath) : join(outDir, path === '/' ? 'index.html' : path);
  try {
    statSync(file);
  } catch {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' });
  createReadStream(file).pipe(res);
}).listen(0, '127.0.0.1');
await new Promise((r) => server.on('listening', r));
const url = `http://127.0.0.1:${server.address().port}/`;

const browser = await launch();
try {
  const page = await browser.newPage();
  await page.goto(url);
  await page.waitForSelector('body[data-ready=true]');
  const fileRows = await page.evaluate((mib) => window.bench.files({ mib }), quick ? 16 : 64);
  const version = browser.version();
  const pad = (s, n) => String(s).padEnd(n);
  const num = (n, d = 0) => (typeof n === 'number' ? n.toFixed(d) : '—');
  console.log(`\nChromium ${version}`);
  console.log(`\nFiles in the browser (${fileRows.mib} MiB random Blob, CIDv1 raw leaves)   MiB/s    vs ipfs-unixfs-importer`);
  const frow = (name, r) => console.log(`${pad(name, 62)} ${pad(num(r.mibPerSecond, 1), 8)} ${(r.mibPerSecond / fileRows.unixfsImporter.mibPerSecond).toFixed(2)}x${r.same === false ? '  RESULT MISMATCH' : ''}`);
  frow('ipfs-unixfs-importer 17.1.1 (JS, in memory)', fileRows.unixfsImporter);
  frow('fileCid (wasm importer, in memory)', fileRows.fileCid);
  frow('IndexedDB alone (256 KiB records, 4 MiB transactions; ceiling)', fileRows.indexedDb);
  frow('repo.putFile (wasm importer + blocks durable in IndexedDB)', fileRows.putFile);
  frow('repo.getFile (read back, every block verified)', fileRows.getFile);
  if (filesOnly) {
    await browser.close();
    server.close();
    process.exit(0);
  }
  const firstWrite = await page.evaluate(() => window.firstWrite);
  const queued = await page.evaluate((o) => window.bench.queued(o), quick ? { sequential: 100, burst: 1000 } : { sequential: 500, burst: 10_000 });
  const trace = await page.evaluate(() => window.bench.trace());

  const wasm = readFileSync(join(root, 'pkg/wasm/cairn_client_bg.wasm'));
  console.log(`\nPaper editing trace (${trace.edits} edits), same page   one change       change per edit`);
  const row = (name, one, per, base) => console.log(`${pad(name, 48)} ${pad(`${num(one.ms)} ms${base ? ` (${(one.ms / base.one).toFixed(2)}x)` : ''}`, 16)} ${num(per.ms)} ms${base ? ` (${(per.ms / base.per).toFixed(2)}x)` : ''}${one.ok && per.ok ? '' : '  RESULT MISMATCH'}`);
  row('@automerge/automerge 3.5 (in memory)', trace.automergeOne, trace.automergePerEdit);
  row('@cairn/client (durable in IndexedDB)', trace.cairnOne, trace.cairnPerEdit, { one: trace.automergeOne.ms, per: trace.automergePerEdit.ms });
  console.log(`  (cairn per edit: ${trace.cairnPerEdit.outbox} outbox entries written)`);
  console.log(`\nDurable queued operations         sequential p50   p99        burst ops/s`);
  const q = (name, r) => console.log(`${pad(name, 34)} ${pad(`${num(r.p50, 2)} ms`, 16)} ${pad(`${num(r.p99, 2)} ms`, 10)} ${num(r.perSecond)}`);
  q('@cairn/client', queued.cairn);
  q('automerge-repo + IndexedDB', queued.automergeRepo);
  console.log(`ratios (cairn / automerge-repo): p50 ${(queued.cairn.p50 / queued.automergeRepo.p50).toFixed(2)}x, burst ${(queued.cairn.perSecond / queued.automergeRepo.perSecond).toFixed(2)}x`);
  console.log(`\nWasm module: ${wasm.length} bytes raw, ${gzipSync(wasm, { level: 9 }).length} bytes gzip`);
  console.log(`Page load to first durable write: ${firstWrite} ms`);
} finally {
  await browser.close();
  server.close();
}
