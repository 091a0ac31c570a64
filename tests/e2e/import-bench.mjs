// ipfs-unixfs-importer on the same input as Cairn's importer, for the content benchmark:
// CIDv1 raw leaves, 256 KiB fixed chunks, balanced 174-link layout, blocks discarded.
// Usage: node tests/e2e/import-bench.mjs FILE  → {"cid", "bytes", "seconds"}
import { createReadStream, statSync } from 'node:fs';
import { importer } from 'ipfs-unixfs-importer';
import { kuboV1Options } from './unixfs-options.mjs';

const [file] = process.argv.slice(2);
const blockstore = { async put(cid) { return cid; }, async has() { return false; } };
const options = kuboV1Options();
const started = process.hrtime.bigint();
let cid;
for await (const entry of importer([{ content: createReadStream(file, { highWaterMark: 1 << 20 }) }], blockstore, options)) {
  cid = entry.cid.toString();
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(JSON.stringify({ cid, bytes: statSync(file).size, seconds }));
