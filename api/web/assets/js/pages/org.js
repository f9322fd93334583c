// Organizations (installer companies, fleet accounts): members with their
// customer types, invitations, customer types as permission checkboxes
// (the Sunsynk screens), and commissioning a new system.
import { h, field, card, alertBox, say, select, confirmButton } from '../dom.js';
import { get, post, put, del, enc } from '../api.js';
import { href, navigate } from '../router.js';
import { session, myOrgs, addOrg } from '../session.js';
import { messageOf } from '../app.js';

const permissions = [
  ['view', 'View'],
  ['data', 'Operational data'],
  ['share', 'Share plant'],
  ['manage_users', 'Manage users'],
  ['add_gateway', 'Add gateway'],
  ['delete_device', 'Delete device'],
  ['firmware', 'Firmware upgrades'],
  ['create_plant', 'Create plant'],
];

// orgsPage lists the caller's organizations and creates one.
export async function orgsPage(main, { signal }) {
  const orgs = await myOrgs();
  if (signal.aborted) return;
  main.append(h('div', { class: 'page-head' }, h('div', null, h('h1', null, 'Organizations'),
    h('div', { class: 'sub' }, 'Installer companies and fleet accounts you belong to.'))));
  const list = orgs.length
    ? h('table', { class: 'data' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Organization'), h('th', { scope: 'col' }, 'Your role'))),
      h('tbody', null, orgs.map((o) => h('tr', null,
        h('td', { class: 'name' }, h('a', { href: href(`/orgs/${o.id}`) }, o.name)),
        h('td', null, o.role === 'org_admin' ? 'administrator' : o.role)))))
    : h('p', { class: 'empty' }, 'You are not a member of an organization.');
  const name = h('input', { type: 'text', id: 'org-name', required: true, autocomplete: 'organization' });
  const msg = alertBox();
  const form = h('form', { class: 'form-row', novalidate: true },
    h('div', { class: 'grow' }, field('Name', name)), h('button', { type: 'submit', class: 'btn' }, 'Create organization'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!name.value.trim()) { say(msg, 'Give the organization a name.', 'error'); return; }
    try {
      const o = await post('/v1/orgs', { name: name.value.trim() });
      addOrg(o);
      navigate(`/orgs/${o.id}`);
    } catch (err) { say(msg, messageOf(err), 'error'); }
  });
  main.append(h('div', { class: 'stack' },
    card('Your organizations', { body: h('div', { class: 'table-wrap' }, list) }),
    card('New organization', { sub: 'You become its administrator.', body: [msg, form] })));
}

export async function orgPage(main, { params, signal }) {
  let org = await get(`/v1/orgs/${enc(params.id)}`, { signal });
  const me = session.me;
  const mine = (org.members || []).find((m) => m.email === me.email);
  const admin = (mine && mine.role === 'org_admin' && !mine.pending) || me.support;
  const myRole = mine && (org.roles || []).find((r) => r.name === mine.role);
  const canCommission = admin || (myRole && myRole.permissions.includes('create_plant'));
  document.title = `${org.name} · fleetscope`;
  main.append(h('div', { class: 'page-head' }, h('div', null,
    h('div', { class: 'crumbs' }, h('a', { href: href('/orgs') }, 'Organizations'), ' / '),
    h('h1', null, org.name),
    h('div', { class: 'sub' }, h('span', null, `Organization #${org.id}`), h('span', null, admin ? 'You are an administrator' : `Your role: ${mine ? mine.role : '—'}`)))));

  const membersMsg = alertBox();
  const typesMsg = alertBox();
  const membersBody = h('tbody');
  const typesBody = h('tbody');
  const inviteRole = h('select', { id: 'member-role', name: 'role' });

  async function reload() {
    try {
      org = await get(`/v1/orgs/${org.id}`, { signal });
      render();
    } catch (err) {
      if (err.name !== 'AbortError') say(membersMsg, messageOf(err), 'error');
    }
  }

  function roleOptions() {
    return [['org_admin', 'Administrator (org_admin)'], ...(org.roles || []).map((r) => [r.name, r.name])];
  }

  function render() {
    const opts = roleOptions();
    const keep = inviteRole.value;
    inviteRole.replaceChildren(...opts.map(([v, l]) => h('option', { value: v }, l)));
    inviteRole.value = opts.some(([v]) => v === keep) ? keep : (opts[1] || opts[0])[0];

    membersBody.replaceChildren(...(org.members || []).map((m) => {
      const cells = [
        h('td', null, m.email),
        h('td', { class: 'role' }, m.role === 'org_admin' ? 'Administrator' : m.role),
        h('td', null, m.pending ? h('span', { class: 'badge pending' }, 'invited, not verified') : 'active'),
      ];
      const act = h('div', { class: 'actions' });
      if (admin && m.email !== me.email) {
        const sel = select(opts, m.role, { 'aria-label': `Customer type of ${m.email}` });
        const save = h('button', { type: 'button', class: 'btn btn-secondary btn-sm' }, 'Change');
        save.addEventListener('click', async () => {
          if (sel.value === m.role) return;
          try {
            await post(`/v1/orgs/${org.id}/members`, { email: m.email, role: sel.value });
            say(membersMsg, `${m.email} is now ${sel.value}.`, 'ok');
            reload();
          } catch (err) { say(membersMsg, messageOf(err), 'error'); }
        });
        act.append(sel, save, confirmButton('Remove', 'Confirm remove', async () => {
          try {
            await del(`/v1/orgs/${org.id}/members/${enc(m.email)}`);
            say(membersMsg, `${m.email} removed from ${org.name}.`, 'ok');
            reload();
          } catch (err) { say(membersMsg, messageOf(err), 'error'); }
        }, { 'aria-label': `Remove ${m.email}` }));
      }
      cells.push(h('td', { class: 'row-actions' }, act));
      return h('tr', { dataset: { email: m.email } }, cells);
    }));

    typesBody.replaceChildren(...(org.roles || []).map((r) => typeRow(r)));
    if (admin) typesBody.append(newTypeRow());
  }

  function checks(selected, name, disabled) {
    return permissions.map(([p, label]) => h('td', null, h('input', {
      type: 'checkbox', checked: selected.includes(p), disabled, value: p, 'aria-label': `${label} for ${name}`,
    })));
  }

  function typeRow(r) {
    const tr = h('tr', { dataset: { role: r.name } }, h('th', { scope: 'row' }, r.name), checks(r.permissions, r.name, !admin));
    if (admin) {
      const save = h('button', { type: 'button', class: 'btn btn-secondary btn-sm' }, 'Save');
      save.addEventListener('click', async () => {
        const perms = [...tr.querySelectorAll('input[type=checkbox]:checked')].map((c) => c.value);
        try {
          await put(`/v1/orgs/${org.id}/roles/${enc(r.name)}`, { permissions: perms });
          say(typesMsg, `Customer type “${r.name}” saved: it applies to its members at once.`, 'ok');
          reload();
        } catch (err) { say(typesMsg, messageOf(err), 'error'); }
      });
      tr.append(h('td', { class: 'row-actions' }, h('div', { class: 'actions' }, save, confirmButton('Delete', 'Confirm delete', async () => {
        try {
          await del(`/v1/orgs/${org.id}/roles/${enc(r.name)}`);
          say(typesMsg, `Customer type “${r.name}” deleted.`, 'ok');
          reload();
        } catch (err) { say(typesMsg, messageOf(err), 'error'); }
      }, { 'aria-label': `Delete ${r.name}` }))));
    }
    return tr;
  }

  function newTypeRow() {
    const name = h('input', { type: 'text', id: 'new-type-name', placeholder: 'New type name', 'aria-label': 'Name of the new customer type', autocomplete: 'off' });
    const tr = h('tr', { class: 'new-type' }, h('td', null, name), checks(['view'], 'the new type', false));
    const add = h('button', { type: 'button', class: 'btn btn-sm', id: 'create-type' }, 'Create');
    add.addEventListener('click', async () => {
      const n = name.value.trim();
      if (!n) { say(typesMsg, 'Name the customer type.', 'error'); name.focus(); return; }
      if ((org.roles || []).some((r) => r.name === n)) { say(typesMsg, `There is a customer type “${n}” already: edit it in its row.`, 'error'); return; }
      const perms = [...tr.querySelectorAll('input[type=checkbox]:checked')].map((c) => c.value);
      try {
        await put(`/v1/orgs/${org.id}/roles/${enc(n)}`, { permissions: perms });
        say(typesMsg, `Customer type “${n}” created.`, 'ok');
        reload();
      } catch (err) { say(typesMsg, messageOf(err), 'error'); }
    });
    tr.append(h('td', { class: 'row-actions' }, add));
    return tr;
  }

  const members = h('table', { class: 'data', id: 'members' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Member'), h('th', { scope: 'col' }, 'Customer type'), h('th', { scope: 'col' }, 'State'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
    membersBody);
  const types = h('table', { class: 'data perm-grid', id: 'types' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Customer type'), permissions.map(([, l]) => h('th', { scope: 'col' }, l)), admin ? h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')) : null)),
    typesBody);

  const parts = [];
  const memberCard = [membersMsg];
  if (admin) {
    const email = h('input', { type: 'email', id: 'member-email', required: true, autocomplete: 'off', placeholder: 'name@example.com' });
    const form = h('form', { class: 'form-row', id: 'add-member', novalidate: true },
      h('div', { class: 'grow' }, field('E-mail', email)), field('Customer type', inviteRole), h('button', { type: 'submit', class: 'btn' }, 'Add member'));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!email.value.includes('@')) { say(membersMsg, 'Enter the member\'s e-mail.', 'error'); return; }
      try {
        const m = await post(`/v1/orgs/${org.id}/members`, { email: email.value.trim(), role: inviteRole.value });
        say(membersMsg, m && m.pending ? `${email.value.trim()} is invited: membership starts once the address is verified.` : `${email.value.trim()} added.`, 'ok');
        email.value = '';
        reload();
      } catch (err) { say(membersMsg, messageOf(err), 'error'); }
    });
    memberCard.push(form);
  }
  parts.push(card('Members', { sub: 'Each member works under a customer type: the permissions it has on the organization\'s systems.', body: h('div', null, h('div', { class: admin ? 'card-body' : 'card-body msgs' }, memberCard), h('div', { class: 'table-wrap' }, members)) }));
  parts.push(card('Customer types', { sub: admin ? 'Tick what each type may do; a change applies to every member of the type at once.' : 'What each type may do.', body: h('div', null, h('div', { class: 'card-body msgs' }, typesMsg), h('div', { class: 'table-wrap' }, types)) }));
  if (canCommission) parts.push(commissionCard(org));
  main.append(h('div', { class: 'stack' }, parts));
  render();
}

function zones(here) {
  let all = [];
  try { all = Intl.supportedValuesOf('timeZone'); } catch { /* an older browser: UTC and the browser's own */ }
  return [...new Set(['UTC', here, ...all])];
}

function commissionCard(org) {
  const msg = alertBox();
  const guid = h('input', { type: 'text', id: 'c-guid', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'barcode id, e.g. 04C05B1A2B3C' });
  const name = h('input', { type: 'text', id: 'c-name', required: true, autocomplete: 'off' });
  const address = h('input', { type: 'text', id: 'c-address', autocomplete: 'off' });
  const here = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  const tz = select(zones(here).map((z) => [z, z]), here, { id: 'c-tz' });
  const owner = h('input', { type: 'email', id: 'c-owner', required: true, autocomplete: 'off', placeholder: 'homeowner@example.com' });
  const capacity = h('input', { type: 'number', id: 'c-capacity', min: '0', step: '0.01', inputmode: 'decimal' });
  const monitored = h('input', { type: 'checkbox', id: 'c-monitored', checked: true });
  const form = h('form', { id: 'commission', novalidate: true },
    h('div', { class: 'grid-2' },
      h('div', null, field('GUID', guid), field('Name', name), field('Address', address)),
      h('div', null, field('Time zone', tz), field('Owner\'s e-mail', owner, 'The owner gets a welcome mail and owns the system once registered.'),
        field('Capacity (kWp, optional)', capacity, 'Nameplate DC capacity, for specific yield.'))),
    h('label', { class: 'check', for: 'c-monitored' }, monitored, 'Monitored (untick for fire-safety-only installs)'),
    h('div', { class: 'form-row' }, h('button', { type: 'submit', class: 'btn' }, 'Commission system')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!guid.value.trim() || !name.value.trim() || !owner.value.includes('@')) { say(msg, 'GUID, name and the owner\'s e-mail are needed.', 'error'); return; }
    const body = { guid: guid.value.trim(), name: name.value.trim(), address: address.value.trim(), timezone: tz.value, org: org.id, owner_email: owner.value.trim(), monitored: monitored.checked };
    if (capacity.value) body.capacity_w = Math.round(Number(capacity.value) * 1000);
    try {
      const s = await post('/v1/systems', body);
      say(msg, '', 'ok');
      navigate(`/systems/${s.id}`);
    } catch (err) { say(msg, messageOf(err), 'error'); }
  });
  return card('Commission a system', { sub: `Under ${org.name}, which gets the installer role on it.`, body: [msg, form] });
}
