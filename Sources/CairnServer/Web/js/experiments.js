// Experiments: list with run counts and last activity; create, rename, delete/restore;
// search by name; open one or several in the runs table. Buttons the caller's permission would
// refuse are not shown.
import {el, clear, fmtTime, fmtBytes, errorBox} from './util.js';
import {cairn, mlflowPost} from './api.js';
import {permissions} from './permissions.js';

export async function render(app, route) {
  const showDeleted = route.query.get('deleted') === '1';
  const status = el('div');
  const search = el('input', {type: 'search', class: 'grow', placeholder: 'Search experiments by name', 'aria-label': 'Search experiments by name', value: route.query.get('q') || ''});
  const newName = el('input', {type: 'text', placeholder: 'New experiment name', 'aria-label': 'New experiment name'});
  const createBtn = el('button', {type: 'button', class: 'primary'}, 'Create');
  const deletedToggle = el('label', {}, el('input', {type: 'checkbox', checked: showDeleted ? true : undefined, id: 'show-deleted'}), ' show deleted');
  const openSelected = el('button', {type: 'button', disabled: true}, 'Open selected together');
  const body = el('tbody');
  const table = el('table', {class: 'plain', id: 'experiments'},
    el('thead', {}, el('tr', {}, el('th', {}, ''), el('th', {}, 'Name'), el('th', {class: 'num'}, 'Runs'), el('th', {class: 'num opt', title: 'Artifact blobs (each stored once) and encoded metric points'}, 'Storage'), el('th', {}, 'Last activity'), el('th', {class: 'opt'}, 'Created'), el('th', {}, ''))),
    body);
  app.append(el('h1', {}, 'Experiments'), el('div', {class: 'toolbar'}, search, newName, createBtn, deletedToggle, openSelected), status, table);

  let items = [];
  let storage = new Map();  // experiment id -> /storage figures; filled after the list is drawn
  const picked = new Set();
  let may = null;  // the caller's permissions on the listed experiments

  async function load() {
    clear(status);
    try {
      const reply = await cairn('experiments', {view_type: showDeleted ? 'ALL' : 'ACTIVE_ONLY'});
      items = reply.experiments || [];
      may = await permissions({experiments: items.map((x) => x.experiment_id)});
      newName.hidden = createBtn.hidden = !may.canCreate;
      draw();
    } catch (e) { status.append(errorBox(e, 'Experiments could not be loaded')); return; }
    try {
      const reply = await cairn('storage', {experiment_ids: items.map((x) => x.experiment_id), runs: 0});
      storage = new Map((reply.experiments || []).map((x) => [x.experiment_id, x.storage]));
      // Fill the cells in place: the rows stay the same elements (a redraw would replace them under the user).
      for (const cell of body.querySelectorAll('td.storage')) fillStorage(cell);
    } catch (e) { /* the column stays empty; the list itself is what matters */ }
  }

  function storageCell(x) {
    return fillStorage(el('td', {class: 'num opt muted storage', dataset: {id: x.experiment_id}}, '—'));
  }

  function fillStorage(cell) {
    const s = storage.get(cell.dataset.id);
    if (!s) return cell;
    const points = s.metric_points >= 1e6 ? `${(s.metric_points / 1e6).toFixed(1)} M` : s.metric_points >= 1e3 ? `${(s.metric_points / 1e3).toFixed(1)} k` : String(s.metric_points);
    cell.title = `${s.artifact_files} artifact files: ${fmtBytes(s.blob_bytes)} stored (${fmtBytes(s.unique_bytes)} only here, ${fmtBytes(s.shared_bytes)} shared with other experiments)\n`
      + `${s.metric_points} metric points: ${fmtBytes(s.metric_bytes)} encoded`;
    cell.textContent = `${fmtBytes(s.blob_bytes + s.metric_bytes)} · ${points} pts`;
    cell.classList.remove('muted');
    return cell;
  }

  function draw() {
    clear(body);
    const q = search.value.trim().toLowerCase();
    const shown = items.filter((x) => !q || x.name.toLowerCase().includes(q));
    for (const x of shown) {
      const deleted = x.lifecycle_stage === 'deleted';
      const check = el('input', {type: 'checkbox', 'aria-label': `Select ${x.name}`, checked: picked.has(x.experiment_id) ? true : undefined});
      check.addEventListener('change', () => {
        if (check.checked) picked.add(x.experiment_id); else picked.delete(x.experiment_id);
        openSelected.disabled = picked.size === 0;
      });
      const actions = el('td', {class: 'actions'});
      const canEdit = may.experiment(x.experiment_id, 'EDIT');
      const canManage = may.experiment(x.experiment_id, 'MANAGE');
      if (deleted) {
        if (canManage) actions.append(el('button', {type: 'button', onclick: () => act('experiments/restore', {experiment_id: x.experiment_id})}, 'Restore'));
      } else {
        if (canEdit) actions.append(el('button', {type: 'button', onclick: () => rename(x)}, 'Rename'));
        if (x.experiment_id !== '0' && canManage) actions.append(' ', el('button', {type: 'button', onclick: () => { if (confirm(`Delete experiment "${x.name}" and its runs? It can be restored.`)) act('experiments/delete', {experiment_id: x.experiment_id}); }}, 'Delete'));
      }
      body.append(el('tr', {dataset: {id: x.experiment_id}, class: deleted ? 'muted' : undefined},
        el('td', {}, check),
        el('td', {class: 'wrap'}, deleted ? el('span', {}, x.name, ' (deleted)') : el('a', {href: `#/experiments/${x.experiment_id}`}, x.name)),
        el('td', {class: 'num'}, String(x.run_count)),
        storageCell(x),
        el('td', {}, fmtTime(x.last_activity)),
        el('td', {class: 'opt'}, fmtTime(x.creation_time)),
        actions));
    }
    if (!shown.length) body.append(el('tr', {}, el('td', {colspan: 7, class: 'muted'}, items.length ? 'No experiment matches the search.' : 'No experiments yet.')));
  }

  async function act(path, bodyJSON) {
    clear(status);
    try { await mlflowPost(path, bodyJSON); await load(); } catch (e) { status.append(errorBox(e, 'The change was refused')); }
  }

  function rename(x) {
    const name = prompt(`New name for "${x.name}"`, x.name);
    if (name && name !== x.name) act('experiments/update', {experiment_id: x.experiment_id, new_name: name});
  }

  createBtn.addEventListener('click', async () => {
    const name = newName.value.trim();
    clear(status);
    if (!name) { status.append(errorBox('Type a name for the new experiment first.')); return; }
    try { await mlflowPost('experiments/create', {name}); newName.value = ''; await load(); } catch (e) { status.append(errorBox(e, 'The experiment was not created')); }
  });
  newName.addEventListener('keydown', (e) => { if (e.key === 'Enter') createBtn.click(); });
  search.addEventListener('input', draw);
  deletedToggle.querySelector('input').addEventListener('change', (e) => { location.hash = e.target.checked ? '#/experiments?deleted=1' : '#/experiments'; });
  openSelected.addEventListener('click', () => { location.hash = `#/experiments/${[...picked].join(',')}`; });
  await load();
}
