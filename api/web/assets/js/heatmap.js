// The per-panel energy heat map of one day: a table by row letter × column
// number (from the panel labels, "B12" = row B, column 12), one cell per
// panel. Each cell carries its value as text, with the label, and a
// tooltip; the colour is a second cue, never the only one.
import { h } from './dom.js';
import { fmtEnergy, fmtPower, fmtInt } from './format.js';

const levels = 10;

function rowOrder(a, b) { return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0); }

// heatLevel maps an energy to a colour class 0 (none) … 9 (the day's best).
export function heatLevel(wh, max) {
  if (!(wh > 0) || !(max > 0)) return 0;
  return Math.min(levels - 1, 1 + Math.floor((wh / max) * (levels - 1 - 1e-9)));
}

// buildHeatmap answers the heat map of the panels answer's items.
export function buildHeatmap(items) {
  const max = items.reduce((m, p) => Math.max(m, p.energy_wh || 0), 0);
  const kwh = max >= 1000;
  const unit = kwh ? 'kWh' : 'Wh';
  const val = (wh) => (kwh ? (wh / 1000).toFixed(2) : wh >= 100 ? wh.toFixed(0) : wh.toFixed(1));

  const grid = new Map(); // row → col → panel
  const loose = []; // labels without a row letter or column number, or repeated
  let maxCol = 0;
  for (const p of items) {
    if (!p.row || !(p.col > 0)) { loose.push(p); continue; }
    if (!grid.has(p.row)) grid.set(p.row, new Map());
    const r = grid.get(p.row);
    if (r.has(p.col)) { loose.push(p); continue; }
    r.set(p.col, p);
    maxCol = Math.max(maxCol, p.col);
  }
  // A layout of hundreds of columns is a label scheme, not a roof: list.
  if (maxCol > 64) { loose.push(...[...grid.values()].flatMap((r) => [...r.values()])); grid.clear(); maxCol = 0; }

  const cell = (p) => {
    const wh = p.energy_wh || 0;
    const title = `Panel ${p.panel}: ${fmtEnergy(wh)}, peak ${fmtPower(p.max_power_w)}, ${fmtInt(p.samples)} readings`;
    return h('td', { class: `cell heat-${heatLevel(wh, max)}`, title, dataset: { panel: p.panel, wh: String(wh) } },
      h('span', { class: 'lbl' }, p.panel),
      h('span', { class: 'val' }, val(wh)),
      h('span', { class: 'visually-hidden' }, ` ${unit}`));
  };

  const rows = [...grid.keys()].sort(rowOrder);
  const table = h('table', { class: 'heatmap', id: 'heatmap' },
    h('caption', { class: 'visually-hidden' }, `Energy per panel in ${unit}, by row and column`));
  if (rows.length) {
    const cols = Array.from({ length: maxCol }, (_, i) => i + 1);
    table.append(h('thead', null, h('tr', null, h('td'), cols.map((c) => h('th', { scope: 'col' }, String(c))))));
    table.append(h('tbody', null, rows.map((r) => h('tr', null,
      h('th', { scope: 'row' }, r),
      cols.map((c) => { const p = grid.get(r).get(c); return p ? cell(p) : h('td', { class: 'none', 'aria-label': 'no panel' }); })))));
  }
  if (loose.length) {
    const perRow = 12;
    const body = h('tbody');
    for (let i = 0; i < loose.length; i += perRow) {
      body.append(h('tr', null, h('th', { scope: 'row' }, i === 0 ? 'Other' : ''), loose.slice(i, i + perRow).map(cell)));
    }
    table.append(body);
  }

  const legend = h('div', { class: 'heat-legend', 'aria-hidden': 'true' },
    h('span', null, `0 ${unit}`),
    Array.from({ length: levels }, (_, i) => h('span', { class: `swatch heat-${i}` })),
    h('span', null, `${val(max)} ${unit}`));
  return { table, legend, unit, max };
}
