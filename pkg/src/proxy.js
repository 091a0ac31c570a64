// `doc.change(d => { d.title = 'x'; d.tags.push('y') })`: a proxy over a copy of the
// document's value that records path operations as the function mutates it.

const ARRAY_METHODS = new Set(['push', 'pop', 'shift', 'unshift', 'splice', 'insertAt', 'deleteAt']);

function isContainer(value) {
  return value !== null && typeof value === 'object' && !(value instanceof Uint8Array) && !(value instanceof Date);
}

function clone(value) {
  return isContainer(value) ? structuredClone(value) : value;
}

function arrayMethod(target, path, ops, name) {
  const insert = (index, items) => items.forEach((v, i) => {
    ops.push({ op: 'insert', path, index: index + i, value: v });
    target.splice(index + i, 0, clone(v));
  });
  const remove = (index, count) => {
    for (let i = 0; i < count; i++) ops.push({ op: 'delete', path: [...path, index] });
    return target.splice(index, count);
  };
  switch (name) {
    case 'push': return (...items) => { insert(target.length, items); return target.length; };
    case 'unshift': return (...items) => { insert(0, items); return target.length; };
    case 'pop': return () => (target.length ? remove(target.length - 1, 1)[0] : undefined);
    case 'shift': return () => (target.length ? remove(0, 1)[0] : undefined);
    case 'insertAt': return (index, ...items) => { insert(index, items); return target.length; };
    case 'deleteAt': return (index, count = 1) => remove(index, count);
    case 'splice': return (start, deleteCount = target.length - start, ...items) => {
      const at = start < 0 ? Math.max(target.length + start, 0) : Math.min(start, target.length);
      const removed = remove(at, Math.min(deleteCount, target.length - at));
      insert(at, items);
      return removed;
    };
    default: return undefined;
  }
}

function recorder(target, path, ops) {
  return new Proxy(target, {
    get(t, key, receiver) {
      if (Array.isArray(t) && typeof key === 'string' && ARRAY_METHODS.has(key)) {
        return arrayMethod(t, path, ops, key);
      }
      const value = Reflect.get(t, key, receiver);
      if (typeof key === 'symbol' || !isContainer(value)) return value;
      return recorder(value, [...path, Array.isArray(t) ? Number(key) : key], ops);
    },
    set(t, key, value) {
      const prop = Array.isArray(t) ? Number(key) : key;
      if (Array.isArray(t) && key === 'length') {
        for (let i = t.length - 1; i >= value; i--) ops.push({ op: 'delete', path: [...path, i] });
        t.length = value;
        return true;
      }
      ops.push({ op: 'put', path: [...path, prop], value });
      t[key] = clone(value);
      return true;
    },
    deleteProperty(t, key) {
      ops.push({ op: 'delete', path: [...path, Array.isArray(t) ? Number(key) : key] });
      delete t[key];
      return true;
    },
  });
}

/** Runs `fn(draft, tx)` over a copy of `value`; returns the recorded operations. */
export function record(value, fn) {
  const ops = [];
  const draft = recorder(structuredClone(value), [], ops);
  const tx = {
    put: (path, v) => ops.push({ op: 'put', path, value: v }),
    delete: (path) => ops.push({ op: 'delete', path }),
    insert: (path, index, v) => ops.push({ op: 'insert', path, index, value: v }),
    splice: (path, index, deleteCount, text = '') => ops.push({ op: 'splice', path, index, delete: deleteCount, text }),
    increment: (path, by = 1) => ops.push({ op: 'increment', path, by }),
  };
  const result = fn(draft, tx);
  if (result && typeof result.then === 'function') {
    throw new TypeError('change functions must be synchronous');
  }
  return ops;
}
