// The sign-in screen (development mode: the server mints a token for a named local user).
import { h } from '../dom.js';
import { signIn } from '../session.js';

export function signInView({ onSignedIn }) {
  const input = h('input', { id: 'user', name: 'user', autocomplete: 'username', required: true, placeholder: 'alice', 'aria-describedby': 'sign-in-help' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', {
    class: 'sign-in',
    async onsubmit(event) {
      event.preventDefault();
      button.disabled = true;
      error.hidden = true;
      try {
        onSignedIn(await signIn(input.value));
      } catch (e) {
        error.textContent = `${e.code}: ${e.message}`;
        error.hidden = false;
        button.disabled = false;
      }
    },
  },
  h('label', { for: 'user' }, 'Your name'),
  input,
  button,
  error);
  setTimeout(() => input.focus(), 0);
  return h('main', { class: 'welcome' },
    h('img', { src: '/icons/cairn.svg', alt: '', width: 72, height: 72 }),
    h('h1', {}, 'Cairn Notes'),
    h('p', { class: 'lede' }, 'Notes with attachments that work offline and sync when the network returns.'),
    form,
    h('p', { id: 'sign-in-help', class: 'hint' }, 'Development sign-in: the server gives a token to any local user name. Each user sees only their own notes.'));
}
