// Browser benchmarks, printed as tables and written to target/bench/browser.json: builds the
// bench pages (tests/e2e/bench-app) with Vite, serves them with the trace, and runs each peer
// beside @cairn/client in the same headless Chromium page.
// Usage: node tests/e2e/bench.mjs <path to automerge-paper-edits.json> [--quick]
//        node tests/e2e/bench.mjs --files   (the files table only)
// --quick: the first 20,000 edits of the trace, 2,000 queued operations, 16 MiB files, and a
// 10,000-change document among the 1,000 (instead of 100,000).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { launch } from './lib.mjs';
import { root, serveBenchApp } from './bench-app/serve.mjs';

const [tracePath, flag] = process.argv.slice(2);
if (!tracePath) throw new Error('usage: bench.mjs <automerge-paper-edits.json> [--quick] | --files');
const filesOnly = tracePath === '--files';
const quick = flag === '--quick';
const size = quick
  ? { mib: 16, edits: 20_000, sequential: 2000, burst: 2000, docs: 1000, changes: 10_000 }
  : { mib: 64, edits: undefined, sequential: 2000, burst: 10_000, docs: 1000, changes: 100_000 };

const app = await serveBenchApp(filesOnly ? undefined : tracePath);
const browser = await launch();
const pad = (s, n) => String(s).padEnd(n);
const num = (n, d = 0) => (typeof n === 'number' ? n.toFixed(d) : '—');
const ratio = (a, b) => Math.round((a / b) * 1000) / 1000;
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** A fresh page (its own context: no HTTP cache, no storage) on the bench page. */
async function benchPage() {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => console.log(`[bench page] error: ${e.message}`));
  await page.goto(app.url);
  await page.waitForSelector('body[data-ready=true]');
  return page;
}

/** Page load to first durable write on first.html: cold (new context) and warm (reload, same repository). */
async function firstWrites() {
  const cold = [];
  const warm = [];
  for (let i = 0; i < 3; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${app.url}first.html?name=first-${i}`);
    await page.waitForSelector('body[data-done=true]');
    cold.push(await page.evaluate(() => window.firstWrite));
    for (let j = 0; j < 2; j++) {
      await page.reload();
      await page.waitForSelector('body[data-done=true]');
      warm.push(await page.evaluate(() => window.firstWrite));
    }
    await context.close();
  }
  return { cold: median(cold), warm: median(warm), coldAll: cold, warmAll: warm };
}

const out = {};
try {
  let page = await benchPage();
  const fileRows = await page.evaluate((mib) => window.bench.files({ mib }), size.mib);
  console.log(`\nChromium ${browser.version()}`);
  console.log(`\nFiles in the browser (${fileRows.mib} MiB random Blob, CIDv1 raw leaves)   MiB/s    vs ipfs-unixfs-importer`);
  const frow = (name, r) => console.log(`${pad(name, 62)} ${pad(num(r.mibPerSecond, 1), 8)} ${(r.mibPerSecond / fileRows.unixfsImporter.mibPerSecond).toFixed(2)}x${r.same === false ? '  RESULT MISMATCH' : ''}`);
  frow('ipfs-unixfs-importer 17.1.1 (JS, in memory)', fileRows.unixfsImporter);
  frow('fileCid (@cairn/client, in memory)', fileRows.fileCid);
  frow('IndexedDB alone (256 KiB records, 4 MiB transactions; ceiling)', fileRows.indexedDb);
  frow('repo.putFile (leaves hashed in JS, blocks durable in IndexedDB)', fileRows.putFile);
  frow('repo.getFile (read back, every block verified)', fileRows.getFile);
  console.log(`putFile / IndexedDB alone ${ratio(fileRows.putFile.mibPerSecond, fileRows.indexedDb.mibPerSecond)}x, getFile / putFile ${ratio(fileRows.getFile.mibPerSecond, fileRows.putFile.mibPerSecond)}x`);
  Object.assign(out, {
    filecid_ratio: ratio(fileRows.fileCid.mibPerSecond, fileRows.unixfsImporter.mibPerSecond),
    filecid_mib_s: fileRows.fileCid.mibPerSecond,
    unixfs_importer_mib_s: fileRows.unixfsImporter.mibPerSecond,
    putfile_mib_s: fileRows.putFile.mibPerSecond,
    indexeddb_mib_s: fileRows.indexedDb.mibPerSecond,
    getfile_mib_s: fileRows.getFile.mibPerSecond,
    putfile_vs_indexeddb_ratio: ratio(fileRows.putFile.mibPerSecond, fileRows.indexedDb.mibPerSecond),
    getfile_vs_putfile_ratio: ratio(fileRows.getFile.mibPerSecond, fileRows.putFile.mibPerSecond),
    file_mib: fileRows.mib,
  });
  if (!filesOnly) {
    const queued = {
      cairn: await page.evaluate((o) => window.bench.cairnQueue(o), size),
      automergeRepo: await page.evaluate((o) => window.bench.amQueue(o), size),
      indexedDb: await page.evaluate((o) => window.bench.idbQueue(o), size),
    };
    console.log(`\nDurable queued operations (${size.sequential} sequential, burst of ${size.burst})   p50        p99        burst ops/s`);
    const q = (name, r) => console.log(`${pad(name, 58)} ${pad(`${num(r.p50, 2)} ms`, 10)} ${pad(`${num(r.p99, 2)} ms`, 10)} ${num(r.perSecond)}`);
    q('@cairn/client', queued.cairn);
    q('automerge-repo 2.5 + IndexedDB', queued.automergeRepo);
    q('IndexedDB alone (one put per transaction; the floor)', queued.indexedDb);
    console.log(`ratios (cairn / automerge-repo): p50 ${ratio(queued.cairn.p50, queued.automergeRepo.p50)}x, burst ${ratio(queued.cairn.perSecond, queued.automergeRepo.perSecond)}x  (cairn outbox entries after: ${queued.cairn.outbox})`);
    Object.assign(out, {
      queue_seq_p50_ms: queued.cairn.p50,
      queue_seq_p99_ms: queued.cairn.p99,
      queue_seq_p50_ratio: ratio(queued.cairn.p50, queued.automergeRepo.p50),
      queue_burst_ops: queued.cairn.perSecond,
      queue_burst_ratio: ratio(queued.cairn.perSecond, queued.automergeRepo.perSecond),
      automerge_repo_seq_p50_ms: queued.automergeRepo.p50,
      automerge_repo_burst_ops: queued.automergeRepo.perSecond,
      indexeddb_seq_p50_ms: queued.indexedDb.p50,
      indexeddb_burst_ops: queued.indexedDb.perSecond,
    });

    const am = await page.evaluate((limit) => window.bench.amTrace({ limit }), size.edits);
    const cairn = await page.evaluate((limit) => window.bench.cairnTrace({ limit }), size.edits);
    const edits = await page.evaluate((limit) => window.bench.edits(limit).then((e) => e.length), size.edits);
    console.log(`\nPaper editing trace (${edits} edits), same page   one change          change per edit`);
    const row = (name, one, per, base) => console.log(`${pad(name, 48)} ${pad(`${num(one.ms)} ms${base ? ` (${(one.ms / base.one).toFixed(2)}x)` : ''}`, 19)} ${num(per.ms)} ms${base ? ` (${(per.ms / base.per).toFixed(2)}x)` : ''}${one.ok && per.ok ? '' : '  RESULT MISMATCH'}`);
    row('@automerge/automerge 3.5 (in memory)', am.automergeOne, am.automergePerEdit);
    row('@cairn/client (durable in IndexedDB)', cairn.cairnOne, cairn.cairnPerEdit, { one: am.automergeOne.ms, per: am.automergePerEdit.ms });
    console.log(`  (cairn per edit: ${cairn.cairnPerEdit.outbox} outbox entries written)`);
    Object.assign(out, {
      trace_edits: edits,
      trace_per_edit_ratio: ratio(cairn.cairnPerEdit.ms, am.automergePerEdit.ms),
      trace_one_change_ratio: ratio(cairn.cairnOne.ms, am.automergeOne.ms),
      trace_per_edit_ms: cairn.cairnPerEdit.ms,
      trace_one_change_ms: cairn.cairnOne.ms,
      automerge_per_edit_ms: am.automergePerEdit.ms,
      automerge_one_change_ms: am.automergeOne.ms,
      trace_ok: cairn.cairnOne.ok && cairn.cairnPerEdit.ok && am.automergeOne.ok && am.automergePerEdit.ok,
    });
    await page.context().close();

    page = await benchPage();
    const many = await page.evaluate((o) => window.bench.manyDocs(o), size);
    await page.reload();
    await page.waitForSelector('body[data-ready=true]');
    const open = await page.evaluate((m) => window.bench.openFind(m), many);
    await page.context().close();
    console.log(`\nOpen a repository of ${many.docs} documents and one of ${many.changes} changes (after a reload): time to the first find()`);
    const orow = (name, small, big) => console.log(`${pad(name, 34)} a small document ${pad(`${num(small.ms, 1)} ms`, 12)} the big one ${num(big.ms, 1)} ms${small.ok && big.ok ? '' : '  RESULT MISMATCH'}`);
    orow('@cairn/client', open.cairn_small, open.cairn_big);
    orow('automerge-repo 2.5 + IndexedDB', open.am_small, open.am_big);
    Object.assign(out, {
      open_docs: many.docs,
      open_big_changes: many.changes,
      open_find_small_ms: open.cairn_small.ms,
      open_find_big_ms: open.cairn_big.ms,
      automerge_repo_open_find_small_ms: open.am_small.ms,
      automerge_repo_open_find_big_ms: open.am_big.ms,
      open_find_small_ratio: ratio(open.cairn_small.ms, open.am_small.ms),
      open_find_big_ratio: ratio(open.cairn_big.ms, open.am_big.ms),
    });

    const first = await firstWrites();
    console.log(`\nPage load to first durable write (first.html, @cairn/client alone; median of 3): cold ${first.cold} ms [${first.coldAll}], warm ${first.warm} ms [${first.warmAll}]`);
    Object.assign(out, { first_write_ms: Math.max(first.cold, first.warm), first_write_cold_ms: first.cold, first_write_warm_ms: first.warm });
  }
  const wasm = readFileSync(join(root, 'pkg/wasm/cairn_client_bg.wasm'));
  const gz = gzipSync(wasm, { level: 9 }).length;
  console.log(`\nWasm module: ${wasm.length} bytes raw, ${gz} bytes gzip`);
  Object.assign(out, { wasm_bytes: wasm.length, wasm_gzip_bytes: gz, quick, chromium: browser.version() });
  mkdirSync(join(root, 'target/bench'), { recursive: true });
  const file = join(root, filesOnly ? 'target/bench/browser-files.json' : 'target/bench/browser.json');
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`wrote ${file}`);
} finally {
  await browser.close();
  app.close();
}
