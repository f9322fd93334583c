// fleetscope's dashboard: the shell (top bar, navigation, session) and the
// routes. Each page is a module exporting a render function
// (main, ctx) → optional cleanup, where ctx = {params, query, signal}.
import { h, replace } from './dom.js';
import { onUnauthorized, signOut } from './api.js';
import { session, loadMe, adminOrgs, clear } from './session.js';
import { route, current, match, navigate, href } from './router.js';

const auth = () => import('./pages/auth.js');
const locations = () => import('./pages/locations.js');

// Routes. public: reachable signed out; bare: no top bar.
route('/signin', { load: auth, page: 'signInPage', public: true, bare: true, title: 'Sign in' });
route('/register', { load: auth, page: 'register', public: true, bare: true, title: 'Create an account' });
route('/verify', { load: auth, page: 'verify', bare: true, unverified: true, title: 'Verify your e-mail' });
route('/reset', { load: auth, page: 'resetRequest', public: true, bare: true, title: 'Reset your password' });
route('/reset/confirm', { load: auth, page: 'resetConfirm', public: true, bare: true, title: 'Choose a new password' });
route('/locations', { load: locations, page: 'locationsPage', nav: 'locations', title: 'All Locations' });
route('/systems/:id', { load: () => import('./pages/system.js'), page: 'systemPage', nav: 'locations', title: 'System' });
route('/systems/:id/users', { load: () => import('./pages/users.js'), page: 'usersPage', nav: 'locations', title: 'Manage users' });
route('/energy', { load: () => import('./pages/energy.js'), page: 'energyPage', nav: 'energy', title: 'Fleet energy' });
route('/orgs', { load: () => import('./pages/org.js'), page: 'orgsPage', nav: 'orgs', title: 'Organizations' });
route('/orgs/:id', { load: () => import('./pages/org.js'), page: 'orgPage', nav: 'orgs', title: 'Organization' });
route('/account', { load: () => import('./pages/account.js'), page: 'accountPage', nav: 'account', title: 'Account' });

const main = document.getElementById('main');
const topbar = document.getElementById('topbar');
let pageCtl = null;
let cleanup = null;
let rendered = 0;

function defaultPath() { return session.me ? '/locations' : '/signin'; }

async function render() {
  const { path, query } = current();
  if (path === '/' || path === '') { navigate(defaultPath()); return; }
  if (path === '/signout') { await doSignOut(); return; }
  const m = match(path);
  if (!m) { notFound(path); return; }
  const r = m.route;
  if (!r.public && !session.me) {
    navigate('/signin', { next: location.hash.slice(1) });
    return;
  }
  if (session.me && !session.me.verified && !r.unverified && !r.public) {
    navigate('/verify');
    return;
  }
  if (r.public && session.me && (path === '/signin' || path === '/register')) {
    navigate('/locations');
    return;
  }
  if (pageCtl) pageCtl.abort();
  if (cleanup) { try { cleanup(); } catch { /* page already gone */ } cleanup = null; }
  pageCtl = new AbortController();
  const signal = pageCtl.signal;
  document.title = `${r.title} · fleetscope`;
  renderTopbar(r.bare ? null : r.nav);
  let mod;
  try {
    mod = await r.load();
  } catch (err) {
    replace(main, h('div', { class: 'alert alert-error', role: 'alert' }, `This page failed to load: ${err.message}`));
    return;
  }
  if (signal.aborted) return;
  main.replaceChildren();
  try {
    cleanup = (await mod[r.page](main, { params: m.params, query, signal })) || null;
  } catch (err) {
    if (err && err.name === 'AbortError') return;
    if (signal.aborted) return;
    replace(main, h('div', { class: 'alert alert-error', role: 'alert' }, messageOf(err)));
  }
  // Move focus to the new page's heading, as a screen reader user expects
  // after navigation (not on the first load, and not when a page kept
  // focus in a field it rendered).
  if (rendered++ > 0 && !signal.aborted && !main.contains(document.activeElement)) {
    const h1 = main.querySelector('h1');
    if (h1) { h1.tabIndex = -1; h1.focus({ preventScroll: true }); }
  }
}

export function messageOf(err) {
  if (!err) return 'Something went wrong.';
  if (err.status === 404) return 'Not found: it does not exist, or you have no access to it.';
  return err.message || String(err);
}

function notFound(path) {
  renderTopbar(null);
  replace(main, h('div', { class: 'card auth' }, h('div', { class: 'card-body' },
    h('h1', null, 'Page not found'),
    h('p', { class: 'muted' }, `There is no page at ${path}.`),
    h('a', { href: href(defaultPath()) }, 'Go to the start page'))));
}

function renderTopbar(active) {
  if (!session.me || active === null) {
    topbar.hidden = true;
    topbar.replaceChildren();
    return;
  }
  const me = session.me;
  const link = (key, path, label) => h('a', { href: href(path), 'aria-current': key === active ? 'page' : null, dataset: { nav: key } }, label);
  const nav = h('nav', { class: 'nav', 'aria-label': 'Main' },
    link('locations', '/locations', 'All Locations'),
    link('energy', '/energy', 'Fleet energy'));
  // The administrator of exactly one org (GET /v1/accounts/me names the
  // caller's orgs) gets a link straight to it; others get the list.
  const admin = adminOrgs(session.orgs);
  nav.append(admin.length === 1 ? link('orgs', `/orgs/${admin[0].id}`, 'Organization') : link('orgs', '/orgs', 'Organizations'));
  const logout = h('button', { type: 'button', class: 'btn btn-ghost btn-sm', id: 'signout' }, 'Sign out');
  logout.addEventListener('click', doSignOut);
  replace(topbar,
    h('a', { class: 'brand', href: href('/locations') }, h('img', { src: logoURL, alt: '' }), h('span', null, 'fleetscope')),
    nav,
    h('div', { class: 'user' },
      h('div', { class: 'user-name' },
        h('a', { href: href('/account'), title: 'Account and password', 'aria-current': active === 'account' ? 'page' : null }, me.name || me.email),
        h('span', null, me.support ? `${me.email} · support` : me.email)),
      logout));
  topbar.hidden = false;
}

const logoURL = new URL('../favicon.svg', import.meta.url).href;

async function doSignOut() {
  await signOut();
  clear();
  navigate('/signin', { out: '1' });
}

onUnauthorized(() => {
  if (!session.me) return;
  clear();
  navigate('/signin', { expired: '1', next: location.hash.slice(1) });
});

// The skip link moves focus to the page without touching the hash.
document.querySelector('.skip-link')?.addEventListener('click', (ev) => {
  ev.preventDefault();
  main.focus();
});

window.addEventListener('hashchange', render);

// boot: who is signed in (the session cookie decides), then the page.
(async () => {
  try {
    await loadMe();
  } catch (err) {
    replace(main, h('div', { class: 'alert alert-error', role: 'alert' }, `fleetscope is not answering: ${messageOf(err)}`));
    return;
  }
  await render();
})();

// signedIn is called by the sign-in and registration pages.
export async function signedIn(next) {
  await loadMe();
  const target = next && next.startsWith('/') && !next.startsWith('/signin') ? next : '/locations';
  location.hash = '#' + target;
}
