// The signed-in account and the organizations it belongs to.
import { get, ApiError } from './api.js';

export const session = {
  me: null,
  // orgs: [{id, name, role}] the caller is a member of (its org role:
  // org_admin or a customer type); null until known.
  orgs: null,
};

// loadMe asks who is signed in; null when nobody is.
export async function loadMe() {
  try {
    session.me = await get('/v1/accounts/me', { quiet401: true });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      session.me = null;
      session.orgs = null;
      return null;
    }
    throw err;
  }
  session.orgs = Array.isArray(session.me.orgs) ? session.me.orgs : null;
  return session.me;
}

export function clear() {
  session.me = null;
  session.orgs = null;
}

let discovering = null;

// myOrgs answers the caller's organizations. GET /v1/accounts/me carries
// them (orgs: [{id, name, role}]); TEMPORARY for servers whose answer does
// not yet: the installer orgs of the caller's first systems are asked for
// their member lists, which name the caller's role. An org with no system
// yet is then found only if it was created in this session.
export function myOrgs() {
  if (session.orgs) return Promise.resolve(session.orgs);
  if (!discovering) {
    discovering = discover().finally(() => { discovering = null; });
  }
  return discovering;
}

async function discover() {
  const me = session.me;
  const ids = new Set();
  try {
    const page = await get('/v1/locations?limit=100&sort=name');
    for (const it of page.items || []) if (it.installer) ids.add(it.installer.id);
  } catch { /* no systems to learn from */ }
  const out = [];
  for (const id of [...ids].slice(0, 10)) {
    try {
      const o = await get(`/v1/orgs/${id}`);
      const m = (o.members || []).find((x) => x.email === me.email);
      if (m && !m.pending) out.push({ id: o.id, name: o.name, role: m.role });
    } catch { /* not a member */ }
  }
  if (session.me === me) session.orgs = out;
  return out;
}

// addOrg records an org the caller just created (it is its org_admin).
export function addOrg(org) {
  session.orgs = [...(session.orgs || []).filter((o) => o.id !== org.id), { id: org.id, name: org.name, role: 'org_admin' }];
}

export function adminOrgs(orgs) { return (orgs || []).filter((o) => o.role === 'org_admin'); }
