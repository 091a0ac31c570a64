// Text fields edited as collaborative text: a local edit becomes one splice (the changed
// span between the old and new value), and a remote change moves the caret with the text.

/** The splice turning `before` into `after`: `{ index, remove, insert }`, or null if equal. */
export function diff(before, after) {
  if (before === after) return null;
  let start = 0;
  const max = Math.min(before.length, after.length);
  while (start < max && before[start] === after[start]) start += 1;
  let end = 0;
  while (end < max - start && before[before.length - 1 - end] === after[after.length - 1 - end]) end += 1;
  return { index: start, remove: before.length - start - end, insert: after.slice(start, after.length - end) };
}

/** Where a caret at `position` in `before` belongs in `after`. */
export function moveCaret(position, before, after) {
  const change = diff(before, after);
  if (!change || position <= change.index) return position;
  if (position >= change.index + change.remove) return position - change.remove + change.insert.length;
  return change.index + change.insert.length;
}

/**
 * Keeps an `<input>` or `<textarea>` and a text field of a document in step: typing splices
 * the document, and `show(value)` puts a newer value in the field without losing the caret.
 */
export function bindText(field, { get, splice }) {
  let shown = get();
  field.value = shown;
  field.addEventListener('input', () => {
    const change = diff(shown, field.value);
    shown = field.value;
    if (change) splice(change.index, change.remove, change.insert);
  });
  return {
    show(value) {
      if (value === field.value) {
        shown = value;
        return;
      }
      const focused = document.activeElement === field;
      const [from, to] = [field.selectionStart, field.selectionEnd];
      const before = field.value;
      field.value = value;
      shown = value;
      if (focused) field.setSelectionRange(moveCaret(from, before, value), moveCaret(to, before, value));
    },
  };
}
