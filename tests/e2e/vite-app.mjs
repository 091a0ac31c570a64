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
  console.log(text);
} finally {
  await browser.close();
}
