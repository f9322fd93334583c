// Formatting of the API's physical units and times for people.

const nf = (digits) => new Intl.NumberFormat(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits });
const n0 = nf(0), n1 = nf(1), n2 = nf(2);

export function fmtInt(n) { return n === null || n === undefined ? '—' : n0.format(n); }

// scaled picks a unit from a base-unit value: 532 W, 5.32 kW, 1.23 MW.
function scaled(v, units) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  let i = 0;
  let x = v;
  while (Math.abs(x) >= 1000 && i < units.length - 1) { x /= 1000; i++; }
  const a = Math.abs(x);
  const f = i === 0 ? (a > 0 && a < 10 ? n1 : n0) : a >= 100 ? n0 : a >= 10 ? n1 : n2;
  return `${f.format(x)} ${units[i]}`;
}
export function fmtPower(w) { return scaled(w, ['W', 'kW', 'MW', 'GW']); }
export function fmtEnergy(wh) { return scaled(wh, ['Wh', 'kWh', 'MWh', 'GWh']); }
export function fmtKWh(wh) { return wh === null || wh === undefined ? '—' : n2.format(wh / 1000); }
export function fmtYield(v) { return v === null || v === undefined ? '—' : n2.format(v); }

// toDate reads an API time: RFC 3339 text or Unix milliseconds.
export function toDate(v) {
  if (v === null || v === undefined || v === '') return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

const dtf = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const df = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
export function fmtDateTime(v) { const d = toDate(v); return d ? dtf.format(d) : '—'; }
export function fmtDate(v) { const d = toDate(v); return d ? df.format(d) : '—'; }

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });
// fmtAgo: "12 sec. ago", "3 hr. ago"; "never" for none.
export function fmtAgo(v, now = Date.now()) {
  const d = toDate(v);
  if (!d) return 'never';
  const s = Math.round((d.getTime() - now) / 1000);
  const a = Math.abs(s);
  if (a < 60) return rtf.format(s, 'second');
  if (a < 3600) return rtf.format(Math.round(s / 60), 'minute');
  if (a < 86400) return rtf.format(Math.round(s / 3600), 'hour');
  return rtf.format(Math.round(s / 86400), 'day');
}

// todayIn is today's date (YYYY-MM-DD) in an IANA time zone.
export function todayIn(tz) {
  try {
    return new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
  } catch {
    return new Date().toISOString().slice(0, 10);
  }
}

// plural: plural(3, 'system') → "3 systems".
export function plural(n, word, many = word + 's') { return `${fmtInt(n)} ${n === 1 ? word : many}`; }
