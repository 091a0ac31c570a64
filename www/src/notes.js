// The notes: Automerge documents of kind `cairn-note` in the repository — a title and a body
// (collaborative text), attachments (files by CID), times, and a `deleted` mark (a deletion
// syncs like any edit). This device's notes are listed at once; the server is asked for the
// others (made on another device, or shared) whenever it can be reached.

export const KIND = 'cairn-note';

export function newNote() {
  const now = Date.now();
  return { kind: KIND, title: '', body: '', attachments: [], createdAt: now, updatedAt: now };
}

export class Notes extends EventTarget {
  #repo;
  #handles = new Map();
  #refreshing = null;

  constructor(repo) {
    super();
    this.#repo = repo;
    repo.addEventListener('restored', () => this.refresh());
  }

  /** Loads the notes stored here, then those the server has that this device lacks. */
  refresh({ remote = true } = {}) {
    this.#refreshing ??= this.#load(remote).finally(() => { this.#refreshing = null; });
    return this.#refreshing;
  }

  async #load(remote) {
    for (const id of await this.#repo.list()) await this.#add(id);
    this.#changed();
    if (!remote || !this.#repo.token) return;
    let ids = [];
    try {
      ids = await this.#repo.listRemote();
    } catch {
      return; // offline: what is here is what there is
    }
    for (const id of ids) if (!this.#handles.has(id)) await this.#add(id);
    this.#changed();
  }

  async #add(id) {
    if (this.#handles.has(id)) return this.#handles.get(id);
    const handle = await this.#repo.find(id).catch(() => undefined);
    if (!handle || handle.value().kind !== KIND) return undefined;
    this.#handles.set(id, handle);
    handle.subscribe(() => this.#changed());
    return handle;
  }

  #changed() {
    this.dispatchEvent(new Event('change'));
  }

  /** The notes, newest first: `{ id, title, snippet, updatedAt, attachments }`. */
  all() {
    return [...this.#handles.values()]
      .map((h) => ({ id: h.id, ...h.value() }))
      .filter((n) => !n.deleted)
      .sort((a, b) => (b.updatedAt ?? 0) - (a.updatedAt ?? 0))
      .map((n) => ({ id: n.id, title: n.title, snippet: (n.body ?? '').slice(0, 120), updatedAt: n.updatedAt, attachments: (n.attachments ?? []).length }));
  }

  get(id) {
    return this.#handles.get(id);
  }

  /** The note `id`, from here or the server (a link from another device). */
  async open(id) {
    return this.#handles.get(id) ?? (await this.#add(id));
  }

  async create() {
    const handle = await this.#repo.create(newNote());
    this.#handles.set(handle.id, handle);
    handle.subscribe(() => this.#changed());
    this.#changed();
    return handle;
  }

  /** Removes file `cid` from every note that has it attached. */
  async detachEverywhere(cid) {
    for (const handle of this.#handles.values()) {
      if (!(handle.value().attachments ?? []).some((a) => a.cid === cid)) continue;
      await handle.change((d) => {
        const i = d.attachments.findIndex((a) => a.cid === cid);
        if (i >= 0) d.attachments.splice(i, 1);
        d.updatedAt = Date.now();
      });
    }
  }

  /** The note titled best for humans: its title, or "Untitled". */
  title(id) {
    return this.#handles.get(id)?.value().title || 'Untitled';
  }

  /** Marks the note deleted (everywhere, once synced). */
  async remove(id) {
    await this.#handles.get(id)?.change((d) => {
      d.deleted = true;
      d.updatedAt = Date.now();
    });
  }
}
