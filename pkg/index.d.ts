// Types for @cairn/client.

/** Stable error codes. Server-side validation errors keep the server's code (E_INVALID_DOCUMENT, ...). */
export type CairnErrorCode =
  | 'E_OFFLINE'
  | 'E_QUOTA'
  | 'E_STORAGE'
  | 'E_INVALID_ARGUMENT'
  | 'E_NOT_FOUND'
  | 'E_BUSY'
  | 'E_PROTOCOL'
  | 'E_NO_SERVER'
  | 'E_INTERNAL'
  | (string & {});

export class CairnError extends Error {
  readonly name: 'CairnError';
  readonly code: CairnErrorCode;
  /** HTTP status, for errors the server reported. */
  readonly status?: number;
}

export class DocHandle {
  /** automerge-repo compatible id (bs58check of 16 bytes). */
  readonly id: string;
  /** `automerge:<id>` */
  readonly url: string;
  get(key: string): string | undefined;
  set(key: string, value: string): this;
  keys(): string[];
  /** Change hashes (hex) of the document's heads. */
  heads(): string[];
  toJSON(): Record<string, string>;
}

export interface OpenOptions {
  /** Repository name; one IndexedDB database per name. Default `"default"`. */
  name?: string;
  /** Base URL of the Cairn server, e.g. `location.origin`. Needed for push/pull. */
  server?: string;
}

export interface PushResult {
  /** The server's heads for the document after merging. */
  heads: string[];
  /** How many changes were new to the server. */
  applied: number;
}

export class Repo {
  static open(options?: OpenOptions): Promise<Repo>;
  static delete(name: string): Promise<void>;
  readonly name: string;
  readonly server: string | undefined;
  create(initial?: Record<string, string>): DocHandle;
  find(id: string): Promise<DocHandle | undefined>;
  list(): Promise<string[]>;
  save(doc: DocHandle): Promise<void>;
  push(doc: DocHandle): Promise<PushResult>;
  pull(id: string): Promise<DocHandle>;
  close(): void;
}
