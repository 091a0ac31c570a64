// A note's attachments: a drop zone (and a keyboard-operable "Choose files" button) that
// stores files on this device at once with per-file progress, and the list of attached
// files with thumbnails, their upload and pin status, a preview and removal from the note.
import { describe } from '../files.js';
import { fill, formatBytes, h } from '../dom.js';
import { previewDialog } from './preview.js';

let nextKey = 0;

/** The attachments section of the note `handle`: `{ el, dispose }`. */
export function attachments({ repo, files, handle }) {
  const input = h('input', { type: 'file', multiple: true, id: 'attach-input', class: 'visually-hidden', tabindex: '-1', 'aria-hidden': 'true' });
  const choose = h('button', { type: 'button', id: 'attach-button', onclick: () => input.click() }, 'Choose files…');
  const list = h('ul', { class: 'attachments', 'aria-label': 'Attachments' });
  const zone = h('div', { class: 'drop-zone', role: 'group', 'aria-label': 'Attach files: drop them here or choose them' },
    h('p', {}, 'Drop files here to attach them, or '), choose, input);

  async function attach(fileList) {
    for (const file of fileList) {
      const key = `storing:${nextKey++}`;
      files.storing(key, { name: file.name, type: file.type, size: file.size, progress: { direction: 'store', loaded: 0, total: file.size } });
      render();
      try {
        const info = await repo.putFile(file, {
          doc: handle,
          metadata: { note: handle.value().title || 'Untitled' },
          onProgress: ({ loaded, total }) => { files.storing(key, { progress: { direction: 'store', loaded, total } }); render(); },
        });
        await handle.change((d) => {
          if (!d.attachments.some((a) => a.cid === info.cid)) d.attachments.push({ cid: info.cid, name: info.name, type: info.type, size: info.size, addedAt: Date.now() });
          d.updatedAt = Date.now();
        });
        await files.refresh();
      } catch (e) {
        alertError(`Could not attach ${file.name}: ${e.code}: ${e.message}`);
      } finally {
        files.storing(key, null);
        render();
      }
    }
  }

  input.addEventListener('change', () => {
    attach([...input.files]);
    input.value = '';
  });
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    attach([...(e.dataTransfer?.files ?? [])]);
  });

  function item(a) {
    const state = files.get(a.cid) ?? { state: 'remote' };
    const [label, kind] = describe(state);
    const thumb = h('div', { class: 'thumb', 'aria-hidden': 'true' }, a.type?.startsWith('image/') ? '' : fileIcon(a.type, a.name));
    if (a.type?.startsWith('image/')) {
      files.url(a.cid).then((url) => fill(thumb, h('img', { src: url, alt: '' })), () => fill(thumb, '⚠'));
    }
    const progress = state.progress ? h('progress', { max: state.progress.total || 1, value: state.progress.loaded, 'aria-label': `${a.name}: ${label}` }) : null;
    return h('li', { class: 'attachment', 'data-cid': a.cid, 'data-state': kind },
      thumb,
      h('div', { class: 'meta' },
        h('span', { class: 'name' }, a.name || a.cid),
        h('span', { class: 'muted' }, formatBytes(a.size)),
        h('span', { class: `badge ${kind}` }, label),
        progress),
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => previewDialog({ files, file: { ...state, ...a } }) , 'aria-label': `Preview ${a.name}` }, 'Preview'),
        h('button', {
          type: 'button',
          'aria-label': `Remove ${a.name} from this note`,
          onclick: () => handle.change((d) => {
            const i = d.attachments.findIndex((x) => x.cid === a.cid);
            if (i >= 0) d.attachments.splice(i, 1);
            d.updatedAt = Date.now();
          }),
        }, 'Remove')));
  }

  function storingItems() {
    return files.storingAll().map((f) => h('li', { class: 'attachment', 'data-state': 'busy' },
      h('div', { class: 'thumb', 'aria-hidden': 'true' }, fileIcon(f.type, f.name)),
      h('div', { class: 'meta' },
        h('span', { class: 'name' }, f.name),
        h('span', { class: 'badge busy' }, `saving on this device ${Math.floor((100 * f.progress.loaded) / (f.progress.total || 1))}%`),
        h('progress', { max: f.progress.total || 1, value: f.progress.loaded, 'aria-label': `Saving ${f.name}` }))));
  }

  let shown = '';
  function render() {
    const attached = handle.value().attachments ?? [];
    const signature = JSON.stringify([attached, attached.map((a) => files.get(a.cid)), files.storingAll()]);
    if (signature === shown) return;
    shown = signature;
    fill(list, attached.map(item), storingItems());
    if (attached.length === 0 && list.children.length === 0) list.append(h('li', { class: 'muted empty' }, 'No attachments yet.'));
  }

  files.addEventListener('change', render);
  const unsubscribe = handle.subscribe(render);
  render();
  return {
    el: h('section', { class: 'attach', 'aria-labelledby': 'attachments-heading' }, h('h2', { id: 'attachments-heading' }, 'Attachments'), zone, list),
    dispose() {
      files.removeEventListener('change', render);
      unsubscribe();
    },
  };
}

/** A file's stand-in for a thumbnail: the kind of file, in letters. */
export function fileIcon(type = '', name = '') {
  const ext = name.includes('.') ? name.split('.').pop() : '';
  const label = (ext || type.split('/')[1] || 'file').slice(0, 4).toUpperCase();
  return h('span', { class: 'file-kind' }, label);
}

function alertError(text) {
  const el = document.getElementById('toast');
  if (el) {
    el.textContent = text;
    el.hidden = false;
    setTimeout(() => { el.hidden = true; }, 6000);
  }
}
