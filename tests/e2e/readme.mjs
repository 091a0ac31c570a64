// The package README's examples, run: every ```js block of pkg/README.md executes in the
// SDK test page (Chromium, the real server), with `token` a signed-in user's and `file` a
// small File; `import … from '@cairn/client'` becomes the page's copy of the package. A line
// followed by `// → text` must print that text. The ```js sw block (the Service Worker
// recipe) must stand, line for line, in tests/e2e/www/sw.js, which the SDK tests run.
// Usage: node tests/e2e/readme.mjs <server url>
import { readFileSync } from 'node:fs';
import { assert, launch, newPage } from './lib.mjs';

const [url] = process.argv.slice(2);
const base = url.replace(/\/$/, '');
const root = new URL('../..', import.meta.url).pathname;
const readme = readFileSync(`${root}/pkg/README.md`, 'utf8');
const blocks = [...readme.matchAll(/```(js(?: [a-z]+)?)\n([\s\S]*?)```/g)].map(([, info, code]) => ({ info, code }));
assert(blocks.filter((b) => b.info === 'js').length >= 4, `the README has its examples: ${blocks.length}`);

// The Service Worker recipe is the test worker's code.
const worker = readFileSync(`${root}/tests/e2e/www/sw.js`, 'utf8');
for (const block of blocks.filter((b) => b.info === 'js sw')) {
  for (const line of block.code.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const expected = line.replace("'@cairn/client/sw'", "'/pkg/sw.js'");
    assert(worker.includes(expected), `the recipe's line is in tests/e2e/www/sw.js: ${expected}`);
  }
}

// The Vite recipe is the packaging test app's config.
const viteConfig = readFileSync(`${root}/tests/e2e/vite-app/vite.config.js`, 'utf8');
for (const block of blocks.filter((b) => b.info === 'js vite')) {
  for (const line of block.code.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('//'))) {
    assert(viteConfig.includes(line), `the recipe's line is in tests/e2e/vite-app/vite.config.js: ${line}`);
  }
}

const token = (await (await fetch(`${base}/v1/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"user":"reader"}' })).json()).token;
const browser = await launch();
try {
  let n = 0;
  for (const { info, code } of blocks.filter((b) => b.info === 'js')) {
    n += 1;
    const context = await browser.newContext();
    const page = await newPage(context, `example ${n}`);
    const printed = [];
    page.on('console', (m) => { if (m.type() === 'log') printed.push(m.text()); });
    await page.goto(`${base}/`);
    await page.waitForSelector('body[data-ready=true]');
    const body = code.replace(/^import \{([^}]*)\} from '@cairn\/client';$/gm, 'const {$1} = window.Cairn;');
    assert(!/^import /m.test(body), `example ${n} imports only @cairn/client`);
    const error = await page.evaluate(async ({ body, token }) => {
      const file = new File(['some photo bytes!'], 'photo.jpg', { type: 'image/jpeg' });
      const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
      try {
        await new AsyncFunction('token', 'file', body)(token, file);
        return null;
      } catch (e) {
        return `${e.code ?? e.name}: ${e.message}`;
      }
    }, { body, token });
    assert(error === null, `example ${n} (${info}) ran without error: ${error}\n${code}`);
    const expectations = [...code.matchAll(/\/\/ → (.*)$/gm)].map((m) => m[1].trim());
    for (const expected of expectations) {
      assert(printed.some((p) => p === expected), `example ${n} printed "${expected}" (it printed ${JSON.stringify(printed)})`);
    }
    console.log(`example ${n}: ok (${expectations.length} printed values checked)`);
    await context.close();
  }
} finally {
  await browser.close();
}
