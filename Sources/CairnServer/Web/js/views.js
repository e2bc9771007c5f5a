// Saved views of a runs page: named snapshots of the page state (columns, order, widths, pins,
// sort, filter, grouping, chart panels) stored on the server per experiment
// (/api/cairn/v1/experiments/{id}/views), shareable by link (#/experiments/<id>?view=<view id>),
// one of them the experiment's default (opened when the page is opened without a query).
import {el, clear, errorBox} from './util.js';
import {cairn, send} from './api.js';

/**
 * options: {experimentID, holder, current() -> state, apply(state), viewID, hasQuery, canEdit}
 * (without canEdit, the caller may only open views and copy their links: no save, default or delete).
 * Returns {initial() -> state to start with or null, changed()}.
 */
export function createViewsBar(options) {
  const base = `/api/cairn/v1/experiments/${encodeURIComponent(options.experimentID)}/views`;
  const select = el('select', {id: 'view-select', 'aria-label': 'Saved view'});
  const modified = el('span', {class: 'muted', id: 'view-modified'});
  const saveBtn = el('button', {type: 'button', id: 'view-save', title: 'Save the page as it is now into this view'}, 'Save');
  const nameIn = el('input', {type: 'text', id: 'view-name', placeholder: 'New view name', 'aria-label': 'New view name', maxlength: '250'});
  const saveAsBtn = el('button', {type: 'button', id: 'view-save-as'}, 'Save as new view');
  const defaultBtn = el('button', {type: 'button', id: 'view-default', title: 'Open this view when the experiment is opened'}, 'Make default');
  const deleteBtn = el('button', {type: 'button', id: 'view-delete'}, 'Delete');
  const linkBtn = el('button', {type: 'button', id: 'view-link', title: 'A link that opens this view'}, 'Link');
  const link = el('input', {type: 'text', id: 'view-link-text', readonly: true, hidden: true, 'aria-label': 'Link to the view', class: 'mono'});
  const status = el('div', {id: 'view-status'});
  const editing = options.canEdit ? [saveBtn, defaultBtn, deleteBtn] : [];
  clear(options.holder).append(el('div', {class: 'toolbar'}, el('span', {class: 'muted'}, 'View'), select, modified, ...editing, linkBtn,
    ...(options.canEdit ? [nameIn, saveAsBtn] : []), link), status);

  let views = [];
  let active = options.viewID || '';
  const find = (id) => views.find((v) => v.view_id === id);
  const stateOf = (v) => { try { return JSON.parse(v.state); } catch { return {}; } };
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

  function draw() {
    clear(select).append(el('option', {value: ''}, 'Unsaved view'),
      ...views.map((v) => el('option', {value: v.view_id, selected: v.view_id === active ? true : undefined}, v.default ? `${v.name} (default)` : v.name)));
    select.value = find(active) ? active : '';
    const v = find(active);
    saveBtn.disabled = !v; deleteBtn.disabled = !v; linkBtn.disabled = !v;
    defaultBtn.disabled = !v;
    defaultBtn.textContent = v && v.default ? 'Not default' : 'Make default';
    window.__cairnViews = {loaded: true, views: views.map((x) => ({id: x.view_id, name: x.name, default: x.default})), active};
    changed();
  }

  function changed() {
    const v = find(active);
    const dirty = v && !same(normalize(stateOf(v)), normalize(options.current()));
    modified.textContent = dirty ? 'modified' : '';
    if (window.__cairnViews) window.__cairnViews.modified = !!dirty;
  }

  async function reload() {
    try { views = (await cairn(`experiments/${encodeURIComponent(options.experimentID)}/views`)).views || []; } catch (e) { status.replaceChildren(errorBox(e, 'Saved views could not be loaded')); views = []; }
    draw();
  }

  async function act(what, fn) {
    status.replaceChildren();
    try { await fn(); } catch (e) { status.replaceChildren(errorBox(e, what)); }
  }

  function open(v) {
    active = v ? v.view_id : '';
    draw();
    options.apply({...defaults(), ...(v ? stateOf(v) : {}), view: active});
  }

  select.addEventListener('change', () => open(find(select.value)));
  saveBtn.addEventListener('click', () => act('The view was not saved', async () => {
    const r = await send('PATCH', `${base}/${active}`, {state: JSON.stringify(options.current())});
    views = views.map((v) => (v.view_id === active ? r.view : v)); draw();
  }));
  saveAsBtn.addEventListener('click', () => act('The view was not saved', async () => {
    const r = await send('POST', base, {name: nameIn.value, state: JSON.stringify(options.current())});
    nameIn.value = '';
    await reload();
    active = r.view.view_id;
    draw();
    options.apply({...options.current(), view: active});
  }));
  defaultBtn.addEventListener('click', () => act('The default was not changed', async () => {
    const v = find(active);
    await send('PATCH', `${base}/${active}`, {default: !v.default});
    await reload();
  }));
  deleteBtn.addEventListener('click', () => act('The view was not deleted', async () => {
    await send('DELETE', `${base}/${active}`, {});
    active = '';
    await reload();
    options.apply({...options.current(), view: ''});
  }));
  linkBtn.addEventListener('click', () => {
    link.value = `${location.origin}${location.pathname}#/experiments/${encodeURIComponent(options.experimentID)}?view=${encodeURIComponent(active)}`;
    link.hidden = false; link.focus(); link.select();
    if (navigator.clipboard) navigator.clipboard.writeText(link.value).catch(() => {});
  });

  return {
    /** The state to open the page with: the linked view, else (with no query) the default view. */
    async initial() {
      await reload();
      let v = active ? find(active) : null;
      if (active && !v) status.replaceChildren(errorBox(new Error(`There is no saved view ${active} in this experiment (deleted?). Showing the page as the link describes it.`)));
      if (!v && !options.hasQuery) v = views.find((x) => x.default);
      active = v ? v.view_id : '';
      draw();
      return v ? {...defaults(), ...stateOf(v), view: active} : null;
    },
    changed,
  };
}

/** The page defaults a view's state is laid over (a view saved before a field existed lacks it). */
function defaults() {
  return {filter: '', sort: 'attr:start_time:desc', cols: null, group: '', widths: {}, pins: ['attr:run_name'], charts: true, ws: {}, tree: false};
}

function normalize(s) {
  const {view, sel, ...rest} = {...defaults(), ...s};
  return rest;
}
