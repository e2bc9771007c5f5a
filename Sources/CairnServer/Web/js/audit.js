// Audit log: every change, newest first (GET /api/cairn/v1/audit), filtered by actor, action,
// target and time (the filters live in the URL: #/audit?actor=…&action=run.*&target=run:…&since=…&until=…),
// 100 events a page with "Older events" for the next.
import {el, errorBox, fmtTime, hashQuery, setHashQuery} from './util.js';
import {cairn} from './api.js';

const FILTERS = [
  ['actor', 'Actor', 'alice'],
  ['action', 'Action', 'run.* or run.delete'],
  ['target', 'Target', 'run:0a1b… or registered_model:churn*'],
];

function toMillis(local) {
  if (!local) return undefined;
  const t = new Date(local).getTime();
  return Number.isNaN(t) ? undefined : t;
}

function detailsText(d) {
  if (!d || typeof d !== 'object') return String(d ?? '');
  return Object.entries(d).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' ');
}

export async function render(app) {
  const q = hashQuery();
  app.append(el('h1', {}, 'Audit log'));
  const inputs = {};
  const form = el('form', {class: 'toolbar', id: 'audit-filters'});
  for (const [name, label, placeholder] of FILTERS) {
    inputs[name] = el('input', {type: 'text', name, placeholder, value: q.get(name) || '', 'aria-label': label});
    form.append(el('label', {}, `${label} `, inputs[name]));
  }
  for (const [name, label] of [['since', 'From'], ['until', 'Until']]) {
    inputs[name] = el('input', {type: 'datetime-local', name, value: q.get(name) || '', 'aria-label': label});
    form.append(el('label', {}, `${label} `, inputs[name]));
  }
  form.append(el('button', {type: 'submit'}, 'Filter'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const [name, input] of Object.entries(inputs)) if (input.value.trim()) next.set(name, input.value.trim());
    setHashQuery(next, false);
  });
  const body = el('tbody');
  const table = el('table', {class: 'plain', id: 'audit-events'},
    el('thead', {}, el('tr', {}, ['#', 'Time', 'Actor', 'From', 'Action', 'Target', 'Details', 'Request'].map((h) => el('th', {}, h)))), body);
  const more = el('button', {type: 'button', id: 'audit-more', hidden: true}, 'Older events');
  app.append(form, table, more);
  const params = {
    actor: q.get('actor') || undefined, action: q.get('action') || undefined, target: q.get('target') || undefined,
    since: toMillis(q.get('since')), until: toMillis(q.get('until')), max_results: 100,
  };
  let token = '';
  const load = async () => {
    let r;
    try { r = await cairn('audit', {...params, page_token: token || undefined}); } catch (e) { app.append(errorBox(e, 'The audit log could not be loaded')); return; }
    const events = r.events || [];
    for (const ev of events) {
      const who = ev.actor ? ev.actor + (ev.authenticated ? '' : ' (claimed)') : (ev.client_address === 'internal' ? '(server)' : '(unknown)');
      body.append(el('tr', {'data-seq': String(ev.seq)},
        el('td', {}, String(ev.seq)), el('td', {}, fmtTime(ev.time)), el('td', {}, who), el('td', {class: 'mono'}, ev.client_address),
        el('td', {class: 'mono'}, ev.action), el('td', {class: 'mono'}, ev.target),
        el('td', {class: 'mono', title: `sha256 ${ev.digest}`}, detailsText(ev.details)), el('td', {class: 'mono muted'}, ev.request_id || '—')));
    }
    if (!body.children.length) body.append(el('tr', {}, el('td', {colspan: 8, class: 'muted'}, 'No events match these filters.')));
    token = r.next_page_token || '';
    more.hidden = !token;
  };
  more.addEventListener('click', load);
  await load();
}
