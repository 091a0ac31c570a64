// The walking-skeleton page: sign in as a local user (development mode), then one document,
// edited locally (durable in IndexedDB at once) and synced by the SDK in the background;
// `?doc=<id>` opens a document from this device or the server. The full demo comes later.
import { Repo } from '/pkg/index.js';

const $ = (id) => document.getElementById(id);
let repo;
let doc;
let unsubscribe;

function status(text, kind = 'info') {
  $('status').textContent = text;
  $('status').dataset.kind = kind;
}

function showSync(s) {
  const el = $('sync');
  el.dataset.online = String(s.online);
  el.dataset.pending = String(s.pending);
  const last = s.lastSyncedAt ? `last synced ${new Date(s.lastSyncedAt).toLocaleTimeString()}` : 'never synced';
  const error = s.error ? ` · ${s.error.code}` : '';
  el.textContent = `${s.online ? 'online' : 'offline'} · ${s.pending} pending · ${last}${error}`;
}

function show() {
  $('doc-id').textContent = doc ? doc.id : 'none yet';
  $('content').textContent = JSON.stringify(doc ? doc.value() : {}, null, 2);
  const share = $('share');
  share.hidden = !doc;
  if (doc) share.href = `${location.pathname}?doc=${encodeURIComponent(doc.id)}`;
}

function use(handle) {
  unsubscribe?.();
  doc = handle;
  unsubscribe = doc?.subscribe(() => show());
  show();
}

/** Development sign-in: the server mints a token for a named local user. */
async function signIn(user) {
  const response = await fetch('/v1/dev/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user }),
  });
  const body = await response.json();
  if (!response.ok) throw Object.assign(new Error(body.error?.message ?? 'sign-in failed'), { code: body.error?.code });
  repo.token = body.token;
  localStorage.setItem('cairn-demo-user', user);
  $('signed-in').textContent = `signed in as ${user}`;
}

async function open(id) {
  status(`opening ${id}…`);
  try {
    const found = await repo.find(id);
    if (!found) throw Object.assign(new Error('no such document (or no access)'), { code: 'E_NOT_FOUND' });
    use(found);
    status('loaded from the server', 'ok');
  } catch (e) {
    status(`${e.code}: ${e.message}`, 'error');
  }
}

$('sign-in').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    await signIn($('user').value.trim());
    status('signed in', 'ok');
  } catch (e) {
    status(`${e.code ?? 'E_SIGN_IN'}: ${e.message}`, 'error');
  }
});

$('create').addEventListener('click', async () => {
  use(await repo.create({}));
  status('new document created', 'ok');
});

$('open').addEventListener('click', () => {
  const id = $('open-id').value.trim();
  if (id) open(id);
});

$('sync-now').addEventListener('click', () => repo.sync().catch((e) => status(`${e.code}: ${e.message}`, 'error')));

$('edit').addEventListener('submit', async (event) => {
  event.preventDefault();
  try {
    if (!doc) use(await repo.create({}));
    await doc.put([$('key').value], $('value').value);
    status('saved on this device', 'ok');
  } catch (e) {
    status(`${e.code}: ${e.message}`, 'error');
  }
});

try {
  repo = await Repo.open({ name: 'cairn-demo', server: location.origin });
  repo.addEventListener('status', (e) => showSync(e.detail));
  showSync(repo.status);
  const user = localStorage.getItem('cairn-demo-user') ?? $('user').value;
  $('user').value = user;
  await signIn(user);
  const id = new URLSearchParams(location.search).get('doc');
  if (id) await open(id);
  else {
    status('ready', 'ok');
    show();
  }
  document.body.dataset.ready = 'true';
} catch (e) {
  status(`${e.code ?? 'E_INTERNAL'}: ${e.message}`, 'error');
}
