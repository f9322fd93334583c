// All Locations: the fleet summary and every system the caller can see, as
// a table searched as you type, filtered by status, sorted by column, paged
// by cursor (a fleet of 200 k systems is never loaded whole), downloadable
// as CSV.
import { h, statusBadge, searchIcon } from '../dom.js';
import { get, qs } from '../api.js';
import { fmtPower, fmtEnergy, fmtInt, fmtAgo, fmtDateTime, plural } from '../format.js';
import { href, setQuery } from '../router.js';
import { messageOf } from '../app.js';

// pageSize rows a request; #/locations?limit=N (1–500) changes it.
const pageSize = 50;
// Search debouncing: a keystroke after a pause searches at once (leading
// edge: its results are drawn within DESIGN §7's 100 ms); keystrokes that
// follow each other closer than burstGap (fast typing, a paste, a held
// key) wait burstDelay for the burst to end. Either way a new search aborts
// the one in flight, and a stale answer is never drawn.
const burstGap = 60;
const burstDelay = 60;

const statuses = [
  ['online', 'Online'],
  ['offline', 'Offline'],
  ['never', 'Never seen'],
  ['unmonitored', 'Not monitored'],
];

// columns: key, heading, the API's sort key (null: not sortable), whether
// the first click sorts descending, numeric alignment.
// width: the column's share of a fixed table layout (columns keep their
// widths from one search to the next, and the browser lays out a new page
// of rows without measuring every cell).
const columns = [
  { key: 'name', label: 'Name', sort: 'name', width: 19 },
  { key: 'guid', label: 'GUID', width: 9 },
  { key: 'owner', label: 'Owner', width: 16 },
  { key: 'installer', label: 'Installer', width: 11 },
  { key: 'status', label: 'Status', width: 10 },
  { key: 'power', label: 'Power now', sort: 'power', desc: true, num: true, width: 10 },
  { key: 'energy', label: 'Energy today', sort: 'energy_today', desc: true, num: true, width: 10 },
  { key: 'panels', label: 'Panels', num: true, width: 6 },
  { key: 'seen', label: 'Last seen', sort: 'last_seen', desc: true, width: 9 },
];

export function locationsPage(main, { query, signal }) {
  const state = {
    q: query.get('q') || '',
    status: new Set((query.get('status') || '').split(',').filter((s) => statuses.some(([k]) => k === s))),
    sort: query.get('sort') || 'name',
    limit: Math.min(500, Math.max(1, parseInt(query.get('limit'), 10) || pageSize)),
    items: 0,
    next: null,
    total: 0,
    seq: 0,
    ctl: null,
    keyAt: 0, // performance.now() of the keystroke the pending search answers
    first: true,
  };

  // Summary cards.
  const fig = {};
  const stat = (key, label, hint) => {
    fig[key] = h('div', { class: 'value' }, '—');
    return h('div', { class: 'card stat', dataset: { stat: key } }, h('div', { class: 'label' }, label), fig[key], hint ? h('div', { class: 'hint' }, hint) : null);
  };
  const liveAt = h('span', { class: 'small' });
  const stats = h('div', { class: 'stats', 'aria-label': 'Fleet summary', role: 'region' },
    stat('systems', 'Systems'),
    stat('online', 'Online'),
    stat('offline', 'Offline'),
    stat('never', 'Never seen'),
    stat('unmonitored', 'Not monitored'),
    stat('power', 'Power now'),
    stat('energy', 'Energy today'));

  // Toolbar: search, status chips, count, CSV.
  const search = h('input', {
    type: 'search', id: 'search', name: 'q', value: state.q, autocomplete: 'off', spellcheck: 'false',
    placeholder: 'Name, e-mail, GUID or gateway serial', 'aria-controls': 'locations-table',
  });
  const chipCount = {};
  const chips = h('div', { class: 'chips', role: 'group', 'aria-label': 'Filter by status' },
    statuses.map(([key, label]) => {
      chipCount[key] = h('span', { class: 'count' });
      const b = h('button', { type: 'button', class: 'chip', 'aria-pressed': String(state.status.has(key)), dataset: { status: key } }, label, chipCount[key]);
      b.addEventListener('click', () => {
        if (state.status.has(key)) state.status.delete(key); else state.status.add(key);
        b.setAttribute('aria-pressed', String(state.status.has(key)));
        reload();
      });
      return b;
    }));
  const count = h('div', { class: 'result-count', id: 'result-count', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true' });
  const csv = h('a', { class: 'btn btn-secondary btn-sm', id: 'csv', download: 'locations.csv' }, 'Download CSV');

  // Table.
  const ths = {};
  const head = h('tr', null, columns.map((c) => {
    const th = h('th', { scope: 'col', class: c.num ? 'num' : null, dataset: { col: c.key } });
    if (c.sort) {
      const btn = h('button', { type: 'button', class: 'sort' }, c.label, h('span', { class: 'arrow', 'aria-hidden': 'true' }, '▲'));
      btn.addEventListener('click', () => {
        const cur = state.sort.replace(/^-/, '');
        state.sort = cur === c.sort ? (state.sort.startsWith('-') ? c.sort : '-' + c.sort) : (c.desc ? '-' + c.sort : c.sort);
        reload();
      });
      th.append(btn);
      ths[c.sort] = th;
    } else {
      th.textContent = c.label;
    }
    return th;
  }));
  const tbody = h('tbody');
  const cols = h('colgroup', null, columns.map((c) => h('col', { class: `w-${c.width}` })));
  const table = h('table', { class: 'data fixed', id: 'locations-table', 'aria-describedby': 'result-count' },
    h('caption', { class: 'visually-hidden' }, 'Systems'), cols, h('thead', null, head), tbody);
  const more = h('button', { type: 'button', class: 'btn btn-secondary', id: 'load-more', hidden: true }, 'Load more');
  const footNote = h('span', { class: 'muted small' });
  const foot = h('div', { class: 'table-foot', hidden: true }, more, footNote);
  const sentinel = h('div', { class: 'sentinel', 'aria-hidden': 'true' });
  const errBox = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
  more.addEventListener('click', () => loadPage(false));

  main.append(
    h('div', { class: 'page-head' },
      h('div', null, h('h1', null, 'All Locations'), h('div', { class: 'sub' }, h('span', null, 'Every system you may see, with its live state.'), liveAt))),
    stats,
    h('section', { class: 'card', 'aria-label': 'Systems' },
      h('div', { class: 'toolbar' },
        h('div', { class: 'search' }, h('label', { for: 'search', class: 'visually-hidden' }, 'Search locations'), searchIcon(), search),
        chips, h('span', { class: 'spacer' }), count, csv),
      errBox,
      h('div', { class: 'table-wrap' }, table),
      foot,
      sentinel));

  function showError(err) {
    errBox.hidden = false;
    errBox.textContent = messageOf(err);
  }

  // Search as you type: each keystroke restarts a short timer; a new
  // request aborts the one in flight, and an answer that is no longer the
  // newest is dropped. The input is never re-rendered, so focus and caret
  // stay where they are.
  let timer = 0;
  let lastKey = -Infinity;
  search.addEventListener('input', (ev) => {
    const burst = ev.timeStamp - lastKey < burstGap;
    lastKey = ev.timeStamp;
    state.keyAt = ev.timeStamp;
    clearTimeout(timer);
    const run = () => { state.q = search.value.trim(); reload(); };
    if (burst) timer = setTimeout(run, burstDelay);
    else run();
  });
  search.addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowDown') {
      const a = tbody.querySelector('a');
      if (a) { ev.preventDefault(); a.focus(); }
    } else if (ev.key === 'Escape' && search.value) {
      search.value = '';
      state.keyAt = ev.timeStamp;
      state.q = '';
      reload();
    } else if (ev.key === 'Enter') {
      clearTimeout(timer);
      state.q = search.value.trim();
      reload();
    }
  });
  // Keyboard navigation of the rows: arrows move between the systems'
  // links, Home/End to the first and last, Enter opens (a link does).
  tbody.addEventListener('keydown', (ev) => {
    const links = [...tbody.querySelectorAll('td.name a')];
    const i = links.indexOf(document.activeElement);
    if (i < 0) return;
    let j = -1;
    if (ev.key === 'ArrowDown') j = Math.min(i + 1, links.length - 1);
    else if (ev.key === 'ArrowUp') { if (i === 0) { ev.preventDefault(); search.focus(); return; } j = i - 1; }
    else if (ev.key === 'Home') j = 0;
    else if (ev.key === 'End') j = links.length - 1;
    if (j >= 0) { ev.preventDefault(); links[j].focus(); }
  });

  function params(cursor) {
    return { q: state.q, status: [...state.status].join(','), sort: state.sort, limit: state.limit, cursor };
  }

  function reload() {
    setQuery({ q: state.q, status: [...state.status].join(','), sort: state.sort === 'name' ? '' : state.sort, limit: state.limit === pageSize ? '' : state.limit });
    for (const [key, th] of Object.entries(ths)) {
      const cur = state.sort.replace(/^-/, '');
      th.setAttribute('aria-sort', cur === key ? (state.sort.startsWith('-') ? 'descending' : 'ascending') : 'none');
      th.querySelector('.arrow').textContent = cur === key && state.sort.startsWith('-') ? '▼' : '▲';
    }
    const p = params('');
    delete p.limit;
    delete p.cursor;
    csv.href = '/v1/locations' + qs({ ...p, format: 'csv' });
    return loadPage(true);
  }

  async function loadPage(reset) {
    const seq = ++state.seq;
    if (state.ctl) state.ctl.abort();
    const ctl = new AbortController();
    state.ctl = ctl;
    const keyAt = state.keyAt;
    more.disabled = true;
    let page;
    const t0 = performance.now();
    try {
      page = await get('/v1/locations' + qs(params(reset ? '' : state.next)), { signal: AbortSignal.any([ctl.signal, signal]) });
    } catch (err) {
      if (err.name === 'AbortError' || seq !== state.seq) return;
      more.disabled = false;
      showError(err);
      return;
    }
    if (seq !== state.seq) return;
    const t1 = performance.now();
    errBox.hidden = true;
    const rows = page.items.map(row);
    if (reset) {
      state.items = 0;
      if (rows.length === 0) {
        rows.push(h('tr', { class: 'empty-row' }, h('td', { colspan: String(columns.length), class: 'empty' },
          state.q || state.status.size ? 'No system matches this search.' : 'No systems yet. Systems you install, own or are invited to appear here.')));
      }
      tbody.replaceChildren(...rows);
    } else {
      tbody.append(...rows);
    }
    state.items += page.items.length;
    state.next = page.next_cursor || null;
    state.total = page.total;
    more.hidden = !state.next;
    more.disabled = false;
    footNote.textContent = state.next ? `Showing ${fmtInt(state.items)} of ${fmtInt(state.total)}` : state.total > state.limit ? `All ${fmtInt(state.total)} shown` : '';
    foot.hidden = !state.next && !footNote.textContent;
    const filtered = state.q || state.status.size;
    count.textContent = filtered ? `${plural(state.total, 'system')} match` : plural(state.total, 'system');
    table.dataset.total = String(state.total);
    table.dataset.rows = String(state.items);
    // Timing marks, for `fleetscope bench dashboard` (DESIGN §7): the time
    // from a keystroke, or from signing in, to the rows on screen.
    afterPaint(() => {
      if (state.first) {
        state.first = false;
        if (performance.getEntriesByName('fs:signin').length) performance.measure('fs:signin-to-locations', 'fs:signin');
        performance.mark('fs:locations-ready');
        table.dataset.ready = '1';
      } else if (keyAt) {
        const end = performance.now();
        if (performance.getEntriesByName('fs:search').length >= 5000) performance.clearMeasures('fs:search');
        performance.measure('fs:search', { start: keyAt, end, detail: { q: state.q, wait: t0 - keyAt, fetch: t1 - t0, draw: end - t1 } });
      }
    });
    if (reset) state.keyAt = 0;
    // Endless scroll: while the end of the table is in view (a tall
    // window, a small page), the next page follows.
    if (state.next && sentinel.getBoundingClientRect().top < innerHeight + 400) setTimeout(() => { if (seq === state.seq) loadPage(false); }, 0);
  }

  function row(it) {
    const seen = h('td', { class: 'nowrap', title: it.last_seen ? fmtDateTime(it.last_seen) : null }, it.monitored ? fmtAgo(it.last_seen) : '—');
    return h('tr', { dataset: { id: String(it.id), guid: it.guid, status: it.status } },
      h('td', { class: 'name clip' }, h('a', { href: href(`/systems/${it.id}`), title: it.name }, it.name || it.guid), it.address ? h('div', { class: 'sub', title: it.address }, it.address) : null),
      h('td', { class: 'mono clip', title: it.guid }, it.guid),
      h('td', { class: 'clip', title: it.owner_email || null }, it.owner_email || '—'),
      h('td', { class: 'clip', title: it.installer ? it.installer.name : null }, it.installer ? it.installer.name : '—'),
      h('td', null, statusBadge(it.status)),
      h('td', { class: 'num' }, it.monitored ? fmtPower(it.power_w) : '—'),
      h('td', { class: 'num' }, it.monitored ? fmtEnergy(it.energy_today_wh) : '—'),
      h('td', { class: 'num' }, fmtInt(it.panels)),
      seen);
  }

  async function loadSummary() {
    try {
      const s = await get('/v1/fleet/summary', { signal });
      fig.systems.textContent = fmtInt(s.systems);
      for (const [key] of statuses) {
        fig[key].textContent = fmtInt(s.status[key]);
        chipCount[key].textContent = fmtInt(s.status[key]);
      }
      fig.power.textContent = fmtPower(s.power_w);
      fig.energy.textContent = fmtEnergy(s.energy_today_wh);
      liveAt.textContent = s.live_at ? `Live as of ${fmtDateTime(s.live_at)}.` : '';
    } catch (err) {
      if (err.name !== 'AbortError') showError(err);
    }
  }

  // Endless scroll: the next page loads when the end of the table comes
  // into view (the button does the same for keyboard users).
  const io = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && state.next && !more.disabled && state.items > 0) loadPage(false);
  }, { rootMargin: '400px' });
  io.observe(sentinel);

  // The summary refreshes while the page is open; the table does not move
  // under the user's hands.
  const refresh = setInterval(() => { if (!document.hidden) loadSummary(); }, 30000);

  loadSummary();
  reload();
  if (state.q || !matchMedia('(pointer: coarse)').matches) search.focus({ preventScroll: true });

  return () => {
    clearInterval(refresh);
    clearTimeout(timer);
    io.disconnect();
    if (state.ctl) state.ctl.abort();
  };
}

// afterPaint runs fn once the current DOM changes are on screen.
function afterPaint(fn) { requestAnimationFrame(() => setTimeout(fn, 0)); }

