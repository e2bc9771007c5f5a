// Signing in to a server started with --auth: who is signed in (shown in the header with a
// "Sign out" button), and the sign-in form any page shows when the server answers 401.
// Without accounts (GET /api/cairn/v1/session answers {"auth": false}) nothing of this appears.
import {el, clear, errorBox} from './util.js';
import {get, post} from './api.js';

export let current = null;
/** True when the server has accounts and nobody is signed in. */
export let needed = false;
/** True when the server has accounts (started with --auth). */
export let accounts = false;

function showUser() {
  const slot = document.getElementById('session');
  if (!slot) return;
  clear(slot);
  // Administrators get the Accounts page in the navigation; the admin-only pages (Audit,
  // Webhooks) are hidden from everyone else when the server has accounts.
  const nav = document.querySelector('header nav');
  const link = nav && nav.querySelector('a[data-nav=accounts]');
  if (current && current.is_admin && nav && !link) nav.append(el('a', {href: '#/accounts', 'data-nav': 'accounts'}, 'Accounts'));
  if (!(current && current.is_admin) && link) link.remove();
  for (const page of ['audit', 'webhooks']) {
    const a = nav && nav.querySelector(`a[data-nav=${page}]`);
    if (a) a.hidden = accounts && !(current && current.is_admin);
  }
  if (!current) return;
  const out = el('button', {type: 'button', class: 'link', title: 'End this session'}, 'Sign out');
  out.addEventListener('click', async () => {
    try { await post('/api/cairn/v1/session/end', {}); } catch { /* signed out anyway */ }
    current = null;
    location.reload();
  });
  slot.append(el('span', {class: 'muted', 'data-user': current.username},
    current.username + (current.is_admin ? ' (admin)' : '') + (current.read_only ? ' (read-only)' : '')), ' ', out);
}

/** Asks the server who is signed in; resolves either way. */
export async function init() {
  try {
    const reply = await get('/api/cairn/v1/session');
    current = reply.user || null;
    accounts = reply.auth === true;
    needed = accounts && !current;
  } catch {
    current = null;
    needed = false;
    accounts = false;
  }
  showUser();
}

/** The sign-in form in `app`; `done` runs once signed in. */
export function renderSignIn(app, done) {
  clear(app);
  const user = el('input', {name: 'username', autocomplete: 'username', required: true});
  const password = el('input', {name: 'password', type: 'password', autocomplete: 'current-password', required: true});
  const message = el('div');
  const form = el('form', {class: 'signin'},
    el('h1', {}, 'Sign in'),
    el('p', {class: 'muted'}, 'This Cairn server has accounts. Ask an administrator for one (cairn users create NAME).'),
    el('label', {}, 'User name', user),
    el('label', {}, 'Password', password),
    el('button', {type: 'submit'}, 'Sign in'),
    message);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clear(message);
    try {
      current = (await post('/api/cairn/v1/session', {username: user.value, password: password.value})).user;
      needed = false;
      showUser();
      done();
    } catch (err) {
      message.append(errorBox(err, 'Signing in failed'));
    }
  });
  app.append(form);
  user.focus();
}
