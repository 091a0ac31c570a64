// Benchmarks run in one Chromium page (driven by tests/e2e/bench.mjs): the Automerge "paper"
// editing trace through @cairn/client vs @automerge/automerge, durable queued operations vs
// @automerge/automerge-repo with its IndexedDB storage, page load to first durable write, and
// files: CID computation and putFile/getFile through IndexedDB vs ipfs-unixfs-importer.
import { Cairn, fileCid } from '@cairn/client';
import { importer } from 'ipfs-unixfs-importer';
import { kuboV1Options } from '../unixfs-options.mjs';
import * as A from '@automerge/automerge/slim';
import { automergeWasmBase64 } from '@automerge/automerge/automerge.wasm.base64';
import { Repo as AmRepo } from '@automerge/automerge-repo/slim';
import { IndexedDBStorageAdapter } from '@automerge/automerge-repo-storage-indexeddb';

const unique = () => Math.random().toString(36).slice(2);
const ms = (t) => Math.round((performance.now() - t) * 10) / 10;

// Page load (navigation start) to the first change that is durable in IndexedDB.
window.firstWrite = (async () => {
  const repo = await Cairn.open({ name: `first-${unique()}` });
  await repo.create({ hello: 'world' });
  const at = performance.now();
  repo.close();
  return Math.round(at);
})();

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

async function trace(edits) {
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
  doc = null;

  // @cairn/client, one change, durable in IndexedDB when the promise resolves.
  const repo = await Cairn.open({ name: `trace-${unique()}` });
  let handle = await repo.create({ text: '' });
  t = performance.now();
  await handle.change((d, tx) => { for (const [pos, del, ins] of edits) tx.splice(['text'], pos, del, ins ?? ''); });
  results.cairnOne = { ms: ms(t), ok: handle.value().text === expected };

  // @cairn/client, one durable change (and outbox entry) per edit, all issued at once.
  handle = await repo.create({ text: '' });
  t = performance.now();
  await Promise.all(edits.map(([pos, del, ins]) => handle.splice(['text'], pos, del, ins ?? '')));
  results.cairnPerEdit = { ms: ms(t), ok: handle.value().text === expected, outbox: (await repo.outbox()).length };
  repo.close();
  return results;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function queued({ sequential, burst }) {
  await automerge();
  const results = {};

  // @cairn/client: each operation resolves once it and its outbox entry are in IndexedDB.
  const repo = await Cairn.open({ name: `queue-${unique()}` });
  const handle = await repo.create({ n: 0 });
  const lat = [];
  for (let i = 0; i < sequential; i++) {
    const t = performance.now();
    await handle.put(['n'], i);
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  let t = performance.now();
  await Promise.all(Array.from({ length: burst }, (_, i) => handle.put([`k${i % 100}`], i)));
  const burstMs = performance.now() - t;
  results.cairn = { p50: percentile(lat, 50), p99: percentile(lat, 99), perSecond: burst / (burstMs / 1000), outbox: (await repo.outbox()).length };
  repo.close();

  // automerge-repo with its IndexedDB storage: a change is durable once flush() resolves.
  const amRepo = new AmRepo({ storage: new IndexedDBStorageAdapter(`am-${unique()}`), network: [] });
  const amHandle = amRepo.create({ n: 0 });
  await amRepo.flush();
  const amLat = [];
  for (let i = 0; i < sequential; i++) {
    const tt = performance.now();
    amHandle.change((d) => { d.n = i; });
    await amRepo.flush([amHandle.documentId]);
    amLat.push(performance.now() - tt);
  }
  amLat.sort((a, b) => a - b);
  t = performance.now();
  for (let i = 0; i < burst; i++) amHandle.change((d) => { d[`k${i % 100}`] = i; });
  await amRepo.flush();
  const amBurstMs = performance.now() - t;
  results.automergeRepo = { p50: percentile(amLat, 50), p99: percentile(amLat, 99), perSecond: burst / (amBurstMs / 1000) };
  await amRepo.shutdown?.();
  return results;
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
  let t = performance.now();
  const { cid } = await fileCid(blob);
  results.fileCid = rate(t);

  // ipfs-unixfs-importer (the JS peer) with the same options, blocks discarded.
  const blockstore = { async put(c) { return c; }, async has() { return false; } };
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

window.bench = {
  files,
  async trace() {
    const edits = await (await fetch('/trace.json')).json();
    return { edits: edits.length, ...(await trace(edits)) };
  },
  queued,
};
document.getElementById('state').textContent = 'ready';
document.body.dataset.ready = 'true';
