// Reads a CAR file with @ipld/car (an implementation independent of Cairn), checks every
// block against its CID with multiformats' sha2-256, rebuilds the UnixFS file from the root
// with @ipld/dag-pb and ipfs-unixfs, and prints {"roots", "blocks", "size", "sha256"}.
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { CarReader } from '@ipld/car';
import * as dagPb from '@ipld/dag-pb';
import { UnixFS } from 'ipfs-unixfs';
import { sha256 } from 'multiformats/hashes/sha2';

const [file] = process.argv.slice(2);
const reader = await CarReader.fromBytes(await readFile(file));
const roots = await reader.getRoots();
const blocks = new Map();
for await (const { cid, bytes } of reader.blocks()) {
  const digest = await sha256.digest(bytes);
  if (cid.multihash.code !== sha256.code || Buffer.compare(Buffer.from(digest.bytes), Buffer.from(cid.multihash.bytes)) !== 0) {
    throw new Error(`block ${cid} does not match its CID`);
  }
  blocks.set(cid.toString(), { cid, bytes });
}
const hash = createHash('sha256');
let size = 0;
function visit(cid) {
  const block = blocks.get(cid.toString());
  if (!block) throw new Error(`block ${cid} is missing from the CAR`);
  if (cid.code === 0x55) { hash.update(block.bytes); size += block.bytes.length; return; }
  const node = dagPb.decode(block.bytes);
  const data = UnixFS.unmarshal(node.Data);
  if (data.data && data.data.length) { hash.update(data.data); size += data.data.length; }
  for (const link of node.Links) visit(link.Hash);
}
visit(roots[0]);
console.log(JSON.stringify({ roots: roots.map(String), blocks: blocks.size, size, sha256: hash.digest('hex') }));
