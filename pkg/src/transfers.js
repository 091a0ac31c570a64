// The leader tab's file transfers: the outbox's file operations (uploads, deletions) carried
// out one at a time by the wasm engine, which resumes an interrupted upload from the server's
// offset and schedules retries. This file only keeps time and reports what happened.
import { wrap } from './errors.js';

export class Transfers {
  #wasm;
  #server;
  #token;
  #onEvent;
  #running = false;
  #again = false;
  #timer = null;
  #stopped = false;
  /** The last run found operations waiting for something else (a document's changes). */
  waiting = false;

  /** `onEvent(type, detail)`: `progress` {cid, direction, loaded, total}, `file` {cid, kind, state, error?}. */
  constructor({ wasm, server, token, onEvent }) {
    this.#wasm = wasm;
    this.#server = server;
    this.#token = token;
    this.#onEvent = onEvent;
  }

  setToken(token) {
    this.#token = token;
    this.kick();
  }

  stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** Something was queued, or may have become possible: run now. */
  kick() {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#run();
  }

  async #run() {
    this.#running = true;
    clearTimeout(this.#timer);
    const progress = (cid, loaded, total) => this.#onEvent('progress', { cid, direction: 'upload', loaded, total });
    try {
      for (;;) {
        const r = await this.#wasm.fileOp(this.#server, this.#token, progress);
        this.waiting = r.state === 'waiting';
        if (r.state === 'done') {
          this.#onEvent('file', { cid: r.cid, kind: r.kind, state: r.kind === 'upload' ? 'uploaded' : 'deleted' });
          continue;
        }
        if (r.state === 'failed') {
          const error = wrap(r.error);
          this.#onEvent('file', { cid: r.cid, kind: r.kind, state: r.retryable ? 'retrying' : 'failed', error });
          if (r.retryable) break; // offline or the server is busy: its retry time comes later
          continue;
        }
        break; // idle, waiting, or busy
      }
    } catch (e) {
      this.#onEvent('error', wrap(e));
    } finally {
      this.#running = false;
    }
    if (this.#again) {
      this.#again = false;
      this.#run();
      return;
    }
    const due = await this.#wasm.nextFileDue().catch(() => undefined);
    if (due !== undefined && !this.#stopped) {
      this.#timer = setTimeout(() => this.kick(), Math.min(Math.max(0, due - Date.now()), 2 ** 31 - 1));
    }
  }
}
