// An independent CID computation for the CID parity test: ipfs-unixfs-importer (the
// importer Helia and js-ipfs use) with Kubo's `--cid-version=1` settings, streaming each file
// given on the command line. Prints one JSON line per file: {"file", "cid", "size"}.
import { createReadStream } from 'node:fs';
import { importer } from 'ipfs-unixfs-importer';
import { kuboV1Options } from './unixfs-options.mjs';

// The CIDs are all this script needs: a blockstore that keeps nothing.
const blockstore = { async put(cid) { return cid; }, async has() { return false; } };

for (const file of process.argv.slice(2)) {
  const options = kuboV1Options();
  for await (const entry of importer([{ content: createReadStream(file) }], blockstore, options)) {
    console.log(JSON.stringify({ file, cid: entry.cid.toString(), size: String(entry.size) }));
  }
}
