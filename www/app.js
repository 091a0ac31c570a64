// The walking-skeleton page: one document, edited locally, saved to IndexedDB and pushed to
// the server; `?doc=<id>` opens a document from the server.
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
    const ack = await repo.push(doc);
    status(`synced: server committed ${ack.applied} new change(s)`, 'ok');
  } catch (e) {
    status(`${e.code}: ${e.message}`, 'error');
  }
});

try {
  repo = await Repo.open({ name: 'cairn-demo', server: location.origin });
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
