// Content IDs computed in the browser as a Blob streams through the wasm importer (its leaves
// hashed with WebCrypto), exactly as `ipfs add` computes them (CIDv1 with raw leaves by
// default, or CIDv0).
import { cidOf } from './wasm.js';
import { call, CairnError } from './errors.js';

/**
 * The IPFS CID of `blob` (a Blob or File), read as a stream (the next leaves are read while
 * the last 16 are hashed): memory stays at about 8 MiB and the DAG's open nodes, whatever
 * the size.
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
  const compute = await cidOf();
  return call(() => compute(blob, cidVersion, onBlock, onProgress));
}
