// The file browser: every file of the user (on this device and on the server), with image
// thumbnails, upload and pin status, search over names and metadata (the server's full-text
// search when online, this device's records otherwise), preview and delete.
import { describe } from '../files.js';
import { fill, formatBytes, h } from '../dom.js';
import { fileIcon } from './attachments.js';
import { previewDialog } from './preview.js';

const KINDS = [['', 'All files'], ['image/', 'Images'], ['application/pdf', 'PDFs'], ['text/', 'Text']];

export function filesPage({ repo, files, notes }) {
  const grid = h('ul', { class: 'file-grid', 'aria-label': 'Files' });
  const count = h('p', { class: 'muted', 'aria-live': 'polite' });
  const search = h('input', { id: 'file-search', type: 'search', placeholder: 'Search names and metadata', autocomplete: 'off' });
  const kind = h('select', { id: 'file-kind' }, KINDS.map(([value, label]) => h('option', { value }, label)));
  let results = null; // CIDs matching the search, or null for everything
  let timer;

  async function runSearch() {
    const query = search.value.trim();
    if (!query) {
      results = null;
      render();
      return;
    }
    try {
      results = new Set((await repo.searchFiles(query, { type: kind.value || undefined, limit: 200 })).map((f) => f.cid));
    } catch {
      // offline: every word must start a word of the name, type or metadata here too
      const words = query.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);
      results = new Set(files.all().filter((f) => {
        const text = `${f.name} ${f.type} ${Object.values(f.metadata ?? {}).join(' ')}`.toLowerCase().split(/[^\p{L}\p{N}]+/u);
        return words.every((w) => text.some((t) => t.startsWith(w)));
      }).map((f) => f.cid));
    }
    render();
  }
  search.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(runSearch, 200); });
  kind.addEventListener('change', () => (search.value ? runSearch() : render()));

  function card(f) {
    const [label, state] = describe(f);
    const thumb = h('div', { class: 'thumb', 'aria-hidden': 'true' }, f.type?.startsWith('image/') ? '' : fileIcon(f.type, f.name));
    if (f.type?.startsWith('image/')) files.url(f.cid).then((url) => fill(thumb, h('img', { src: url, alt: '' })), () => fill(thumb, '⚠'));
    return h('li', { class: 'file-card', 'data-cid': f.cid, 'data-state': state },
      thumb,
      h('span', { class: 'name', title: f.name }, f.name || f.cid),
      h('span', { class: 'muted small' }, `${formatBytes(f.size)}${f.onDevice ? ' · on this device' : ''}`),
      h('span', { class: `badge ${state}` }, label),
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => previewDialog({ files, file: f }), 'aria-label': `Preview ${f.name}` }, 'Preview'),
        h('button', {
          type: 'button',
          class: 'danger',
          'aria-label': `Delete ${f.name}`,
          async onclick() {
            if (!window.confirm(`Delete ${f.name} from this device, the server and every note?`)) return;
            await notes.detachEverywhere(f.cid);
            await files.remove(f.cid);
          },
        }, 'Delete')));
  }

  let signature = '';
  function render() {
    const shown = files.all()
      .filter((f) => !kind.value || (f.type ?? '').startsWith(kind.value))
      .filter((f) => !results || results.has(f.cid));
    const next = JSON.stringify([results !== null, shown]);
    if (next === signature) return;
    signature = next;
    count.textContent = `${shown.length} file${shown.length === 1 ? '' : 's'}${results ? ' found' : ''}`;
    fill(grid, shown.length ? shown.map(card) : h('li', { class: 'muted empty' }, results ? 'Nothing matches.' : 'No files yet: attach some to a note.'));
  }
  files.addEventListener('change', render);
  files.refresh().then(render);
  render();

  return {
    el: h('main', { class: 'files-page' },
      h('div', { class: 'files-head' },
        h('h1', {}, 'Files'),
        h('div', { class: 'filters', role: 'search' },
          h('label', { for: 'file-search', class: 'visually-hidden' }, 'Search files'),
          search,
          h('label', { for: 'file-kind', class: 'visually-hidden' }, 'File type'),
          kind)),
      count,
      grid),
    dispose() {
      files.removeEventListener('change', render);
    },
  };
}
