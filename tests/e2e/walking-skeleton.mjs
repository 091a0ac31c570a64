// Page A edits and syncs; page B, in a fresh browser context (its own empty IndexedDB),
// opens the document from the server and sees the edit, then answers; A reloads and sees it.
// Usage: node tests/e2e/walking-skeleton.mjs <server url> <artifacts dir>
import { assert, launch, newPage, waitForStatus } from './lib.mjs';

const [url, out] = process.argv.slice(2);
if (!url || !out) throw new Error('usage: walking-skeleton.mjs <server url> <artifacts dir>');

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
  await waitForStatus(a, /synced/);
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
  await waitForStatus(b, /synced/);
  await b.screenshot({ path: `${out}/walking-skeleton-b.png`, fullPage: true });

  await a.goto(`${url}?doc=${encodeURIComponent(id)}`);
  await waitForStatus(a, /loaded from the server/);
  const merged = JSON.parse(await a.textContent('#content'));
  assert(merged.title === 'hello from A' && merged.reply === 'hello from B',
    `A sees both edits (got ${JSON.stringify(merged)})`);
  await a.screenshot({ path: `${out}/walking-skeleton-a-merged.png`, fullPage: true });
  console.log(JSON.stringify({ id, content: merged }));
} finally {
  await browser.close();
}
