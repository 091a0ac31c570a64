// The leader tab's transport: live sync over WebSocket when it can be held, HTTP batch rounds
// (POST /v1/sync) when it cannot. The protocol itself (frames, outbox, retries) is in the
// wasm engine; this file only moves bytes and keeps time.

const RECONNECT_MIN = 500;
const RECONNECT_MAX = 30_000;
/** After this many sockets that never got a Welcome, use HTTP rounds for a while. */
const SOCKET_FAILURES_BEFORE_HTTP = 3;
const HTTP_MODE_FOR = 60_000;
const HTTP_PULL_EVERY = 30_000;

export class Syncer {
  #wasm;
  #WasmRepo;
  #server;
  #token;
  #ids;
  #onChanged;
  #onStatus;
  #ws = null;
  #ready = false;
  #inFlight = false;
  #failures = 0;
  #backoff = RECONNECT_MIN;
  #httpUntil = 0;
  #timer = null;
  #reconnectTimer = null;
  #waiters = [];
  #stopped = false;
  #listeners = [];

  /**
   * `ids()` lists the documents to follow; `onChanged(ids)` after remote changes were stored;
   * `onStatus(patch)` for status updates.
   */
  constructor({ wasm, WasmRepo, server, token, ids, onChanged, onStatus }) {
    this.#wasm = wasm;
    this.#WasmRepo = WasmRepo;
    this.#server = server.replace(/\/$/, '');
    this.#token = token;
    this.#ids = ids;
    this.#onChanged = onChanged;
    this.#onStatus = onStatus;
  }

  start() {
    const on = (target, event, fn) => {
      target?.addEventListener?.(event, fn);
      this.#listeners.push(() => target?.removeEventListener?.(event, fn));
    };
    on(globalThis, 'online', () => { this.#backoff = RECONNECT_MIN; this.#connect(); });
    on(globalThis, 'offline', () => { this.#onStatus({ online: false }); this.#ws?.close(); });
    this.#connect();
  }

  stop() {
    this.#stopped = true;
    this.#listeners.forEach((off) => off());
    clearTimeout(this.#timer);
    clearTimeout(this.#reconnectTimer);
    this.#ws?.close();
  }

  setToken(token) {
    this.#token = token;
    this.#ws?.close();
    this.#backoff = RECONNECT_MIN;
    this.#connect();
  }

  /** Something was queued: send it as soon as possible. */
  kick() {
    if (this.#ready) this.#pump();
    else if (this.#httpMode()) this.#schedule(0);
  }

  /** Starts following a document (created or found after connecting). */
  async follow(ids) {
    if (this.#ready) this.#send(this.#ws, await this.#wasm.subscribeFrame(ids));
  }

  /** Sends on `ws` if it is still this syncer's open socket (it may have closed meanwhile). */
  #send(ws, frame) {
    if (ws && ws === this.#ws && ws.readyState === WebSocket.OPEN) {
      ws.send(frame);
      return true;
    }
    return false;
  }

  /** A full round now: everything due is sent and every document is pulled. */
  async round() {
    const ids = await this.#ids();
    if (this.#ready) {
      const done = new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
      await this.#pump(ids, true);
      return done;
    }
    return this.#httpRound(ids);
  }

  #httpMode() {
    return typeof WebSocket === 'undefined' || Date.now() < this.#httpUntil;
  }

  #connect() {
    if (this.#stopped || !this.#token) return;
    clearTimeout(this.#reconnectTimer);
    if (this.#httpMode()) {
      this.#schedule(0);
      return;
    }
    if (this.#ws && this.#ws.readyState <= 1) return;
    const ws = new WebSocket(`${this.#server.replace(/^http/, 'ws')}/v1/ws`);
    ws.binaryType = 'arraybuffer';
    this.#ws = ws;
    let welcomed = false;
    ws.onopen = () => ws.send(this.#WasmRepo.authFrame(this.#token));
    ws.onmessage = async (event) => {
      if (this.#ws !== ws) return;
      let handled;
      try {
        handled = await this.#wasm.handleFrame(new Uint8Array(event.data));
      } catch (e) {
        this.#onStatus({ error: e });
        return;
      }
      if (handled.welcome) {
        welcomed = true;
        this.#ready = true;
        this.#failures = 0;
        this.#backoff = RECONNECT_MIN;
        this.#onStatus({ online: true, error: null });
        this.#send(ws, await this.#wasm.subscribeFrame(await this.#ids()));
        this.#pump();
      }
      if (handled.changed.length) this.#onChanged(handled.changed);
      if (handled.answered) {
        this.#inFlight = false;
        if (handled.error) {
          this.#settle(handled.error);
        } else {
          this.#onStatus({ syncing: false, lastSyncedAt: Date.now(), error: null });
          this.#settle(null);
        }
        this.#pump();
      }
      if (handled.error) {
        this.#onStatus({ syncing: false, error: handled.error });
        if (handled.error.code === 'E_UNAUTHORIZED') ws.close();
      }
    };
    ws.onclose = async () => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#ready = false;
      if (this.#inFlight) {
        this.#inFlight = false;
        await this.#wasm.syncFailed('E_OFFLINE', true).catch(() => {});
        this.#settle({ code: 'E_OFFLINE', message: 'the connection closed' });
      }
      this.#onStatus({ online: false, syncing: false });
      if (!welcomed && ++this.#failures >= SOCKET_FAILURES_BEFORE_HTTP) {
        this.#httpUntil = Date.now() + HTTP_MODE_FOR;
        this.#failures = 0;
      }
      if (!this.#stopped && globalThis.navigator?.onLine !== false) {
        this.#reconnectTimer = setTimeout(() => this.#connect(), this.#backoff);
        this.#backoff = Math.min(this.#backoff * 2, RECONNECT_MAX);
      }
    };
  }

  #settle(error) {
    const waiters = this.#waiters.splice(0);
    for (const w of waiters) (error ? w.reject(error) : w.resolve());
  }

  /** Sends the next request over the socket, if any and none is in flight. */
  async #pump(pull = [], force = false) {
    if (!this.#ready || this.#inFlight) {
      if (force && !this.#ready) this.#settle({ code: 'E_OFFLINE', message: 'not connected' });
      return;
    }
    this.#inFlight = true;
    let frame;
    try {
      frame = await this.#wasm.syncRequest(pull);
    } catch (e) {
      this.#inFlight = false;
      this.#onStatus({ error: e });
      return;
    }
    if (!frame) {
      // Connected, followed, and nothing left to send: in sync with the server now.
      this.#inFlight = false;
      this.#onStatus({ syncing: false, lastSyncedAt: Date.now() });
      if (force) this.#settle(null);
      this.#scheduleDue();
      return;
    }
    this.#onStatus({ syncing: true });
    if (!this.#send(this.#ws, frame)) {
      this.#inFlight = false;
      await this.#wasm.syncFailed('E_OFFLINE', true).catch(() => {});
    }
  }

  async #scheduleDue() {
    const due = await this.#wasm.nextDue().catch(() => undefined);
    if (due !== undefined) this.#schedule(Math.max(0, due - Date.now()));
  }

  #schedule(delay) {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      if (this.#ready) this.#pump();
      else if (this.#httpMode()) this.#httpLoop();
      else this.#connect();
    }, delay);
  }

  async #httpLoop() {
    try {
      await this.#httpRound(await this.#ids());
    } catch {
      // reported through the status; try again later
    }
    if (this.#stopped) return;
    if (!this.#httpMode()) {
      this.#connect();
      return;
    }
    const due = await this.#wasm.nextDue().catch(() => undefined);
    this.#schedule(Math.min(HTTP_PULL_EVERY, due === undefined ? HTTP_PULL_EVERY : Math.max(0, due - Date.now())));
  }

  /** HTTP rounds until nothing is due: sends the outbox, pulls `ids`. */
  async #httpRound(ids) {
    let pull = ids;
    this.#onStatus({ syncing: true });
    try {
      for (;;) {
        const round = await this.#wasm.syncHttp(this.#server, this.#token, pull);
        if (!round) break;
        if (round.changed.length) this.#onChanged(round.changed);
        this.#onStatus({ online: true, lastSyncedAt: Date.now(), error: null });
        if (round.sent === 0) break;
        pull = [];
      }
      this.#onStatus({ syncing: false });
    } catch (e) {
      this.#onStatus({ syncing: false, online: e.code !== 'E_OFFLINE', error: e });
      throw e;
    }
  }
}
