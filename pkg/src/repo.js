// Repo: a named repository of documents in IndexedDB, synced with a Cairn server.
import { call, callSync, CairnError, wrap } from './errors.js';
import { DocHandle } from './doc.js';
import { Syncer } from './sync.js';
import { Tabs } from './tabs.js';
import { Transfers } from './transfers.js';
import { wasm } from './wasm.js';
import { canStoreRaw, storeRaw } from './files.js';

const BACKGROUND_SYNC_TAG = 'cairn-sync';
/** While local writes go on, the stored count of queued operations is read at most this often. */
const RECOUNT_MS = 100;
/** A `sync()` not answered by the leader tab asks again this often. */
const ASK_AGAIN_MS = 1000;
/** Other tabs hear of stored changes at most this often (a frame). */
const TELL_TABS_MS = 16;

/**
 * Opens the repository's database and closes it again, while the module compiles: the
 * browser sets up the origin's storage (on a first visit, creating it on disk takes tens of
 * milliseconds) in parallel, not after. Never fails; the real open reports any problem. The
 * name is the one the wasm storage opens (`cairn:` + name, `storage::database_name`).
 */
function warmStorage(name) {
  return new Promise((resolve) => {
    let request;
    try {
      request = globalThis.indexedDB?.open(`cairn:${name}`);
    } catch {
      request = undefined;
    }
    if (!request) return resolve();
    request.onsuccess = () => {
      request.result.close();
      resolve();
    };
    request.onerror = request.onblocked = () => resolve();
  });
}

export class Repo extends EventTarget {
  #handles = new Map();
  #tabs;
  #syncer = null;
  #transfers = null;
  #onOnline = null;
  #server;
  #token;
  #autoSync;
  #backgroundSync;
  #WasmRepo;
  #roundWaiters = new Map();
  #queuedSoon = false;
  #tellLeader = false;
  #recount = null;
  #toldAt = -Infinity;
  #outgoing = new Set();
  #commits = new WeakMap();
  /** @internal */
  wasm;
  /** Sync status; every update also fires a `status` event. */
  status = { online: false, syncing: false, pending: 0, lastSyncedAt: null, error: null, leader: false, persisted: false };

  /**
   * Opens (or creates) the repository: its IndexedDB database, named after `name`. Works with
   * no network at all. With `server` and `token`, sync runs by itself (unless `autoSync: false`).
   */
  static async open({ name = 'default', server, token, autoSync = true, backgroundSync = false } = {}) {
    const warming = warmStorage(name);
    const WasmRepo = await wasm();
    await warming;
    const inner = await call(() => WasmRepo.open(name));
    const repo = new Repo(inner, WasmRepo, { name, server, token, autoSync, backgroundSync });
    await repo.#init();
    return repo;
  }

  /** Deletes the repository `name` and everything stored in it. */
  static async delete(name) {
    const WasmRepo = await wasm();
    return call(() => WasmRepo.delete(name));
  }

  /** @internal Use `Repo.open`. */
  constructor(inner, WasmRepo, { name, server, token, autoSync, backgroundSync }) {
    super();
    this.wasm = inner;
    this.#WasmRepo = WasmRepo;
    this.name = name;
    this.#server = server?.replace(/\/$/, '');
    this.#token = token;
    this.#autoSync = autoSync;
    this.#backgroundSync = backgroundSync;
  }

  async #init() {
    // The token and the count of queued operations are read at once (two transactions that
    // IndexedDB runs side by side), not one after the other.
    const saved = this.#token ? call(() => this.wasm.setToken(this.#token)) : this.wasm.token().catch(() => undefined);
    const pending = this.wasm.pending();
    const stored = await saved; // the stored token, or undefined once ours is saved
    this.#token ??= stored;
    this.#tabs = new Tabs(this.name, { onLeader: () => this.#lead(), onMessage: (m) => this.#message(m) });
    this.#setStatus({ pending: await pending });
    // Ask the browser not to evict our storage under pressure.
    globalThis.navigator?.storage?.persist?.().then((persisted) => this.#setStatus({ persisted }), () => {});
  }

  get server() {
    return this.#server;
  }

  get token() {
    return this.#token;
  }

  /** Replaces the bearer token (e.g. after signing in again); kept for the Service Worker. */
  set token(token) {
    this.#token = token;
    this.wasm.setToken(token).catch(() => {});
    this.#tabs?.post({ type: 'token', token });
    this.#syncer?.setToken(token);
    this.#transfers?.setToken(token);
    if (!this.#syncer && this.status.leader) this.#startSync();
  }

  /** A new document holding `initial`; resolves once it is stored. */
  async create(initial = {}) {
    const id = await call(() => this.wasm.create(initial));
    this.#counted(); // its first sync creates it on the server, and follows it there
    return this.#handle(id);
  }

  /**
   * The document `id`: from this device, or else fetched from the server. `undefined` if
   * neither has it (or you may not read it).
   */
  async find(id) {
    const stored = await call(() => this.wasm.load(id));
    // Stored here with content; an empty record may be a fetch still in progress, or a
    // document created empty: ask the server, and keep the local one if it has nothing.
    if (stored && (this.wasm.heads(id).length > 0 || !this.#server || !this.#token)) return this.#handle(id);
    if (!this.#server || !this.#token) return undefined;
    let found;
    try {
      found = await call(() => this.wasm.pull([id], this.#server, this.#token));
    } catch (e) {
      if (stored) return this.#handle(id);
      throw e;
    }
    if (!found.includes(id) && !stored) {
      await this.wasm.remove(id).catch(() => {});
      return undefined;
    }
    if (found.includes(id)) this.#syncer?.follow([id]);
    return this.#handle(id);
  }

  /** Ids of every document stored on this device. */
  list() {
    return call(() => this.wasm.list());
  }

  /** Removes the local copy of `id` (and its operations still waiting to upload). */
  async delete(id) {
    await call(() => this.wasm.remove(id));
    this.#handles.delete(id);
    this.#setStatus({ pending: await this.wasm.pending() });
  }

  /** Operations waiting for the server: `{id, doc, kind, changeCount, attempts, nextAttemptAt, status, code, createdAt}`. */
  outbox() {
    return call(() => this.wasm.outbox());
  }

  /** Forces a sync round (sends what is queued, fetches what others changed). */
  async sync() {
    this.#requireServer();
    if (this.#syncer) return this.#round();
    // Not the leader: ask it, and wait for its answer. The question is asked again every
    // ASK_AGAIN_MS while unanswered: the leader may have gone before it heard it (its
    // successor did not), or this tab may have become the leader itself (a tab never hears
    // its own messages), and then it runs the round.
    const id = crypto.randomUUID();
    let waiter;
    const done = new Promise((resolve, reject) => {
      waiter = { resolve, reject };
      this.#roundWaiters.set(id, waiter);
    });
    let again;
    const ask = () => {
      if (!this.#syncer) return this.#tabs.post({ type: 'sync-now', id });
      clearInterval(again); // this tab runs the round: once
      this.#round().then(waiter.resolve, waiter.reject);
    };
    ask();
    again = setInterval(ask, ASK_AGAIN_MS);
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new CairnError('no tab answered', 'E_TIMEOUT')), 30_000);
    });
    return Promise.race([done, timeout]).finally(() => {
      this.#roundWaiters.delete(id);
      clearInterval(again);
      clearTimeout(timer);
    });
  }

  /**
   * Stores a file on this device and queues its upload; resolves with its info (`cid`
   * computed in WebAssembly as the blob streams, `state: 'local'`) once it is stored, online
   * or not. `doc` (a DocHandle or id) attaches it to that document once uploaded, so the
   * document's readers may read it; keep the CID in the document to refer to it. `onProgress`
   * follows the import ({loaded, total}); the upload reports `progress` and `file` events.
   */
  async putFile(blob, { name, type, metadata, doc, cidVersion, onProgress } = {}) {
    if (!(blob instanceof Blob)) throw new CairnError('putFile expects a Blob or File', 'E_INVALID_ARGUMENT');
    const options = {
      name: name ?? blob.name ?? '',
      type: type || blob.type || 'application/octet-stream',
      metadata,
      doc: typeof doc === 'object' && doc !== null ? doc.id : doc,
      cidVersion,
    };
    const report = onProgress && ((loaded, total) => onProgress({ loaded, total }));
    const info = canStoreRaw(cidVersion) ? await this.#putRaw(blob, options, report) : await call(() => this.wasm.putFile(blob, options, report));
    this.#fileEvent({ cid: info.cid, kind: 'store', state: info.state });
    this.#counted();
    return info;
  }

  /** `putFile` with CIDv1: the leaves are cut, hashed and stored from JS (`storeRaw`). */
  async #putRaw(blob, options, report) {
    const put = callSync(() => this.wasm.startPut(options));
    try {
      const { cid, size } = await storeRaw(put, blob, report && ((read) => report(read, blob.size)));
      const info = await call(() => put.finish(cid, size));
      report?.(blob.size, blob.size);
      return info;
    } catch (e) {
      await put.abort().catch(() => {});
      throw wrap(e);
    } finally {
      put.free();
    }
  }

  /**
   * The file `cid` as a `File` (a Blob with its name and type): from this device, every block
   * checked against its CID, or else downloaded from the server, each block verified as it
   * arrives (`E_CORRUPT` if the server's copy is not the file the CID names), and kept here.
   */
  async getFile(cid, { onProgress } = {}) {
    let info = await call(() => this.wasm.file(cid));
    let parts = await call(() => this.wasm.readFile(cid));
    if (!parts) {
      if (!this.#server || !this.#token) throw new CairnError(`file ${cid} is not on this device`, 'E_NOT_FOUND');
      const report = (id, loaded, total) => {
        onProgress?.({ loaded, total });
        this.#emit('progress', { cid: id, direction: 'download', loaded, total });
      };
      info = await call(() => this.wasm.download(cid, this.#server, this.#token, report));
      parts = await call(() => this.wasm.readFile(cid));
      if (!parts) throw new CairnError(`file ${cid} was downloaded but is not readable here`, 'E_STORAGE');
    }
    return new File(parts, info?.name || cid, { type: info?.type || 'application/octet-stream' });
  }

  /** Deletes a file from this device at once, and from the server through the outbox (a queued upload is cancelled). */
  async deleteFile(cid) {
    await call(() => this.wasm.deleteFile(cid));
    this.#fileEvent({ cid, kind: 'delete', state: 'deleting' });
    this.#counted();
  }

  /** Every file on this device: `{cid, name, type, size, metadata, state, createdAt, code}`. */
  files() {
    return call(() => this.wasm.files());
  }

  /**
   * What is known of file `cid`: this device's record merged with the server's info when it
   * can be reached (`pin`, `pinAttempts`, `pinError`, `dagSize`). `onDevice` says whether its
   * bytes are here. `undefined` if neither has it.
   */
  async fileInfo(cid) {
    const local = await call(() => this.wasm.file(cid));
    let remote;
    if (this.#server && this.#token) {
      // Offline, or not on the server: this device's record is what there is.
      remote = await this.#api('GET', `/v1/files/${encodeURIComponent(cid)}/info`).catch(() => undefined);
    }
    if (!local && !remote) return undefined;
    // Local records carry no pin fields: the server's stay.
    return { ...remote, ...local, state: local?.state ?? 'remote', onDevice: !!local };
  }

  /** The ids of the documents the server holds for this user (theirs and those shared with them). */
  async listRemote() {
    this.#requireServer();
    return call(() => this.wasm.listRemote(this.#server, this.#token));
  }

  /**
   * The user's files on the server, newest first: `{files, next}` (pass `next` as `cursor`
   * for the following page). `type` keeps those whose media type starts with it (`image/`).
   */
  async remoteFiles({ type, limit, cursor } = {}) {
    const query = new URLSearchParams();
    if (type) query.set('type', type);
    if (limit) query.set('limit', String(limit));
    if (cursor) query.set('cursor', cursor);
    return this.#api('GET', `/v1/files?${query}`);
  }

  /**
   * The user's files on the server whose name, type or metadata have words starting with
   * every word of `query`, best match first.
   */
  async searchFiles(query, { type, limit } = {}) {
    const { files } = await this.#api('POST', '/v1/files/search', { query, type, limit });
    return files;
  }

  #requireServer() {
    if (!this.#server || !this.#token) throw new CairnError('this repo has no server or token', 'E_NO_SERVER');
  }

  /** One JSON call to the server's API; its errors as CairnError with the server's code. */
  async #api(method, path, body) {
    this.#requireServer();
    let response;
    try {
      response = await fetch(`${this.#server}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.#token}`, ...(body && { 'content-type': 'application/json' }) },
        body: body && JSON.stringify(body),
      });
    } catch (e) {
      throw new CairnError(`the server is unreachable: ${e.message}`, 'E_OFFLINE');
    }
    const json = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new CairnError(json.error?.message ?? `HTTP ${response.status}`, json.error?.code ?? 'E_SERVER', { status: response.status });
    }
    return json;
  }

  /** Closes the repository in this tab (another tab takes over syncing). */
  close() {
    this.#transfers?.stop();
    if (this.#onOnline) globalThis.removeEventListener?.('online', this.#onOnline);
    this.#syncer?.stop();
    clearTimeout(this.#recount);
    this.#tellTabs(); // what was stored just now
    this.#tabs?.close();
    callSync(() => this.wasm.close());
  }

  /**
   * @internal Called by DocHandle.change. The change is applied at once; every change of a
   * document that goes into one group commit shares one wasm promise, and what follows a
   * commit (telling the other tabs, notifying subscribers, counting the queue) runs once per
   * commit, not once per change.
   */
  changeDocument(id, ops) {
    let done;
    try {
      done = this.wasm.change(id, ops);
    } catch (e) {
      return Promise.reject(wrap(e));
    }
    if (done === undefined) return Promise.resolve();
    let followed = this.#commits.get(done);
    if (!followed) {
      followed = done.then(() => this.#committed(id), (e) => { throw wrap(e); });
      this.#commits.set(done, followed);
    }
    return followed;
  }

  /** A group commit of local changes to `id` is durable. */
  #committed(id) {
    this.#broadcast(id);
    this.#handles.get(id)?.notify('local');
    this.#counted(true);
  }

  async #round() {
    try {
      await this.#syncer.round();
    } catch (e) {
      throw wrap(e);
    }
  }

  /**
   * A local write is queued: count it at once (storage recounts after the burst). `told`: the
   * other tabs already know (a `stored` message), so the leader needs no `outbox` message.
   */
  #counted(told = false) {
    this.status.pending += 1;
    this.#queued(told);
  }

  /**
   * Tells the other tabs that changes to `id` are stored (they read them from IndexedDB if
   * they have it loaded); a burst goes out as one message.
   */
  #broadcast(id) {
    if (this.#outgoing.has(id)) return;
    this.#outgoing.add(id);
    if (this.#outgoing.size > 1) return;
    // At most one message per TELL_TABS_MS: a writer committing every millisecond would
    // otherwise post (and make every other tab read storage) as often.
    const wait = Math.max(0, this.#toldAt + TELL_TABS_MS - performance.now());
    setTimeout(() => this.#tellTabs(), wait);
  }

  #tellTabs() {
    if (this.#outgoing.size === 0) return;
    const ids = [...this.#outgoing];
    this.#outgoing.clear();
    this.#toldAt = performance.now();
    this.#tabs?.post({ type: 'stored', ids });
  }

  /**
   * After a local write: get it sent, and count what waits. A burst of writes (a user typing,
   * an import) is handled once, after the burst.
   */
  #queued(told = false) {
    if (!told) this.#tellLeader = true;
    if (this.#queuedSoon) return;
    this.#queuedSoon = true;
    setTimeout(() => {
      this.#queuedSoon = false;
      if (this.#syncer) {
        this.#syncer.kick();
        this.#transfers?.kick();
      } else if (this.#tellLeader) {
        this.#tabs.post({ type: 'outbox' });
      }
      this.#tellLeader = false;
      // Subscribers see the count at once (counted up as writes committed); storage's own
      // count follows.
      this.#setStatus({ pending: this.status.pending });
      if (this.#backgroundSync && globalThis.navigator?.onLine === false) {
        navigator.serviceWorker?.ready.then((r) => r.sync?.register(`${BACKGROUND_SYNC_TAG}:${this.name}`)).catch(() => {});
      }
      this.#recountSoon();
    }, 0);
  }

  /**
   * Counts what waits in storage, at most every RECOUNT_MS while writes go on (between them
   * `status.pending` is counted up as they commit): a count is a transaction of its own, and
   * the next write's transaction would wait behind it.
   */
  #recountSoon() {
    if (this.#recount) return;
    this.#recount = setTimeout(async () => {
      this.#recount = null;
      this.#setStatus({ pending: await this.wasm.pending().catch(() => this.status.pending) });
    }, RECOUNT_MS);
  }

  #handle(id) {
    let handle = this.#handles.get(id);
    if (!handle) {
      handle = new DocHandle(this, id);
      this.#handles.set(id, handle);
    }
    return handle;
  }

  /** Dispatches an event here, and (from the leader) in the other tabs too. */
  #emit(type, detail, share = false) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
    if (share) {
      const shared = detail.error ? { ...detail, error: { code: detail.error.code, message: detail.error.message } } : detail;
      this.#tabs?.post({ type: 'event', event: type, detail: shared });
    }
  }

  /** A file changed state (`file` event, in every tab). */
  #fileEvent(detail) {
    this.#emit('file', detail, true);
  }

  #setStatus(patch) {
    const next = { ...this.status, ...patch };
    if (patch.error) next.error = wrap(patch.error);
    this.status = next;
    this.dispatchEvent(new CustomEvent('status', { detail: next }));
    if (this.#syncer && ('online' in patch || 'syncing' in patch || 'lastSyncedAt' in patch || 'error' in patch)) {
      const { online, syncing, lastSyncedAt, error } = next;
      const shared = error ? { code: error.code, message: error.message } : null;
      this.#tabs.post({ type: 'status', status: { online, syncing, lastSyncedAt, error: shared } });
    }
  }

  /** This tab became the leader: it runs network sync from now on. */
  #lead() {
    this.#setStatus({ leader: true });
    this.#startSync();
  }

  #startSync() {
    if (!this.#autoSync || !this.#server || !this.#token || this.#syncer) return;
    this.#syncer = new Syncer({
      wasm: this.wasm,
      WasmRepo: this.#WasmRepo,
      server: this.#server,
      token: this.#token,
      ids: () => this.wasm.list(),
      onChanged: (ids) => this.#remoteChanged(ids),
      onStatus: (patch) => {
        this.#setStatus(patch);
        if ('lastSyncedAt' in patch) {
          this.wasm.pending().then((pending) => this.#setStatus({ pending }));
          // An upload may have waited for its document's changes to reach the server.
          if (this.#transfers?.waiting) this.#transfers.kick();
        }
      },
    });
    this.#syncer.start();
    this.#transfers = new Transfers({
      wasm: this.wasm,
      server: this.#server,
      token: this.#token,
      onEvent: (type, detail) => {
        if (type === 'error') {
          this.#setStatus({ error: detail });
          return;
        }
        this.#emit(type, detail, true);
        if (type === 'file') this.wasm.pending().then((pending) => this.#setStatus({ pending }), () => {});
      },
    });
    this.#transfers.kick();
    this.#onOnline = () => this.#transfers?.kick();
    globalThis.addEventListener?.('online', this.#onOnline);
    this.#hydrate();
  }

  /** An empty device (new, or its storage was evicted): fetch the user's documents. */
  async #hydrate() {
    try {
      if ((await this.wasm.list()).length > 0) return;
      const ids = await this.wasm.listRemote(this.#server, this.#token);
      if (ids.length === 0) return;
      const found = await this.wasm.pull(ids, this.#server, this.#token);
      this.#syncer?.follow(found);
      this.dispatchEvent(new CustomEvent('restored', { detail: { documents: found } }));
    } catch {
      // offline or not allowed: the next connection tries again only if still empty
    }
  }

  async #remoteChanged(ids) {
    for (const id of ids) {
      const handle = this.#handles.get(id);
      if (handle) handle.notify('remote');
      this.dispatchEvent(new CustomEvent('change', { detail: { id, source: 'remote' } }));
    }
    this.#tabs.post({ type: 'refresh', ids });
  }

  async #message(m) {
    switch (m?.type) {
      case 'stored':
        // Another tab committed local changes: they are in the outbox too.
        this.#syncer?.kick();
        this.#recountSoon();
        for (const id of m.ids) {
          if (await this.wasm.refreshLoaded(id).catch(() => false)) this.#handles.get(id)?.notify('tab');
        }
        break;
      case 'changes': {
        // From a tab of an earlier version of this package: the change bytes themselves.
        const changed = new Set();
        for (const { id, data } of m.changes) {
          try {
            if (this.wasm.absorb(id, data)) changed.add(id);
          } catch {
            // not loaded here, or unreadable: the next refresh reads it from storage
          }
        }
        for (const id of changed) this.#handles.get(id)?.notify('tab');
        break;
      }
      case 'refresh':
        for (const id of m.ids) {
          if (await this.wasm.refresh(id).catch(() => false)) this.#handles.get(id)?.notify('remote');
        }
        this.#setStatus({ pending: await this.wasm.pending() });
        break;
      case 'outbox':
        this.#syncer?.kick();
        this.#transfers?.kick();
        this.#setStatus({ pending: await this.wasm.pending() });
        break;
      case 'status':
        if (!this.#syncer) this.#setStatus({ ...m.status, pending: await this.wasm.pending() });
        break;
      case 'token':
        this.#token = m.token;
        this.#syncer?.setToken(m.token);
        this.#transfers?.setToken(m.token);
        break;
      case 'event': {
        const detail = m.detail.error ? { ...m.detail, error: new CairnError(m.detail.error.message, m.detail.error.code) } : m.detail;
        this.dispatchEvent(new CustomEvent(m.event, { detail }));
        if (m.event === 'file') this.#setStatus({ pending: await this.wasm.pending() });
        break;
      }
      case 'sync-now':
        if (this.#syncer) {
          this.#round().then(
            () => this.#tabs.post({ type: 'round-done', id: m.id }),
            (e) => this.#tabs.post({ type: 'round-done', id: m.id, error: { code: e.code, message: e.message } }),
          );
        }
        break;
      case 'round-done': {
        const waiter = this.#roundWaiters.get(m.id);
        if (waiter) (m.error ? waiter.reject(new CairnError(m.error.message, m.error.code)) : waiter.resolve());
        break;
      }
      default:
    }
  }
}
