// The API client. The dashboard authenticates with fleetscope's session
// cookie (HttpOnly, SameSite=Strict): it never sees a token and keeps none in
// localStorage or sessionStorage. Requests are same-origin; the browser adds
// the Origin header the server checks on state-changing requests.
//
// TEMPORARY (until the cookie sessions of DESIGN §5/§8 are on every
// server): a server that does not know {"cookie": true} at POST
// /v1/sessions refuses the field (400) or answers a token. The dashboard
// then signs in without it and keeps that token in this module's variable
// only — memory, never storage — sending it as an Authorization header. A
// reload then needs a new sign-in. Remove memoryToken once cookie sign-in
// has landed everywhere.
let memoryToken = null;

// ApiError is a non-2xx answer: status, the error code and message of
// {"error": {"code", "message"}}.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
  }
  // unsupported: the server does not have this endpoint (yet): 404 for an
  // unknown path, 405 for a known path without this method.
  get unsupported() {
    return this.status === 405 || (this.status === 404 && /no such endpoint/i.test(this.message));
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
  if (memoryToken) headers.Authorization = `Bearer ${memoryToken}`;
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

// signIn opens a session: the cookie, or (old server, see above) a token
// kept in memory. Answers the account.
export async function signIn(email, password) {
  let out;
  try {
    out = await request('POST', '/v1/sessions', { body: { email, password, cookie: true }, quiet401: true });
  } catch (err) {
    // A server without cookie sessions refuses the unknown field.
    if (!(err instanceof ApiError && err.status === 400 && /cookie/i.test(err.message))) throw err;
    out = await request('POST', '/v1/sessions', { body: { email, password }, quiet401: true });
  }
  memoryToken = out && out.token ? out.token : null;
  return out ? out.account : null;
}

// signOut ends the session on the server (DELETE /v1/sessions/current,
// which clears the cookie) and forgets any in-memory token.
export async function signOut() {
  try {
    await request('DELETE', '/v1/sessions/current', { quiet401: true });
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    // 401: already over. 404/405: a server without sessions; forgetting
    // the token below is all the browser can do there.
  } finally {
    memoryToken = null;
  }
}

// tokenMode says whether the temporary in-memory token is in use.
export function tokenMode() { return memoryToken !== null; }

// downloadCSV saves a CSV answer. With the session cookie a plain link
// works (the <a download> the pages render); only the temporary token mode
// needs the fetch-and-save done here.
export async function downloadCSV(url, filename) {
  const resp = await fetch(url, { headers: { Accept: 'text/csv', Authorization: `Bearer ${memoryToken}` }, credentials: 'same-origin' });
  if (!resp.ok) throw new ApiError(resp.status, '', `CSV download failed (HTTP ${resp.status})`);
  const blob = await resp.blob();
  const href = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = href;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10000);
}
