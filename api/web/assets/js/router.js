// A small hash router: #/path?query. Pages are modules loaded on first
// use (the first page needs only sign-in and All Locations); each render
// gets an AbortSignal that fires when the user navigates away, so a page's
// requests and timers stop with it.

const routes = [];

// route adds a path pattern ("/systems/:id/users") and what renders it.
export function route(pattern, spec) {
  const names = [];
  const re = new RegExp('^' + pattern.replace(/:([a-z]+)/g, (_, n) => { names.push(n); return '([^/]+)'; }) + '$');
  routes.push({ pattern, re, names, ...spec });
}

// current parses location.hash into {path, query}.
export function current() {
  const raw = location.hash.replace(/^#/, '');
  const i = raw.indexOf('?');
  const path = (i < 0 ? raw : raw.slice(0, i)) || '/';
  const query = new URLSearchParams(i < 0 ? '' : raw.slice(i + 1));
  return { path, query };
}

// match finds the route of a path and its parameters.
export function match(path) {
  for (const r of routes) {
    const m = r.re.exec(path);
    if (m) {
      const params = {};
      r.names.forEach((n, i) => { params[n] = decodeURIComponent(m[i + 1]); });
      return { route: r, params };
    }
  }
  return null;
}

// href builds a hash link: href('/systems/7', {tab: 'x'}).
export function href(path, query) {
  const q = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== '' && v !== undefined && v !== null)).toString() : '';
  return '#' + path + (q ? '?' + q : '');
}

export function navigate(path, query) {
  const h = href(path, query);
  if (location.hash === h) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = h;
}

// setQuery records a page's state (search text, filters) in the address
// without rendering again, so that it can be bookmarked and reloaded.
export function setQuery(query) {
  const { path } = current();
  history.replaceState(history.state, '', href(path, query));
}
