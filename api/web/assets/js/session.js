// The signed-in account and the organizations it belongs to.
import { get, ApiError } from './api.js';

export const session = {
  me: null,
  // orgs: [{id, name, role, permissions}] the caller is a member of (its org role:
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

// myOrgs answers the caller's organizations, as GET /v1/accounts/me
// lists them.
export function myOrgs() {
  return Promise.resolve(session.orgs || []);
}

// addOrg records an org the caller just created (it is its org_admin).
export function addOrg(org) {
  session.orgs = [...(session.orgs || []).filter((o) => o.id !== org.id), { id: org.id, name: org.name, role: 'org_admin' }];
}

export function adminOrgs(orgs) { return (orgs || []).filter((o) => o.role === 'org_admin'); }
