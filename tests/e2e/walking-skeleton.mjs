// Page A edits; the SDK stores the edit in IndexedDB and syncs it by itself. Page B, in a
// fresh browser context (its own empty IndexedDB), opens the document from the server, sees
// the edit and answers; A sees the answer arrive live, without reloading.
// Usage: node tests/e2e/walking-skeleton.mjs <server url> <artifacts dir>
import { assert, launch, newPage, waitForStatus } from './lib.mjs';

const [url, out] = process.argv.slice(2);
if (!url || !out) throw new Error('usage: walking-skeleton.mjs <server url> <artifacts dir>');

/** Waits until the page's sync line says online with nothing pending. */
async function synced(page) {
  await page.waitForSelector('#sync[data-online="true"][data-pending="0"]', { timeout: 20_000 });
}

const browser = await launch();
try {
  const contextA = await browser.newContext();
  const a = await newPage(contextA, 'A');
  await a.goto(url);
  await a.waitForSelector('body[data-ready=true]');
  await a.click('#create');
  await waitForStatus(a, /created/);
  await a.fill('#key', 'title');
  await a.fill('#value', 'hello from A');
  await a.click('#save');
  await waitForStatus(a, /saved on this device/);
  await synced(a);
  const id = (await a.textContent('#doc-id')).trim();
  await a.screenshot({ path: `${out}/walking-skeleton-a.png`, fullPage: true });

  const contextB = await browser.newContext();
  const b = await newPage(contextB, 'B');
  await b.goto(`${url}?doc=${encodeURIComponent(id)}`);
  await b.waitForSelector('body[data-ready=true]');
  await waitForStatus(b, /loaded from the server/);
  const seen = JSON.parse(await b.textContent('#content'));
  assert(seen.title === 'hello from A', `B sees A's edit (got ${JSON.stringify(seen)})`);
  await b.fill('#key', 'reply');
  await b.fill('#value', 'hello from B');
  await b.click('#save');
  await synced(b);
  await b.screenshot({ path: `${out}/walking-skeleton-b.png`, fullPage: true });

  // A follows the document live: B's answer appears without a reload.
  await a.waitForFunction(() => document.querySelector('#content').textContent.includes('hello from B'), null, { timeout: 20_000 });
  const merged = JSON.parse(await a.textContent('#content'));
  assert(merged.title === 'hello from A' && merged.reply === 'hello from B', `A sees both edits (got ${JSON.stringify(merged)})`);
  await a.screenshot({ path: `${out}/walking-skeleton-a-merged.png`, fullPage: true });
  console.log(JSON.stringify({ id, content: merged }));
} finally {
  await browser.close();
}
