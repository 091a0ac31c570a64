// Types for @cairn/client/sw.

export const SYNC_TAG: 'cairn-sync';

export interface DrainOptions {
  name?: string;
  /** Defaults to the worker's origin. */
  server?: string;
  /** Defaults to the token the page stored. */
  token?: string;
}

/** Sends everything queued; resolves with how many operations the server acknowledged. */
export function drainOutbox(options?: DrainOptions): Promise<number>;

/**
 * Drains outboxes on Background Sync: `cairn-sync:<repo name>` (what a page registers when it
 * queues work offline with `backgroundSync: true`) drains that repository. With `name`, only
 * that one is drained, also on a plain `cairn-sync` event.
 */
export function handleSyncEvents(options?: { name?: string; server?: string; tag?: string }): void;
