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
  | 'E_UNAUTHORIZED'
  | 'E_FORBIDDEN'
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
  /** Base URL of the Cairn server, e.g. `location.origin`. Needed to sync. */
  server?: string;
  /** Bearer token (JWT) for the server. Needed to sync. */
  token?: string;
}

export class Repo {
  static open(options?: OpenOptions): Promise<Repo>;
  static delete(name: string): Promise<void>;
  readonly name: string;
  readonly server: string | undefined;
  /** Replaces the bearer token. */
  token: string | undefined;
  create(initial?: Record<string, string>): DocHandle;
  find(id: string): Promise<DocHandle | undefined>;
  list(): Promise<string[]>;
  save(doc: DocHandle): Promise<void>;
  /** One sync round; resolves with the server's heads (hex) once it has committed. */
  sync(doc: DocHandle): Promise<string[]>;
  /** The document merged with the server's copy (fetched if not stored locally). */
  pull(id: string): Promise<DocHandle>;
  close(): void;
}
