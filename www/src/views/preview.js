// The preview: a modal dialog showing an image, a text file, a PDF, audio or video, or
// offering a download for anything else. The bytes come from this device or are downloaded
// and verified on the way.
import { fileIcon } from './attachments.js';
import { formatBytes, h } from '../dom.js';

export async function previewDialog({ files, file }) {
  const body = h('div', { class: 'preview-body' }, h('p', { class: 'muted' }, 'Loading…'));
  const close = h('button', { type: 'button', class: 'close', 'aria-label': 'Close preview', onclick: () => dialog.close() }, '✕');
  const dialog = h('dialog', { class: 'preview', 'aria-labelledby': 'preview-title' },
    h('header', {}, h('h2', { id: 'preview-title' }, file.name || file.cid), close),
    body,
    h('footer', { class: 'muted' }, `${file.type || 'unknown type'} · ${formatBytes(file.size)} · `, h('code', { class: 'cid' }, file.cid)));
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  try {
    const url = await files.url(file.cid);
    const type = file.type ?? '';
    let view;
    if (type.startsWith('image/')) view = h('img', { src: url, alt: file.name || 'attached image' });
    else if (type.startsWith('video/')) view = h('video', { src: url, controls: true });
    else if (type.startsWith('audio/')) view = h('audio', { src: url, controls: true });
    else if (type === 'application/pdf') view = h('iframe', { src: url, title: file.name || 'PDF' });
    else if (type.startsWith('text/') || type === 'application/json') view = h('pre', {}, (await (await fetch(url)).text()).slice(0, 100_000));
    else view = h('p', { class: 'big-icon' }, fileIcon(type, file.name));
    body.replaceChildren(view, h('p', {}, h('a', { href: url, download: file.name || file.cid }, 'Download')));
  } catch (e) {
    body.replaceChildren(h('p', { class: 'error', role: 'alert' }, `Cannot show this file: ${e.code ?? ''} ${e.message}`));
  }
  return dialog;
}
