// Opens the built Vite app and waits for its verdict.
// Usage: node tests/e2e/vite-app.mjs <url> <artifacts dir>
import { assert, launch, newPage } from './lib.mjs';

const [url, out] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await newPage(await browser.newContext(), 'vite');
  await page.goto(url);
  await page.waitForSelector('#result:not([data-state=running])', { timeout: 20_000 });
  const [state, text] = await page.evaluate(() => [document.querySelector('#result').dataset.state, document.querySelector('#result').textContent]);
  await page.screenshot({ path: `${out}/vite-app.png` });
  assert(state === 'ok', `the app ran: ${text}`);
  // The plugin's preload link names the module Vite emitted, and the package's own fetch took
  // the preloaded response: the module was downloaded once.
  const [preload, fetched] = await page.evaluate(() => [
    document.querySelector('link[rel=preload][as=fetch]')?.getAttribute('href'),
    performance.getEntriesByType('resource').filter((e) => e.name.endsWith('.wasm')).map((e) => new URL(e.name).pathname),
  ]);
  assert(preload?.endsWith('.wasm'), `the built page preloads the wasm module: ${preload}`);
  assert(fetched.length === 1 && fetched[0] === preload, `the wasm module was fetched once, from the preload: ${JSON.stringify(fetched)}`);
  console.log(text);
} finally {
  await browser.close();
}
