// What the app knows of each file: this device's record (state: local, uploading, uploaded,
// failed, remote), the server's (pin status), and transfers in progress, kept current from
// the repository's `file` and `progress` events. Also object URLs for thumbnails and previews.

export class FileStates extends EventTarget {
  #repo;
  #files = new Map();
  #urls = new Map();
  #pinTimer = null;

  constructor(repo) {
    super();
    this.#repo = repo;
    repo.addEventListener('progress', (e) => {
      const { cid, direction, loaded, total } = e.detail;
      this.#patch(cid, { progress: loaded < total ? { direction, loaded, total } : null });
    });
    repo.addEventListener('file', (e) => {
      const { cid, state, error } = e.detail;
      if (state === 'deleting' || state === 'deleted') {
        this.#files.delete(cid);
        this.#changed();
        return;
      }
      const known = ['local', 'uploading', 'uploaded', 'failed', 'remote'].includes(state);
      this.#patch(cid, { ...(known && { state }), error: error ? `${error.code}: ${error.message}` : null, progress: null });
      if (state === 'uploaded') this.#watchPins();
    });
  }

  #patch(cid, patch) {
    if (!cid) return;
    this.#files.set(cid, { cid, ...this.#files.get(cid), ...patch });
    this.#changed();
  }

  #changed() {
    this.dispatchEvent(new Event('change'));
  }

  /** Rereads this device's files and, when reachable, the server's (with pin status). */
  async refresh() {
    for (const f of await this.#repo.files()) this.#patch(f.cid, { ...f, onDevice: true });
    try {
      const { files } = await this.#repo.remoteFiles({ limit: 1000 });
      for (const f of files) {
        const here = this.#files.get(f.cid);
        this.#patch(f.cid, { ...f, state: here?.onDevice ? (here.state === 'local' || here.state === 'uploading' ? 'uploaded' : here.state) : 'remote', onServer: true });
      }
      this.#watchPins();
    } catch {
      // offline: this device's records are what there is
    }
  }

  /** Polls pin statuses while some are on their way. */
  #watchPins() {
    clearTimeout(this.#pinTimer);
    const waiting = [...this.#files.values()].some((f) => f.state === 'uploaded' && (!f.pin || f.pin === 'queued' || f.pin === 'pinning'));
    if (!waiting) return;
    this.#pinTimer = setTimeout(async () => {
      for (const f of [...this.#files.values()].filter((x) => x.state === 'uploaded' && x.pin !== 'pinned' && x.pin !== 'none' && x.pin !== 'failed')) {
        const info = await this.#repo.fileInfo(f.cid).catch(() => undefined);
        if (info?.pin) this.#patch(f.cid, { pin: info.pin, pinError: info.pinError, onServer: true });
      }
      this.#watchPins();
    }, 1500);
  }

  /** A file the app is storing right now (before its CID is known, under a temporary key). */
  storing(key, patch) {
    if (patch === null) this.#files.delete(key);
    else this.#files.set(key, { cid: key, ...this.#files.get(key), ...patch });
    this.#changed();
  }

  get(cid) {
    return this.#files.get(cid);
  }

  /** Files being stored right now (see `storing`). */
  storingAll() {
    return [...this.#files.values()].filter((f) => f.cid.startsWith('storing:'));
  }

  all() {
    return [...this.#files.values()].filter((f) => !f.cid.startsWith('storing:')).sort((a, b) => (b.createdAt ?? 0) - (a.createdAt ?? 0));
  }

  /** An object URL of the file's bytes (from this device, or downloaded and verified). */
  url(cid) {
    if (!this.#urls.has(cid)) {
      const pending = this.#repo.getFile(cid).then((file) => {
        this.#patch(cid, { onDevice: true, ...(this.#files.get(cid)?.state ? {} : { state: 'remote' }) });
        return URL.createObjectURL(file);
      });
      pending.catch(() => this.#urls.delete(cid));
      this.#urls.set(cid, pending);
    }
    return this.#urls.get(cid);
  }

  async remove(cid) {
    await this.#repo.deleteFile(cid);
    const url = this.#urls.get(cid);
    this.#urls.delete(cid);
    url?.then((u) => URL.revokeObjectURL(u), () => {});
    this.#files.delete(cid);
    this.#changed();
  }
}

/** How a file stands, in words: `["uploading 40%", "busy"]`, `["pinned", "ok"]`, ... */
export function describe(f) {
  if (f.progress) {
    const pct = f.progress.total ? Math.floor((100 * f.progress.loaded) / f.progress.total) : 0;
    return [`${f.progress.direction === 'download' ? 'downloading' : f.progress.direction === 'store' ? 'saving' : 'uploading'} ${pct}%`, 'busy'];
  }
  if (f.error && f.state !== 'uploaded') return [f.state === 'failed' ? `refused (${f.code ?? f.error})` : 'will retry', 'warn'];
  switch (f.state) {
    case 'local':
      return ['on this device, waiting to upload', 'wait'];
    case 'uploading':
      return ['uploading', 'busy'];
    case 'failed':
      return [`refused (${f.code})`, 'error'];
    default:
      break;
  }
  switch (f.pin) {
    case 'pinned':
      return ['pinned to IPFS', 'ok'];
    case 'failed':
      return ['uploaded; pinning failed', 'warn'];
    case 'queued':
    case 'pinning':
      return ['uploaded; pinning…', 'busy'];
    default:
      return [f.state === 'remote' ? 'on the server' : 'uploaded', 'ok'];
  }
}
