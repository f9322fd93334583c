// DOM building without HTML strings. Every value, from the API or not,
// becomes a text node (textContent / createTextNode), never markup: a system
// named <img src=x onerror=alert(1)> shows as those characters. No string
// is ever parsed as HTML in this dashboard (api/web's tests check the
// sources), and there is no inline script or style, so the strict
// Content-Security-Policy the server sends holds.

// h builds an element: h('a', {href: '#/x', class: 'btn'}, 'text', child…).
// attrs: class, text, dataset {}, on {event: fn}, hidden/disabled/checked/…
// as properties, anything else as an attribute (aria-*, role, for, …).
// Children: strings and numbers become text nodes; null, undefined and
// false are skipped; arrays are flattened.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      switch (k) {
        case 'class': el.className = v; break;
        case 'text': el.textContent = String(v); break;
        case 'dataset': Object.assign(el.dataset, v); break;
        case 'on': for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn); break;
        case 'value': el.value = v; break;
        case 'checked': case 'disabled': case 'hidden': case 'required': case 'readOnly': case 'selected': case 'multiple':
          el[k] = Boolean(v); break;
        case 'for': el.htmlFor = v; break;
        default: el.setAttribute(k, v === true ? '' : String(v));
      }
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.append(c);
    else el.append(document.createTextNode(String(c)));
  }
}

// replace empties el and appends children.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let ids = 0;
// uid returns a fresh element id for label/aria references.
export function uid(prefix = 'f') { return `${prefix}-${++ids}`; }

// field is a labelled input: a <div class=field> with <label for> and the
// control (created here from attrs unless a node is passed).
export function field(label, control, hint) {
  const id = control.id || uid('in');
  control.id = id;
  const parts = [h('label', { for: id }, label), control];
  if (hint) {
    const hid = uid('hint');
    control.setAttribute('aria-describedby', hid);
    parts.push(h('span', { class: 'hint', id: hid }, hint));
  }
  return h('div', { class: 'field' }, parts);
}

// alertBox is a message area announced to screen readers.
export function alertBox(kind = 'error') {
  return h('div', { class: `alert alert-${kind}`, role: kind === 'error' ? 'alert' : 'status' });
}

// say puts text in an alert box (empty text hides it) and sets its kind.
export function say(box, text, kind) {
  if (kind) box.className = `alert alert-${kind}`;
  box.textContent = text || '';
}

// confirmButton is a destructive button that asks once more in place: the
// first click turns it into "Confirm …", the second runs action. No
// window.confirm (it blocks, and cannot be styled or tested well).
export function confirmButton(label, confirmLabel, action, attrs = {}) {
  let armed = false;
  let timer = 0;
  const btn = h('button', { type: 'button', class: 'btn btn-danger btn-sm', ...attrs }, label);
  const disarm = () => { armed = false; btn.classList.remove('confirming'); btn.textContent = label; };
  btn.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      btn.classList.add('confirming');
      btn.textContent = confirmLabel;
      clearTimeout(timer);
      timer = setTimeout(disarm, 5000);
      return;
    }
    clearTimeout(timer);
    btn.disabled = true;
    try { await action(); } finally { btn.disabled = false; disarm(); }
  });
  btn.addEventListener('blur', () => { if (armed) { clearTimeout(timer); timer = setTimeout(disarm, 300); } });
  return btn;
}

// card is a titled panel.
export function card(title, { actions, sub, body, cls = '' } = {}) {
  const head = h('div', { class: 'card-head' },
    h('div', null, h('h2', null, title), sub ? h('p', { class: 'muted small' }, sub) : null),
    actions ? h('div', { class: 'actions' }, actions) : null);
  const bodyEl = body instanceof Node ? body : h('div', { class: 'card-body' }, body);
  return h('section', { class: `card ${cls}` }, head, bodyEl);
}

// select builds a <select> from [value, label] pairs.
export function select(options, value, attrs = {}) {
  const el = h('select', attrs, options.map(([v, l]) => h('option', { value: v }, l)));
  if (value !== undefined) el.value = value;
  return el;
}

// statusBadge shows a system's status with a symbol and a word.
const statusText = {
  online: ['●', 'Online'],
  offline: ['▲', 'Offline'],
  never: ['○', 'Never seen'],
  unmonitored: ['◇', 'Not monitored'],
};
export function statusBadge(status) {
  const [sym, word] = statusText[status] || ['?', String(status)];
  return h('span', { class: `badge ${statusText[status] ? status : ''}` }, h('span', { class: 'sym', 'aria-hidden': 'true' }, sym), word);
}
export function statusLabel(status) { return (statusText[status] || [null, String(status)])[1]; }

// icon returns a small inline SVG made with DOM calls.
export function searchIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 20 20');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '2');
  const c = document.createElementNS(ns, 'circle');
  c.setAttribute('cx', '8.5'); c.setAttribute('cy', '8.5'); c.setAttribute('r', '5.5');
  const l = document.createElementNS(ns, 'path');
  l.setAttribute('d', 'M13 13l4.5 4.5'); l.setAttribute('stroke-linecap', 'round');
  svg.append(c, l);
  return svg;
}
