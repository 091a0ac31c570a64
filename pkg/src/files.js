// Content IDs computed in the browser exactly as `ipfs add` computes them (CIDv1 with raw
// leaves by default, or CIDv0). CIDv1: the leaves are cut from the Blob's stream and hashed
// with WebCrypto here, without copying them into wasm; the wasm importer gets each leaf's
// digest and size and builds the DAG's nodes. CIDv0 (leaves wrapped in DAG-PB) and pages
// without WebCrypto (not a secure context) stream through the wasm importer instead.
import { cidOf, fileImporter } from './wasm.js';
import { call, CairnError, wrap } from './errors.js';

/** Bytes of a leaf (Kubo's default chunker). */
const CHUNK = 256 * 1024;
/** Leaves hashing at once (8 MiB): WebCrypto works off the page's thread meanwhile. */
const IN_FLIGHT = 32;

/**
 * The IPFS CID of `blob` (a Blob or File), read as a stream: memory stays at about 8 MiB of
 * leaves being hashed and the DAG's open nodes, whatever the size.
 *
 * @param {Blob} blob
 * @param {{ cidVersion?: 0 | 1, onBlock?: (blocks: [string, Uint8Array][]) => void,
 *           onProgress?: (bytes: number) => void }} [options]
 * @returns {Promise<{ cid: string, size: number, dagSize: number }>}
 */
export async function fileCid(blob, { cidVersion = 1, onBlock, onProgress } = {}) {
  if (!(blob instanceof Blob)) {
    throw new CairnError('fileCid expects a Blob or File', 'E_INVALID_ARGUMENT');
  }
  if (cidVersion === 1 && globalThis.crypto?.subtle) {
    const FileImporter = await fileImporter();
    const importer = new FileImporter(1);
    try {
      return await rawLeaves(importer, blob, onBlock && ((blocks) => void onBlock(blocks)), onProgress);
    } catch (e) {
      throw wrap(e);
    } finally {
      importer.free();
    }
  }
  const compute = await cidOf();
  return call(() => compute(blob, cidVersion, onBlock, onProgress));
}

/** Whether `putFile` can import this way (CIDv1 in a secure context); see `storeRaw`. */
export function canStoreRaw(cidVersion) {
  return (cidVersion === undefined || cidVersion === 1) && Boolean(globalThis.crypto?.subtle);
}

/** Bytes of blocks `storeRaw` writes in one transaction. */
const STORE_BATCH = 4 << 20;

/**
 * `putFile`'s CIDv1 import: leaves cut and hashed as `fileCid` does, and every block stored
 * through `put` (a wasm `FilePut`) as the JS array it already is, 4 MiB per transaction, one
 * batch written while the next is read and hashed. Resolves to the root's `{cid, size}`; on
 * failure the caller aborts `put`.
 */
export async function storeRaw(put, blob, onProgress) {
  const FileImporter = await fileImporter();
  const importer = new FileImporter(1);
  let batch = [];
  let bytes = 0;
  let writing = Promise.resolve();
  const store = () => {
    if (batch.length === 0) return;
    const full = batch;
    batch = [];
    bytes = 0;
    writing = writing.then(() => put.store(full));
  };
  try {
    const { cid, size } = await rawLeaves(importer, blob, async (blocks) => {
      for (const [cid, data] of blocks) {
        // IndexedDB stores a view's whole buffer: a leaf cut out of a larger stream chunk is
        // stored as a copy of its own bytes.
        batch.push([cid, data.byteLength === data.buffer.byteLength ? data : data.slice()]);
        bytes += data.length;
      }
      if (bytes >= STORE_BATCH) {
        await writing; // at most one batch waits for IndexedDB
        store();
      }
    }, onProgress);
    store();
    await writing;
    return { cid, size };
  } catch (e) {
    await writing.catch(() => {}); // a failed write is the error already; let the rest settle
    throw e;
  } finally {
    importer.free();
  }
}

/**
 * CIDv1: leaves cut and hashed here, the DAG built by `importer` from their digests. The
 * reading waits for `onBlock`'s promise, if it returns one.
 */
async function rawLeaves(importer, blob, onBlock, onProgress) {
  const reader = blob.stream().getReader();
  const hashing = []; // oldest first: { bytes, digest: Promise<ArrayBuffer> }
  const cut = (bytes) => hashing.push({ bytes, digest: crypto.subtle.digest('SHA-256', bytes) });
  // Adds leaves to the DAG in order, once at most IN_FLIGHT (or, at the end, none) are left.
  const add = async (left) => {
    while (hashing.length > left) {
      const { bytes, digest } = hashing.shift();
      const [cid, nodes] = importer.addRawLeaf(new Uint8Array(await digest), bytes.length);
      await onBlock?.([[cid, bytes], ...nodes]);
    }
  };
  let leaf = new Uint8Array(CHUNK);
  let filled = 0;
  let read = 0;
  for (;;) {
    const { done, value } = await reader.read().catch((e) => {
      throw new CairnError(`cannot read the file: ${e?.message ?? e}`, 'E_INVALID_ARGUMENT');
    });
    if (done) break;
    let at = 0;
    while (at < value.length) {
      if (filled === 0 && value.length - at >= CHUNK) {
        cut(value.subarray(at, at + CHUNK)); // a whole leaf inside the chunk: no copy
        at += CHUNK;
        continue;
      }
      const n = Math.min(CHUNK - filled, value.length - at);
      leaf.set(value.subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled === CHUNK) {
        cut(leaf);
        leaf = new Uint8Array(CHUNK);
        filled = 0;
      }
    }
    read += value.length;
    onProgress?.(read);
    await add(IN_FLIGHT);
  }
  if (filled > 0) cut(leaf.subarray(0, filled));
  await add(0);
  const { cid, size, dagSize, blocks } = importer.finish();
  if (blocks.length > 0) await onBlock?.(blocks);
  return { cid, size, dagSize };
}
