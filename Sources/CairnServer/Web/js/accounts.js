// Accounts (administrators, on a server started with --auth): users with their administrator
// flag, each user's grants on experiments and registered models, and every API token with its
// state. Changes go through MLflow's auth API and Cairn's token API, as the CLI's do.
import {el, clear, fmtTime, errorBox} from './util.js';
import {get, post, send} from './api.js';

const LEVELS = ['READ', 'USE', 'EDIT', 'MANAGE', 'DENY', 'NO_PERMISSIONS'];

export async function render(app, route) {
  app.append(el('h1', {}, 'Accounts'));
  const status = el('div', {id: 'accounts-status'});
  const users = el('tbody');
  const grants = el('section', {id: 'grants'});
  const tokens = el('tbody');
  const name = el('input', {placeholder: 'User name', id: 'new-user-name', autocomplete: 'off'});
  const password = el('input', {placeholder: 'Password (8 or more characters)', type: 'password', id: 'new-user-password', autocomplete: 'new-password'});
  const admin = el('input', {type: 'checkbox', id: 'new-user-admin'});
  const create = el('button', {type: 'button', id: 'create-user'}, 'Create user');
  app.append(status,
    el('h2', {}, 'Users'),
    el('div', {class: 'toolbar'}, name, password, el('label', {}, admin, ' administrator'), create),
    el('table', {class: 'plain', id: 'users'},
      el('thead', {}, el('tr', {}, ['User', 'Administrator', 'Created', ''].map((h) => el('th', {}, h)))), users),
    grants,
    el('h2', {}, 'API tokens'),
    el('table', {class: 'plain', id: 'tokens'},
      el('thead', {}, el('tr', {}, ['User', 'Name', 'Prefix', 'Access', 'State', 'Expires', 'Last used', ''].map((h) => el('th', {}, h)))), tokens));

  const act = async (what, fn) => {
    clear(status);
    try { await fn(); await load(); } catch (e) { status.append(errorBox(e, what)); }
  };

  async function showGrants(user) {
    clear(grants);
    const type = el('select', {id: 'grant-type'}, el('option', {value: 'experiment'}, 'experiment'), el('option', {value: 'registered_model'}, 'registered model'));
    const id = el('input', {id: 'grant-resource', placeholder: 'experiment id or model name'});
    const level = el('select', {id: 'grant-level'}, LEVELS.map((l) => el('option', {value: l}, l)));
    const grant = el('button', {type: 'button', id: 'grant'}, 'Grant');
    const body = el('tbody');
    grants.append(el('h2', {}, `Permissions of ${user}`),
      el('div', {class: 'toolbar'}, type, id, level, grant),
      el('table', {class: 'plain', id: 'grants-table'},
        el('thead', {}, el('tr', {}, ['Resource', 'Id or name', 'Permission', ''].map((h) => el('th', {}, h)))), body));
    let list = {permissions: []};
    // Direct grants are listed under the user's own role name (MLflow's `__user_<id>__`); the
    // others come from roles and are changed there.
    const direct = (p) => /^__user_\d+__$/.test(p.role_name || '');
    grant.addEventListener('click', () => act('The permission was not granted', async () => {
      const resource = {username: user, resource_type: type.value, resource_id: id.value.trim()};
      // MLflow's API refuses a second grant on one resource: changing a level is revoke, then grant.
      if ((list.permissions || []).some((p) => direct(p) && p.resource_type === resource.resource_type && p.resource_pattern === resource.resource_id)) {
        await post('/ajax-api/3.0/mlflow/users/permissions/revoke', resource);
      }
      await post('/ajax-api/3.0/mlflow/users/permissions/grant', {...resource, permission: level.value});
      await showGrants(user);
    }));
    try { list = await get('/ajax-api/3.0/mlflow/users/permissions/list', {username: user}); } catch (e) { grants.append(errorBox(e, 'Permissions could not be loaded')); return; }
    for (const p of list.permissions || []) {
      let action = el('span', {class: 'muted'}, `role ${p.role_name}`);
      if (direct(p)) {
        action = el('button', {type: 'button'}, 'Revoke');
        action.addEventListener('click', () => act('The permission was not revoked', async () => {
          await post('/ajax-api/3.0/mlflow/users/permissions/revoke', {username: user, resource_type: p.resource_type, resource_id: p.resource_pattern});
          await showGrants(user);
        }));
      }
      body.append(el('tr', {}, el('td', {}, p.resource_type.replace('_', ' ')), el('td', {class: 'mono'}, p.resource_pattern), el('td', {}, p.permission), el('td', {}, action)));
    }
    if (!(list.permissions || []).length) {
      body.append(el('tr', {}, el('td', {colspan: 4, class: 'muted'},
        list.is_admin ? `${user} is an administrator and may do everything.` : `No grants: ${user} has the server's default permission everywhere.`)));
    }
  }

  async function load() {
    clear(users); clear(tokens);
    const [u, t] = await Promise.all([get('/ajax-api/2.0/mlflow/users/list'), get('/api/cairn/v1/tokens', {all: 'true'})]);
    for (const user of u.users || []) {
      const toggle = el('button', {type: 'button'}, user.is_admin ? 'Remove administrator' : 'Make administrator');
      toggle.addEventListener('click', () => act('The change was refused', () =>
        send('PATCH', '/ajax-api/2.0/mlflow/users/update-admin', {username: user.username, is_admin: !user.is_admin})));
      const remove = el('button', {type: 'button'}, 'Delete');
      remove.addEventListener('click', () => {
        if (!confirm(`Delete the account ${user.username} with its tokens and permissions? What it logged stays.`)) return;
        act('The user was not deleted', () => send('DELETE', '/ajax-api/2.0/mlflow/users/delete', {username: user.username}));
      });
      const grantsLink = el('button', {type: 'button', class: 'link'}, user.username);
      grantsLink.addEventListener('click', () => showGrants(user.username));
      users.append(el('tr', {'data-user': user.username}, el('td', {}, grantsLink), el('td', {}, user.is_admin ? 'yes' : ''),
        el('td', {}, user.creation_time ? fmtTime(user.creation_time) : ''), el('td', {}, toggle, ' ', remove)));
    }
    for (const token of t.tokens || []) {
      const revoke = el('button', {type: 'button'}, 'Revoke');
      revoke.disabled = token.state !== 'active';
      revoke.addEventListener('click', () => act('The token was not revoked', () => post('/api/cairn/v1/tokens/revoke', {id: token.id})));
      tokens.append(el('tr', {'data-token': token.id}, el('td', {}, token.user), el('td', {}, token.name || ''), el('td', {class: 'mono'}, `${token.prefix}…`),
        el('td', {}, token.read_only ? 'read-only' : 'read-write'), el('td', {}, token.state),
        el('td', {}, token.expiration_time ? fmtTime(token.expiration_time) : 'never'),
        el('td', {}, token.last_used_time ? fmtTime(token.last_used_time) : ''), el('td', {}, revoke)));
    }
    if (!(t.tokens || []).length) tokens.append(el('tr', {}, el('td', {colspan: 8, class: 'muted'}, 'No tokens. Users make their own with `cairn tokens create`.')));
  }

  create.addEventListener('click', () => act('The user was not created', async () => {
    await post('/ajax-api/2.0/mlflow/users/create', {username: name.value.trim(), password: password.value});
    if (admin.checked) await send('PATCH', '/ajax-api/2.0/mlflow/users/update-admin', {username: name.value.trim(), is_admin: true});
    name.value = ''; password.value = ''; admin.checked = false;
  }));
  try { await load(); } catch (e) { status.append(errorBox(e, 'Accounts could not be loaded')); }
  const focus = route.query.get('user');
  if (focus) await showGrants(focus);
}
