// The API client. The dashboard authenticates with fleetscope's session
// cookie (HttpOnly, SameSite=Strict): it never sees a token and keeps none in
// localStorage or sessionStorage. Requests are same-origin; the browser adds
// the Origin header the server checks on state-changing requests.

// ApiError is a non-2xx answer: status, the error code and message of
// {"error": {"code", "message"}}.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
  }
}

const listeners = new Set();
// onUnauthorized registers fn to run when an authenticated request answers
// 401 (the session ended or expired).
export function onUnauthorized(fn) { listeners.add(fn); }

// qs builds a query string, skipping empty values.
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

// request sends one API call and answers the decoded JSON (null for an
// empty body). opts: body (JSON), signal (AbortSignal), quiet401 (do not
// report a 401 as the session's end: sign-in itself).
export async function request(method, path, { body, signal, quiet401 = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
    signal,
  });
  const text = await resp.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!resp.ok) {
    const e = (data && data.error) || {};
    const err = new ApiError(resp.status, e.code, e.message || resp.statusText);
    if (resp.status === 401 && !quiet401) for (const fn of listeners) fn(err);
    throw err;
  }
  return data;
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, body, opts) => request('POST', path, { ...opts, body: body ?? {} });
export const put = (path, body, opts) => request('PUT', path, { ...opts, body: body ?? {} });
export const del = (path, opts) => request('DELETE', path, opts);

// enc escapes one path segment.
export const enc = encodeURIComponent;

// signIn opens a cookie session and answers the account. The answer
// carries no token: the cookie is HttpOnly and the script never sees it.
export async function signIn(email, password) {
  const out = await request('POST', '/v1/sessions', { body: { email, password, cookie: true }, quiet401: true });
  return out ? out.account : null;
}

// signOut ends the session on the server (DELETE /v1/sessions/current,
// which also clears the cookie). A 401 means it had already ended.
export async function signOut() {
  try {
    await request('DELETE', '/v1/sessions/current', { quiet401: true });
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) throw err;
  }
}
