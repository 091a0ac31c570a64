// ipfs-unixfs-importer options that reproduce `ipfs add --cid-version=1`: CIDv1 with raw
// leaves, 256 KiB fixed-size chunks, balanced layout with 174 links per node.
import { fixedSize } from 'ipfs-unixfs-importer/chunker';
import { balanced } from 'ipfs-unixfs-importer/layout';

export function kuboV1Options() {
  return {
    cidVersion: 1,
    rawLeaves: true,
    reduceSingleLeafToSelf: true,
    chunker: fixedSize({ chunkSize: 262144 }),
    layout: balanced({ maxChildrenPerNode: 174 }),
  };
}
