// Shared by the Playwright scripts: launch Debian's Chromium (never a downloaded browser).
import { chromium } from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
}

/** A browser context on a real profile directory (on-disk storage, quotas as for a user). */
export function launchPersistent(dir) {
  return chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
}

/** A page that echoes its console and errors, tagged, so failures are diagnosable. */
export async function newPage(context, tag) {
  const page = await context.newPage();
  page.on('console', (m) => console.log(`[${tag}] ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[${tag}] page error: ${e.message}`));
  return page;
}

export function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

/** Waits until the status line reports success matching `pattern`; fails fast on an error. */
export async function waitForStatus(page, pattern) {
  await page.waitForFunction(
    ([source]) => {
      const el = document.querySelector('#status');
      if (el.dataset.kind === 'error') throw new Error(`page reported: ${el.textContent}`);
      return el.dataset.kind === 'ok' && new RegExp(source).test(el.textContent);
    },
    [pattern.source],
    { timeout: 20_000 },
  );
}
