// The history chart: uPlot (vendored, see vendor/uplot/VERSIONS), loaded on
// the first page that draws a chart so that the first page stays small.
import { fmtPower, fmtEnergy, fmtDateTime } from './format.js';

let loading = null;

// loadUPlot adds uPlot's script once and answers the uPlot constructor.
export function loadUPlot() {
  if (window.uPlot) return Promise.resolve(window.uPlot);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const css = document.createElement('link');
      css.rel = 'stylesheet';
      css.href = new URL('../vendor/uplot/uPlot.min.css', import.meta.url).href;
      document.head.append(css);
      const s = document.createElement('script');
      s.src = new URL('../vendor/uplot/uPlot.iife.min.js', import.meta.url).href;
      s.addEventListener('load', () => resolve(window.uPlot));
      s.addEventListener('error', () => { loading = null; reject(new Error('the chart library did not load')); });
      document.head.append(s);
    });
  }
  return loading;
}

const axisFont = '12px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif';
const grid = { stroke: '#edf0f4', width: 1 };
const ticks = { stroke: '#dfe3e9', width: 1, size: 4 };

// shortPower/shortEnergy label axes compactly.
function short(units) {
  return (v) => {
    let i = 0;
    let x = v;
    while (Math.abs(x) >= 1000 && i < units.length - 1) { x /= 1000; i++; }
    return `${+x.toFixed(Math.abs(x) < 10 && x !== 0 ? 1 : 0)} ${units[i]}`;
  };
}
const shortPower = short(['W', 'kW', 'MW', 'GW']);
const shortEnergy = short(['Wh', 'kWh', 'MWh', 'GWh']);

// drawHistory draws power (line, left axis) and energy per step (bars,
// right axis) of telemetry points into el, over [from, to) (Unix ms), in
// the system's time zone; each bar stands at the start of its step.
// Answers a handle with destroy(). el.dataset.points says how many points
// are drawn (the browser tests read it).
export async function drawHistory(el, points, { tz, stepSeconds, from, to }) {
  const uPlot = await loadUPlot();
  const xs = new Array(points.length);
  const power = new Array(points.length);
  const energy = new Array(points.length);
  points.forEach((p, i) => {
    xs[i] = new Date(p.ts).getTime() / 1000;
    power[i] = p.avg_power_w ?? p.power_w ?? null;
    energy[i] = p.energy_wh ?? null;
  });
  const width = Math.max(320, el.clientWidth || 800);
  const lo = Math.min(from / 1000, xs[0] ?? Infinity);
  const hi = Math.max(to / 1000, (xs.at(-1) ?? -Infinity) + stepSeconds);
  // A bar is at most its step wide (a lone point would otherwise fill the
  // plot): the plot is the width less the two axes.
  const stepPx = ((width - 64 - 70) * stepSeconds) / Math.max(1, hi - lo);
  const barSize = [0.72, Math.max(2, Math.min(48, stepPx * 0.8))];
  const opts = {
    width,
    height: 320,
    tzDate: (ts) => { try { return uPlot.tzDate(new Date(ts * 1000), tz); } catch { return new Date(ts * 1000); } },
    cursor: { drag: { x: true, y: false }, points: { size: 7 } },
    legend: { live: true },
    scales: {
      // The axis spans the range asked for, however few points fall in it
      // (uPlot widens a lone point's axis by 1000 days when ms = 1e-3);
      // double-click after a drag-zoom comes back to it.
      x: { time: true, auto: false, range: () => [lo, hi] },
      W: { range: (u, min, max) => [0, max > 0 ? max * 1.12 : 1] },
      Wh: { range: (u, min, max) => [0, max > 0 ? max * 1.12 : 1] },
    },
    series: [
      { label: 'Time', value: (u, v) => (v == null ? '—' : fmtDateTime(v * 1000)) },
      {
        label: 'Energy per step', scale: 'Wh', stroke: '#d97706', fill: 'rgba(245, 158, 11, 0.45)', width: 1,
        paths: uPlot.paths.bars({ size: barSize, align: 0 }), points: { show: false },
        value: (u, v) => (v == null ? '—' : fmtEnergy(v)),
      },
      {
        label: 'Average power', scale: 'W', stroke: '#1d4ed8', fill: 'rgba(29, 78, 216, 0.08)', width: 2,
        points: { show: points.length < 60, size: 4 },
        value: (u, v) => (v == null ? '—' : fmtPower(v)),
      },
    ],
    axes: [
      { stroke: '#4b5563', font: axisFont, grid, ticks },
      { scale: 'W', stroke: '#4b5563', font: axisFont, grid, ticks, size: 64, values: (u, vals) => vals.map(shortPower) },
      { scale: 'Wh', side: 1, stroke: '#92400e', font: axisFont, grid: { show: false }, ticks, size: 70, values: (u, vals) => vals.map(shortEnergy) },
    ],
  };
  el.replaceChildren();
  const u = new uPlot(opts, [xs, energy, power], el);
  el.dataset.points = String(points.length);
  const ro = new ResizeObserver(() => {
    const w = Math.max(320, el.clientWidth);
    if (Math.abs(w - u.width) > 2) u.setSize({ width: w, height: 320 });
  });
  ro.observe(el);
  return { destroy() { ro.disconnect(); u.destroy(); } };
}
