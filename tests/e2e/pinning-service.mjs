// A real, independent implementation of the IPFS Pinning Service API for the tests: npm
// `mock-ipfs-pinning-service` (from ipfs-shipyard), which checks every request against the
// spec's OpenAPI document and answers as the spec says. It keeps pins in memory and never
// fetches content; a pin whose name starts with `queued-`, `pinning-`, `pinned-` or `failed-`
// reports that status (otherwise `queued`). Listens on 127.0.0.1 only and prints its URL;
// exits when its parent closes stdin.
// Usage: node tests/e2e/pinning-service.mjs <access token>
import http from 'node:http';
import mock from 'mock-ipfs-pinning-service';

const [token] = process.argv.slice(2);
const app = await mock.setup({ token, loglevel: 'error' });
const server = http.createServer(app);
server.listen(0, '127.0.0.1', () => {
  console.log(`pinning service listening on http://127.0.0.1:${server.address().port}`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
