// @cairn/client/sw — for a Service Worker (no window): drains the outbox through
// POST /v1/sync on the Background Sync `sync` event. Register the worker as a module:
//   navigator.serviceWorker.register('/sw.js', { type: 'module' })
// and in it:
//   import { handleSyncEvents } from '@cairn/client/sw';
//   handleSyncEvents({ name: 'notes' });
import { call } from './src/errors.js';
import { wasm } from './src/wasm.js';

export const SYNC_TAG = 'cairn-sync';

/**
 * Opens the repository's IndexedDB (from the worker's `self.indexedDB`) and sends everything
 * queued. The token is the one the page stored (`repo.token`), unless given. Resolves with the
 * number of operations the server acknowledged.
 */
export async function drainOutbox({ name = 'default', server = self.location.origin, token } = {}) {
  const WasmRepo = await wasm();
  const repo = await call(() => WasmRepo.open(name));
  try {
    const bearer = token ?? (await call(() => repo.token()));
    if (!bearer) return 0;
    return await call(() => repo.drain(server, bearer));
  } finally {
    repo.close();
  }
}

/**
 * Drains outboxes on Background Sync events. A page registers `cairn-sync:<repo name>` when
 * it queues work offline (with `backgroundSync: true`); that repository is drained. With
 * `name`, only that repository is, on `cairn-sync:<name>` and on a plain `tag` event.
 */
export function handleSyncEvents({ name, server, tag = SYNC_TAG } = {}) {
  self.addEventListener('sync', (event) => {
    const repo = event.tag === tag ? (name ?? 'default') : event.tag.startsWith(`${tag}:`) ? event.tag.slice(tag.length + 1) : null;
    if (repo !== null && (name === undefined || repo === name)) event.waitUntil(drainOutbox({ name: repo, server }));
  });
}
