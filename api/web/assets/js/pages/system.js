// One system: live power and energy, lifetime energy, the history chart,
// the per-panel heat map of a day, gateways. Each part appears only where
// the caller's permissions on the system (its "permissions" list) allow;
// the API decides either way.
import { h, field, card, statusBadge, alertBox, say, confirmButton } from '../dom.js';
import { get, post, del, enc } from '../api.js';
import { fmtPower, fmtEnergy, fmtInt, fmtAgo, fmtDateTime, fmtDate, todayIn, plural } from '../format.js';
import { href } from '../router.js';
import { messageOf } from '../app.js';

export function canManageUsers(perms) {
  return perms.has('manage_users') || perms.has('share') || perms.has('admin') || perms.has('owner');
}

export async function systemPage(main, { params, signal }) {
  const sys = await get(`/v1/systems/${enc(params.id)}`, { signal });
  const perms = new Set(sys.permissions || []);
  const id = sys.id;
  document.title = `${sys.name} · fleetscope`;
  const cleanups = [];

  const actions = [];
  if (canManageUsers(perms)) {
    actions.push(h('a', { class: 'btn btn-secondary', href: href(`/systems/${id}/users`), id: 'manage-users' }, 'Manage users'));
  }
  main.append(h('div', { class: 'page-head' },
    h('div', null,
      h('div', { class: 'crumbs' }, h('a', { href: href('/locations') }, 'All Locations'), ' / '),
      h('h1', null, sys.name),
      h('div', { class: 'sub' }, statusBadge(sys.status), h('span', { class: 'mono' }, sys.guid), sys.address ? h('span', null, sys.address) : null)),
    h('div', { class: 'page-actions' }, actions)));

  // Live figures.
  const fig = {};
  const stat = (key, label, value, hint) => {
    fig[key] = h('div', { class: 'value' }, value);
    fig[key + 'Hint'] = h('div', { class: 'hint' }, hint || '');
    return h('div', { class: 'card stat', dataset: { stat: key } }, h('div', { class: 'label' }, label), fig[key], fig[key + 'Hint']);
  };
  const lifetime = lifetimeFigure(sys);
  main.append(h('div', { class: 'stats' },
    stat('power', 'Power now', sys.monitored ? fmtPower(sys.power_w) : '—', sys.monitored ? '' : 'not monitored'),
    stat('energy', 'Energy today', sys.monitored ? fmtEnergy(sys.energy_today_wh) : '—', `local day, ${sys.timezone}`),
    stat('lifetime', 'Lifetime energy', lifetime[0], lifetime[1]),
    stat('panels', 'Panels', fmtInt(sys.panels), sys.capacity_w ? `${fmtPower(sys.capacity_w)} peak` : ''),
    stat('seen', 'Last seen', sys.monitored ? fmtAgo(sys.last_seen) : '—', sys.last_seen ? fmtDateTime(sys.last_seen) : '')));
  const live = setInterval(async () => {
    if (document.hidden) return;
    try {
      const s = await get(`/v1/systems/${id}`, { signal });
      if (!s.monitored) return;
      fig.power.textContent = fmtPower(s.power_w);
      fig.energy.textContent = fmtEnergy(s.energy_today_wh);
      fig.seen.textContent = fmtAgo(s.last_seen);
      fig.seenHint.textContent = s.last_seen ? fmtDateTime(s.last_seen) : '';
      if (s.lifetime_energy_wh != null) [fig.lifetime.textContent, fig.lifetimeHint.textContent] = lifetimeFigure(s);
    } catch { /* the next tick tries again */ }
  }, 15000);
  cleanups.push(() => clearInterval(live));

  const col = h('div', { class: 'stack' });
  main.append(col);
  if (!sys.monitored) {
    col.append(h('div', { class: 'alert alert-info', role: 'status' }, 'This is a fire-safety-only (not monitored) system: it sends no telemetry.'));
  } else if (perms.has('data')) {
    col.append(historyCard(sys, signal, cleanups));
    col.append(heatmapCard(sys, signal));
  } else {
    col.append(h('div', { class: 'alert alert-info', role: 'status', id: 'no-data' },
      'Your access to this system is a basic view: live state and metadata, without history or panel data. Ask a user of the system for data access.'));
  }
  col.append(h('div', { class: 'grid-2' }, gatewaysCard(sys, perms), detailsCard(sys)));
  return () => cleanups.forEach((f) => f());
}

// lifetimeFigure is the lifetime-energy tile's value and hint. The rollups
// count it a few minutes behind the clock; further behind — after a
// restore, an outage or a first start, while the rollup worker catches up —
// the hint says up to when, and before they have reached the system at all
// (they answer 0 up to the start of counting) the value is a dash.
function lifetimeFigure(s) {
  if (s.lifetime_energy_wh == null) return ['—', 'history unavailable right now'];
  const value = fmtEnergy(s.lifetime_energy_wh);
  const until = Date.parse(s.lifetime_until || '');
  if (!until || Date.now() - until <= 10 * 60e3) return [value, ''];
  if (until < Date.parse(s.created || '') || until < Date.UTC(2001, 0, 1)) return ['—', 'not counted yet: history is catching up'];
  return [value, `counted up to ${fmtDateTime(s.lifetime_until)}: history is catching up`];
}

const day = 864e5;
const ranges = [
  { key: '24h', label: '24 h', span: day, step: '15m' },
  { key: '7d', label: '7 d', span: 7 * day, step: '1h' },
  { key: '30d', label: '30 d', span: 30 * day, step: '1d' },
  { key: '12mo', label: '12 mo', span: 365 * day, step: '1mo' },
  { key: 'life', label: 'Lifetime' },
];
const stepSeconds = { '1m': 60, '15m': 900, '1h': 3600, '1d': 86400, '1mo': 30 * 86400, '1y': 365 * 86400 };
const stepWords = { '1m': 'one-minute', '15m': '15-minute', '1h': 'hourly', '1d': 'daily', '1mo': 'monthly', '1y': 'yearly' };

function historyCard(sys, signal, cleanups) {
  const chart = h('div', { class: 'chart', id: 'chart', role: 'img', 'aria-label': 'Power and energy history' });
  const figures = h('div', { class: 'figures', 'aria-live': 'polite' });
  const note = alertBox('info');
  let handle = null;
  let seq = 0;
  cleanups.push(() => handle && handle.destroy());

  const buttons = ranges.map((r) => {
    const b = h('button', { type: 'button', 'aria-pressed': 'false', dataset: { range: r.key } }, r.label);
    b.addEventListener('click', () => show(r));
    return b;
  });
  const seg = h('div', { class: 'seg', role: 'group', 'aria-label': 'Range' }, buttons);

  async function show(r) {
    const mine = ++seq;
    buttons.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.range === r.key)));
    const to = Date.now();
    let from = to - (r.span || 0);
    let step = r.step;
    if (r.key === 'life') {
      const created = sys.created ? new Date(sys.created).getTime() : to - 400 * day;
      from = Math.min(created, to - day);
      const span = to - from;
      step = span <= 90 * day ? '1d' : span <= 5 * 365 * day ? '1mo' : '1y';
    }
    say(note, '');
    chart.setAttribute('aria-busy', 'true');
    let t;
    try {
      t = await get(`/v1/systems/${sys.id}/telemetry?from=${from}&to=${to}&step=${step}`, { signal });
    } catch (err) {
      if (mine !== seq) return;
      chart.removeAttribute('aria-busy');
      if (err.name !== 'AbortError') say(note, messageOf(err), 'error');
      return;
    }
    if (mine !== seq) return;
    chart.removeAttribute('aria-busy');
    const pts = t.points || [];
    const total = pts.reduce((s, p) => s + (p.energy_wh || 0), 0);
    const peak = pts.reduce((m, p) => Math.max(m, p.avg_power_w || 0), 0);
    figures.replaceChildren(
      h('span', null, 'Energy in range ', h('strong', { id: 'range-energy' }, fmtEnergy(total))),
      h('span', null, 'Highest average power ', h('strong', null, fmtPower(peak))),
      h('span', null, `${plural(pts.length, 'point')}, ${stepWords[t.step] || t.step} steps, ${t.timezone}`));
    if (handle) { handle.destroy(); handle = null; }
    if (pts.length === 0) {
      chart.dataset.points = '0';
      chart.replaceChildren(h('div', { class: 'chart-note' }, 'No readings in this range yet.'));
      return;
    }
    try {
      handle = await drawChart(chart, pts, { tz: t.timezone || sys.timezone, stepSeconds: stepSeconds[t.step] || 3600, from: new Date(t.from).getTime() || from, to: new Date(t.to).getTime() || to });
    } catch (err) {
      say(note, `The chart could not be drawn: ${err.message}`, 'error');
    }
  }

  show(ranges[0]);
  return card('History', {
    sub: 'Average power and energy per step, in the system\'s time zone',
    actions: seg,
    body: [note, figures, chart],
  });
}

async function drawChart(el, pts, opts) {
  const { drawHistory } = await import('../chart.js');
  return drawHistory(el, pts, opts);
}

function heatmapCard(sys, signal) {
  const today = todayIn(sys.timezone);
  const date = h('input', { type: 'date', id: 'heat-date', value: today, max: today });
  const prev = h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'aria-label': 'Previous day' }, '‹');
  const next = h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'aria-label': 'Next day' }, '›');
  const body = h('div', { class: 'heat-wrap' });
  const summary = h('div', { class: 'figures', 'aria-live': 'polite' });
  const msg = alertBox();
  let seq = 0;

  const shift = (days) => {
    const d = new Date(date.value + 'T12:00:00Z');
    d.setUTCDate(d.getUTCDate() + days);
    const v = d.toISOString().slice(0, 10);
    if (v > today) return;
    date.value = v;
    load();
  };
  prev.addEventListener('click', () => shift(-1));
  next.addEventListener('click', () => shift(1));
  date.addEventListener('change', load);

  async function load() {
    const mine = ++seq;
    say(msg, '');
    let ans;
    try {
      ans = await get(`/v1/systems/${sys.id}/panels?date=${enc(date.value || today)}`, { signal });
    } catch (err) {
      if (mine === seq && err.name !== 'AbortError') say(msg, messageOf(err), 'error');
      return;
    }
    if (mine !== seq) return;
    const items = ans.items || [];
    next.disabled = date.value >= today;
    if (items.length === 0) {
      body.replaceChildren(h('p', { class: 'empty' }, `No panel reported on ${fmtDate(date.value + 'T12:00:00Z')}.`));
      summary.replaceChildren();
      return;
    }
    const { buildHeatmap } = await import('../heatmap.js');
    const { table, legend } = buildHeatmap(items);
    body.replaceChildren(table, legend);
    const sorted = [...items].sort((a, b) => (b.energy_wh || 0) - (a.energy_wh || 0));
    const total = items.reduce((s, p) => s + (p.energy_wh || 0), 0);
    summary.replaceChildren(
      h('span', null, h('strong', null, plural(items.length, 'panel'))),
      h('span', null, 'Total ', h('strong', null, fmtEnergy(total))),
      h('span', null, 'Best ', h('strong', null, `${sorted[0].panel} (${fmtEnergy(sorted[0].energy_wh)})`)),
      h('span', null, 'Lowest ', h('strong', null, `${sorted.at(-1).panel} (${fmtEnergy(sorted.at(-1).energy_wh)})`)));
  }
  load();
  const tools = h('div', { class: 'chart-tools' }, prev, h('label', { for: 'heat-date', class: 'visually-hidden' }, 'Day'), date, next);
  return card('Panels', { sub: 'Energy of each panel over one local day', actions: tools, body: [msg, summary, body] });
}

function gatewaysCard(sys, perms) {
  const canEdit = perms.has('add_gateway');
  const msg = alertBox();
  const reveal = h('div');
  const tbody = h('tbody');
  const list = h('table', { class: 'data', id: 'gateways' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Serial'), h('th', { scope: 'col' }, 'Gateway id'), canEdit ? h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')) : null)),
    tbody);

  function render(gws) {
    if (!gws.length) {
      tbody.replaceChildren(h('tr', null, h('td', { colspan: '3', class: 'empty' }, 'No gateway yet.')));
      return;
    }
    tbody.replaceChildren(...gws.map((g) => h('tr', { dataset: { serial: g.serial } },
      h('td', { class: 'mono' }, g.serial),
      h('td', { class: 'mono' }, String(g.id)),
      canEdit ? h('td', { class: 'row-actions' }, h('div', { class: 'actions' },
        rotateButton(g),
        confirmButton('Remove', 'Confirm remove', async () => {
          try {
            await del(`/v1/systems/${sys.id}/gateways/${enc(g.serial)}`);
            say(msg, `Gateway ${g.serial} removed: its key no longer posts.`, 'ok');
            refresh();
          } catch (err) { say(msg, messageOf(err), 'error'); }
        }))) : null)));
  }

  function rotateButton(g) {
    const b = h('button', { type: 'button', class: 'btn btn-secondary btn-sm' }, 'Rotate key');
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        const out = await post(`/v1/systems/${sys.id}/gateways/${enc(g.serial)}/key`, {});
        showKey(`New key for ${g.serial}`, out.key, 'The previous key keeps working for a grace period (24 h by default) while you reconfigure the gateway.');
      } catch (err) {
        say(msg, messageOf(err), 'error');
      } finally { b.disabled = false; }
    });
    return b;
  }

  function showKey(title, key, extra) {
    reveal.replaceChildren(keyReveal(title, key, extra, () => reveal.replaceChildren()));
    reveal.querySelector('input').focus();
  }

  async function refresh() {
    try {
      const out = await get(`/v1/systems/${sys.id}/gateways`);
      render(out.items || []);
    } catch (err) { say(msg, messageOf(err), 'error'); }
  }

  render(sys.gateways || []);
  const lower = h('div', { class: 'card-body msgs' }, msg);
  if (canEdit) {
    const serial = h('input', { type: 'text', id: 'gw-serial', name: 'serial', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. CC:A0:12:34:56:78', required: true });
    const form = h('form', { class: 'form-row', id: 'add-gateway', novalidate: true },
      h('div', { class: 'grow' }, field('Gateway serial', serial)),
      h('button', { type: 'submit', class: 'btn' }, 'Add gateway'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!serial.value.trim()) { say(msg, 'Enter the serial printed on the gateway.', 'error'); return; }
      try {
        const out = await post(`/v1/systems/${sys.id}/gateways`, { serial: serial.value.trim() });
        say(msg, '');
        showKey(`Key for gateway ${out.gateway.serial}`, out.key, 'Enter it in the gateway\'s settings as its ingest key.');
        serial.value = '';
        refresh();
      } catch (err) { say(msg, messageOf(err), 'error'); }
    });
    lower.className = 'card-body';
    lower.append(form, reveal);
  }
  return card('Gateways', { sub: canEdit ? 'Each gateway posts with its own key' : null, body: h('div', null, h('div', { class: 'table-wrap' }, list), lower) });
}

// keyReveal shows a secret once, with a copy button and a warning.
export function keyReveal(title, key, extra, done) {
  const input = h('input', { type: 'text', readOnly: true, value: key, 'aria-label': title, class: 'mono', id: 'new-key' });
  input.addEventListener('focus', () => input.select());
  const copy = h('button', { type: 'button', class: 'btn btn-secondary' }, 'Copy');
  const status = h('span', { class: 'small', role: 'status' });
  copy.addEventListener('click', async () => {
    input.select();
    try {
      await navigator.clipboard.writeText(key);
      status.textContent = 'Copied.';
    } catch {
      status.textContent = 'Select the key and copy it with Ctrl+C.';
    }
  });
  const ok = h('button', { type: 'button', class: 'btn btn-secondary' }, 'I saved it');
  ok.addEventListener('click', done);
  return h('div', { class: 'secret', role: 'alert' },
    h('p', null, `${title}. Copy it now: it is shown only this once — fleetscope keeps only a hash of it.`),
    h('div', { class: 'row' }, input, copy, ok),
    extra ? h('div', { class: 'small muted' }, extra) : null,
    status);
}

function detailsCard(sys) {
  const rows = [
    ['GUID', h('span', { class: 'mono' }, sys.guid)],
    ['Address', sys.address || '—'],
    ['Time zone', sys.timezone],
    ['Monitoring', sys.monitored ? 'monitored' : 'fire safety only (not monitored)'],
    ['Owner', sys.owner_email || '—'],
    ['Installer', sys.installer ? sys.installer.name : '—'],
    ['Capacity', sys.capacity_w ? fmtPower(sys.capacity_w) : '—'],
    ['Commissioned', sys.created ? fmtDateTime(sys.created) : '—'],
    ['Your permissions', (sys.permissions || []).join(', ') || '—'],
  ];
  return card('Details', { body: [h('dl', { class: 'facts' }, rows.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)]))] });
}
