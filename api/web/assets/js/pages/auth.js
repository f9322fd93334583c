// Sign in, registration, e-mail verification and password reset.
import { h, field, alertBox, say } from '../dom.js';
import { signIn, post, ApiError } from '../api.js';
import { href, navigate } from '../router.js';
import { session } from '../session.js';
import { signedIn, messageOf } from '../app.js';

const minPassword = 10;
const logo = new URL('../../favicon.svg', import.meta.url).href;

function frame(main, title, lead, ...body) {
  main.append(h('div', { class: 'auth' },
    h('div', { class: 'brand-lg' }, h('img', { src: logo, alt: '' }), 'fleetscope'),
    h('div', { class: 'card' }, h('div', { class: 'card-body' },
      h('h1', null, title),
      lead ? h('p', { class: 'lead' }, lead) : null,
      ...body))));
}

// busy disables a form's button while fn runs.
async function busy(form, fn) {
  const btn = form.querySelector('button[type=submit]');
  btn.disabled = true;
  try { return await fn(); } finally { btn.disabled = false; }
}

// signIn: e-mail and password.
export function signInPage(main, { query }) {
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true, value: query.get('email') || '' });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const msg = alertBox();
  if (query.get('expired')) say(msg, 'Your session ended. Please sign in again.', 'info');
  if (query.get('out')) say(msg, 'You are signed out.', 'ok');
  if (query.get('reset')) say(msg, 'Your password is changed. Sign in with the new one.', 'ok');
  if (query.get('verified')) say(msg, 'Your e-mail is verified.', 'ok');
  const form = h('form', { novalidate: true },
    msg,
    field('E-mail', email),
    field('Password', password),
    h('button', { type: 'submit', class: 'btn' }, 'Sign in'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!email.value || !password.value) { say(msg, 'Enter your e-mail and password.', 'error'); return; }
    performance.mark('fs:signin');
    busy(form, async () => {
      try {
        await signIn(email.value.trim(), password.value);
        await signedIn(query.get('next'));
      } catch (err) {
        say(msg, err instanceof ApiError && err.status === 401 ? 'Wrong e-mail or password.' : messageOf(err), 'error');
        password.select();
      }
    });
  });
  frame(main, 'Sign in', 'Monitor every system you installed, own or share.', form,
    h('div', { class: 'links' },
      h('a', { href: href('/register') }, 'Create an account'),
      h('a', { href: href('/reset', { email: email.value }) }, 'Forgot your password?')));
  (email.value ? password : email).focus();
}

// register: name, e-mail (prefilled from an invitation's link,
// #/register?email=…), password; then the mailed code.
export function register(main, { query }) {
  const name = h('input', { type: 'text', name: 'name', autocomplete: 'name', required: true });
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'email', required: true, value: query.get('email') || '' });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'new-password', required: true, minlength: String(minPassword) });
  const msg = alertBox();
  const invited = query.get('email');
  const form = h('form', { novalidate: true },
    msg,
    field('Your name', name),
    field('E-mail', email, invited ? 'The address you were invited at: your access is waiting for it.' : 'We send a code to this address to verify it.'),
    field('Password', password, `At least ${minPassword} characters.`),
    h('button', { type: 'submit', class: 'btn' }, 'Create account'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!email.value.includes('@')) { say(msg, 'Enter a valid e-mail address.', 'error'); return; }
    if (password.value.length < minPassword) { say(msg, `The password needs at least ${minPassword} characters.`, 'error'); return; }
    busy(form, async () => {
      try {
        // The registration answer's token is not kept: the browser signs
        // in like any other time, with the session cookie.
        await post('/v1/accounts', { email: email.value.trim(), name: name.value.trim(), password: password.value }, { quiet401: true });
        await signIn(email.value.trim(), password.value);
        await signedIn('/verify');
      } catch (err) {
        say(msg, messageOf(err), 'error');
      }
    });
  });
  frame(main, 'Create an account', invited ? 'You were invited to fleetscope. Register with this address to accept.' : 'Installers, owners and their teams each have their own account.', form,
    h('div', { class: 'links' }, h('span', { class: 'muted' }, 'Already registered?'), h('a', { href: href('/signin', { email: email.value }) }, 'Sign in')));
  name.focus();
}

// verify: the code mailed at registration.
export function verify(main) {
  if (session.me && session.me.verified) { navigate('/locations'); return; }
  const code = h('input', { type: 'text', name: 'code', autocomplete: 'one-time-code', required: true, spellcheck: 'false', class: 'mono' });
  const msg = alertBox();
  const form = h('form', { novalidate: true },
    msg,
    field('Verification code', code, 'Ten letters and digits, from the mail we sent.'),
    h('button', { type: 'submit', class: 'btn' }, 'Verify'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(form, async () => {
      try {
        await post('/v1/accounts/verify', { code: code.value.trim() });
        await signedIn('/locations');
      } catch (err) {
        say(msg, err instanceof ApiError && (err.status === 400 || err.status === 403 || err.status === 404) ? `That code does not work: ${err.message}` : messageOf(err), 'error');
      }
    });
  });
  frame(main, 'Verify your e-mail', `We sent a code to ${session.me ? session.me.email : 'your address'}. Access shared with this address starts once it is verified.`, form,
    h('div', { class: 'links' }, h('a', { href: '#/signout' }, 'Sign out')));
  code.focus();
}

// resetRequest: mail a one-time code to reset the password.
export function resetRequest(main, { query }) {
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true, value: query.get('email') || '' });
  const msg = alertBox();
  const form = h('form', { novalidate: true },
    msg,
    field('E-mail', email),
    h('button', { type: 'submit', class: 'btn' }, 'Send a reset code'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy(form, async () => {
      try {
        await post('/v1/accounts/password-reset', { email: email.value.trim() }, { quiet401: true });
        navigate('/reset/confirm', { email: email.value.trim(), sent: '1' });
      } catch (err) {
        say(msg, messageOf(err), 'error');
      }
    });
  });
  frame(main, 'Reset your password', 'We mail you a one-time code if an account uses this address.', form,
    h('div', { class: 'links' }, h('a', { href: href('/signin') }, 'Back to sign in'), h('a', { href: href('/reset/confirm') }, 'I have a code')));
  email.focus();
}

// resetConfirm: the code and the new password.
export function resetConfirm(main, { query }) {
  const code = h('input', { type: 'text', name: 'code', autocomplete: 'one-time-code', required: true, spellcheck: 'false', class: 'mono' });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'new-password', required: true });
  const msg = alertBox('info');
  if (query.get('sent')) say(msg, `If ${query.get('email') || 'that address'} has an account, a code is on its way.`, 'info');
  const form = h('form', { novalidate: true },
    msg,
    field('Code from the mail', code),
    field('New password', password, `At least ${minPassword} characters. Every session of the account ends.`),
    h('button', { type: 'submit', class: 'btn' }, 'Set password'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (password.value.length < minPassword) { say(msg, `The password needs at least ${minPassword} characters.`, 'error'); return; }
    busy(form, async () => {
      try {
        await post('/v1/accounts/password-reset/confirm', { code: code.value.trim(), password: password.value }, { quiet401: true });
        navigate('/signin', { reset: '1', email: query.get('email') || '' });
      } catch (err) {
        say(msg, messageOf(err), 'error');
      }
    });
  });
  frame(main, 'Choose a new password', null, form,
    h('div', { class: 'links' }, h('a', { href: href('/signin') }, 'Back to sign in')));
  code.focus();
}
