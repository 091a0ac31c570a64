// Content IDs computed in the browser as a Blob streams through the wasm importer, exactly
// as `ipfs add` computes them (CIDv1 with raw leaves by default, or CIDv0).
import { fileImporter } from './wasm.js';
import { CairnError, wrap } from './errors.js';

/**
 * The IPFS CID of `blob` (a Blob or File), read as a stream: memory stays at one 256 KiB
 * chunk and the DAG's open nodes, whatever the size.
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
  const FileImporter = await fileImporter();
  let importer;
  try {
    importer = new FileImporter(cidVersion);
  } catch (e) {
    throw wrap(e);
  }
  try {
    const reader = blob.stream().getReader();
    let read = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const blocks = importer.write(value);
      read += value.length;
      if (onBlock && blocks.length) onBlock(blocks);
      onProgress?.(read);
    }
    const { cid, size, dagSize, blocks } = importer.finish();
    if (onBlock && blocks.length) onBlock(blocks);
    return { cid, size, dagSize };
  } finally {
    importer.free();
  }
}
