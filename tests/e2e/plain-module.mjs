// The package imported by a plain <script type="module"> (no bundler): the page written by
// the packaging test opens a repo, creates a document, computes a CID and syncs.
// Usage: node tests/e2e/plain-module.mjs <server url>
import { assert, launch, newPage } from './lib.mjs';

const [url] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await newPage(await browser.newContext(), 'plain');
  await page.goto(url);
  await page.waitForSelector('body[data-result]', { state: 'attached', timeout: 30_000 });
  const result = JSON.parse(await page.getAttribute('body', 'data-result'));
  assert(!result.failed, `the page ran: ${result.failed}`);
  assert(result.value.hello === 'plain module' && result.cid === 'QmWfVY9y3xjsixTgbd9AorQxH7VtMpzfx2HaWtsoUYecaX', `it works: ${JSON.stringify(result)}`);
  assert(result.pending === 0 && result.error === 'CairnError', `synced: ${JSON.stringify(result)}`);
  console.log(`ok: ${result.value.hello}`);
} finally {
  await browser.close();
}
