// The app bar: navigation, the network and sync status (online or not, what waits in the
// outbox, when the last sync was), the signed-in user, and "Install" once the browser offers.
import { fill, formatTime, h } from '../dom.js';

let installPrompt = null;
window.addEventListener('beforeinstallprompt', (event) => {
  event.preventDefault();
  installPrompt = event;
  document.querySelectorAll('.install').forEach((b) => { b.hidden = false; });
});

/** The outbox in words: a note's edits grouped, each file operation on its own. */
function describeOutbox(entries, notes) {
  const rows = [];
  for (const e of entries) {
    const last = rows.at(-1);
    if (e.kind === 'changes' && last?.doc === e.doc) {
      last.count += e.changeCount;
      last.attempts = Math.max(last.attempts, e.attempts);
      continue;
    }
    if (e.kind === 'changes') rows.push({ doc: e.doc, count: e.changeCount, attempts: e.attempts, status: e.status, code: e.code });
    else if (e.kind === 'file-upload') rows.push({ text: `upload ${e.name || e.cid.slice(0, 12)}${e.cancelled ? ' (cancelled)' : ''}`, attempts: e.attempts, status: e.status, code: e.code });
    else rows.push({ text: `delete a file (${e.cid.slice(0, 12)}…)`, attempts: e.attempts, status: e.status, code: e.code });
  }
  return rows.map((r) => ({
    ...r,
    text: r.text ?? `edits of “${notes.title(r.doc)}” (${r.count} change${r.count === 1 ? '' : 's'})`,
  }));
}

export function header({ repo, notes, session, route, onSignOut }) {
  const lastKey = `cairn-notes:last-synced:${session.user}`;
  const online = h('span', { class: 'pill', id: 'network', role: 'status' });
  const sync = h('span', { class: 'sync', id: 'sync-status', 'aria-live': 'polite' });
  const outboxList = h('ul', { class: 'outbox-list' });
  const outboxPanel = h('div', { class: 'outbox-panel', id: 'outbox-panel', hidden: true, role: 'region', 'aria-label': 'Changes waiting to sync' }, outboxList);
  const pending = h('button', {
    type: 'button',
    class: 'pending',
    id: 'pending',
    'aria-expanded': 'false',
    'aria-controls': 'outbox-panel',
    async onclick() {
      const open = outboxPanel.hidden;
      outboxPanel.hidden = !open;
      pending.setAttribute('aria-expanded', String(open));
      if (open) await showOutbox();
    },
  });
  const syncNow = h('button', {
    type: 'button',
    class: 'icon',
    'aria-label': 'Sync now',
    title: 'Sync now',
    onclick: () => repo.sync().catch(() => {}),
  }, '⟳');

  async function showOutbox() {
    const rows = describeOutbox(await repo.outbox(), notes);
    fill(outboxList, rows.length === 0
      ? h('li', {}, 'Nothing is waiting: everything is on the server.')
      : rows.map((r) => h('li', {}, r.text, h('span', { class: 'muted' }, ` · ${r.status}${r.attempts ? `, ${r.attempts} attempt${r.attempts === 1 ? '' : 's'}` : ''}${r.code ? `, ${r.code}` : ''}`))));
  }

  function show(s) {
    online.textContent = s.online ? 'Online' : 'Offline';
    online.dataset.online = String(s.online);
    document.body.dataset.online = String(s.online);
    if (s.lastSyncedAt) localStorage.setItem(lastKey, String(s.lastSyncedAt));
    const last = s.lastSyncedAt ?? Number(localStorage.getItem(lastKey) ?? 0);
    const parts = [s.syncing ? 'Syncing…' : last ? `Synced ${formatTime(last)}` : 'Not synced yet'];
    if (s.error && !s.online) parts.push('(will retry)');
    else if (s.error) parts.push(`(${s.error.code})`);
    sync.textContent = parts.join(' ');
    pending.textContent = s.pending === 0 ? 'All changes saved' : `${s.pending} change${s.pending === 1 ? '' : 's'} waiting`;
    pending.dataset.pending = String(s.pending);
    if (!outboxPanel.hidden) showOutbox();
  }
  repo.addEventListener('status', (e) => show(e.detail));
  show(repo.status);

  const tab = (name, href, label) => h('a', { href, class: 'tab', 'aria-current': route === name ? 'page' : undefined }, label);
  const install = h('button', {
    type: 'button',
    class: 'install',
    hidden: !installPrompt,
    async onclick() {
      if (!installPrompt) return;
      installPrompt.prompt();
      await installPrompt.userChoice.catch(() => {});
      installPrompt = null;
      install.hidden = true;
    },
  }, 'Install');

  return h('header', { class: 'bar' },
    h('a', { href: '#/notes', class: 'brand' }, h('img', { src: '/icons/cairn.svg', alt: '', width: 28, height: 28 }), h('span', {}, 'Cairn Notes')),
    h('nav', { 'aria-label': 'Sections' }, tab('notes', '#/notes', 'Notes'), tab('files', '#/files', 'Files')),
    h('div', { class: 'status' }, online, sync, syncNow, pending, outboxPanel),
    h('div', { class: 'user' }, install, h('span', { class: 'who' }, session.user), h('button', { type: 'button', onclick: onSignOut }, 'Sign out')));
}
