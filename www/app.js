// The walking-skeleton page: sign in as a local user (development mode), then one document,
// edited locally, saved to IndexedDB and synced with the server; `?doc=<id>` opens a document
// from the server.
import { Repo } from '/pkg/index.js';

const $ = (id) => document.getElementById(id);
let repo;
let doc;

function status(text, kind = 'info') {
  $('status').textContent = text;
  $('status').dataset.kind = kind;
}

function show() {
  $('doc-id').textContent = doc ? doc.id : 'none yet';
  $('content').textContent = JSON.stringify(doc ? doc.toJSON() : {}, null, 2);
  const share = $('share');
  share.hidden = !doc;
  if (doc) share.href = `${location.pathname}?doc=${encodeURIComponent(doc.id)}`;
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

async function openFromServer(id) {
  status(`loading ${id}…`);
  try {
    doc = await repo.pull(id);
    status('loaded from the server', 'ok');
  } catch (e) {
    doc = await repo.find(id).catch(() => undefined);
    status(`${e.code}: ${e.message}${doc ? ' (showing the local copy)' : ''}`, 'error');
  }
  show();
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
  doc = repo.create();
  await repo.save(doc);
  status('new document created', 'ok');
  show();
});

$('open').addEventListener('click', () => {
  const id = $('open-id').value.trim();
  if (id) openFromServer(id);
});

$('edit').addEventListener('submit', async (event) => {
  event.preventDefault();
  if (!doc) doc = repo.create();
  try {
    doc.set($('key').value, $('value').value);
    await repo.save(doc);
    show();
    status('saved locally; syncing…');
    await repo.sync(doc);
    show();
    status('synced: the server has committed this document', 'ok');
  } catch (e) {
    status(`${e.code}: ${e.message}`, 'error');
  }
});

try {
  repo = await Repo.open({ name: 'cairn-demo', server: location.origin });
  const user = localStorage.getItem('cairn-demo-user') ?? $('user').value;
  $('user').value = user;
  await signIn(user);
  const id = new URLSearchParams(location.search).get('doc');
  if (id) {
    await openFromServer(id);
  } else {
    status('ready', 'ok');
    show();
  }
  document.body.dataset.ready = 'true';
} catch (e) {
  status(`${e.code ?? 'E_INTERNAL'}: ${e.message}`, 'error');
}
