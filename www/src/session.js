// Signing in. In development mode the Cairn server mints a token for a named local user
// (`POST /v1/dev/token`); a real deployment would get one from its identity provider. The
// session (user and token) is kept in localStorage so the app opens offline.

const KEY = 'cairn-notes:session';

/** The signed-in user and token, or null. */
export function currentSession() {
  try {
    const session = JSON.parse(localStorage.getItem(KEY));
    return session?.user && session?.token ? session : null;
  } catch {
    return null;
  }
}

/** Asks the server for a token for `user`; throws an Error with a `code` on failure. */
export async function signIn(user) {
  const name = user.trim();
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
    throw Object.assign(new Error('use letters, digits, dots, dashes or underscores (at most 64)'), { code: 'E_INVALID_USER' });
  }
  let response;
  try {
    response = await fetch('/v1/dev/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: name }),
    });
  } catch {
    throw Object.assign(new Error('the server cannot be reached: sign in once online'), { code: 'E_OFFLINE' });
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(body.error?.message ?? 'sign-in failed'), { code: body.error?.code ?? 'E_SIGN_IN' });
  const session = { user: body.user, token: body.token, expiresAt: Date.now() + body.expires_in * 1000 };
  localStorage.setItem(KEY, JSON.stringify(session));
  return session;
}

/** Renews the token if it is close to expiring and the server is reachable (dev mode). */
export async function refreshSession(session) {
  if (session.expiresAt - Date.now() > 3600_000) return session;
  try {
    return await signIn(session.user);
  } catch {
    return session; // offline: the local data needs no token; sync waits
  }
}

export function signOut() {
  localStorage.removeItem(KEY);
}
