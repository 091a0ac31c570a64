// Stock automerge-repo clients against Cairn's `/v1/automerge`: the real npm packages
// (`@automerge/automerge-repo` 2.x `Repo` with `WebSocketClientAdapter`), unmodified, in Node.
// Every socket a client opens is watched: the frames the server sends are decoded, so the
// scenarios can check what is on the wire (a `doc-unavailable`; no `error` on a normal run).
// Usage: node tests/e2e/automerge-repo.mjs <server url> <scenario>
import { Repo, generateAutomergeUrl, parseAutomergeUrl } from '@automerge/automerge-repo';
import { WebSocketClientAdapter } from '@automerge/automerge-repo-network-websocket';
import * as Automerge from '@automerge/automerge';
import { decode, encode } from 'cbor-x';
import WebSocket from 'ws';
import http from 'node:http';
import { assert, launch, newPage } from './lib.mjs';

const [base, name] = process.argv.slice(2);
const wsBase = base.replace(/^http/, 'ws').replace(/\/$/, '');

/** Frames received from the server on every socket opened so far, decoded. */
const heard = [];
const RealWebSocket = globalThis.WebSocket;
// The adapter uses isomorphic-ws, which in Node is `ws`: watch its instances.
const originalEmit = WebSocket.prototype.emit;
WebSocket.prototype.emit = function emit(event, ...args) {
  if (event === 'message') {
    try {
      heard.push(decode(new Uint8Array(args[0])));
    } catch {
      heard.push({ type: '(undecodable)' });
    }
  }
  return originalEmit.call(this, event, ...args);
};
void RealWebSocket;

async function token(user) {
  const response = await fetch(`${base.replace(/\/$/, '')}/v1/dev/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user }),
  });
  return (await response.json()).token;
}

/** An automerge-repo storage adapter in memory (survives a Repo's shutdown when reused). */
class MemoryStorage {
  data = new Map();
  async load(key) { return this.data.get(key.join('/')); }
  async save(key, value) { this.data.set(key.join('/'), value); }
  async remove(key) { this.data.delete(key.join('/')); }
  async loadRange(prefix) {
    const p = prefix.join('/');
    return [...this.data].filter(([k]) => k.startsWith(p)).map(([k, data]) => ({ key: k.split('/'), data }));
  }
  async removeRange(prefix) {
    const p = prefix.join('/');
    for (const k of [...this.data.keys()]) if (k.startsWith(p)) this.data.delete(k);
  }
}

const repos = [];
/** A Repo for `user` connected to Cairn (token in the URL). */
async function repo(user, { storage } = {}) {
  const adapter = new WebSocketClientAdapter(`${wsBase}/v1/automerge?token=${await token(user)}`);
  const r = new Repo({ network: [adapter], storage });
  repos.push(r);
  await Promise.race([
    new Promise((resolve) => r.networkSubsystem.once('peer', resolve)),
    sleep(10_000).then(() => { throw new Error(`${user} never got the server's peer message`); }),
  ]);
  return r;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, check, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** The document as Cairn's HTTP API serves it (what /v1/sync and the Cairn SDK see). */
async function cairnDoc(user, documentId) {
  const response = await fetch(`${base.replace(/\/$/, '')}/v1/docs/${documentId}`, { headers: { authorization: `Bearer ${await token(user)}` } });
  assert(response.ok, `GET /v1/docs/${documentId}: ${response.status}`);
  const heads = (response.headers.get('x-cairn-heads') ?? '').split(',').filter(Boolean).sort();
  return { doc: Automerge.load(new Uint8Array(await response.arrayBuffer())), heads };
}

/** JSON with object keys sorted (two replicas of a document may list keys in other orders). */
const canon = (v) => JSON.stringify(v, (_, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x));

/** A handle's heads as Automerge has them (hex; `handle.heads()` gives them base58-encoded). */
const hex = (handle) => Automerge.getHeads(handle.doc());

const sameHeads = (a, b) => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());

/**
 * Waits until a new document reached the server (what an app does before it shares the URL:
 * a find() elsewhere before that is unavailable, with any server).
 */
async function stored(user, handle) {
  await until(`${handle.documentId} on the server`, async () => {
    const r = await fetch(`${base.replace(/\/$/, '')}/v1/docs/${handle.documentId}`, { headers: { authorization: `Bearer ${await token(user)}` } });
    return r.ok && sameHeads((r.headers.get('x-cairn-heads') ?? '').split(',').filter(Boolean), hex(handle));
  });
}

/** Raw socket: frames sent as given, frames received decoded. */
async function raw(url) {
  const socket = new WebSocket(url);
  socket.binaryType = 'arraybuffer';
  const frames = [];
  let closed = false;
  socket.on('message', (data) => frames.push(decode(new Uint8Array(data))));
  socket.on('close', () => { closed = true; });
  await new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject); });
  return {
    send: (message) => socket.send(message instanceof Uint8Array ? message : encode(message)),
    frames,
    closed: () => closed,
    close: () => socket.close(),
  };
}

const scenarios = {
  /** join → peer, with protocol version 1 and the server's storage id. */
  async handshake() {
    const c = await raw(`${wsBase}/v1/automerge?token=${await token('alice')}`);
    c.send({ type: 'join', senderId: 'raw-peer', peerMetadata: { isEphemeral: true }, supportedProtocolVersions: ['1'] });
    const peer = await until('peer', () => c.frames.find((f) => f.type === 'peer'));
    assert(peer.selectedProtocolVersion === '1' && peer.targetId === 'raw-peer' && typeof peer.senderId === 'string', `peer: ${JSON.stringify(peer)}`);
    assert(typeof peer.peerMetadata?.storageId === 'string' && peer.peerMetadata.isEphemeral === false, `peer metadata: ${JSON.stringify(peer.peerMetadata)}`);
    c.close();
    // The token may come in the join message instead; without any, an error and a close.
    const d = await raw(`${wsBase}/v1/automerge`);
    d.send({ type: 'join', senderId: 'p2', peerMetadata: { token: await token('alice') }, supportedProtocolVersions: ['1'] });
    await until('peer (token in join)', () => d.frames.find((f) => f.type === 'peer'));
    d.close();
    const e = await raw(`${wsBase}/v1/automerge`);
    e.send({ type: 'join', senderId: 'p3', peerMetadata: {}, supportedProtocolVersions: ['1'] });
    const error = await until('error (no token)', () => e.frames.find((f) => f.type === 'error'));
    assert(/E_UNAUTHORIZED/.test(error.message), `no token: ${JSON.stringify(error)}`);
    await until('close (no token)', () => e.closed());
    // A bad token in the URL: refused before the upgrade, 401 with a JSON body.
    const bad = await new Promise((resolve, reject) => {
      const request = http.get(`${base.replace(/\/$/, '')}/v1/automerge?token=nonsense`, { headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
      request.on('response', (response) => {
        let text = '';
        response.on('data', (d) => { text += d; });
        response.on('end', () => resolve({ status: response.statusCode, body: JSON.parse(text) }));
      });
      request.on('upgrade', () => reject(new Error('upgraded with a bad token')));
      request.on('error', reject);
    });
    assert(bad.status === 401 && bad.body.error?.code === 'E_UNAUTHORIZED', `a bad token in the URL: ${JSON.stringify(bad)}`);
    console.log(`handshake ok: server ${peer.senderId}, storage ${peer.peerMetadata.storageId}`);
  },

  /** create, find, concurrent edits, live both ways, ephemeral, a ~256 KiB document; Cairn's API sees the same documents. */
  async documents() {
    const a = await repo('alice');
    const b = await repo('alice');
    const handle = a.create({ title: 'from automerge-repo', items: [] });
    handle.change((d) => { d.items.push('one'); });
    await stored('alice', handle);
    // Created through automerge-repo: owned by the token's user.
    const members = await (await fetch(`${base.replace(/\/$/, '')}/v1/docs/${handle.documentId}/members`, { headers: { authorization: `Bearer ${await token('alice')}` } })).json();
    assert(members.owner === 'alice', `owned by alice: ${JSON.stringify(members)}`);
    const found = await b.find(handle.url);
    await until('b has the item', () => found.doc()?.items?.length === 1);
    assert(found.doc().title === 'from automerge-repo', `found: ${JSON.stringify(found.doc())}`);

    // Concurrent edits converge with identical heads, here and in Cairn.
    handle.change((d) => { d.items.push('a1'); d.fromA = true; });
    found.change((d) => { d.items.push('b1'); d.fromB = true; });
    await until('both converge', () => sameHeads(hex(handle), hex(found)) && handle.doc().fromB && found.doc().fromA);
    assert(canon(handle.doc()) === canon(found.doc()), `same content: ${canon(handle.doc())} vs ${canon(found.doc())}`);
    const served = await until('Cairn has the heads', async () => {
      const c = await cairnDoc('alice', handle.documentId);
      return sameHeads(c.heads, hex(handle)) && c;
    });
    assert(canon(served.doc) === canon(handle.doc()), `Cairn's copy: ${canon(served.doc)}`);

    // Live, both ways.
    const seen = new Promise((resolve) => found.on('change', ({ doc }) => doc.live === 'from a' && resolve()));
    handle.change((d) => { d.live = 'from a'; });
    await Promise.race([seen, sleep(5000).then(() => { throw new Error('a live change never reached b'); })]);
    const back = new Promise((resolve) => handle.on('change', ({ doc }) => doc.reply === 'from b' && resolve()));
    found.change((d) => { d.reply = 'from b'; });
    await Promise.race([back, sleep(5000).then(() => { throw new Error('a live change never reached a'); })]);

    // Ephemeral messages are relayed to the document's other peers.
    const ephemeral = new Promise((resolve) => found.on('ephemeral-message', ({ message }) => resolve(message)));
    handle.broadcast({ cursor: 7 });
    const message = await Promise.race([ephemeral, sleep(5000).then(() => null)]);
    assert(message?.cursor === 7, `ephemeral: ${JSON.stringify(message)}`);

    // A ~256 KiB document.
    const text = 'x'.repeat(256 * 1024);
    const big = a.create({ text });
    await stored('alice', big);
    const bigFound = await b.find(big.url);
    await until('the big document', () => bigFound.doc()?.text?.length === text.length);
    const bigServed = await until('Cairn has the big one', async () => {
      const c = await cairnDoc('alice', big.documentId);
      return sameHeads(c.heads, hex(big)) && c;
    });
    assert(bigServed.doc.text.length === text.length, 'Cairn has all of it');

    const errors = heard.filter((f) => f.type === 'error');
    assert(errors.length === 0, `no error frames: ${JSON.stringify(errors)}`);
    console.log(`documents ok: ${heard.length} frames heard, none an error`);
  },

  /** An offline peer (its repo shut down, its storage kept) catches up, and sends what it wrote meanwhile. */
  async offline() {
    const a = await repo('alice');
    const handle = a.create({ n: 0 });
    await stored('alice', handle);
    const storage = new MemoryStorage();
    let b = await repo('alice', { storage });
    let mine = await b.find(handle.url);
    await until('b has it', () => mine.doc()?.n === 0);
    mine.change((d) => { d.offline = 'written before going away'; });
    await until('b sent it', async () => (await cairnDoc('alice', handle.documentId)).doc.offline);
    await b.shutdown();
    handle.change((d) => { d.n = 1; d.whileAway = true; });
    await until('Cairn has a\'s change', async () => (await cairnDoc('alice', handle.documentId)).doc.whileAway);
    b = await repo('alice', { storage });
    mine = await b.find(handle.url);
    await until('b caught up', () => mine.doc()?.whileAway === true);
    await until('converged', () => sameHeads(hex(mine), hex(handle)));
    console.log('offline ok');
  },

  /** find() of an unknown id, and of another user's document, rejects as unavailable (a doc-unavailable frame on the wire). */
  async unavailable() {
    const a = await repo('alice');
    const unknown = generateAutomergeUrl();
    let failed = await a.find(unknown).then(() => 'found', (e) => e.message);
    assert(/unavailable/i.test(failed), `unknown id: ${failed}`);
    assert(heard.some((f) => f.type === 'doc-unavailable'), 'a doc-unavailable frame was sent');

    const theirs = (await repo('bob')).create({ secret: 'bob only' });
    await stored('bob', theirs);
    const before = heard.filter((f) => f.type === 'doc-unavailable').length;
    const c = await repo('carol');
    failed = await c.find(theirs.url).then((h) => `found ${JSON.stringify(h.doc())}`, (e) => e.message);
    assert(/unavailable/i.test(failed), `another user's document: ${failed}`);
    assert(heard.filter((f) => f.type === 'doc-unavailable').length > before, 'doc-unavailable for it');
    console.log('unavailable ok');
  },

  /**
   * One document edited at once by the Cairn SDK in Chromium and by an automerge-repo client:
   * both converge, with PostgreSQL's copy (the server serves the test page and the package).
   */
  async mixed() {
    const browser = await launch();
    try {
      const page = await newPage(await browser.newContext(), 'sdk');
      await page.goto(`${base.replace(/\/$/, '')}/`);
      await page.waitForSelector('body[data-ready=true]');
      const id = await page.evaluate(async () => {
        const token = await window.signIn('alice');
        window.repo = await window.Cairn.open({ name: 'mixed', server: location.origin, token });
        window.doc = await window.repo.create({ title: 'shared', fromSdk: [] });
        await window.repo.sync();
        return window.doc.id;
      });
      const a = await repo('alice');
      const handle = await a.find(`automerge:${id}`);
      assert(handle.doc().title === 'shared', `automerge-repo reads the SDK's document: ${canon(handle.doc())}`);
      // At the same time: the SDK edits, and so does automerge-repo.
      const sdkEdits = page.evaluate(async () => {
        for (let i = 0; i < 20; i++) await window.doc.change((d) => { d.fromSdk.push(i); d.sdkLast = i; });
      });
      for (let i = 0; i < 20; i++) {
        handle.change((d) => { d.amLast = i; d.fromAm = (d.fromAm ?? 0) + 1; });
        await sleep(5);
      }
      await sdkEdits;
      const sdkHeads = () => page.evaluate(() => window.doc.heads());
      await until('the SDK and automerge-repo converge', async () => {
        const value = await page.evaluate(() => window.doc.value());
        return value.amLast === 19 && handle.doc().sdkLast === 19 && sameHeads(await sdkHeads(), hex(handle));
      }, 30_000);
      const value = await page.evaluate(() => window.doc.value());
      assert(canon(value) === canon(handle.doc()), `same content: ${canon(value)} vs ${canon(handle.doc())}`);
      const served = await until('PostgreSQL converges', async () => {
        const c = await cairnDoc('alice', id);
        return sameHeads(c.heads, hex(handle)) && c;
      });
      assert(canon(served.doc) === canon(value), `the server's copy: ${canon(served.doc)}`);
      const errors = heard.filter((f) => f.type === 'error');
      assert(errors.length === 0, `no error frames: ${JSON.stringify(errors)}`);
      console.log(`mixed ok: ${value.fromSdk.length} SDK edits and ${handle.doc().fromAm} automerge-repo edits in both`);
    } finally {
      await browser.close();
    }
  },

  /**
   * Cairn's access control through automerge-repo: a reader gets the document and its
   * updates, its own changes are not stored; once the owner removes it, it gets
   * doc-unavailable and no more updates.
   */
  async reader() {
    const api = base.replace(/\/$/, '');
    const owner = await repo('bob');
    const handle = owner.create({ note: 'v1' });
    await stored('bob', handle);
    const grant = await fetch(`${api}/v1/docs/${handle.documentId}/members/carol`, {
      method: 'PUT', headers: { authorization: `Bearer ${await token('bob')}`, 'content-type': 'application/json' }, body: '{"role":"reader"}',
    });
    assert(grant.status === 204, `granted: ${grant.status}`);
    const carol = await repo('carol');
    const theirs = await carol.find(handle.url);
    assert(theirs.doc().note === 'v1', `the reader reads: ${canon(theirs.doc())}`);
    theirs.change((d) => { d.fromReader = 'should not be stored'; });
    handle.change((d) => { d.note = 'v2'; });
    await until('the reader gets the update', () => theirs.doc().note === 'v2');
    await sleep(500);
    const served = await cairnDoc('bob', handle.documentId);
    assert(served.doc.note === 'v2' && served.doc.fromReader === undefined, `the reader's change is not stored: ${canon(served.doc)}`);
    assert(handle.doc().fromReader === undefined, 'nor passed to the owner');

    const before = heard.filter((f) => f.type === 'doc-unavailable' && f.documentId === handle.documentId).length;
    const revoke = await fetch(`${api}/v1/docs/${handle.documentId}/members/carol`, { method: 'DELETE', headers: { authorization: `Bearer ${await token('bob')}` } });
    assert(revoke.status === 204, `revoked: ${revoke.status}`);
    await until('doc-unavailable after the revocation', () => heard.filter((f) => f.type === 'doc-unavailable' && f.documentId === handle.documentId).length > before);
    handle.change((d) => { d.note = 'v3, after the revocation'; });
    await sleep(1000);
    assert(theirs.doc().note === 'v2', `no updates after the revocation: ${canon(theirs.doc())}`);
    console.log('reader ok');
  },

  /** Garbage gets an error (and a close when it cannot be read); the server stays up. */
  async malformed() {
    const url = `${wsBase}/v1/automerge?token=${await token('alice')}`;
    const join = (c, id) => c.send({ type: 'join', senderId: id, peerMetadata: {}, supportedProtocolVersions: ['1'] });

    const garbage = await raw(url);
    join(garbage, 'g');
    await until('peer', () => garbage.frames.find((f) => f.type === 'peer'));
    garbage.send(new Uint8Array([0xff, 0x00, 0x13, 0x37]));
    await until('error for malformed CBOR', () => garbage.frames.find((f) => f.type === 'error'));
    await until('close after malformed CBOR', () => garbage.closed());

    const odd = await raw(url);
    join(odd, 'o');
    await until('peer', () => odd.frames.find((f) => f.type === 'peer'));
    odd.send({ type: 'teleport', senderId: 'o', targetId: 'x' });
    const unknownType = await until('error for an unknown type', () => odd.frames.find((f) => f.type === 'error'));
    assert(/teleport/.test(unknownType.message), `names the type: ${unknownType.message}`);
    // A sync message for a document nobody ever requested or created: unavailable.
    const empty = Automerge.generateSyncMessage(Automerge.init(), Automerge.initSyncState())[1];
    const id = parseAutomergeUrl(generateAutomergeUrl()).documentId;
    odd.send({ type: 'sync', senderId: 'o', targetId: 'x', documentId: id, data: empty });
    await until('doc-unavailable for a document never requested', () => odd.frames.find((f) => f.type === 'doc-unavailable' && f.documentId === id));
    // A sync message whose data is not one.
    odd.send({ type: 'sync', senderId: 'o', targetId: 'x', documentId: id, data: new Uint8Array([1, 2, 3]) });
    await until('error for bad sync data', () => odd.frames.filter((f) => f.type === 'error').length >= 2);
    assert(!odd.closed(), 'the connection stays for a bad sync message');
    odd.close();

    const big = await raw(url);
    join(big, 'b');
    await until('peer', () => big.frames.find((f) => f.type === 'peer'));
    big.send(new Uint8Array(17 * 1024 * 1024));
    await until('close for an oversized frame', () => big.closed());

    const health = await fetch(`${base.replace(/\/$/, '')}/v1/health`);
    assert(health.ok, 'the server is up');
    const a = await repo('alice');
    await stored('alice', a.create({ still: 'working' }));
    console.log('malformed ok');
  },
};

try {
  assert(scenarios[name], `unknown scenario ${name}`);
  await scenarios[name]();
} finally {
  for (const r of repos) {
    try {
      await r.shutdown();
    } catch {
      // already shut down by its scenario
    }
  }
}
process.exit(0);
