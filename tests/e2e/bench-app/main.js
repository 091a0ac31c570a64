// Benchmarks run in one Chromium page (driven by tests/e2e/bench.mjs): the Automerge "paper"
// editing trace through @cairn/client vs @automerge/automerge, durable queued operations vs
// @automerge/automerge-repo with its IndexedDB storage, opening a repository of many documents
// vs automerge-repo, and files: CID computation and putFile/getFile through IndexedDB vs
// ipfs-unixfs-importer. Page load to first durable write is measured on first.html, which
// loads only @cairn/client. Each part is a function of `window.bench`, so tests/e2e/profile.mjs
// can profile one alone.
import { Cairn, fileCid } from '@cairn/client';
import { importer } from 'ipfs-unixfs-importer';
import { kuboV1Options } from '../unixfs-options.mjs';
import * as A from '@automerge/automerge/slim';
import { automergeWasmBase64 } from '@automerge/automerge/automerge.wasm.base64';
import { Repo as AmRepo } from '@automerge/automerge-repo/slim';
import { IndexedDBStorageAdapter } from '@automerge/automerge-repo-storage-indexeddb';

const unique = () => Math.random().toString(36).slice(2);
const ms = (t) => Math.round((performance.now() - t) * 10) / 10;

let amReady;
function automerge() {
  amReady ??= A.initializeBase64Wasm(automergeWasmBase64);
  return amReady;
}

function expectedText(edits) {
  const chars = [];
  for (const [pos, del, ins] of edits) chars.splice(pos, del, ...(ins ?? ''));
  return chars.join('');
}

async function amTrace(edits) {
  await automerge();
  const expected = expectedText(edits);
  const results = {};

  // @automerge/automerge, one change.
  let t = performance.now();
  let doc = A.from({ text: '' });
  doc = A.change(doc, (d) => { for (const [pos, del, ins] of edits) A.splice(d, ['text'], pos, del, ins ?? ''); });
  results.automergeOne = { ms: ms(t), ok: doc.text === expected };

  // @automerge/automerge, one change per edit.
  t = performance.now();
  doc = A.from({ text: '' });
  for (const [pos, del, ins] of edits) doc = A.change(doc, (d) => A.splice(d, ['text'], pos, del, ins ?? ''));
  results.automergePerEdit = { ms: ms(t), ok: doc.text === expected };
  return results;
}

async function cairnTrace(edits, { one = true, perEdit = true } = {}) {
  const expected = expectedText(edits);
  const results = {};
  const repo = await Cairn.open({ name: `trace-${unique()}` });
  if (one) {
    // One change, durable in IndexedDB when the promise resolves.
    const handle = await repo.create({ text: '' });
    const t = performance.now();
    await handle.change((d, tx) => { for (const [pos, del, ins] of edits) tx.splice(['text'], pos, del, ins ?? ''); });
    results.cairnOne = { ms: ms(t), ok: handle.value().text === expected };
  }
  if (perEdit) {
    // One durable change per edit, all issued at once.
    const handle = await repo.create({ text: '' });
    const t = performance.now();
    await Promise.all(edits.map(([pos, del, ins]) => handle.splice(['text'], pos, del, ins ?? '')));
    results.cairnPerEdit = { ms: ms(t), ok: handle.value().text === expected, outbox: (await repo.outbox()).length };
  }
  repo.close();
  return results;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function cairnQueue({ sequential, burst }) {
  // Each operation resolves once it and its outbox entry are in IndexedDB.
  const repo = await Cairn.open({ name: `queue-${unique()}` });
  const handle = await repo.create({ n: 0 });
  const lat = [];
  for (let i = 0; i < sequential; i++) {
    const t = performance.now();
    await handle.put(['n'], i);
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  const t = performance.now();
  await Promise.all(Array.from({ length: burst }, (_, i) => handle.put([`k${i % 100}`], i)));
  const burstMs = performance.now() - t;
  const outbox = (await repo.outbox()).length;
  repo.close();
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), perSecond: burst / (burstMs / 1000), outbox };
}

/**
 * The floor under any durable queued operation here: raw IndexedDB, one small record `put` per
 * read-write transaction, awaited to `complete` (sequential); the burst is one put per
 * operation in transactions of 1,000.
 */
async function idbQueue({ sequential, burst }) {
  const name = `idb-${unique()}`;
  const db = await new Promise((resolve, reject) => {
    const open = indexedDB.open(name, 1);
    open.onupgradeneeded = () => open.result.createObjectStore('ops', { autoIncrement: true });
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  const commit = (records) => new Promise((resolve, reject) => {
    const tx = db.transaction('ops', 'readwrite');
    for (const r of records) tx.objectStore('ops').put(r);
    tx.oncomplete = resolve;
    tx.onerror = tx.onabort = () => reject(tx.error);
  });
  const record = (i) => ({ doc: 'x', bytes: new Uint8Array(100).fill(i & 255) });
  const lat = [];
  for (let i = 0; i < sequential; i++) {
    const t = performance.now();
    await commit([record(i)]);
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  const t = performance.now();
  const batches = [];
  for (let i = 0; i < burst; i += 1000) {
    batches.push(commit(Array.from({ length: Math.min(1000, burst - i) }, (_, j) => record(i + j))));
  }
  await Promise.all(batches);
  const burstMs = performance.now() - t;
  db.close();
  indexedDB.deleteDatabase(name);
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), perSecond: burst / (burstMs / 1000) };
}

async function amQueue({ sequential, burst }) {
  // automerge-repo with its IndexedDB storage: a change is durable once flush() resolves.
  await automerge();
  const amRepo = new AmRepo({ storage: new IndexedDBStorageAdapter(`am-${unique()}`), network: [] });
  const amHandle = amRepo.create({ n: 0 });
  await amRepo.flush();
  const lat = [];
  for (let i = 0; i < sequential; i++) {
    const t = performance.now();
    amHandle.change((d) => { d.n = i; });
    await amRepo.flush([amHandle.documentId]);
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  const t = performance.now();
  for (let i = 0; i < burst; i++) amHandle.change((d) => { d[`k${i % 100}`] = i; });
  await amRepo.flush();
  const burstMs = performance.now() - t;
  await amRepo.shutdown?.();
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), perSecond: burst / (burstMs / 1000) };
}

/**
 * Stores `docs` small documents and one of `changes` changes, in @cairn/client and in
 * automerge-repo (the same content, the same number of changes); returns their names and ids
 * for `openFind` after a reload.
 */
async function manyDocs({ docs, changes }) {
  await automerge();
  const name = `many-${unique()}`;
  const repo = await Cairn.open({ name });
  const small = await Promise.all(Array.from({ length: docs }, (_, i) => repo.create({ title: `note ${i}`, n: i })));
  const big = await repo.create({ n: 0 });
  for (let at = 0; at < changes; at += 5000) {
    await Promise.all(Array.from({ length: Math.min(5000, changes - at) }, (_, i) => big.put([`k${(at + i) % 100}`], at + i)));
  }
  repo.close();

  const amName = `am-many-${unique()}`;
  const amRepo = new AmRepo({ storage: new IndexedDBStorageAdapter(amName), network: [] });
  const amSmall = Array.from({ length: docs }, (_, i) => amRepo.create({ title: `note ${i}`, n: i }));
  const amBig = amRepo.create({ n: 0 });
  for (let i = 0; i < changes; i++) amBig.change((d) => { d[`k${i % 100}`] = i; });
  await amRepo.flush();
  await amRepo.shutdown?.();
  return {
    cairn: { name, small: small[docs >> 1].id, big: big.id },
    automergeRepo: { name: amName, small: amSmall[docs >> 1].url, big: amBig.url },
    docs,
    changes,
  };
}

/** Time from opening a repository to its first `find()` result (run after a reload). */
async function openFind({ cairn, automergeRepo, changes }) {
  await automerge();
  const out = {};
  for (const which of ['small', 'big']) {
    let t = performance.now();
    const repo = await Cairn.open({ name: cairn.name });
    const handle = await repo.find(cairn[which]);
    const ok = which === 'small' ? typeof handle.value().title === 'string' : handle.value().k0 !== undefined;
    out[`cairn_${which}`] = { ms: ms(t), ok };
    repo.close();

    t = performance.now();
    const amRepo = new AmRepo({ storage: new IndexedDBStorageAdapter(automergeRepo.name), network: [] });
    const amHandle = await amRepo.find(automergeRepo[which]);
    const doc = amHandle.doc();
    out[`am_${which}`] = { ms: ms(t), ok: which === 'small' ? typeof doc.title === 'string' : doc.k0 !== undefined };
    await amRepo.shutdown?.();
  }
  out.changes = changes;
  return out;
}

/** A Blob of `mib` MiB of random (incompressible) bytes. */
function randomBlob(mib) {
  const parts = [];
  for (let i = 0; i < mib * 16; i++) parts.push(crypto.getRandomValues(new Uint8Array(65536)));
  return new Blob(parts);
}

async function files({ mib }) {
  const blob = randomBlob(mib);
  const rate = (t) => { const s = (performance.now() - t) / 1000; return { seconds: s, mibPerSecond: mib / s }; };
  const results = {};
  const blockstore = { async put(c) { return c; }, async has() { return false; } };
  // Both importers run once on 4 MiB first, so neither is measured while its code is still
  // being compiled (wasm tiers up, JS is optimised, as the first measured one was).
  const small = randomBlob(4);
  await fileCid(small);
  for await (const entry of importer([{ content: small.stream() }], blockstore, kuboV1Options())) void entry;
  let t = performance.now();
  const { cid } = await fileCid(blob);
  results.fileCid = rate(t);

  // ipfs-unixfs-importer (the JS peer) with the same options, blocks discarded.
  t = performance.now();
  let peerCid;
  const stream = async function* () {
    const reader = blob.stream().getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  };
  for await (const entry of importer([{ content: stream() }], blockstore, kuboV1Options())) peerCid = entry.cid.toString();
  results.unixfsImporter = { ...rate(t), same: peerCid === cid };

  // The ceiling for durable storage: IndexedDB alone, the same bytes as 256 KiB records
  // written in 4 MiB transactions (no hashing, no DAG).
  const db = await new Promise((resolve, reject) => {
    const open = indexedDB.open(`idb-${unique()}`, 1);
    open.onupgradeneeded = () => open.result.createObjectStore('blocks', { keyPath: 'k' });
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  t = performance.now();
  const reader = blob.stream().getReader();
  let pending = [];
  let pendingBytes = 0;
  let key = 0;
  const flush = () => new Promise((resolve, reject) => {
    const tx = db.transaction('blocks', 'readwrite');
    for (const bytes of pending) tx.objectStore('blocks').put({ k: key++, bytes });
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
    pending = [];
    pendingBytes = 0;
  });
  let carry = new Uint8Array(0);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const joined = new Uint8Array(carry.length + value.length);
    joined.set(carry);
    joined.set(value, carry.length);
    let at = 0;
    for (; at + 262144 <= joined.length; at += 262144) {
      pending.push(joined.slice(at, at + 262144));
      pendingBytes += 262144;
    }
    carry = joined.slice(at);
    if (pendingBytes >= 4 << 20) await flush();
  }
  if (carry.length) pending.push(carry);
  await flush();
  results.indexedDb = rate(t);
  db.close();

  const repo = await Cairn.open({ name: `files-${unique()}` });
  t = performance.now();
  const info = await repo.putFile(blob, { name: 'bench.bin' });
  results.putFile = { ...rate(t), same: info.cid === cid };
  t = performance.now();
  const file = await repo.getFile(cid);
  const back = await file.arrayBuffer();
  results.getFile = { ...rate(t), same: back.byteLength === blob.size };
  repo.close();
  return { mib, ...results };
}

/** The editing trace, or its first `limit` edits. */
async function edits(limit) {
  const all = await (await fetch('/trace.json')).json();
  return limit ? all.slice(0, limit) : all;
}

window.bench = {
  files,
  edits,
  amTrace: async (o = {}) => amTrace(await edits(o.limit)),
  cairnTrace: async (o = {}) => cairnTrace(await edits(o.limit), o),
  cairnQueue,
  amQueue,
  idbQueue,
  /** fileCid of a random Blob of `mib` MiB alone (for profiles). */
  fileCid: async (mib) => {
    const blob = randomBlob(mib);
    const t = performance.now();
    const { cid } = await fileCid(blob);
    return { cid, ms: performance.now() - t };
  },
  manyDocs,
  openFind,
  /** Loads both Automerge modules, so a profile measures work, not start-up. */
  warm: () => Promise.all([automerge(), Cairn.open({ name: `warm-${unique()}` }).then((r) => r.close())]),
};
document.getElementById('state').textContent = 'ready';
document.body.dataset.ready = 'true';
