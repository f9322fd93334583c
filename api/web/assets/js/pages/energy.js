// Fleet energy: every system the caller holds data on, ranked by energy or
// by specific yield (kWh per kWp of capacity) over 7 or 30 days or a chosen
// range — how installers find underperforming sites. CSV of the view.
import { h, field, alertBox, say } from '../dom.js';
import { get, qs } from '../api.js';
import { fmtYield, fmtInt, fmtDateTime } from '../format.js';
import { href, setQuery } from '../router.js';
import { messageOf } from '../app.js';

const day = 864e5;
const pageSize = 100;

export function energyPage(main, { query, signal }) {
  const state = {
    range: query.get('range') || '7d',
    sort: query.get('sort') || '-energy',
    from: query.get('from') || '',
    to: query.get('to') || '',
    next: null,
    rank: 0,
    seq: 0,
  };
  const msg = alertBox();
  const rangeButtons = [['7d', 'Last 7 days'], ['30d', 'Last 30 days'], ['custom', 'Custom range']].map(([k, l]) => {
    const b = h('button', { type: 'button', 'aria-pressed': String(state.range === k), dataset: { range: k } }, l);
    b.addEventListener('click', () => { state.range = k; custom.hidden = k !== 'custom'; if (k !== 'custom') load(true); sync(); });
    return b;
  });
  const sortButtons = [['-energy', 'Energy'], ['-yield', 'Specific yield']].map(([k, l]) => {
    const b = h('button', { type: 'button', 'aria-pressed': String(state.sort === k), dataset: { sort: k } }, l);
    b.addEventListener('click', () => { state.sort = k; say(msg, ''); load(true); sync(); });
    return b;
  });
  const today = new Date().toISOString().slice(0, 10);
  const fromIn = h('input', { type: 'date', id: 'e-from', value: state.from || new Date(Date.now() - 7 * day).toISOString().slice(0, 10), max: today });
  const toIn = h('input', { type: 'date', id: 'e-to', value: state.to || today, max: today });
  const apply = h('button', { type: 'submit', class: 'btn btn-secondary btn-sm' }, 'Apply');
  const custom = h('form', { class: 'form-row card-body', hidden: state.range !== 'custom', novalidate: true }, field('From', fromIn), field('To (inclusive)', toIn), apply);
  custom.addEventListener('submit', (ev) => { ev.preventDefault(); state.from = fromIn.value; state.to = toIn.value; load(true); sync(); });
  const csv = h('a', { class: 'btn btn-secondary btn-sm', id: 'energy-csv', download: 'fleet-energy.csv' }, 'Download CSV');
  const info = h('div', { class: 'result-count', role: 'status', 'aria-live': 'polite' });
  const tbody = h('tbody');
  const more = h('button', { type: 'button', class: 'btn btn-secondary', hidden: true }, 'Load more');
  const foot = h('div', { class: 'table-foot', hidden: true }, more);
  more.addEventListener('click', () => load(false));
  const table = h('table', { class: 'data', id: 'energy-table' },
    h('thead', null, h('tr', null,
      h('th', { scope: 'col', class: 'num' }, '#'),
      h('th', { scope: 'col' }, 'System'),
      h('th', { scope: 'col' }, 'GUID'),
      h('th', { scope: 'col', class: 'num', 'aria-sort': state.sort === '-energy' ? 'descending' : 'none' }, 'Energy (kWh)'),
      h('th', { scope: 'col', class: 'num', 'aria-sort': state.sort === '-yield' ? 'descending' : 'none' }, 'Specific yield (kWh/kWp)'))),
    tbody);

  main.append(
    h('div', { class: 'page-head' }, h('div', null, h('h1', null, 'Fleet energy'),
      h('div', { class: 'sub' }, 'Energy of every system you hold data on. Rank by specific yield to find underperforming sites.'))),
    h('section', { class: 'card' },
      h('div', { class: 'toolbar' },
        h('div', { class: 'seg', role: 'group', 'aria-label': 'Range' }, rangeButtons),
        h('div', { class: 'seg', role: 'group', 'aria-label': 'Rank by' }, sortButtons),
        h('span', { class: 'spacer' }), csv),
      custom,
      h('div', { class: 'card-body msgs' }, msg),
      h('div', { class: 'subbar' }, info),
      h('div', { class: 'table-wrap' }, table),
      foot));

  function range() {
    const now = Date.now();
    if (state.range === '30d') return { from: now - 30 * day, to: now };
    if (state.range === 'custom' && state.from && state.to) {
      // Local days, "to" inclusive.
      const f = new Date(state.from + 'T00:00:00');
      const t = new Date(state.to + 'T00:00:00');
      t.setDate(t.getDate() + 1);
      return { from: f.getTime(), to: Math.min(t.getTime(), now) };
    }
    return { from: now - 7 * day, to: now };
  }

  function sync() {
    rangeButtons.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.range === state.range)));
    sortButtons.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.sort === state.sort)));
    const ths = table.querySelectorAll('thead th');
    ths[3].setAttribute('aria-sort', state.sort === '-energy' ? 'descending' : 'none');
    ths[4].setAttribute('aria-sort', state.sort === '-yield' ? 'descending' : 'none');
    setQuery({ range: state.range === '7d' ? '' : state.range, sort: state.sort === '-energy' ? '' : state.sort, from: state.range === 'custom' ? state.from : '', to: state.range === 'custom' ? state.to : '' });
  }

  async function load(reset) {
    const seq = ++state.seq;
    const { from, to } = range();
    if (!(from < to)) { say(msg, 'The range must start before it ends.', 'error'); return; }
    if (msg.classList.contains('alert-error')) say(msg, '');
    const params = { from, to, sort: state.sort, limit: pageSize, cursor: reset ? '' : state.next };
    csv.href = '/v1/fleet/energy' + qs({ from, to, sort: state.sort, format: 'csv' });
    more.disabled = true;
    let out;
    try {
      out = await get('/v1/fleet/energy' + qs(params), { signal });
    } catch (err) {
      if (seq !== state.seq || err.name === 'AbortError') return;
      more.disabled = false;
      say(msg, messageOf(err), 'error');
      return;
    }
    if (seq !== state.seq) return;
    if (reset) { state.rank = 0; tbody.replaceChildren(); }
    const rows = (out.items || []).map((it) => h('tr', { dataset: { id: String(it.id), guid: it.guid } },
      h('td', { class: 'num muted' }, fmtInt(++state.rank)),
      h('td', { class: 'name' }, h('a', { href: href(`/systems/${it.id}`) }, it.name || it.guid)),
      h('td', { class: 'mono' }, it.guid),
      h('td', { class: 'num' }, ((it.energy_wh || 0) / 1000).toFixed(2)),
      h('td', { class: 'num' }, fmtYield(it.kwh_per_kwp))));
    if (reset && rows.length === 0) rows.push(h('tr', null, h('td', { colspan: '5', class: 'empty' }, 'No systems with data access.')));
    tbody.append(...rows);
    state.next = out.next_cursor || null;
    more.hidden = !state.next;
    foot.hidden = !state.next;
    more.disabled = false;
    const until = out.until ? ` Sums end at ${fmtDateTime(out.until)}.` : '';
    info.textContent = `${fmtInt(out.total)} systems, ${fmtDateTime(out.from)} – ${fmtDateTime(out.to)}.${until}`;
    table.dataset.total = String(out.total);
  }

  sync();
  load(true);
}
