// The notes page: the list (newest first, with a "New note" button) and the open note — its
// title and body edited as collaborative text (concurrent edits from other devices merge
// into the fields while you type), and its attachments. On a phone one pane shows at a time.
import { fill, formatTime, h, narrow } from '../dom.js';
import { bindText } from '../text.js';
import { attachments } from './attachments.js';

export function notesPage({ repo, notes, files, openId }) {
  const list = h('ul', { class: 'note-list', 'aria-label': 'Notes' });
  const editorPane = h('section', { class: 'editor-pane', 'aria-label': 'Note' });
  const page = h('div', { class: `notes-page ${openId ? 'has-note' : 'no-note'}` },
    h('aside', { class: 'list-pane', 'aria-label': 'All notes' },
      h('div', { class: 'list-head' },
        h('h1', {}, 'Notes'),
        h('button', {
          type: 'button',
          class: 'primary',
          id: 'new-note',
          async onclick() {
            const handle = await notes.create();
            location.hash = `#/notes/${handle.id}`;
          },
        }, 'New note')),
      list),
    editorPane);

  function renderList() {
    const all = notes.all();
    fill(list, all.length === 0
      ? h('li', { class: 'muted empty' }, 'No notes yet. Create one: it is saved on this device at once, and synced when online.')
      : all.map((n) => h('li', {},
        h('a', { href: `#/notes/${n.id}`, class: 'note-link', 'aria-current': n.id === openId ? 'true' : undefined },
          h('span', { class: 'title' }, n.title || 'Untitled'),
          h('span', { class: 'snippet' }, n.snippet || ' '),
          h('span', { class: 'muted small' }, formatTime(n.updatedAt), n.attachments ? ` · ${n.attachments} attachment${n.attachments === 1 ? '' : 's'}` : '')))));
  }
  notes.addEventListener('change', renderList);
  renderList();

  let disposeEditor = () => {};
  if (openId) {
    fill(editorPane, h('p', { class: 'muted' }, 'Opening…'));
    notes.open(openId).then((handle) => {
      if (!handle) {
        fill(editorPane, h('p', { class: 'error', role: 'alert' }, 'This note is not on this device and the server does not have it for you.'));
        return;
      }
      const editor = noteEditor({ repo, notes, files, handle });
      disposeEditor = editor.dispose;
      fill(editorPane, editor.el);
    });
  } else if (!narrow()) {
    fill(editorPane, h('div', { class: 'placeholder' }, h('p', {}, 'Pick a note, or create one.')));
  }

  return {
    el: page,
    dispose() {
      notes.removeEventListener('change', renderList);
      disposeEditor();
    },
  };
}

function noteEditor({ repo, notes, files, handle }) {
  const title = h('input', { id: 'note-title', class: 'note-title', placeholder: 'Title', autocomplete: 'off' });
  const body = h('textarea', { id: 'note-body', class: 'note-body', placeholder: 'Write something…', rows: 12 });
  // One change per edit: the text splice and the note's time together.
  const bind = (field, key) => bindText(field, {
    get: () => handle.value()[key] ?? '',
    splice: (index, remove, insert) => handle.change((d, tx) => {
      tx.splice([key], index, remove, insert);
      d.updatedAt = Date.now();
    }),
  });
  const titleField = bind(title, 'title');
  const bodyField = bind(body, 'body');
  const unsubscribe = handle.subscribe((value, { source }) => {
    if (source === 'local') return;
    titleField.show(value.title ?? '');
    bodyField.show(value.body ?? '');
  });
  const attached = attachments({ repo, files, handle });
  const el = h('article', { class: 'note' },
    h('div', { class: 'note-toolbar' },
      h('a', { href: '#/notes', class: 'back' }, '← Notes'),
      h('span', { class: 'muted small', id: 'note-id', title: 'automerge-repo compatible document id' }, handle.url),
      h('button', {
        type: 'button',
        class: 'danger',
        async onclick() {
          if (!window.confirm('Delete this note on every device?')) return;
          await notes.remove(handle.id);
          location.hash = '#/notes';
        },
      }, 'Delete note')),
    h('label', { for: 'note-title', class: 'visually-hidden' }, 'Title'),
    title,
    h('label', { for: 'note-body', class: 'visually-hidden' }, 'Note'),
    body,
    attached.el);
  if (!handle.value().title) setTimeout(() => title.focus(), 0);
  return {
    el,
    dispose() {
      unsubscribe();
      attached.dispose();
    },
  };
}
