// Webhooks: every webhook (name, URL, events, status) and, per webhook, its recent deliveries
// with their state, attempts and last answer (status code, latency, error).
import {el, clear, fmtTime, errorBox} from './util.js';
import {cairn} from './api.js';

export async function render(app, route) {
  const id = route.path[1];
  if (!id) return list(app);
  return deliveries(app, id);
}

const eventName = (e) => `${e.entity.toLowerCase()}.${e.action.toLowerCase()}`;

async function list(app) {
  app.append(el('h1', {}, 'Webhooks'));
  const body = el('tbody');
  app.append(el('table', {class: 'plain', id: 'webhooks'},
    el('thead', {}, el('tr', {}, ['Name', 'URL', 'Events', 'Status', 'Created'].map((h) => el('th', {}, h)))), body));
  const hooks = [];
  try {
    let token = '';
    do {
      const r = await cairn('webhooks/list', {max_results: 1000, page_token: token});
      hooks.push(...(r.webhooks || []));
      token = r.next_page_token || '';
    } while (token);
  } catch (e) { app.append(errorBox(e, 'Webhooks could not be loaded')); return; }
  for (const w of hooks) {
    body.append(el('tr', {}, el('td', {}, el('a', {href: `#/webhooks/${encodeURIComponent(w.webhook_id)}`}, w.name)),
      el('td', {class: 'mono'}, w.url), el('td', {}, (w.events || []).map(eventName).join(', ')), el('td', {}, w.status),
      el('td', {}, fmtTime(w.creation_timestamp))));
  }
  if (!hooks.length) body.append(el('tr', {}, el('td', {colspan: 5, class: 'muted'}, 'No webhooks yet. Create one with MlflowClient().create_webhook(...).')));
}

async function deliveries(app, id) {
  app.append(el('div', {class: 'crumbs'}, el('a', {href: '#/webhooks'}, 'Webhooks'), ' / ', id));
  let hook; let items;
  try {
    hook = (await cairn('webhooks/get', {webhook_id: id})).webhook;
    items = (await cairn('webhooks/deliveries', {webhook_id: id, max_results: 200})).deliveries || [];
  } catch (e) { app.append(errorBox(e, 'The webhook could not be loaded')); return; }
  app.append(el('h1', {}, hook.name), el('div', {class: 'kv'},
    el('div', {}, 'URL'), el('div', {class: 'mono'}, hook.url),
    el('div', {}, 'Events'), el('div', {}, (hook.events || []).map(eventName).join(', ')),
    el('div', {}, 'Status'), el('div', {}, hook.status),
    el('div', {}, 'Description'), el('div', {}, hook.description || '—')));
  app.append(el('h2', {}, 'Recent deliveries'), el('table', {class: 'plain', id: 'deliveries'},
    el('thead', {}, el('tr', {}, ['Queued', 'Event', 'State', 'Attempts', 'Last answer', 'Latency', 'Next attempt', 'Delivery id'].map((h) => el('th', {}, h)))),
    el('tbody', {}, items.length ? items.map((d) => el('tr', {},
      el('td', {}, fmtTime(d.created_at)), el('td', {}, d.event), el('td', {}, d.state), el('td', {}, String(d.attempts)),
      el('td', {}, d.last_status_code ? `HTTP ${d.last_status_code}` : (d.last_error || '—')),
      el('td', {}, d.last_latency_ms !== undefined ? `${d.last_latency_ms} ms` : '—'),
      el('td', {}, d.next_attempt_at ? fmtTime(d.next_attempt_at) : '—'), el('td', {class: 'mono'}, d.delivery_id)))
      : [el('tr', {}, el('td', {colspan: 8, class: 'muted'}, 'No deliveries yet.'))])));
}
