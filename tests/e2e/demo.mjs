// Cairn Notes (the demo PWA, www/) driven like a user, in Debian's Chromium against the real
// server on PostgreSQL with a pinning service. Every step saves a screenshot in the
// artifacts directory (named <scenario>-NN-what.png).
// Usage: node tests/e2e/demo.mjs <server url> <artifacts dir> <scenario>
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import * as Automerge from '@automerge/automerge';
import { assert, launch, launchPersistent, newPage } from './lib.mjs';

const [url, out, scenario] = process.argv.slice(2);
const base = url.replace(/\/$/, '');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

/** A PNG image (a sunset over the sea), encoded here: no image library needed. */
function beachPng(width = 96, height = 64) {
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = [0];
    for (let x = 0; x < width; x++) {
      const sea = y > height * 0.6;
      const sun = (x - width * 0.7) ** 2 + (y - height * 0.45) ** 2 < (height * 0.18) ** 2;
      const [r, g, b] = sun ? [255, 196, 64] : sea ? [30, 90 + (y % 7) * 6, 160] : [255 - y * 2, 140 + y, 120 + y * 2];
      row.push(r, g, b, 255);
    }
    rows.push(Buffer.from(row));
  }
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const byte of buf) c = crcTable[(c ^ byte) & 255] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 6, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

let shots = 0;
const taken = [];
async function shot(page, name, what) {
  shots += 1;
  const file = `${scenario}-${String(shots).padStart(2, '0')}-${name}.png`;
  await page.screenshot({ path: `${out}/${file}`, fullPage: true });
  taken.push(`${file}: ${what}`);
}

async function signIn(page, user) {
  await page.goto(`${base}/`);
  await page.waitForSelector('body[data-ready=true]');
  await page.fill('#user', user);
  await page.click('form.sign-in button[type=submit]');
  await page.waitForSelector('#new-note');
}

const synced = (page) => page.waitForSelector('#network[data-online="true"] ~ #pending[data-pending="0"]', { timeout: 30_000 });
const offlineShown = (page) => page.waitForSelector('#network[data-online="false"]', { timeout: 15_000 });
const pendingCount = async (page) => Number(await page.getAttribute('#pending', 'data-pending'));

/** The accessibility basics: every control has a name, every image an alt. */
async function checkLabels(page, where) {
  const problems = await page.evaluate(() => {
    const named = (el) => {
      if (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')) return true;
      if (el.id && document.querySelector(`label[for="${el.id}"]`)) return true;
      if (el.closest('label')) return true;
      return el.tagName === 'BUTTON' && el.textContent.trim().length > 0;
    };
    const bad = [];
    for (const el of document.querySelectorAll('input:not([aria-hidden=true]), textarea, select, button')) {
      if (!named(el)) bad.push(el.outerHTML.slice(0, 80));
    }
    for (const img of document.querySelectorAll('img')) if (!img.hasAttribute('alt')) bad.push(img.outerHTML.slice(0, 80));
    if (!document.documentElement.lang) bad.push('no lang on <html>');
    return bad;
  });
  assert(problems.length === 0, `unlabelled controls on ${where}: ${problems.join(' | ')}`);
}

const scenarios = {
  /** The journey of the issue: sign in, write, go offline, edit and attach, reload, see the
   *  note and the outbox, go online, watch it sync and pin, open it from a second context. */
  async journey(browser) {
    const context = await browser.newContext({ viewport: DESKTOP });
    context.on('dialog', (d) => d.accept());
    const page = await newPage(context, 'A');
    await page.goto(`${base}/`);
    await page.waitForSelector('body[data-ready=true]');
    await checkLabels(page, 'the sign-in screen');
    await shot(page, 'sign-in', 'the sign-in screen (development sign-in by user name)');
    await signIn(page, 'alice');
    await page.evaluate(() => navigator.serviceWorker.ready); // the shell is cached from now on

    await page.click('#new-note');
    await page.waitForSelector('#note-title');
    await page.fill('#note-title', 'Trip to the coast');
    await page.fill('#note-body', 'Packing list: towels, sunscreen, a good book.');
    await synced(page);
    const id = page.url().split('#/notes/')[1];
    assert(id, `the note has a route: ${page.url()}`);
    await checkLabels(page, 'the note page');
    await shot(page, 'note-synced', 'a new note, written and synced (online, all changes saved)');

    // Offline: edit, and attach an image (stored on this device at once).
    await context.setOffline(true);
    await offlineShown(page);
    await page.click('#note-body');
    await page.keyboard.press('End');
    await page.keyboard.type(' And a kite.');
    await page.setInputFiles('#attach-input', { name: 'beach.png', mimeType: 'image/png', buffer: beachPng() });
    await page.waitForSelector('.attachment[data-state="wait"] .thumb img', { timeout: 15_000 });
    const waiting = await pendingCount(page);
    assert(waiting >= 2, `edits and the upload wait in the outbox: ${waiting}`);
    await shot(page, 'offline-edit-attach', 'offline: the note edited and an image attached; its thumbnail shows, waiting to upload');

    // Reload while offline: the app shell comes from the Service Worker, the note from IndexedDB.
    await page.reload();
    await page.waitForSelector('body[data-ready=true]');
    await offlineShown(page);
    await page.waitForSelector('#note-body');
    assert((await page.inputValue('#note-body')).endsWith('And a kite.'), 'the offline edit survived the reload');
    await page.waitForSelector('.attachment .thumb img');
    assert((await pendingCount(page)) === waiting, 'still waiting after the reload');
    await page.click('#pending');
    await page.waitForSelector('#outbox-panel li');
    const outbox = await page.textContent('#outbox-panel');
    assert(outbox.includes('upload beach.png') && outbox.includes('edits of “Trip to the coast”'), `the outbox lists what waits: ${outbox}`);
    await shot(page, 'offline-reloaded', 'reloaded offline: the shell from the Service Worker, the note and its image from this device, the outbox open');
    await page.click('#pending');

    // Online: everything syncs, the image uploads and is pinned.
    await context.setOffline(false);
    await synced(page);
    await page.waitForSelector('.attachment[data-state="ok"] .badge:text("pinned to IPFS")', { timeout: 60_000 });
    await shot(page, 'synced-pinned', 'back online: everything synced, the image uploaded and pinned to IPFS');

    // A second browser (same user, empty storage): the note arrives with its image.
    const second = await browser.newContext({ viewport: DESKTOP });
    const b = await newPage(second, 'B');
    await signIn(b, 'alice');
    await b.waitForSelector('.note-link .title:text("Trip to the coast")', { timeout: 20_000 });
    await b.click('.note-link');
    await b.waitForSelector('#note-body');
    await b.waitForFunction(() => document.querySelector('#note-body').value.endsWith('And a kite.'));
    await b.waitForSelector('.attachment .thumb img', { timeout: 20_000 });
    const thumb = await b.evaluate(() => {
      const img = document.querySelector('.attachment .thumb img');
      return img.complete && img.naturalWidth;
    });
    assert(thumb === 96, `the thumbnail decoded on the second device: ${thumb}`);
    await shot(b, 'second-device', 'a second browser signed in as alice: the note and the image thumbnail, downloaded and verified');

    // Both edit at once: the edits merge.
    await page.click('#note-body');
    await page.keyboard.press('End');
    await b.click('#note-body');
    await b.keyboard.press('Home');
    await Promise.all([page.keyboard.type(' Bring snacks.'), b.keyboard.type('Saturday! ')]);
    const merged = (p) => p.waitForFunction(() => {
      const v = document.querySelector('#note-body').value;
      return v.startsWith('Saturday! ') && v.endsWith('Bring snacks.');
    }, null, { timeout: 20_000 });
    await Promise.all([merged(page), merged(b)]).catch(async (e) => {
      const values = await Promise.all([page, b].map((p) => p.inputValue('#note-body')));
      throw new Error(`the edits did not merge: ${JSON.stringify(values)} (${e.message})`);
    });
    await shot(b, 'concurrent-edits', 'both browsers typed at once: the edits merged in both');

    // Another user sees none of it.
    const other = await browser.newContext({ viewport: DESKTOP });
    const c = await newPage(other, 'C');
    await signIn(c, 'bob');
    await c.waitForSelector('.note-list .empty');
    await c.goto(`${base}/#/notes/${id}`);
    await c.waitForSelector('.editor-pane .error');
    await shot(c, 'other-user', 'bob signed in: none of alice\'s notes, and her note\'s link does not open for him');

    // The file browser: search, preview, keyboard upload, delete.
    await page.click('a.tab[href="#/files"]');
    await page.waitForSelector('.file-card[data-state="ok"] .thumb img');
    await page.fill('#file-search', 'beach');
    await page.waitForFunction(() => document.querySelectorAll('.file-card').length === 1 && /1 file found/.test(document.querySelector('.files-page > p').textContent));
    await checkLabels(page, 'the file browser');
    await shot(page, 'files-search', 'the file browser: a search for "beach" over names and metadata, the thumbnail and pin status');
    await page.click('.file-card button:text("Preview")');
    await page.waitForSelector('dialog.preview[open] img');
    await shot(page, 'preview', 'the preview of the image');
    await page.keyboard.press('Escape');
    await page.waitForSelector('dialog.preview', { state: 'detached' });
    await page.fill('#file-search', 'nothing-like-this');
    await page.waitForSelector('.file-grid .empty');

    // Attaching with the keyboard alone.
    await page.goto(`${base}/#/notes/${id}`);
    await page.waitForSelector('#attach-button');
    // Listening first: Playwright intercepts the file chooser only once asked to.
    const chooserOpened = page.waitForEvent('filechooser', { timeout: 15_000 });
    await page.waitForTimeout(200);
    await page.focus('#note-body');
    let focused = '';
    for (let i = 0; i < 10 && focused !== 'attach-button'; i++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => document.activeElement?.id);
    }
    assert(focused === 'attach-button', `Tab reaches "Choose files": ${focused}`);
    await page.keyboard.press('Enter');
    const chooser = await chooserOpened;
    await chooser.setFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('Tide tables and a map.') });
    await page.waitForSelector('.attachment .name:text("notes.txt")');
    await synced(page);

    // Delete the text file from the file browser.
    await page.click('a.tab[href="#/files"]');
    await page.waitForSelector('.file-card .name:text("notes.txt")');
    await page.click('.file-card:has(.name:text("notes.txt")) button:text("Delete")');
    await page.waitForSelector('.file-card .name:text("notes.txt")', { state: 'detached' });
    await synced(page);

    // A phone-sized screen: one pane at a time.
    const phone = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
    const m = await newPage(phone, 'M');
    await signIn(m, 'alice');
    await m.waitForSelector('.note-link .title:text("Trip to the coast")', { timeout: 20_000 });
    await shot(m, 'phone-list', 'phone: the list of notes and the status bar');
    await m.click('.note-link');
    await m.waitForSelector('.attachment .thumb img', { timeout: 20_000 });
    assert(await m.isHidden('.list-pane'), 'on a phone the list hides while a note is open');
    await shot(m, 'phone-note', 'phone: the note with its image');
    await m.click('a.tab[href="#/files"]');
    await m.waitForSelector('.file-card .thumb img');
    await shot(m, 'phone-files', 'phone: the file browser');
    const overflow = await m.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    assert(!overflow, 'nothing overflows the phone screen sideways');
  },

  /** Installable, by Chromium's own check (manifest, icons, a worker controlling the page),
   *  in a real profile (an incognito-like test context is never installable). */
  async installable() {
    const profile = mkdtempSync(join(tmpdir(), 'cairn-demo-profile-'));
    const context = await launchPersistent(profile);
    try {
      const page = await newPage(context, 'I');
      await signIn(page, 'dana');
      await page.evaluate(() => navigator.serviceWorker.ready);
      await page.reload();
      await page.waitForSelector('#new-note');
      const cdp = await context.newCDPSession(page);
      const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
      assert(installabilityErrors.length === 0, `installable: ${JSON.stringify(installabilityErrors)}`);
      const manifest = await cdp.send('Page.getAppManifest');
      assert(manifest.errors.length === 0 && JSON.parse(manifest.data).name === 'Cairn Notes', `the manifest parses: ${JSON.stringify(manifest.errors)}`);
    } finally {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    }
  },

  /** The Service Worker: the shell opens offline, and a Background Sync event drains the
   *  outbox with no page syncing. */
  async serviceWorker(browser) {
    const context = await browser.newContext({ viewport: DESKTOP });
    const page = await newPage(context, 'S');
    await signIn(page, 'carol');
    await page.evaluate(() => navigator.serviceWorker.ready);
    await page.click('#new-note');
    await page.waitForSelector('#note-title');
    await page.fill('#note-title', 'Queued for the worker');
    await synced(page);
    const id = page.url().split('#/notes/')[1];

    await context.setOffline(true);
    await page.reload();
    await page.waitForSelector('body[data-ready=true]');
    const controlled = await page.evaluate(() => !!navigator.serviceWorker.controller);
    assert(controlled, 'the page is controlled by the Service Worker');
    await page.waitForSelector('#note-title');
    assert((await page.inputValue('#note-title')) === 'Queued for the worker', 'the note opened offline');

    // The page itself cannot reach the server any more; only the worker can.
    await page.route('**/v1/**', (route) => route.abort());
    await page.fill('#note-body', 'sent by the Service Worker');
    await page.waitForFunction(() => Number(document.querySelector('#pending').dataset.pending) > 0);
    await context.setOffline(false);
    const session = await context.newCDPSession(page);
    await session.send('ServiceWorker.enable');
    const registrations = [];
    session.on('ServiceWorker.workerRegistrationUpdated', (e) => registrations.push(...e.registrations));
    await page.waitForFunction(() => true);
    for (let i = 0; i < 50 && !registrations.some((r) => r.scopeURL.startsWith(base)); i++) await new Promise((r) => setTimeout(r, 100));
    const registration = registrations.find((r) => r.scopeURL.startsWith(base));
    assert(registration, 'the worker is registered');
    await session.send('ServiceWorker.dispatchSyncEvent', {
      origin: new URL(base).origin,
      registrationId: registration.registrationId,
      tag: 'cairn-sync:notes-carol',
      lastChance: false,
    });
    const token = (await (await fetch(`${base}/v1/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"user":"carol"}' })).json()).token;
    let seen = '';
    for (let i = 0; i < 100 && seen !== 'sent by the Service Worker'; i++) {
      const response = await fetch(`${base}/v1/docs/${id}`, { headers: { authorization: `Bearer ${token}` } });
      seen = String(Automerge.load(new Uint8Array(await response.arrayBuffer())).body ?? '');
      await new Promise((r) => setTimeout(r, 200));
    }
    assert(seen === 'sent by the Service Worker', `the worker delivered the offline edit: ${seen}`);
    await shot(page, 'service-worker', 'offline reload served by the Service Worker; its Background Sync delivered the edit');
  },
};

const run = scenarios[scenario];
if (!run) throw new Error(`unknown scenario ${scenario}; one of ${Object.keys(scenarios)}`);
const browser = await launch();
try {
  await run(browser);
  console.log(`${scenario}: ok`);
  console.log(`screenshots:\n${taken.map((t) => `  ${t}`).join('\n')}`);
} finally {
  await browser.close();
}
