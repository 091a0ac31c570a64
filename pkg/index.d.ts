// Types for @cairn/client.

/** Stable error codes. Server-side errors keep the server's code (E_INVALID_CHANGE, ...). */
export type CairnErrorCode =
  | 'E_OFFLINE'
  | 'E_QUOTA'
  | 'E_STORAGE'
  | 'E_INVALID_ARGUMENT'
  | 'E_NOT_FOUND'
  | 'E_BUSY'
  | 'E_PROTOCOL'
  | 'E_NO_SERVER'
  | 'E_TIMEOUT'
  | 'E_UNAUTHORIZED'
  | 'E_FORBIDDEN'
  | 'E_CORRUPT'
  | 'E_CID_MISMATCH'
  | 'E_FILE_TOO_LARGE'
  | 'E_UNSUPPORTED_FILE_TYPE'
  | 'E_INTERNAL'
  | (string & {});

export class CairnError extends Error {
  readonly name: 'CairnError';
  readonly code: CairnErrorCode;
  /** HTTP status, for errors the server reported over HTTP. */
  readonly status?: number;
  /** Whether trying again later may succeed (errors the server reported). */
  readonly retryable?: boolean;
  /** Documents concerned (e.g. those you may not access). */
  readonly documents?: string[];
}

/** A JSON value as stored in a document (strings are collaborative text). */
export type Value = null | boolean | number | string | Uint8Array | Date | Value[] | { [key: string]: Value };
export type Path = (string | number)[];

export type Operation =
  | { op: 'put'; path: Path; value: Value }
  | { op: 'delete'; path: Path }
  | { op: 'insert'; path: Path; index: number; value: Value }
  | { op: 'splice'; path: Path; index: number; delete: number; text?: string }
  | { op: 'increment'; path: Path; by?: number };

/** Helpers passed to a change function next to the draft. */
export interface ChangeTx {
  put(path: Path, value: Value): void;
  delete(path: Path): void;
  insert(path: Path, index: number, value: Value): void;
  /** Text editing: at `index`, delete `deleteCount` characters and insert `text`. */
  splice(path: Path, index: number, deleteCount: number, text?: string): void;
  increment(path: Path, by?: number): void;
}

export interface ChangeInfo {
  hash: string;
  actor: string;
  seq: number;
  /** Milliseconds since the epoch. */
  time: number;
  message: string | null;
  deps: string[];
}

export class DocHandle<T extends Record<string, any> = Record<string, any>> {
  /** automerge-repo compatible id (bs58check of 16 bytes). */
  readonly id: string;
  /** `automerge:<id>` */
  readonly url: string;
  /** The document as plain JSON (a fresh copy). */
  value(): T;
  toJSON(): T;
  /**
   * One Automerge change; resolves once it is durable in IndexedDB with its outbox entry.
   * Mutate the draft (`d.title = 'x'`, `d.tags.push('y')`, `delete d.old`) or pass operations.
   */
  change(fn: (draft: T, tx: ChangeTx) => void): Promise<void>;
  change(ops: Operation[]): Promise<void>;
  put(path: Path, value: Value): Promise<void>;
  delete(path: Path): Promise<void>;
  insert(path: Path, index: number, value: Value): Promise<void>;
  splice(path: Path, index: number, deleteCount: number, text?: string): Promise<void>;
  increment(path: Path, by?: number): Promise<void>;
  /** Change hashes (hex) of the document's heads. */
  heads(): string[];
  history(): ChangeInfo[];
  /** Called after every change: `local` (this tab), `tab` (another tab), `remote` (another device). */
  subscribe(callback: (value: T, info: { source: 'local' | 'tab' | 'remote' }) => void): () => void;
}

export interface OpenOptions {
  /** Repository name; one IndexedDB database per name. Default `"default"`. */
  name?: string;
  /** Base URL of the Cairn server, e.g. `location.origin`. */
  server?: string;
  /** Bearer token (JWT). Also stored for the Service Worker. */
  token?: string;
  /** Sync by itself (WebSocket, HTTP fallback). Default `true`. */
  autoSync?: boolean;
  /** Register a Background Sync (`cairn-sync:<name>`) when changes are queued offline. Default `false`. */
  backgroundSync?: boolean;
}

export interface SyncStatus {
  online: boolean;
  syncing: boolean;
  /** Operations waiting to upload. */
  pending: number;
  /** Milliseconds since the epoch of the last successful round, or null. */
  lastSyncedAt: number | null;
  error: CairnError | null;
  /** Whether this tab runs the network sync. */
  leader: boolean;
  /** Whether the browser granted persistent storage. */
  persisted: boolean;
}

interface OutboxEntryBase {
  /** Operation id (hex). */
  id: string;
  seq: number;
  attempts: number;
  nextAttemptAt: number;
  status: 'pending' | 'in-flight' | 'failed';
  /** The last failure's code (or why it failed for good). */
  code: string | null;
  createdAt: number;
}

/** An operation waiting for the server: document changes, a file upload or a file deletion. */
export type OutboxEntry =
  | (OutboxEntryBase & { kind: 'changes'; doc: string; changeCount: number })
  | (OutboxEntryBase & {
      kind: 'file-upload';
      cid: string;
      size: number;
      name: string;
      type: string;
      /** The metadata object, as JSON text. */
      metadata: string;
      /** The document the file is attached to once uploaded. */
      doc: string | null;
      /** Deleted before its upload finished: nothing more is sent. */
      cancelled: boolean;
    })
  | (OutboxEntryBase & { kind: 'file-delete'; cid: string });

/** Where a file stands on this device. */
export type FileState =
  /** Stored here; its upload is queued. */
  | 'local'
  /** Part of it is on the server; the upload continues from there. */
  | 'uploading'
  /** The server has it. */
  | 'uploaded'
  /** The server refused it for good (`code` says why). */
  | 'failed'
  /** Downloaded from the server (another device's, or a shared document's). */
  | 'remote';

/** A file on this device. */
export interface FileInfo {
  /** IPFS CID (CIDv1 with raw leaves by default), computed here. */
  cid: string;
  name: string;
  type: string;
  size: number;
  metadata: Record<string, unknown>;
  state: FileState;
  createdAt: number;
  /** The server's upload session while one is open. */
  uploadId: string | null;
  /** Why the server refused it (`state: 'failed'`). */
  code: string | null;
}

/** A file as the server lists it. */
export interface ServerFile {
  cid: string;
  name: string;
  type: string;
  size: number;
  dagSize: number;
  createdAt: number;
  metadata: Record<string, unknown>;
  pin: 'none' | 'queued' | 'pinning' | 'pinned' | 'failed';
  pinAttempts: number;
  pinError: string | null;
}

/** A file as the server and this device know it (see `Repo.fileInfo`). */
export interface FileDetails extends Partial<FileInfo> {
  cid: string;
  state: FileState;
  /** Whether the file's bytes are on this device. */
  onDevice: boolean;
  /** Serialized size of the file's IPFS DAG (from the server). */
  dagSize?: number;
  /** Pinning on IPFS, from the server: `none` (no pinning configured), `queued`, `pinning`, `pinned`, `failed`. */
  pin?: 'none' | 'queued' | 'pinning' | 'pinned' | 'failed';
  pinAttempts?: number;
  pinError?: string | null;
}

export interface PutFileOptions {
  /** Default: the File's name. */
  name?: string;
  /** Media type. Default: the Blob's type, else `application/octet-stream`. */
  type?: string;
  /** A JSON object kept with the file; searchable on the server. */
  metadata?: Record<string, unknown>;
  /** Attach the file to this document once uploaded: its readers may then read it. */
  doc?: DocHandle<any> | string;
  /** 1 (default): CIDv1 with raw leaves; 0: Kubo's `ipfs add` default. */
  cidVersion?: 0 | 1;
  /** Follows the import into this device's storage. */
  onProgress?: (progress: { loaded: number; total: number }) => void;
}

export interface TransferProgress {
  cid: string;
  direction: 'upload' | 'download';
  loaded: number;
  total: number;
}

export interface FileEvent {
  cid: string;
  kind: 'store' | 'upload' | 'delete';
  /** `retrying`: the upload failed for now (offline, server busy) and is retried with backoff. */
  state: FileState | 'deleting' | 'deleted' | 'retrying';
  error?: CairnError;
}

export interface RepoEventMap {
  status: CustomEvent<SyncStatus>;
  change: CustomEvent<{ id: string; source: 'remote' }>;
  restored: CustomEvent<{ documents: string[] }>;
  /** Upload (from the syncing tab, heard in every tab) and download progress. */
  progress: CustomEvent<TransferProgress>;
  /** A file was stored, uploaded, deleted, or its upload failed. */
  file: CustomEvent<FileEvent>;
}

export class Repo extends EventTarget {
  static open(options?: OpenOptions): Promise<Repo>;
  static delete(name: string): Promise<void>;
  readonly name: string;
  readonly server: string | undefined;
  /** The bearer token; setting it reconnects. */
  token: string | undefined;
  readonly status: SyncStatus;
  create<T extends Record<string, any>>(initial?: T): Promise<DocHandle<T>>;
  find<T extends Record<string, any>>(id: string): Promise<DocHandle<T> | undefined>;
  list(): Promise<string[]>;
  delete(id: string): Promise<void>;
  outbox(): Promise<OutboxEntry[]>;
  /** Forces a round: sends what is queued and fetches what changed elsewhere. */
  sync(): Promise<void>;
  /** Stores a file here (works offline) and queues its upload; resolves once stored. */
  putFile(blob: Blob, options?: PutFileOptions): Promise<FileInfo>;
  /** The file from this device, or downloaded and verified block by block. */
  getFile(cid: string, options?: { onProgress?: (progress: { loaded: number; total: number }) => void }): Promise<File>;
  /** Deletes a file here at once, and on the server through the outbox. */
  deleteFile(cid: string): Promise<void>;
  /** Every file on this device. */
  files(): Promise<FileInfo[]>;
  /** The user's files on the server, newest first; pass `next` as `cursor` for more. */
  remoteFiles(options?: { type?: string; limit?: number; cursor?: string }): Promise<{ files: ServerFile[]; next: string | null }>;
  /** The user's files on the server whose name, type or metadata match every word of `query` (as prefixes). */
  searchFiles(query: string, options?: { type?: string; limit?: number }): Promise<ServerFile[]>;
  /** Ids of the documents the server holds for this user (theirs and shared with them). */
  listRemote(): Promise<string[]>;
  /** This device's record merged with the server's info (pin status) when reachable. */
  fileInfo(cid: string): Promise<FileDetails | undefined>;
  close(): void;
  addEventListener<K extends keyof RepoEventMap>(type: K, listener: (event: RepoEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
}

export function open(options?: OpenOptions): Promise<Repo>;
export const Cairn: { open: typeof open; Repo: typeof Repo };

/** Options of {@link fileCid}. */
export interface FileCidOptions {
  /** 1 (default): CIDv1 with raw leaves, as `ipfs add --cid-version=1`; 0: `ipfs add`'s default. */
  cidVersion?: 0 | 1;
  /** Receives the IPFS blocks as they are completed: `[cid, bytes]` pairs, the root last. */
  onBlock?: (blocks: [string, Uint8Array][]) => void;
  /** Receives the number of bytes read so far. */
  onProgress?: (bytes: number) => void;
}

/**
 * The IPFS CID of a Blob or File, computed as the blob streams (exactly the CID Kubo's
 * `ipfs add` gives): CIDv1 leaves are hashed with WebCrypto, the DAG is built in WebAssembly.
 * Memory stays at about 8 MiB of leaves being hashed, whatever the size.
 */
export function fileCid(
  blob: Blob,
  options?: FileCidOptions,
): Promise<{ cid: string; size: number; dagSize: number }>;
