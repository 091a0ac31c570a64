// Where the browser SDK's time goes: runs one expression of the bench page (tests/e2e/bench-app)
// under Chromium's CPU profiler (CDP `Profiler`) and prints the functions with the most self
// time, and how much of the wall time the page's thread was idle (waiting for IndexedDB, which
// runs in the browser process), then the same by inclusive time. Build the module with names first:
//   CAIRN_WASM_NAMES=1 scripts/build-wasm
//   node tests/e2e/profile.mjs 'bench.cairnQueue({sequential: 300, burst: 0})' [trace.json] [--save out.cpuprofile]
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { launch } from './lib.mjs';
import { serveBenchApp } from './bench-app/serve.mjs';

const args = process.argv.slice(2);
const saveAt = args.indexOf('--save');
const save = saveAt >= 0 ? args.splice(saveAt, 2)[1] : undefined;
const [expression, tracePath] = args;
if (!expression) throw new Error("usage: profile.mjs '<expression on window>' [trace.json] [--save file]");

const app = await serveBenchApp(tracePath);
const browser = await launch();
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`[page] ${m.text()}`));
  await page.goto(app.url);
  await page.waitForSelector('body[data-ready=true]');
  await page.evaluate(() => window.bench.warm?.());
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
  await cdp.send('Profiler.start');
  const t = Date.now();
  const result = await page.evaluate((e) => Promise.resolve((0, eval)(e)), expression);
  const wall = Date.now() - t;
  const { profile } = await cdp.send('Profiler.stop');
  if (save) writeFileSync(save, JSON.stringify(profile));
  console.log('result:', JSON.stringify(result));

  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const f = node.callFrame;
    const key = `${f.functionName || '(anonymous)'}  ${f.url ? basename(f.url) : ''}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  console.log(`\nwall ${wall} ms, sampled ${total.toFixed(0)} ms`);
  console.log('self ms    %     function');
  for (const [key, ms] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
    console.log(`${ms.toFixed(1).padStart(8)} ${((100 * ms) / total).toFixed(1).padStart(5)}  ${key}`);
  }

  // Inclusive time: a sample counts once for every distinct function on its stack.
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const seen = new Set();
    for (let id = profile.samples[i]; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id).callFrame;
      const key = `${f.functionName || '(anonymous)'}  ${f.url ? basename(f.url) : ''}`;
      if (!seen.has(key)) {
        seen.add(key);
        inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
      }
    }
  }
  console.log('\ninclusive ms  %     function');
  for (const [key, ms] of [...inclusive.entries()].sort((a, b) => b[1] - a[1]).slice(0, 50)) {
    console.log(`${ms.toFixed(1).padStart(8)} ${((100 * ms) / total).toFixed(1).padStart(5)}  ${key.slice(0, 150)}`);
  }
} finally {
  await browser.close();
  app.close();
}
