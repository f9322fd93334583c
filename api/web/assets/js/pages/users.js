// Manage Users of a system (the Lumin screen): who has access, with which
// role and until when; invite by e-mail with a role and an optional expiry;
// change a role; remove; the audit list; ownership transfer for owners.
// The roles offered are those the caller may grant (DESIGN §4): viewer and
// data with share, user and installer with manage_users, admin for owners
// and admins. The API enforces the same rules.
import { h, field, card, alertBox, say, select, confirmButton } from '../dom.js';
import { get, post, del, enc, ApiError } from '../api.js';
import { fmtDateTime, fmtDate } from '../format.js';
import { href } from '../router.js';
import { session } from '../session.js';
import { messageOf } from '../app.js';
import { canManageUsers } from './system.js';

const roleInfo = {
  owner: 'Owner',
  admin: 'Admin (partner / additional owner)',
  installer: 'Installer',
  user: 'User (can manage users)',
  data: 'Data (monitor and retrieve data)',
  viewer: 'Viewer (basic system view)',
};

// grantable lists the roles a caller with perms may hand out.
export function grantable(perms) {
  const out = [];
  if (perms.has('share') || perms.has('manage_users')) out.push('viewer', 'data');
  if (perms.has('manage_users')) out.push('user', 'installer');
  if (perms.has('admin') || perms.has('owner')) out.push('admin');
  return out;
}

export async function usersPage(main, { params, signal }) {
  const sys = await get(`/v1/systems/${enc(params.id)}`, { signal });
  const perms = new Set(sys.permissions || []);
  document.title = `Manage users · ${sys.name} · fleetscope`;
  main.append(h('div', { class: 'page-head' },
    h('div', null,
      h('div', { class: 'crumbs' }, h('a', { href: href('/locations') }, 'All Locations'), ' / ', h('a', { href: href(`/systems/${sys.id}`) }, sys.name), ' / '),
      h('h1', null, 'Manage users'),
      h('div', { class: 'sub' }, h('span', null, sys.name), h('span', { class: 'mono' }, sys.guid)))));
  if (!canManageUsers(perms)) {
    main.append(h('div', { class: 'alert alert-info', role: 'status' }, 'Your access to this system does not include managing its users.'));
    return;
  }
  const roles = grantable(perms);
  const msg = alertBox();
  const tbody = h('tbody');
  const auditBody = h('tbody');
  const auditMsg = alertBox('info');
  const orgNames = new Map();
  if (sys.installer) orgNames.set(sys.installer.id, sys.installer.name);

  const table = h('table', { class: 'data', id: 'grants' },
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'Who'),
      h('th', { scope: 'col' }, 'Role'),
      h('th', { scope: 'col' }, 'Until'),
      h('th', { scope: 'col' }, 'State'),
      h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
    tbody);

  function who(g) {
    if (g.email) return g.email;
    return orgNames.has(g.org) ? `${orgNames.get(g.org)} (organization)` : `Organization #${g.org}`;
  }

  function grantee(g) { return g.email || String(g.org); }

  function row(g) {
    const key = grantee(g);
    const editable = g.role !== 'owner' && roles.includes(g.role) && (g.email ? g.email !== session.me.email : true);
    const cells = [
      h('td', null, who(g)),
      h('td', { class: 'role' }, h('span', { class: 'badge role' }, g.role)),
      h('td', { class: 'until nowrap' }, g.expires_at ? fmtDateTime(g.expires_at) : 'permanent'),
      h('td', null, g.pending ? h('span', { class: 'badge pending' }, 'invited, not registered') : 'active'),
    ];
    const act = h('div', { class: 'actions' });
    if (editable) {
      const sel = select(roles.map((r) => [r, r]), g.role, { 'aria-label': `Role of ${who(g)}`, class: 'role-select' });
      const save = h('button', { type: 'button', class: 'btn btn-secondary btn-sm' }, 'Change');
      save.addEventListener('click', async () => {
        if (sel.value === g.role) return;
        const body = { role: sel.value };
        if (g.email) body.email = g.email; else body.org = g.org;
        if (g.expires_at) body.expires_at = g.expires_at;
        try {
          await post(`/v1/systems/${sys.id}/grants`, body);
          say(msg, `${who(g)} is now ${sel.value}.`, 'ok');
          refresh();
        } catch (err) { say(msg, messageOf(err), 'error'); }
      });
      act.append(sel, save, confirmButton('Remove', 'Confirm remove', async () => {
        try {
          await del(`/v1/systems/${sys.id}/grants/${enc(key)}`);
          say(msg, `${who(g)} no longer has access.`, 'ok');
          refresh();
        } catch (err) { say(msg, messageOf(err), 'error'); }
      }, { 'aria-label': `Remove ${who(g)}` }));
    }
    cells.push(h('td', { class: 'row-actions' }, act));
    return h('tr', { dataset: { grantee: key, role: g.role } }, cells);
  }

  async function refresh() {
    try {
      const out = await get(`/v1/systems/${sys.id}/grants`, { signal });
      const items = (out.items || []).filter((g) => !g.revoked);
      const order = ['owner', 'admin', 'installer', 'user', 'data', 'viewer'];
      items.sort((a, b) => order.indexOf(a.role) - order.indexOf(b.role) || who(a).localeCompare(who(b)));
      tbody.replaceChildren(...items.map(row));
      table.dataset.count = String(items.length);
    } catch (err) {
      if (err.name !== 'AbortError') say(msg, messageOf(err), 'error');
    }
    loadAudit();
  }

  // Invite.
  const email = h('input', { type: 'email', id: 'invite-email', name: 'email', autocomplete: 'off', required: true, placeholder: 'name@example.com' });
  const role = select(roles.map((r) => [r, roleInfo[r]]), roles[0], { id: 'invite-role', name: 'role' });
  const until = h('input', { type: 'date', id: 'invite-until', name: 'expires', min: new Date().toISOString().slice(0, 10) });
  const invite = h('form', { class: 'form-row', id: 'invite', novalidate: true },
    h('div', { class: 'grow' }, field('E-mail', email)),
    field('Role', role),
    field('Access until (optional)', until),
    h('button', { type: 'submit', class: 'btn' }, 'Invite'));
  invite.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const addr = email.value.trim();
    if (!addr.includes('@')) { say(msg, 'Enter the e-mail address to invite.', 'error'); return; }
    const body = { email: addr, role: role.value };
    if (until.value) {
      // Access lasts through the chosen day, in the browser's time zone.
      const [y, m, d] = until.value.split('-').map(Number);
      body.expires_at = new Date(y, m - 1, d, 23, 59, 59).toISOString();
    }
    try {
      const g = await post(`/v1/systems/${sys.id}/grants`, body);
      say(msg, g && g.pending
        ? `Invitation sent to ${addr}: the access starts once that address registers and verifies.`
        : `${addr} now has ${role.value} access${body.expires_at ? ' until ' + fmtDate(body.expires_at) : ''}.`, 'ok');
      email.value = '';
      until.value = '';
      refresh();
    } catch (err) { say(msg, messageOf(err), 'error'); }
  });

  const audit = h('table', { class: 'data', id: 'audit' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'When'), h('th', { scope: 'col' }, 'Who'), h('th', { scope: 'col' }, 'Change'), h('th', { scope: 'col' }, 'Detail'))),
    auditBody);

  async function loadAudit() {
    if (!perms.has('admin')) {
      say(auditMsg, 'The audit list is kept for the owner and admins of the system.', 'info');
      return;
    }
    try {
      const out = await get(`/v1/systems/${sys.id}/audit?limit=200`, { signal });
      const items = out.items || [];
      auditBody.replaceChildren(...(items.length ? items.map((e) => h('tr', { dataset: { kind: e.kind } },
        h('td', { class: 'nowrap' }, fmtDateTime(e.at)),
        h('td', null, e.actor),
        h('td', null, e.kind.replaceAll('_', ' ')),
        h('td', null, e.detail))) : [h('tr', null, h('td', { colspan: '4', class: 'empty' }, 'No access changes recorded.'))]));
    } catch (err) {
      if (err.name !== 'AbortError') say(auditMsg, messageOf(err), 'error');
    }
  }

  main.append(h('div', { class: 'stack' },
    card('Invite a user', {
      sub: 'Someone without an account gets an invitation mail; the access starts once they register with that address.',
      body: [msg, invite],
    }),
    card('Who has access', { body: h('div', { class: 'table-wrap' }, table) }),
    perms.has('owner') ? transferCard(sys) : null,
    card('Audit', { sub: 'Access changes of this system, newest first', body: h('div', null, h('div', { class: 'card-body msgs' }, auditMsg), h('div', { class: 'table-wrap' }, audit)) })));
  refresh();
}

function transferCard(sys) {
  const email = h('input', { type: 'email', id: 'transfer-email', required: true, autocomplete: 'off' });
  const msg = alertBox();
  const btn = confirmButton('Transfer ownership', 'Confirm transfer', async () => {
    if (!email.value.includes('@')) { say(msg, 'Enter the new owner\'s e-mail.', 'error'); return; }
    try {
      await post(`/v1/systems/${sys.id}/owner`, { email: email.value.trim() });
      say(msg, `Ownership handed to ${email.value.trim()}. You keep admin access.`, 'ok');
    } catch (err) {
      say(msg, err instanceof ApiError ? messageOf(err) : String(err), 'error');
    }
  });
  return card('Transfer ownership', {
    sub: 'The new owner takes over the system; you keep admin access.',
    body: [msg, h('div', { class: 'form-row' }, h('div', { class: 'grow' }, field('New owner\'s e-mail', email)), btn)],
  });
}
