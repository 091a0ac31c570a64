// CairnError: every error this package throws or reports has a stable `code`.

/** Every error this package throws or reports: `code` is stable (E_OFFLINE, E_QUOTA, ...). */
export class CairnError extends Error {
  constructor(message, code, extra = {}) {
    super(message);
    this.name = 'CairnError';
    this.code = code;
    Object.assign(this, extra);
  }
}

/** Any thrown value as a CairnError (wasm errors carry `code`; others become E_INTERNAL). */
export function wrap(e) {
  if (e instanceof CairnError) return e;
  const extra = {};
  for (const key of ['status', 'retryable', 'documents']) if (e?.[key] !== undefined) extra[key] = e[key];
  return new CairnError(e?.message ?? String(e), e?.code ?? 'E_INTERNAL', extra);
}

/** Awaits `fn()`, rethrowing as CairnError. */
export async function call(fn) {
  try {
    return await fn();
  } catch (e) {
    throw wrap(e);
  }
}

/** Runs `fn()` synchronously, rethrowing as CairnError. */
export function callSync(fn) {
  try {
    return fn();
  } catch (e) {
    throw wrap(e);
  }
}
