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

/** Drains the outbox on every Background Sync event tagged `tag` (default `cairn-sync`). */
export function handleSyncEvents(options?: { name?: string; server?: string; tag?: string }): void;
