// DocHandle: one document of a repo — read it as plain JSON, change it, follow its changes.
import { call, callSync, CairnError, wrap } from './errors.js';
import { record } from './proxy.js';

export class DocHandle {
  #repo;
  #listeners = new Set();

  /** @internal Use `repo.create()` / `repo.find()`. */
  constructor(repo, id) {
    this.#repo = repo;
    /** automerge-repo compatible document id (bs58check). */
    this.id = id;
  }

  /** `automerge:<id>` */
  get url() {
    return `automerge:${this.id}`;
  }

  /** The document as plain JSON (a fresh copy each time). */
  value() {
    return callSync(() => this.#repo.wasm.value(this.id));
  }

  /** Same as `value()`, so `JSON.stringify(handle)` works. */
  toJSON() {
    return this.value();
  }

  /**
   * Changes the document as one Automerge change and resolves once it is durable (stored in
   * IndexedDB with its outbox entry). `change(d => { d.title = 'x' })` records what the
   * function does to a draft; `change([{op, path, ...}])` applies path operations.
   */
  change(fnOrOps) {
    let ops = fnOrOps;
    try {
      if (typeof fnOrOps === 'function') ops = record(this.value(), fnOrOps);
    } catch (e) {
      return Promise.reject(wrap(e));
    }
    if (!Array.isArray(ops)) return Promise.reject(new CairnError('change takes a function or an array of operations', 'E_INVALID_ARGUMENT'));
    if (ops.length === 0) return Promise.resolve();
    return this.#repo.changeDocument(this.id, ops);
  }

  put(path, value) {
    return this.change([{ op: 'put', path, value }]);
  }

  delete(path) {
    return this.change([{ op: 'delete', path }]);
  }

  insert(path, index, value) {
    return this.change([{ op: 'insert', path, index, value }]);
  }

  /** Text editing: at `index` of the text at `path`, delete `deleteCount` characters and insert `text`. */
  splice(path, index, deleteCount, text = '') {
    return this.change([{ op: 'splice', path, index, delete: deleteCount, text }]);
  }

  increment(path, by = 1) {
    return this.change([{ op: 'increment', path, by }]);
  }

  /** Hashes (hex) of the document's current heads. */
  heads() {
    return callSync(() => this.#repo.wasm.heads(this.id));
  }

  /** Every change, oldest first: `{hash, actor, seq, time, message, deps}`. */
  history() {
    return callSync(() => this.#repo.wasm.history(this.id));
  }

  /** Calls `callback(value, {source})` after every local or remote change; returns an unsubscribe function. */
  subscribe(callback) {
    this.#listeners.add(callback);
    return () => this.#listeners.delete(callback);
  }

  /** @internal */
  notify(source) {
    if (this.#listeners.size === 0) return;
    const value = this.value();
    for (const listener of this.#listeners) {
      try {
        listener(value, { source });
      } catch (e) {
        queueMicrotask(() => { throw e; });
      }
    }
  }

  /** @internal */
  async reload() {
    return call(() => this.#repo.wasm.refresh(this.id));
  }
}
