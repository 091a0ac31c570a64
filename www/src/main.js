// Cairn Notes: notes with attachments, offline first, on @cairn/client.
//
// Everything is stored on this device first (IndexedDB, through the package) and synced
// with the Cairn server when it can be reached: edits go through the outbox, files are
// stored by CID and uploaded in the background, other devices' edits merge in live. The
// Service Worker keeps the app shell for offline use and drains the outbox on Background
// Sync. Routes: #/notes, #/notes/<id>, #/files.
import { Cairn } from '@cairn/client';
import './styles.css';
import { fill, h } from './dom.js';
import { FileStates } from './files.js';
import { Notes } from './notes.js';
import { currentSession, refreshSession, signOut } from './session.js';
import { filesPage } from './views/files.js';
import { header } from './views/header.js';
import { notesPage } from './views/notes.js';
import { signInView } from './views/signin.js';

const root = document.getElementById('app');
let app = null;

function registerServiceWorker() {
  if (!import.meta.env.PROD || !('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register('/sw.js', { type: 'module' }).catch((e) => console.warn('service worker:', e));
}

function route() {
  const [, section = 'notes', id] = (location.hash || '#/notes').split('/');
  return { section: section === 'files' ? 'files' : 'notes', id: section === 'notes' ? id : undefined };
}

async function start(session) {
  session = await refreshSession(session);
  // One repository per user: two people on one browser never see each other's notes.
  const repo = await Cairn.open({ name: `notes-${session.user}`, server: location.origin, token: session.token, backgroundSync: true });
  const notes = new Notes(repo);
  const files = new FileStates(repo);
  app = { repo, notes, files, session, page: null };
  window.cairnNotes = app; // for the end-to-end tests and the curious
  repo.addEventListener('status', (e) => {
    if (e.detail.online && !app.wasOnline) {
      notes.refresh();
      files.refresh();
    }
    app.wasOnline = e.detail.online;
  });
  setInterval(() => { if (repo.status.online) notes.refresh(); }, 30_000);
  await notes.refresh({ remote: false });
  notes.refresh();
  files.refresh();
  render();
  document.body.dataset.ready = 'true';
}

function render() {
  if (!app) return;
  app.page?.dispose();
  const { section, id } = route();
  const { repo, notes, files, session } = app;
  app.page = section === 'files' ? filesPage({ repo, files, notes }) : notesPage({ repo, notes, files, openId: id });
  fill(root,
    header({
      repo,
      notes,
      session,
      route: section,
      onSignOut() {
        repo.close();
        signOut();
        location.hash = '';
        location.reload();
      },
    }),
    app.page.el,
    h('div', { id: 'toast', class: 'toast', role: 'alert', hidden: true }));
  document.title = section === 'files' ? 'Files · Cairn Notes' : 'Cairn Notes';
}

window.addEventListener('hashchange', render);
registerServiceWorker();

const session = currentSession();
if (session) {
  start(session).catch((e) => fill(root, h('p', { class: 'error', role: 'alert' }, `Cannot open your notes: ${e.code ?? ''} ${e.message}`)));
} else {
  fill(root, signInView({ onSignedIn: (s) => start(s) }));
  document.body.dataset.ready = 'true';
}
