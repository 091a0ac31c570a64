// The SDK in real Chromium against the real server: offline edits surviving a reload,
// concurrent offline edits converging, the Service Worker draining the outbox, and tabs
// sharing one leader. Usage: node tests/e2e/sdk.mjs <server url> <artifacts dir> <scenario>
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as Automerge from '@automerge/automerge';
import { assert, launch, launchPersistent, newPage } from './lib.mjs';

const [url, out, scenario, ...extra] = process.argv.slice(2);
const base = url.replace(/\/$/, '');

/** A page of the test app with a repo open as `user` (window.repo). */
/** With `signIn: false` the repo uses the token it stored (as an offline app does). */
async function openRepo(context, tag, { name = 'sdk', user = 'alice', autoSync = true, signIn = true, page } = {}) {
  const p = page ?? (await newPage(context, tag));
  if (!page) await p.goto(`${base}/`);
  await p.waitForSelector('body[data-ready=true]');
  await p.evaluate(async ({ name, user, autoSync, signIn }) => {
    const token = signIn ? await window.signIn(user) : undefined;
    window.repo = await window.Cairn.open({ name, server: location.origin, token, autoSync });
  }, { name, user, autoSync, signIn });
  return p;
}

/** Waits until `fn(arg)` in the page is truthy (`fn` may be async). */
async function until(page, fn, arg, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await page.evaluate(fn, arg)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${fn}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const synced = (page) => until(page, async () => window.repo.status.online && (await window.repo.outbox()).length === 0);

/** A dev token for `user`, from Node. */
async function tokenFor(user) {
  const response = await fetch(`${base}/v1/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user }) });
  return (await response.json()).token;
}

/** A server-side read of the document (as alice), through the HTTP API. */
async function serverValue(id) {
  const token = await tokenFor('alice');
  const response = await fetch(`${base}/v1/docs/${id}`, { headers: { authorization: `Bearer ${token}` } });
  return response.ok ? new Uint8Array(await response.arrayBuffer()) : null;
}

const scenarios = {
  /** (1) Offline edits survive a reload, are listed as pending, then reach the server and another context. */
  async offlineReload(browser) {
    const context = await browser.newContext();
    const page = await newPage(context, 'A');
    await page.goto(`${base}/`);
    await page.evaluate(async () => {
      await navigator.serviceWorker.register('/sw.js?name=sdk', { type: 'module' });
      await navigator.serviceWorker.ready;
    });
    await page.reload(); // now controlled by the worker, which caches the shell
    await openRepo(context, 'A', { page });
    const id = await page.evaluate(async () => (await window.repo.create({ title: 'Notes' })).id);
    await synced(page);

    await context.setOffline(true);
    await until(page, () => !window.repo.status.online);
    await page.evaluate(async (id) => {
      const doc = await window.repo.find(id);
      await doc.change((d) => { d.body = 'written offline'; });
      await doc.splice(['title'], 5, 0, ' (offline)');
    }, id);
    const before = await page.evaluate(() => window.repo.outbox());
    assert(before.length === 2 && before.every((e) => e.status !== 'failed'), `two operations queued: ${JSON.stringify(before)}`);

    await page.reload(); // offline: the app shell comes from the worker's cache
    await openRepo(context, 'A', { page, signIn: false });
    const after = await page.evaluate(async (id) => ({
      value: (await window.repo.find(id)).value(),
      outbox: await window.repo.outbox(),
      pending: window.repo.status.pending,
    }), id);
    assert(after.value.body === 'written offline' && after.value.title === 'Notes (offline)', `edits survived the reload: ${JSON.stringify(after.value)}`);
    assert(after.outbox.length === 2 && after.pending === 2, `still listed as pending: ${JSON.stringify(after.outbox)}`);
    await page.screenshot({ path: `${out}/sdk-offline-reloaded.png` });

    await context.setOffline(false);
    await synced(page);
    const other = await browser.newContext();
    const b = await openRepo(other, 'B');
    const seen = await b.evaluate(async (id) => (await window.repo.find(id)).value(), id);
    assert(seen.body === 'written offline' && seen.title === 'Notes (offline)', `another context sees them: ${JSON.stringify(seen)}`);
    assert(await serverValue(id), 'the server has the document');
  },

  /** (2) Two contexts edit one document while offline; after reconnecting both converge with both edits. */
  async concurrentOffline(browser) {
    const [ca, cb] = [await browser.newContext(), await browser.newContext()];
    const a = await openRepo(ca, 'A');
    const b = await openRepo(cb, 'B');
    const id = await a.evaluate(async () => (await window.repo.create({ text: 'shared text', tags: [] })).id);
    await synced(a);
    await b.evaluate(async (id) => { window.doc = await window.repo.find(id); }, id);
    await a.evaluate(async (id) => { window.doc = await window.repo.find(id); }, id);

    await Promise.all([ca.setOffline(true), cb.setOffline(true)]);
    await a.evaluate(async () => {
      await window.doc.splice(['text'], 0, 0, 'A: ');
      await window.doc.change((d) => { d.tags.push('from A'); d.a = 1; });
    });
    await b.evaluate(async () => {
      await window.doc.splice(['text'], 11, 0, ' :B');
      await window.doc.change((d) => { d.tags.push('from B'); d.b = 2; });
    });
    await Promise.all([ca.setOffline(false), cb.setOffline(false)]);

    const converged = (page, other) => until(page, (expected) => JSON.stringify(window.doc.value()) === expected, other, 30_000);
    await until(a, () => window.doc.value().b === 2, null, 30_000);
    await until(b, () => window.doc.value().a === 1, null, 30_000);
    const va = await a.evaluate(() => JSON.stringify(window.doc.value()));
    await converged(b, va);
    const value = JSON.parse(va);
    assert(value.text === 'A: shared text :B', `text edits merged: ${value.text}`);
    assert(value.tags.length === 2 && value.tags.includes('from A') && value.tags.includes('from B'), `list edits merged: ${value.tags}`);
    const heads = await Promise.all([a, b].map((p) => p.evaluate(() => window.doc.heads().join())));
    assert(heads[0] === heads[1], 'same heads');
  },

  /** (3) The Service Worker drains the outbox on a sync event; no page syncs. */
  async serviceWorker(browser) {
    const context = await browser.newContext();
    const page = await newPage(context, 'SW');
    const pageSyncs = [];
    page.on('request', (r) => { if (r.url().includes('/v1/sync')) pageSyncs.push(r.url()); });
    page.on('websocket', (ws) => pageSyncs.push(ws.url()));
    await page.goto(`${base}/`);
    const session = await context.newCDPSession(page);
    await session.send('ServiceWorker.enable');
    const registrations = [];
    session.on('ServiceWorker.workerRegistrationUpdated', (e) => registrations.push(...e.registrations));
    await page.evaluate(async () => {
      await navigator.serviceWorker.register('/sw.js?name=sw-test', { type: 'module' });
      await navigator.serviceWorker.ready;
    });
    // The page never syncs itself: autoSync off.
    await openRepo(context, 'SW', { page, name: 'sw-test', autoSync: false });
    await context.setOffline(true);
    const id = await page.evaluate(async () => {
      const doc = await window.repo.create({ title: 'queued offline' });
      await doc.change((d) => { d.n = 42; });
      return doc.id;
    });
    assert((await page.evaluate(() => window.repo.outbox())).length === 2, 'queued');
    await context.setOffline(false);

    const registration = registrations.find((r) => r.scopeURL.startsWith(base));
    assert(registration, `the worker is registered: ${JSON.stringify(registrations)}`);
    await session.send('ServiceWorker.dispatchSyncEvent', {
      origin: new URL(base).origin,
      registrationId: registration.registrationId,
      tag: 'cairn-sync:sw-test',
      lastChance: false,
    });
    await until(page, async () => (await window.repo.outbox()).length === 0);
    assert(await serverValue(id), 'the server has the document');
    assert(pageSyncs.length === 0, `no page did network sync: ${pageSyncs}`);
    // The server's copy has both changes.
    const other = await browser.newContext();
    const b = await openRepo(other, 'B');
    const seen = await b.evaluate(async (id) => (await window.repo.find(id)).value(), id);
    assert(seen.title === 'queued offline' && seen.n === 42, `drained by the worker: ${JSON.stringify(seen)}`);
  },

  /**
   * A sync() asked of a leader that goes away before it hears the question: the asker becomes
   * the leader and runs the round itself (it used to wait 30 s for an answer, then fail with
   * E_TIMEOUT). Two repositories of one name in one page are two tabs to each other.
   */
  async syncWhileTheLeaderLeaves(browser) {
    const page = await openRepo(await browser.newContext(), 'L', { name: 'handover' });
    const result = await page.evaluate(async () => {
      const token = await window.signIn('alice');
      const leader = window.repo;
      while (!leader.status.leader) await new Promise((r) => setTimeout(r, 20));
      const follower = await window.Cairn.open({ name: 'handover', server: location.origin, token });
      await follower.create({ queued: true });
      const t = performance.now();
      const asked = follower.sync().then(() => 'synced', (e) => e.code);
      leader.close(); // in the same turn: the question is delivered after the leader left
      const outcome = await asked;
      return { outcome, ms: performance.now() - t, leader: follower.status.leader, pending: follower.status.pending };
    });
    assert(result.outcome === 'synced' && result.leader, `the follower took over and synced: ${JSON.stringify(result)}`);
    assert(result.ms < 10_000, `without waiting for a timeout: ${JSON.stringify(result)}`);
  },

  /** (4) Two tabs of one context: one leader syncs, both see each other's edits; closing the leader hands over. */
  async tabs(browser) {
    const context = await browser.newContext();
    const network = new Map();
    const watch = (page, tag) => {
      network.set(tag, []);
      page.on('websocket', (ws) => network.get(tag).push(`ws ${ws.url()}`));
      page.on('request', (r) => { if (r.url().includes('/v1/sync')) network.get(tag).push(`http ${r.url()}`); });
    };
    const one = await newPage(context, 'tab1');
    watch(one, 'tab1');
    await openRepo(context, 'tab1', { page: await (async () => { await one.goto(`${base}/`); return one; })() });
    const two = await newPage(context, 'tab2');
    watch(two, 'tab2');
    await two.goto(`${base}/`);
    await openRepo(context, 'tab2', { page: two });
    await until(one, () => window.repo.status.leader);
    assert(!(await two.evaluate(() => window.repo.status.leader)), 'only one leader');

    const id = await one.evaluate(async () => {
      window.doc = await window.repo.create({ items: [] });
      return window.doc.id;
    });
    await two.evaluate(async (id) => {
      window.doc = await window.repo.find(id);
      window.seen = [];
      window.doc.subscribe((v, info) => window.seen.push(info.source));
    }, id);
    await one.evaluate(() => window.doc.change((d) => { d.items.push('from tab 1'); }));
    await until(two, () => window.doc.value().items.includes('from tab 1'), null, 5_000);
    await two.evaluate(() => window.doc.change((d) => { d.items.push('from tab 2'); }));
    await until(one, () => window.doc.value().items.includes('from tab 2'), null, 5_000);
    await synced(one);
    await until(two, () => window.repo.status.pending === 0);
    assert(network.get('tab2').length === 0, `the follower did no network sync: ${network.get('tab2')}`);
    assert(network.get('tab1').some((n) => n.startsWith('ws ')), 'the leader holds the socket');
    assert((await two.evaluate(() => window.seen)).includes('tab'), 'the follower heard the leader tab');

    // The leader goes away; the other tab takes over and syncs its own edit.
    await one.close();
    await until(two, () => window.repo.status.leader, null, 10_000);
    await two.evaluate(() => window.doc.change((d) => { d.items.push('after hand-over'); }));
    await synced(two);
    assert(network.get('tab2').some((n) => n.startsWith('ws ')), 'the new leader connected');
    const other = await browser.newContext();
    const b = await openRepo(other, 'B');
    const seen = await b.evaluate(async (id) => (await window.repo.find(id)).value(), id);
    assert(seen.items.length === 3, `the server has all three: ${JSON.stringify(seen)}`);
  },

  /** The socket cannot be held (a proxy kills it): sync falls back to HTTP batch rounds. */
  async httpFallback(browser) {
    const context = await browser.newContext();
    const sockets = [];
    await context.routeWebSocket(/\/v1\/ws/, (ws) => {
      sockets.push(ws.url());
      ws.close({ code: 1011, reason: 'no sockets here' });
    });
    const page = await newPage(context, 'H');
    const posts = [];
    page.on('request', (r) => { if (r.url().endsWith('/v1/sync')) posts.push(r.url()); });
    await page.goto(`${base}/`);
    await openRepo(context, 'H', { page });
    const id = await page.evaluate(async () => {
      const doc = await window.repo.create({ via: 'http' });
      await doc.change((d) => { d.n = 1; });
      return doc.id;
    });
    await until(page, () => window.repo.status.pending === 0 && window.repo.status.lastSyncedAt, null, 30_000);
    assert(sockets.length >= 3, `the socket was tried: ${sockets.length}`);
    assert(posts.length > 0, 'HTTP rounds carried the changes');
    const other = await browser.newContext();
    const b = await openRepo(other, 'B');
    const seen = await b.evaluate(async (id) => (await window.repo.find(id)).value(), id);
    assert(seen.via === 'http' && seen.n === 1, `delivered over HTTP: ${JSON.stringify(seen)}`);
  },

  /** fileCid: the browser computes a file's CID while the Blob streams (CIDv1: leaves hashed
   *  in JS, the DAG in wasm; CIDv0 in wasm); the server, recomputing it from the uploaded
   *  bytes, accepts it as the declared CID. */
  async fileCid(browser) {
    const context = await browser.newContext();
    const page = await newPage(context, 'F');
    await page.goto(`${base}/`);
    await page.waitForSelector('body[data-ready=true]');
    const result = await page.evaluate(async () => {
      const bytes = new Uint8Array(700 * 1024 + 11);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 9)) & 255;
      const blob = new Blob([bytes], { type: 'application/octet-stream' });
      const progress = [];
      let blocks = 0;
      const { cid, size } = await window.Cairn.fileCid(blob, {
        onProgress: (n) => progress.push(n),
        onBlock: (b) => { blocks += b.length; },
      });
      const v0 = (await window.Cairn.fileCid(new Blob(['hello']), { cidVersion: 0 })).cid;
      const empty = (await window.Cairn.fileCid(new Blob([]))).cid;
      const token = await window.signIn('alice');
      const response = await fetch('/v1/files?name=made-in-browser.bin', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'x-cairn-cid': cid },
        body: blob,
      });
      let badVersion;
      try { await window.Cairn.fileCid(blob, { cidVersion: 7 }); } catch (e) { badVersion = e.code; }
      return { cid, size, v0, empty, blocks, last: progress.at(-1), status: response.status, stored: await response.json(), badVersion };
    });
    assert(result.size === 700 * 1024 + 11 && result.last === result.size, `size and progress: ${JSON.stringify(result)}`);
    assert(result.blocks === 4, `three leaves and a root came out: ${result.blocks}`);
    assert(result.v0 === 'QmWfVY9y3xjsixTgbd9AorQxH7VtMpzfx2HaWtsoUYecaX', `CIDv0 of "hello": ${result.v0}`);
    assert(result.empty === 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', `CIDv1 of an empty file (Kubo's): ${result.empty}`);
    assert(result.status === 201 && result.stored.cid === result.cid, `the server agrees: ${JSON.stringify(result.stored)}`);
    assert(result.badVersion === 'E_INVALID_ARGUMENT', `bad cidVersion: ${result.badVersion}`);
    console.log(`browser CID ${result.cid} accepted by the server`);
  },

  /** Files: putFile offline (CID computed in wasm, blocks in IndexedDB, upload queued), reload
   *  offline, online → uploaded (resumable API) and pinned on the real Kubo peer, Kubo serves the
   *  same bytes; another user who may read the note downloads the attachment, verified block by
   *  block; a tampered CAR is refused with E_CORRUPT and nothing is kept; a file deleted
   *  before its upload is never stored on the server. */
  async files(browser) {
    const [kubo] = extra;
    assert(kubo, 'the Kubo API URL is passed after the scenario name');
    const pattern = 'const bytes = new Uint8Array(700 * 1024 + 11); for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 9)) & 255;';
    const expected = new Uint8Array(700 * 1024 + 11);
    for (let i = 0; i < expected.length; i++) expected[i] = (i * 7 + (i >> 9)) & 255;
    const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

    const context = await browser.newContext();
    const page = await newPage(context, 'F');
    await page.goto(`${base}/`);
    await page.evaluate(async () => {
      await navigator.serviceWorker.register('/sw.js?name=files', { type: 'module' });
      await navigator.serviceWorker.ready;
    });
    await page.reload();
    await openRepo(context, 'F', { page, name: 'files' });
    const docId = await page.evaluate(async () => (await window.repo.create({ title: 'Trip notes' })).id);
    await synced(page);

    await context.setOffline(true);
    await until(page, () => !window.repo.status.online);
    const put = await page.evaluate(async ({ docId, pattern }) => {
      const bytes = new Function(`${pattern} return bytes;`)();
      const progress = [];
      const info = await window.repo.putFile(new File([bytes], 'photo.png', { type: 'image/png' }), {
        metadata: { album: 'trip' }, doc: docId, cidVersion: 0, onProgress: (p) => progress.push(p),
      });
      const doc = await window.repo.find(docId);
      await doc.change((d) => { d.attachment = info.cid; });
      const blob = await window.repo.getFile(info.cid);
      const back = new Uint8Array(await blob.arrayBuffer());
      const note = await window.repo.putFile(new Blob(['a CIDv1 file']), { name: 'note.txt', type: 'text/plain' });
      const gone = await window.repo.putFile(new Blob(['deleted before it was uploaded']), { name: 'gone.txt' });
      await window.repo.deleteFile(gone.cid);
      let bad;
      try { await window.repo.putFile('not a blob'); } catch (e) { bad = e.code; }
      return {
        info, note: note.cid, gone: gone.cid, bad, progress,
        read: { same: back.length === bytes.length && back.every((x, i) => x === bytes[i]), name: blob.name, type: blob.type },
        outbox: await window.repo.outbox(), files: await window.repo.files(),
      };
    }, { docId, pattern });
    assert(put.info.state === 'local' && put.info.cid.startsWith('Qm') && put.info.size === expected.length, `stored offline: ${JSON.stringify(put.info)}`);
    assert(put.progress.at(-1).loaded === expected.length, `import progress: ${JSON.stringify(put.progress.slice(-2))}`);
    assert(put.read.same && put.read.name === 'photo.png' && put.read.type === 'image/png', `read back offline: ${JSON.stringify(put.read)}`);
    assert(put.bad === 'E_INVALID_ARGUMENT', `a non-Blob is refused: ${put.bad}`);
    // A file that cannot be read to its end (its stream fails after 24 MiB, once 4 MiB batches
    // of its blocks are stored), through either import: E_INVALID_ARGUMENT, and the blocks it
    // stored are removed again; no record, no upload.
    const broken = await page.evaluate(async () => {
      const blocks = async () => (await window.storedRecords('files', 'blocks')).length;
      class Broken extends Blob {
        stream() {
          let sent = 0;
          return new ReadableStream({
            pull(controller) {
              if (sent >= 24 * 1024 * 1024) return controller.error(new Error('the disk went away'));
              const chunk = new Uint8Array(65536);
              crypto.getRandomValues(chunk);
              sent += chunk.length;
              controller.enqueue(chunk);
            },
          });
        }
      }
      // Every stored block holds its own bytes only (IndexedDB would store a view's whole
      // buffer: a leaf cut from a larger stream chunk must be its own copy).
      const whole = new Uint8Array(3 * 1024 * 1024 + 3);
      for (let i = 0; i < whole.length; i += 65536) crypto.getRandomValues(whole.subarray(i, i + 65536));
      const stored = await window.repo.putFile(new Blob([whole]), { name: 'whole.bin' });
      const sizes = (await window.storedRecords('files', 'blocks')).map((r) => [r.bytes.byteLength, r.bytes.buffer.byteLength]);
      await window.repo.deleteFile(stored.cid);
      const state = async () => ({ blocks: await blocks(), files: (await window.repo.files()).length, outbox: (await window.repo.outbox()).length });
      const before = await state();
      const codes = [];
      for (const cidVersion of [1, 0]) {
        try {
          await window.repo.putFile(new Broken([new Uint8Array(32 * 1024 * 1024)]), { name: 'broken', cidVersion });
          codes.push('stored');
        } catch (e) {
          codes.push(e.code);
        }
      }
      return { codes, before, after: await state(), sizes };
    });
    assert(broken.sizes.length >= 14 && broken.sizes.every(([n, buffer]) => n === buffer), `blocks stored as their own bytes: ${JSON.stringify(broken.sizes)}`);
    assert(JSON.stringify(broken.codes) === '["E_INVALID_ARGUMENT","E_INVALID_ARGUMENT"]', `an unreadable file is refused: ${JSON.stringify(broken)}`);
    assert(JSON.stringify(broken.after) === JSON.stringify(broken.before), `nothing of it stays: ${JSON.stringify(broken)}`);
    // The cancelled upload leaves as soon as the uploader sees it (it needs no network).
    const kinds = put.outbox.map((e) => `${e.kind}${e.cancelled ? ' (cancelled)' : ''}`).filter((k) => !k.endsWith('(cancelled)'));
    assert(JSON.stringify(kinds) === JSON.stringify(['file-upload', 'changes', 'file-upload', 'file-delete']), `queued: ${kinds}`);
    assert(put.files.length === 2 && !put.files.some((f) => f.cid === put.gone), `on the device: ${JSON.stringify(put.files)}`);

    await page.reload(); // offline: the shell comes from the worker's cache
    await openRepo(context, 'F', { page, name: 'files', signIn: false });
    const reloaded = await page.evaluate(async (cid) => {
      window.events = [];
      for (const type of ['file', 'progress']) window.repo.addEventListener(type, (e) => window.events.push({ type, ...e.detail, error: e.detail.error?.code }));
      return { files: await window.repo.files(), outbox: (await window.repo.outbox()).length, pending: window.repo.status.pending, size: (await window.repo.getFile(cid)).size };
    }, put.info.cid);
    assert(reloaded.files.find((f) => f.cid === put.info.cid)?.state === 'local', `still local after the reload: ${JSON.stringify(reloaded.files)}`);
    assert(reloaded.outbox >= 4 && reloaded.pending === reloaded.outbox, `still queued: ${JSON.stringify(reloaded)}`);
    assert(reloaded.size === expected.length, 'readable after the reload');
    await page.screenshot({ path: `${out}/sdk-files-offline.png` });

    await context.setOffline(false);
    await until(page, async (cid) => (await window.repo.fileInfo(cid))?.pin === 'pinned', put.info.cid, 60_000);
    await synced(page);
    const online = await page.evaluate(async ({ cid, note }) => ({
      info: await window.repo.fileInfo(cid), note: await window.repo.fileInfo(note), events: window.events, files: await window.repo.files(),
    }), { cid: put.info.cid, note: put.note });
    assert(online.info.state === 'uploaded' && online.info.onDevice && online.info.dagSize > expected.length, `uploaded: ${JSON.stringify(online.info)}`);
    assert(online.note.state === 'uploaded', `the CIDv1 file is uploaded too: ${JSON.stringify(online.note)}`);
    const ups = online.events.filter((e) => e.type === 'progress' && e.cid === put.info.cid && e.direction === 'upload');
    assert(ups.length >= 2 && ups.at(-1).loaded === expected.length && ups.at(-1).total === expected.length, `upload progress: ${JSON.stringify(ups)}`);
    assert(online.events.some((e) => e.type === 'file' && e.cid === put.info.cid && e.state === 'uploaded'), `file events: ${JSON.stringify(online.events.filter((e) => e.type === 'file'))}`);
    const alice = await tokenFor('alice');
    const goneInfo = await fetch(`${base}/v1/files/${put.gone}/info`, { headers: { authorization: `Bearer ${alice}` } });
    assert(goneInfo.status === 404, `a file deleted before its upload never reached the server: ${goneInfo.status}`);
    const served = new Uint8Array(await (await fetch(`${kubo}/api/v0/cat?arg=${put.info.cid}`, { method: 'POST' })).arrayBuffer());
    assert(same(served, expected), `Kubo serves the same bytes (${served.length})`);

    // Bob may read the note: he downloads its attachment, verified block by block.
    const share = await fetch(`${base}/v1/docs/${docId}/members/bob`, {
      method: 'PUT', headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' }, body: '{"role":"reader"}',
    });
    assert(share.status === 204, `shared with bob: ${share.status}`);
    const bob = await openRepo(await browser.newContext(), 'B', { name: 'files-bob', user: 'bob' });
    const got = await bob.evaluate(async ({ docId, pattern }) => {
      const bytes = new Function(`${pattern} return bytes;`)();
      const doc = await window.repo.find(docId);
      const cid = doc.value().attachment;
      const progress = [];
      const file = await window.repo.getFile(cid, { onProgress: (p) => progress.push(p.loaded) });
      const back = new Uint8Array(await file.arrayBuffer());
      let denied;
      try { await window.repo.getFile('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'); } catch (e) { denied = e.code; }
      return { cid, name: file.name, type: file.type, same: back.length === bytes.length && back.every((x, i) => x === bytes[i]), progress, files: await window.repo.files(), denied };
    }, { docId, pattern });
    assert(got.cid === put.info.cid && got.same && got.name === 'photo.png' && got.type === 'image/png', `bob downloads it: ${JSON.stringify({ ...got, progress: got.progress.length })}`);
    assert(got.progress.length > 0 && got.files.length === 1 && got.files[0].state === 'remote', `kept as a download: ${JSON.stringify(got.files)}`);
    assert(got.denied === 'E_NOT_FOUND', `a file nobody shared is not found: ${got.denied}`);

    // A tampered copy (one byte of the CAR flipped on the way) is refused and nothing is kept.
    const evil = await browser.newContext();
    await evil.route('**/ipfs/**', async (route) => {
      const response = await route.fetch();
      const body = Buffer.from(await response.body());
      body[body.length - 100] ^= 1;
      await route.fulfill({ response, body });
    });
    const e = await openRepo(evil, 'E', { name: 'files-evil' });
    const tampered = await e.evaluate(async (cid) => {
      let code;
      try { await window.repo.getFile(cid); } catch (err) { code = err.code; }
      return { code, files: await window.repo.files(), parts: await window.repo.wasm.readFile(cid) };
    }, put.info.cid);
    assert(tampered.code === 'E_CORRUPT' && tampered.files.length === 0 && tampered.parts === undefined, `tampering is refused: ${JSON.stringify(tampered)}`);
    console.log(`file ${put.info.cid}: stored offline, uploaded, pinned, downloaded by bob, tampering refused`);
  },

  /** An upload whose connection drops mid-way continues from the server's offset: the bytes
   *  the server already kept are not sent again. */
  async uploadResumes(browser) {
    const context = await browser.newContext();
    const offsets = [];
    let dropped = false;
    await context.route('**/v1/uploads/*', async (route) => {
      const request = route.request();
      if (request.method() !== 'PATCH') return route.continue();
      const offset = Number(request.headers()['upload-offset']);
      offsets.push(offset);
      if (offset > 0 && !dropped) {
        dropped = true;
        return route.abort('connectionreset');
      }
      return route.continue();
    });
    const page = await openRepo(context, 'R', { name: 'resume' });
    const cid = await page.evaluate(async () => {
      const bytes = new Uint8Array(3 * 1024 * 1024 + 5);
      for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
      window.sent = bytes;
      return (await window.repo.putFile(new Blob([bytes]), { name: 'big.bin' })).cid;
    });
    await until(page, async (cid) => (await window.repo.fileInfo(cid))?.state === 'uploaded', cid, 60_000);
    const MiB = 1024 * 1024;
    assert(dropped, 'a piece was dropped');
    assert(JSON.stringify(offsets) === JSON.stringify([0, MiB, MiB, 2 * MiB, 3 * MiB]), `resumed where the server was: ${offsets}`);
    const same = await page.evaluate(async (cid) => {
      const token = window.repo.token;
      const served = new Uint8Array(await (await fetch(`/v1/files/${cid}`, { headers: { authorization: `Bearer ${token}` } })).arrayBuffer());
      return served.length === window.sent.length && served.every((x, i) => x === window.sent[i]);
    }, cid);
    assert(same, 'the server has the exact bytes');
  },

  /** Storage pressure: quota errors are E_QUOTA and change nothing; an evicted database is re-hydrated from the server. */
  async storagePressure() {
    // A real profile on disk: quotas apply as for a user (not an in-memory incognito store).
    const profile = mkdtempSync(join(tmpdir(), 'cairn-profile-'));
    const context = await launchPersistent(profile);
    try {
      await storagePressureIn(context);
    } finally {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    }
  },
};

async function storagePressureIn(context) {
  {
    // A small quota (256 KiB), set before the origin first touches storage (Chromium reads an
    // origin's quota once): small writes fit, a 1 MiB one fails as E_QUOTA and changes nothing.
    const page = await newPage(context, 'P');
    await page.goto(`${base}/`);
    const session = await context.newCDPSession(page);
    await session.send('Storage.overrideQuotaForOrigin', { origin: new URL(base).origin, quotaSize: 256 * 1024 });
    await openRepo(context, 'P', { name: 'pressure', page });
    const id = await page.evaluate(async () => (await window.repo.create({ title: 'kept' })).id);
    await synced(page);

    const failed = await page.evaluate(async (id) => {
      const doc = await window.repo.find(id);
      const before = { value: JSON.stringify(doc.value()), outbox: (await window.repo.outbox()).length };
      let code = null;
      // 1 MiB of random bytes: incompressible, far over the quota.
      const blob = new Uint8Array(1024 * 1024);
      for (let i = 0; i < blob.length; i += 65536) crypto.getRandomValues(blob.subarray(i, i + 65536));
      try {
        await doc.change((d) => { d.blob = blob; });
      } catch (e) {
        code = e.code;
      }
      const again = await window.repo.find(id);
      const after = { value: JSON.stringify(again.value()), outbox: (await window.repo.outbox()).length };
      // Sync may acknowledge earlier entries meanwhile; the failed change must add none.
      return { code, same: after.value === before.value && after.outbox <= before.outbox, values: [before.value, after.value], outbox: [before.outbox, after.outbox] };
    }, id);
    assert(failed.code === 'E_QUOTA', `a quota error is E_QUOTA: ${JSON.stringify(failed)}`);
    assert(failed.same, `state intact: ${JSON.stringify(failed)}`);
    // A file over the quota, through either import (CIDv1's JS leaves, CIDv0's wasm importer):
    // E_QUOTA, and no block, record or upload of it stays.
    const files = await page.evaluate(async () => {
      const blocks = async () => (await window.storedRecords('pressure', 'blocks')).length;
      const before = { blocks: await blocks(), files: (await window.repo.files()).length, outbox: (await window.repo.outbox()).length };
      const bytes = new Uint8Array(3 * 1024 * 1024);
      for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
      const codes = [];
      for (const cidVersion of [1, 0]) {
        try {
          await window.repo.putFile(new Blob([bytes]), { name: 'too big', cidVersion });
          codes.push('stored');
        } catch (e) {
          codes.push(e.code);
        }
      }
      const after = { blocks: await blocks(), files: (await window.repo.files()).length, outbox: (await window.repo.outbox()).length };
      return { codes, before, after };
    });
    assert(JSON.stringify(files.codes) === '["E_QUOTA","E_QUOTA"]', `a file over the quota is E_QUOTA: ${JSON.stringify(files)}`);
    assert(files.after.blocks === files.before.blocks && files.after.files === files.before.files && files.after.outbox <= files.before.outbox, `nothing of it stays: ${JSON.stringify(files)}`);
    await session.send('Storage.overrideQuotaForOrigin', { origin: new URL(base).origin });

    // The browser evicts the database; the next visit restores the user's documents.
    await page.evaluate(async () => {
      window.repo.close();
      await window.Cairn.Repo.delete('pressure');
    });
    await page.reload();
    await page.waitForSelector('body[data-ready=true]');
    const restored = await page.evaluate(async () => {
      const token = await window.signIn('alice');
      const event = new Promise((resolve) => {
        window.Cairn.Repo.open({ name: 'pressure', server: location.origin, token }).then((repo) => {
          window.repo = repo;
          repo.addEventListener('restored', (e) => resolve(e.detail.documents));
        });
      });
      return Promise.race([event, new Promise((r) => setTimeout(() => r('timeout'), 15_000))]);
    });
    assert(Array.isArray(restored) && restored.includes(id), `re-hydrated from the server: ${JSON.stringify(restored)}`);
    const value = await page.evaluate(async (id) => (await window.repo.find(id)).value(), id);
    assert(value.title === 'kept', `restored content: ${JSON.stringify(value)}`);
  }
}

/**
 * A page killed in the middle of a burst of writes (CDP `Page.crash`: the renderer dies, the
 * browser and its IndexedDB live on) loses no change that had resolved, and stores none twice:
 * every change is in the outbox exactly once, and all of it reaches the server after reopening.
 */
scenarios.crashMidBurst = async (browser) => {
  const context = await browser.newContext();
  const page = await openRepo(context, 'A', { name: 'crash', autoSync: false });
  const resolved = new Set();
  await page.exposeFunction('resolvedOp', (i) => { resolved.add(i); });
  const id = await page.evaluate(async () => {
    const handle = await window.repo.create({ title: 'crash' });
    // Bursts of 200 writes, each made once the one before has resolved, until the page dies
    // (at most 40,000); each write reports itself to Node once it has resolved (durable).
    (async () => {
      for (let i = 0; i < 40_000; i += 200) {
        const burst = [];
        for (let j = i; j < i + 200; j++) burst.push(handle.put([`k${j}`], j).then(() => window.resolvedOp(j)));
        await Promise.all(burst);
      }
    })();
    return handle.id;
  });
  const deadline = Date.now() + 30_000;
  while (resolved.size < 3000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert(resolved.size >= 3000, `writes resolved before the crash: ${resolved.size}`);
  const cdp = await context.newCDPSession(page);
  cdp.send('Page.crash').catch(() => {}); // never answers: the renderer is gone
  await new Promise((r) => page.once('crash', r));
  const known = [...resolved];
  console.log(`crashed with ${known.length} writes resolved`);

  const after = await openRepo(context, 'B', { name: 'crash', autoSync: false });
  const check = await after.evaluate(async ({ id, known }) => {
    const handle = await window.repo.find(id);
    const value = handle.value();
    const missing = known.filter((i) => value[`k${i}`] !== i);
    const outbox = await window.repo.outbox();
    const queued = outbox.reduce((n, e) => n + (e.changeCount ?? 0), 0);
    return { missing, queued, history: handle.history().length, title: value.title, heads: handle.heads() };
  }, { id, known });
  assert(check.title === 'crash', `the document is there: ${JSON.stringify(check.title)}`);
  assert(check.missing.length === 0, `resolved writes lost: ${check.missing.slice(0, 10)} (${check.missing.length})`);
  // Nothing was sent (no sync so far): every change made is queued exactly once.
  assert(check.queued === check.history, `${check.queued} queued changes for ${check.history} in the history`);
  console.log(`after reopening: ${check.history} changes, each queued once`);

  // Now sync: the server ends with exactly the document this device has.
  await after.evaluate(async () => {
    window.repo.close();
    window.repo = await window.Cairn.open({ name: 'crash', server: location.origin, token: await window.signIn('alice') });
  });
  await synced(after);
  const onServer = await serverValue(id);
  assert(onServer, 'the server has the document');
  const heads = Automerge.getHeads(Automerge.load(onServer)).sort();
  assert(JSON.stringify(heads) === JSON.stringify([...check.heads].sort()), `server heads ${heads} vs ${check.heads}`);
  await context.close();
};

const run = scenarios[scenario];
if (!run) throw new Error(`unknown scenario ${scenario}; one of ${Object.keys(scenarios)}`);
const browser = await launch();
try {
  await run(browser);
  console.log(`${scenario}: ok`);
} finally {
  await browser.close();
}
