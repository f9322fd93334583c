// The caller's account: password change and sessions.
import { h, field, card, alertBox, say, confirmButton } from '../dom.js';
import { get, post, del, enc, ApiError } from '../api.js';
import { fmtDateTime } from '../format.js';
import { session } from '../session.js';
import { messageOf } from '../app.js';

const minPassword = 10;

export function accountPage(main, { signal }) {
  const me = session.me;
  main.append(h('div', { class: 'page-head' }, h('div', null, h('h1', null, 'Account'),
    h('div', { class: 'sub' }, h('span', null, me.name || ''), h('span', null, me.email), me.verified ? h('span', { class: 'badge online' }, 'verified') : null))));

  const msg = alertBox();
  const current = h('input', { type: 'password', id: 'pw-current', autocomplete: 'current-password', required: true });
  const next = h('input', { type: 'password', id: 'pw-new', autocomplete: 'new-password', required: true });
  const again = h('input', { type: 'password', id: 'pw-again', autocomplete: 'new-password', required: true });
  const form = h('form', { id: 'password-form', novalidate: true },
    msg,
    field('Current password', current),
    field('New password', next, `At least ${minPassword} characters. Your other sessions end.`),
    field('New password, again', again),
    h('button', { type: 'submit', class: 'btn' }, 'Change password'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (next.value.length < minPassword) { say(msg, `The new password needs at least ${minPassword} characters.`, 'error'); return; }
    if (next.value !== again.value) { say(msg, 'The two new passwords differ.', 'error'); return; }
    try {
      await post('/v1/accounts/password', { current: current.value, new: next.value }, { quiet401: true });
      say(msg, 'Password changed. Every other session of your account has ended.', 'ok');
      form.reset();
      loadSessions();
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) say(msg, 'The current password is wrong.', 'error');
      else say(msg, messageOf(err), 'error');
    }
  });

  const sMsg = alertBox('info');
  const tbody = h('tbody');
  const table = h('table', { class: 'data', id: 'sessions' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Signed in'), h('th', { scope: 'col' }, 'Last used'), h('th', { scope: 'col' }, 'Browser'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
    tbody);

  async function loadSessions() {
    try {
      const out = await get('/v1/sessions', { signal });
      say(sMsg, '');
      tbody.replaceChildren(...(out.items || []).map((s) => h('tr', null,
        h('td', { class: 'nowrap' }, fmtDateTime(s.created)),
        h('td', { class: 'nowrap' }, fmtDateTime(s.last_used)),
        h('td', null, s.user_agent || '—', s.current ? h('span', { class: 'badge role' }, 'this browser') : null),
        h('td', { class: 'row-actions' }, s.current ? null : confirmButton('Revoke', 'Confirm revoke', async () => {
          try { await del(`/v1/sessions/${enc(s.id)}`); loadSessions(); } catch (err) { say(sMsg, messageOf(err), 'error'); }
        })))));
    } catch (err) {
      if (err.name === 'AbortError') return;
      say(sMsg, messageOf(err), 'error');
    }
  }
  loadSessions();

  main.append(h('div', { class: 'grid-2' },
    card('Password', { body: [form] }),
    card('Sessions', { sub: 'Where your account is signed in', body: h('div', null, h('div', { class: 'card-body msgs' }, sMsg), h('div', { class: 'table-wrap' }, table)) })));
}
