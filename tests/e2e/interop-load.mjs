// The interop benchmark's load: N stock automerge-repo clients (one process, as many Repos),
// four per shared text document, each typing 6 characters per second for a while; prints one
// JSON line: the delivery latency of every character to every other client of its document
// (p50, p99, max, count, and how many never arrived within 2 s of the end).
// Usage: node tests/e2e/interop-load.mjs <ws url> <clients> <seconds> [<http base for Cairn tokens> [<user prefix>]]
// (The benchmark runs several of these at once, each with its own user prefix.) The JSON line
// also lists every latency, so that several processes' results can be merged.
// With an http base, client i signs in as user `u<i>` and the document's creator makes the
// other three writers (Cairn's access control); without, the URL is used as it is.
import { Repo } from '@automerge/automerge-repo';
import { WebSocketClientAdapter } from '@automerge/automerge-repo-network-websocket';
import * as Automerge from '@automerge/automerge';

const [url, clientsArg, secondsArg, cairn, prefix = 'u'] = process.argv.slice(2);
const clients = Number(clientsArg);
const seconds = Number(secondsArg);
const PER_DOC = 4;
const RATE = 6;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function token(user) {
  const r = await fetch(`${cairn}/v1/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user }) });
  return (await r.json()).token;
}

async function until(what, check, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const tokens = [];
const repos = [];
const joined = [];
for (let i = 0; i < clients; i++) {
  tokens[i] = cairn ? await token(`${prefix}${i}`) : undefined;
  const address = cairn ? `${url}?token=${tokens[i]}` : url;
  const repo = new Repo({ network: [new WebSocketClientAdapter(address)] });
  joined.push(new Promise((resolve) => repo.networkSubsystem.once('peer', resolve)));
  repos.push(repo);
}
await Promise.all(joined);

// One document per group of four, created by its first client.
const handles = [];
const docs = Math.ceil(clients / PER_DOC);
for (let g = 0; g < docs; g++) {
  const creator = g * PER_DOC;
  const handle = repos[creator].create({ text: '', seq: {} });
  handles[creator] = handle;
  if (cairn) {
    for (let j = creator + 1; j < Math.min(creator + PER_DOC, clients); j++) {
      const r = await fetch(`${cairn}/v1/docs/${handle.documentId}/members/${prefix}${j}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${tokens[creator]}`, 'content-type': 'application/json' },
        body: '{"role":"writer"}',
      });
      if (!r.ok && r.status !== 403) throw new Error(`granting: ${r.status}`);
      if (r.status === 403) { j--; await sleep(20); } // not on the server yet
    }
  }
}
// Every other client finds its group's document (once the server has it).
for (let i = 0; i < clients; i++) {
  if (handles[i]) continue;
  const creator = i - (i % PER_DOC);
  for (;;) {
    try {
      handles[i] = await repos[i].find(handles[creator].url);
      break;
    } catch {
      await sleep(50);
    }
  }
}
await until('every client has its document', () => handles.every((h) => h.doc()));

// sent.get(`${client}:${n}`) = when client typed its n-th character.
const sent = new Map();
const latencies = [];
const expected = new Map(); // key -> receivers still to hear it
for (let i = 0; i < clients; i++) {
  const group = i - (i % PER_DOC);
  const peers = [];
  for (let j = group; j < Math.min(group + PER_DOC, clients); j++) if (j !== i) peers.push(j);
  const seen = new Map();
  handles[i].on('change', ({ doc }) => {
    const now = performance.now();
    for (const j of peers) {
      const n = doc.seq?.[`c${j}`] ?? 0;
      for (let k = (seen.get(j) ?? 0) + 1; k <= n; k++) {
        const key = `${j}:${k}`;
        const at = sent.get(key);
        if (at !== undefined) {
          latencies.push(now - at);
          expected.set(key, expected.get(key) - 1);
        }
      }
      if (n > (seen.get(j) ?? 0)) seen.set(j, n);
    }
  });
}

const cpu0 = process.cpuUsage();
const started = performance.now();
let typed = 0;
const typists = handles.map(async (handle, i) => {
  await sleep(Math.random() * (1000 / RATE));
  const group = i - (i % PER_DOC);
  const receivers = Math.min(group + PER_DOC, clients) - group - 1;
  for (let n = 1; performance.now() - started < seconds * 1000; n++) {
    const key = `${i}:${n}`;
    sent.set(key, performance.now());
    expected.set(key, receivers);
    handle.change((d) => {
      Automerge.splice(d, ['text'], d.text.length, 0, String.fromCharCode(97 + (n % 26)));
      d.seq[`c${i}`] = n;
    });
    typed++;
    await sleep(1000 / RATE);
  }
});
await Promise.all(typists);
await sleep(2000); // the last characters arrive
const cpu = process.cpuUsage(cpu0);
latencies.sort((a, b) => a - b);
const pick = (p) => latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? null;
let missing = 0;
for (const left of expected.values()) missing += left;
console.log(JSON.stringify({
  clients, typed, deliveries: latencies.length, missing,
  p50: pick(50), p99: pick(99), max: latencies.at(-1) ?? null,
  loadCpuSeconds: (cpu.user + cpu.system) / 1e6,
  latencies: latencies.map((l) => Math.round(l * 100) / 100),
}));
for (const r of repos) {
  try { await r.shutdown(); } catch { /* ignore */ }
}
process.exit(0);
