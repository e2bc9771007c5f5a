// The runs table: one or several experiments, every param / metric / tag as a column, sort
// by any column, a filter box with the search grammar (errors shown inline), a column
// chooser, group by a param or tag, selection (click, shift-click ranges, keyboard) and
// rows virtualized so 10,000 runs scroll smoothly. All state lives in the URL hash. Grouped,
// each group row shows per visible metric column the group's mean ± CI half-width and n
// (finished runs only, from stats/groups). An experiment whose runs are A/B variants (tag
// cairn.control) links to its A/B report.
import {el, clear, fmtTime, fmtDuration, fmtNumber, errorBox, hashQuery, setHashQuery, debounce} from './util.js';
import {cairn, mlflow} from './api.js';
import {meanPlusMinus, interval, stat, excludedCount, excludedText} from './stats.js';

const ROW = 30;
const attrColumns = [
  {id: 'attr:run_name', label: 'Run', width: 220},
  {id: 'attr:status', label: 'Status', width: 90},
  {id: 'attr:start_time', label: 'Started', width: 170},
  {id: 'attr:duration', label: 'Duration', width: 100, num: true},
  {id: 'attr:user_id', label: 'User', width: 100},
  {id: 'attr:experiment_id', label: 'Experiment', width: 90},
  {id: 'attr:run_id', label: 'Run ID', width: 260},
];

function columnDef(id) {
  const a = attrColumns.find((c) => c.id === id);
  if (a) return a;
  const i = id.indexOf(':');
  const kind = id.slice(0, i);
  const key = id.slice(i + 1);
  const label = {param: key, metric: key, 'metric.min': `${key} (min)`, 'metric.max': `${key} (max)`, tag: key}[kind] || key;
  return {id, kind, key, label, width: 120, num: kind.startsWith('metric')};
}

function cellValue(run, col) {
  switch (col.id) {
    case 'attr:run_name': return run.run_name;
    case 'attr:status': return run.status;
    case 'attr:start_time': return run.start_time ?? null;
    case 'attr:duration': return run.start_time && run.end_time ? run.end_time - run.start_time : null;
    case 'attr:user_id': return run.user_id;
    case 'attr:experiment_id': return run.experiment_id;
    case 'attr:run_id': return run.run_id;
  }
  const m = run.metrics[col.key];
  switch (col.kind) {
    case 'param': return run.params[col.key] ?? null;
    case 'tag': return run.tags[col.key] ?? null;
    case 'metric': return m ? Number(m[0]) : null;
    case 'metric.min': return m && m[1] !== null ? Number(m[1]) : null;
    case 'metric.max': return m && m[2] !== null ? Number(m[2]) : null;
  }
  return null;
}

function cellText(run, col) {
  const v = cellValue(run, col);
  if (v === null || v === undefined) return '';
  if (col.id === 'attr:start_time') return fmtTime(v);
  if (col.id === 'attr:duration') return fmtDuration(v);
  if (col.num) return fmtNumber(v);
  return String(v);
}

/** Compares two cell values: numbers numerically (params too, when both parse), missing last. */
function compareValues(a, b) {
  const na = a === null || a === undefined || a === '';
  const nb = b === null || b === undefined || b === '';
  if (na || nb) return na && nb ? 0 : na ? 1 : -1;
  if (typeof a === 'number' && typeof b === 'number') {
    if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) ? (Number.isNaN(b) ? 0 : 1) : -1;
    return a - b;
  }
  const fa = Number(a); const fb = Number(b);
  if (a !== '' && b !== '' && !Number.isNaN(fa) && !Number.isNaN(fb)) return fa - fb;
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

function splitList(s) { return s ? s.split(',').filter((x) => x).map(decodeURIComponent) : []; }
function joinList(xs) { return xs.map(encodeURIComponent).join(','); }

export async function render(app, route) {
  const experimentIDs = route.path[1].split(',').filter((x) => x);
  window.__cairnPageHandlesQuery = true;
  const q = route.query;
  const state = {
    filter: q.get('filter') || '',
    sort: q.get('sort') || 'attr:start_time:desc',
    cols: q.get('cols') ? splitList(q.get('cols')) : null,
    sel: new Set(splitList(q.get('sel'))),
    group: q.get('group') || '',
  };
  const t0 = performance.now();

  const title = el('h1', {}, experimentIDs.length > 1 ? `Runs of experiments ${experimentIDs.join(', ')}` : 'Runs');
  const filter = el('input', {type: 'search', class: 'grow mono', id: 'filter', value: state.filter, 'aria-label': 'Filter runs',
    placeholder: "Filter: metrics.acc > 0.9 OR params.model = 'resnet'  (Enter to apply)"});
  const filterError = el('div', {id: 'filter-error'});
  const countLabel = el('span', {class: 'muted', id: 'run-count'}, 'Loading runs…');
  const columnsBtn = el('button', {type: 'button', id: 'columns-button'}, 'Columns');
  const groupSelect = el('select', {id: 'group-by', 'aria-label': 'Group by'}, el('option', {value: ''}, 'No grouping'));
  const compareBtn = el('button', {type: 'button', id: 'compare-button', class: 'primary'}, 'Compare');
  const clearSel = el('button', {type: 'button', id: 'clear-selection'}, 'Clear selection');
  const abLink = el('a', {href: `#/experiments/${experimentIDs[0]}/online`, id: 'ab-report-link', class: 'button-link', hidden: true}, 'A/B report');
  const tracesLink = el('a', {href: `#/experiments/${experimentIDs[0]}/traces`, id: 'traces-link', class: 'button-link', hidden: experimentIDs.length > 1}, 'Traces');
  const groupsBar = el('div', {class: 'groups', id: 'group-counts'});
  const grid = el('div', {class: 'grid', tabindex: '0', id: 'runs-grid', role: 'grid', 'aria-label': 'Runs'});
  const inner = el('div', {class: 'grid-inner'});
  const head = el('div', {class: 'grid-head', role: 'row'});
  const rowsLayer = el('div');
  inner.append(head, rowsLayer);
  grid.append(inner);
  const crumbs = el('div', {class: 'crumbs'}, el('a', {href: '#/experiments'}, 'Experiments'), ' / ', experimentIDs.join(', '));
  app.append(crumbs, title,
    el('div', {class: 'toolbar'}, filter, el('button', {type: 'button', id: 'apply-filter', onclick: () => applyFilter()}, 'Apply')),
    filterError,
    el('div', {class: 'toolbar'}, countLabel, columnsBtn, groupSelect, clearSel, compareBtn, abLink, tracesLink),
    groupsBar, grid);

  let catalog = {params: [], metrics: [], tags: []};
  let runs = [];
  let view = [];       // display list: {run} or {group, count}
  let cursor = 0;
  let anchor = null;   // index in view of the last plain click, for shift ranges
  let columns = [];

  function defaultColumns() {
    return ['attr:run_name', 'attr:status', 'attr:start_time', 'attr:duration', 'attr:user_id',
      ...(experimentIDs.length > 1 ? ['attr:experiment_id'] : []),
      ...catalog.params.map((k) => `param:${k}`), ...catalog.metrics.map((k) => `metric:${k}`)];
  }

  function saveURL() {
    const p = new URLSearchParams();
    if (state.filter) p.set('filter', state.filter);
    if (state.sort !== 'attr:start_time:desc') p.set('sort', state.sort);
    if (state.cols) p.set('cols', joinList(state.cols));
    if (state.sel.size) p.set('sel', joinList([...state.sel]));
    if (state.group) p.set('group', state.group);
    setHashQuery(p);
  }

  async function loadCatalog() {
    try {
      catalog = await cairn('runs/columns', {experiment_ids: experimentIDs});
    } catch (e) { filterError.append(errorBox(e, 'The column list could not be loaded')); }
    clear(groupSelect).append(el('option', {value: ''}, 'No grouping'));
    for (const k of catalog.params) groupSelect.append(el('option', {value: `params.${k}`}, `param ${k}`));
    for (const k of catalog.tags) groupSelect.append(el('option', {value: `tags.${k}`}, `tag ${k}`));
    groupSelect.value = state.group;
    abLink.hidden = !(experimentIDs.length === 1 && (catalog.tags || []).includes('cairn.control'));
  }

  let allRuns = null;  // every run of the experiments, once loaded without a filter

  function showLoadError(e) {
    filter.setAttribute('aria-invalid', 'true');
    filterError.append(errorBox(e, state.filter ? 'The filter was not applied' : 'Runs could not be loaded'));
    countLabel.textContent = `${runs.length} runs (previous result)`;
  }

  async function loadRuns() {
    clear(filterError);
    const started = performance.now();
    try {
      const reply = await cairn('runs/table', {experiment_ids: experimentIDs, filter: state.filter});
      runs = reply.runs || [];
      if (!state.filter && !reply.has_more) allRuns = runs;
      filter.removeAttribute('aria-invalid');
      window.__cairnTiming = Object.assign(window.__cairnTiming || {}, {fetchMs: performance.now() - started});
    } catch (e) {
      showLoadError(e);
      return false;
    }
    return true;
  }

  // With every run already here, a filter only needs the ids it keeps from the server; a run
  // the page has never seen (logged since) makes it load the rows again.
  async function filterRuns() {
    if (!allRuns) return loadRuns();
    clear(filterError);
    if (!state.filter) { runs = allRuns; filter.removeAttribute('aria-invalid'); return true; }
    try {
      const reply = await cairn('runs/ids', {experiment_ids: experimentIDs, filter: state.filter});
      const byID = new Map(allRuns.map((r) => [r.run_id, r]));
      const ids = reply.run_ids || [];
      if (ids.some((id) => !byID.has(id))) return loadRuns();
      runs = ids.map((id) => byID.get(id));
      filter.removeAttribute('aria-invalid');
    } catch (e) {
      showLoadError(e);
      return false;
    }
    return true;
  }

  async function loadGroups() {
    clear(groupsBar);
    if (!state.group) return;
    try {
      const reply = await cairn('runs/groups', {experiment_ids: experimentIDs, filter: state.filter, group_by: state.group});
      groupsBar.append(el('span', {class: 'muted'}, `${state.group}:`));
      for (const g of reply.groups || []) groupsBar.append(el('span', {class: 'chip'}, `${g.missing ? '(none)' : g.value} · ${g.count}`));
    } catch (e) { groupsBar.append(errorBox(e, 'Group counts could not be loaded')); }
  }

  // Per group value, per metric key: the group's summary from stats/groups.
  let groupStats = new Map();
  let groupStatsError = null;
  let statsSeq = 0;
  const statsMetrics = () => columns.filter((c) => c.kind === 'metric').map((c) => c.key);
  let statsAsked = '';

  async function loadGroupStats() {
    const metrics = statsMetrics();
    const asked = JSON.stringify([state.group, state.filter, metrics]);
    if (asked === statsAsked) return;
    statsAsked = asked;
    const mine = ++statsSeq;
    groupStats = new Map();
    groupStatsError = null;
    if (!state.group || !metrics.length) { window.__cairnGroupStats = {loaded: true, groups: 0}; drawRows(true); return; }
    window.__cairnGroupStats = {loaded: false};
    try {
      const reply = await cairn('stats/groups', {experiment_ids: experimentIDs, filter: state.filter, group_by: state.group, metrics});
      if (mine !== statsSeq) return;
      for (const g of reply.groups || []) {
        const value = (g.values || []).find((v) => v.field === state.group);
        groupStats.set(value ? value.value : '(none)', {level: reply.level, metrics: new Map((g.metrics || []).map((m) => [m.key, m]))});
      }
      window.__cairnGroupStats = {loaded: true, groups: groupStats.size};
    } catch (e) {
      if (mine !== statsSeq) return;
      groupStatsError = e.message;
      window.__cairnGroupStats = {loaded: true, error: e.message};
    }
    drawRows(true);
  }

  function groupCell(item, c) {
    const s = groupStats.get(item.value);
    const m = s && s.metrics.get(c.key);
    if (!m) return el('div', {class: 'cell num muted', title: groupStatsError ? `No group statistics: ${groupStatsError}` : undefined}, groupStatsError ? '!' : '');
    const excluded = excludedCount(m.excluded);
    const level = `${stat(s.level * 100, 3)}%`;
    const title = `${c.key} over ${m.n} finished run${m.n === 1 ? '' : 's'}: mean ${stat(m.mean)}, ${level} CI ${interval(m.ci_low, m.ci_high)}, sd ${stat(m.sd)}`
      + (excluded ? `; ${excluded} not counted (${excludedText(m.excluded)})` : '; every run counted');
    return el('div', {class: `cell num group-stat${excluded ? ' has-excluded' : ''}`, title, dataset: {metric: c.key}},
      `${meanPlusMinus(m.mean, m.ci_low, m.ci_high)} (n ${m.n}${excluded ? ` of ${m.n + excluded}` : ''})`);
  }

  function rebuildView() {
    const started = performance.now();
    columns = (state.cols || defaultColumns()).map(columnDef);
    if (state.group) for (const c of columns) if (c.kind === 'metric') c.width = 190;
    const [sortId, dir] = splitSort(state.sort);
    const sortCol = columnDef(sortId);
    const sign = dir === 'asc' ? 1 : -1;
    const keyed = runs.map((r) => [cellValue(r, sortCol), r]);
    keyed.sort((a, b) => {
      const missingA = a[0] === null || a[0] === undefined || a[0] === '';
      const missingB = b[0] === null || b[0] === undefined || b[0] === '';
      if (missingA || missingB) return missingA === missingB ? 0 : missingA ? 1 : -1;
      return sign * compareValues(a[0], b[0]);
    });
    const sorted = keyed.map((x) => x[1]);
    view = [];
    if (state.group) {
      const [prefix, ...rest] = state.group.split('.');
      const key = rest.join('.');
      const groups = new Map();
      for (const r of sorted) {
        const v = (prefix === 'params' ? r.params : r.tags)[key];
        const g = v === undefined ? '(none)' : v;
        if (!groups.has(g)) groups.set(g, []);
        groups.get(g).push(r);
      }
      const names = [...groups.keys()].sort((a, b) => (a === '(none)') - (b === '(none)') || compareValues(a, b));
      for (const g of names) {
        view.push({group: `${state.group} = ${g}`, value: g, count: groups.get(g).length});
        for (const r of groups.get(g)) view.push({run: r});
      }
    } else {
      for (const r of sorted) view.push({run: r});
    }
    cursor = Math.min(cursor, Math.max(0, view.length - 1));
    drawHead();
    inner.style.height = `${ROW * (view.length + 1)}px`;
    inner.style.width = `${34 + columns.reduce((s, c) => s + c.width, 0)}px`;
    drawRows(true);
    countLabel.textContent = `${runs.length} run${runs.length === 1 ? '' : 's'} · ${state.sel.size} selected`;
    compareBtn.disabled = state.sel.size === 0;
    window.__cairnTable = {
      rowCount: runs.length, viewCount: view.length,
      order: view.filter((v) => v.run).slice(0, 200).map((v) => v.run.run_id),
      names: view.filter((v) => v.run).slice(0, 200).map((v) => v.run.run_name),
      columns: columns.map((c) => c.id), selected: [...state.sel], sort: state.sort, filter: state.filter,
      domRows: rowsLayer.childElementCount, sortMs: performance.now() - started,
    };
    loadGroupStats();
  }

  function splitSort(s) {
    const i = s.lastIndexOf(':');
    return [s.slice(0, i), s.slice(i + 1)];
  }

  function drawHead() {
    clear(head);
    const [sortId, dir] = splitSort(state.sort);
    const all = el('input', {type: 'checkbox', 'aria-label': 'Select all runs'});
    all.checked = runs.length > 0 && runs.every((r) => state.sel.has(r.run_id));
    all.addEventListener('change', () => {
      for (const r of runs) { if (all.checked) state.sel.add(r.run_id); else state.sel.delete(r.run_id); }
      saveURL(); rebuildView();
    });
    head.append(el('div', {class: 'cell check'}, all));
    for (const c of columns) {
      const sorted = c.id === sortId;
      const cell = el('div', {class: `cell${c.num ? ' num' : ''}${sorted ? ' sorted' : ''}`, role: 'columnheader', title: `Sort by ${c.label}`, dataset: {col: c.id}},
        c.label, sorted ? (dir === 'asc' ? ' ▲' : ' ▼') : '');
      cell.style.width = `${c.width}px`;
      cell.addEventListener('click', () => {
        state.sort = `${c.id}:${sorted && dir === 'desc' ? 'asc' : 'desc'}`;
        saveURL(); rebuildView();
      });
      head.append(cell);
    }
  }

  // Rows on screen (plus a margin) are in the DOM; scrolling adds the rows that come into
  // view and removes those that left, so a frame touches a handful of rows, not all of them.
  const rendered = new Map();
  function drawRows(force) {
    const top = grid.scrollTop;
    const height = grid.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW) - 10);
    const last = Math.min(view.length, Math.ceil((top + height) / ROW) + 10);
    if (force) { rendered.clear(); clear(rowsLayer); }
    for (const [i, node] of rendered) {
      if (i < first || i >= last) { node.remove(); rendered.delete(i); }
    }
    const frag = document.createDocumentFragment();
    for (let i = first; i < last; i++) {
      if (rendered.has(i)) continue;
      const node = drawRow(i);
      rendered.set(i, node);
      frag.append(node);
    }
    rowsLayer.append(frag);
    if (window.__cairnTable) window.__cairnTable.domRows = rowsLayer.childElementCount;
  }

  function drawRow(i) {
    const item = view[i];
    const row = el('div', {class: 'grid-row', role: 'row', dataset: {index: String(i)}});
    row.style.top = `${ROW * (i + 1)}px`;
    if (item.group) {
      row.classList.add('group');
      row.style.width = inner.style.width;
      // The label spans the columns before the first metric column; each metric column gets its group summary.
      const first = columns.findIndex((c) => c.kind === 'metric');
      const span = first < 0 ? columns.length : first;
      const label = el('div', {class: 'cell group-label', title: `${item.group} (${item.count} runs)`}, `${item.group} (${item.count})`);
      label.style.width = `${34 + columns.slice(0, span).reduce((s, c) => s + c.width, 0)}px`;
      row.append(label);
      for (const c of columns.slice(span)) {
        const cell = c.kind === 'metric' ? groupCell(item, c) : el('div', {class: 'cell'});
        cell.style.width = `${c.width}px`;
        row.append(cell);
      }
      return row;
    }
    const r = item.run;
    row.dataset.runId = r.run_id;
    if (state.sel.has(r.run_id)) row.classList.add('selected');
    if (i === cursor) row.classList.add('cursor');
    const check = el('input', {type: 'checkbox', tabindex: '-1', 'aria-label': `Select ${r.run_name}`});
    check.checked = state.sel.has(r.run_id);
    row.append(el('div', {class: 'cell check'}, check));
    for (const c of columns) {
      let content = cellText(r, c);
      if (c.id === 'attr:run_name') content = el('a', {href: `#/experiments/${r.experiment_id}/runs/${r.run_id}`}, r.run_name || r.run_id);
      else if (c.id === 'attr:status') {
        content = r.stale
          ? el('span', {class: 'status RUNNING stale', title: `Still RUNNING, but nothing logged since ${fmtTime(r.last_activity)}: the job may have died (cairn runs close-stale marks such runs KILLED).`}, 'stale')
          : el('span', {class: `status ${r.status}`}, r.status);
      }
      const cell = el('div', {class: `cell${c.num ? ' num' : ''}`, title: typeof content === 'string' ? content : undefined}, content);
      cell.style.width = `${c.width}px`;
      row.append(cell);
    }
    return row;
  }

  function toggle(i, shift) {
    const item = view[i];
    if (!item || !item.run) return;
    if (shift && anchor !== null) {
      const [a, b] = anchor < i ? [anchor, i] : [i, anchor];
      const on = state.sel.has(view[anchor].run?.run_id);
      for (let k = a; k <= b; k++) if (view[k].run) { if (on) state.sel.add(view[k].run.run_id); else state.sel.delete(view[k].run.run_id); }
    } else {
      if (state.sel.has(item.run.run_id)) state.sel.delete(item.run.run_id); else state.sel.add(item.run.run_id);
      anchor = i;
    }
    cursor = i;
    saveURL();
    drawRows(true);
    countLabel.textContent = `${runs.length} run${runs.length === 1 ? '' : 's'} · ${state.sel.size} selected`;
    compareBtn.disabled = state.sel.size === 0;
    window.__cairnTable.selected = [...state.sel];
  }

  rowsLayer.addEventListener('click', (e) => {
    const row = e.target.closest('.grid-row');
    if (!row || e.target.closest('a')) return;
    const i = Number(row.dataset.index);
    if (e.target.closest('.check') || e.shiftKey || e.ctrlKey || e.metaKey) {
      e.preventDefault();
      toggle(i, e.shiftKey);
    } else {
      cursor = i; drawRows(true);
    }
  });
  rowsLayer.addEventListener('mousedown', (e) => { if (e.shiftKey) e.preventDefault(); });

  function moveCursor(to, extend) {
    const next = Math.max(0, Math.min(view.length - 1, to));
    if (extend) { if (anchor === null) anchor = cursor; toggleRange(anchor, next); }
    cursor = next;
    const y = ROW * (cursor + 1);
    if (y < grid.scrollTop + ROW) grid.scrollTop = y - ROW;
    else if (y + ROW > grid.scrollTop + grid.clientHeight) grid.scrollTop = y + ROW - grid.clientHeight;
    drawRows(true);
  }
  function toggleRange(a, b) {
    const [lo, hi] = a < b ? [a, b] : [b, a];
    for (let k = lo; k <= hi; k++) if (view[k].run) state.sel.add(view[k].run.run_id);
    saveURL();
    countLabel.textContent = `${runs.length} runs · ${state.sel.size} selected`;
    compareBtn.disabled = state.sel.size === 0;
  }

  grid.addEventListener('keydown', (e) => {
    const page = Math.max(1, Math.floor(grid.clientHeight / ROW) - 1);
    if (e.key === 'ArrowDown' || e.key === 'j') { moveCursor(cursor + 1, e.shiftKey); e.preventDefault(); }
    else if (e.key === 'ArrowUp' || e.key === 'k') { moveCursor(cursor - 1, e.shiftKey); e.preventDefault(); }
    else if (e.key === 'PageDown') { moveCursor(cursor + page, e.shiftKey); e.preventDefault(); }
    else if (e.key === 'PageUp') { moveCursor(cursor - page, e.shiftKey); e.preventDefault(); }
    else if (e.key === 'Home') { moveCursor(0, e.shiftKey); e.preventDefault(); }
    else if (e.key === 'End') { moveCursor(view.length - 1, e.shiftKey); e.preventDefault(); }
    else if (e.key === ' ' || e.key === 'x') { toggle(cursor, false); e.preventDefault(); }
    else if (e.key === 'Enter') { const r = view[cursor]?.run; if (r) location.hash = `#/experiments/${r.experiment_id}/runs/${r.run_id}`; }
    else if (e.key === 'c' && state.sel.size) { compareBtn.click(); }
  });
  grid.addEventListener('scroll', () => drawRows(false), {passive: true});
  const onResize = debounce(() => drawRows(true), 50);
  window.addEventListener('resize', onResize);

  async function applyFilter() {
    state.filter = filter.value.trim();
    saveURL();
    if (await filterRuns()) { rebuildView(); await loadGroups(); }
  }
  filter.addEventListener('keydown', (e) => { if (e.key === 'Enter') applyFilter(); });
  document.addEventListener('keydown', focusFilter);
  function focusFilter(e) {
    if (e.key === '/' && !['INPUT', 'TEXTAREA', 'SELECT'].includes(document.activeElement?.tagName)) { e.preventDefault(); filter.focus(); }
  }

  groupSelect.addEventListener('change', () => { state.group = groupSelect.value; saveURL(); rebuildView(); loadGroups(); });
  clearSel.addEventListener('click', () => { state.sel.clear(); saveURL(); rebuildView(); });
  compareBtn.addEventListener('click', () => {
    if (!state.sel.size) return;
    const firstMetric = catalog.metrics.slice(0, 4);
    location.hash = `#/compare?e=${experimentIDs.join(',')}&runs=${joinList([...state.sel])}&keys=${joinList(firstMetric)}`;
  });

  // Column chooser with search.
  let chooser = null;
  columnsBtn.addEventListener('click', () => {
    if (chooser) { chooser.remove(); chooser = null; return; }
    const current = new Set((state.cols || defaultColumns()));
    const search = el('input', {type: 'search', placeholder: 'Search columns', 'aria-label': 'Search columns', id: 'column-search'});
    const list = el('div');
    const ids = [...attrColumns.map((c) => c.id), ...catalog.params.map((k) => `param:${k}`),
      ...catalog.metrics.flatMap((k) => [`metric:${k}`, `metric.min:${k}`, `metric.max:${k}`]), ...catalog.tags.map((k) => `tag:${k}`)];
    function drawList() {
      clear(list);
      const needle = search.value.toLowerCase();
      let lastKind = '';
      for (const id of ids) {
        if (needle && !id.toLowerCase().includes(needle)) continue;
        const kind = id.split(':')[0].replace(/\..*/, '');
        if (kind !== lastKind) { list.append(el('h4', {}, {attr: 'Attributes', param: 'Params', metric: 'Metrics', tag: 'Tags'}[kind])); lastKind = kind; }
        const box = el('input', {type: 'checkbox', checked: current.has(id) ? true : undefined, dataset: {col: id}});
        box.addEventListener('change', () => {
          if (box.checked) current.add(id); else current.delete(id);
          state.cols = ids.filter((x) => current.has(x));
          saveURL(); rebuildView();
        });
        list.append(el('label', {}, box, ' ', columnDef(id).label));
      }
    }
    search.addEventListener('input', drawList);
    chooser = el('div', {class: 'chooser', id: 'column-chooser'}, search, el('button', {type: 'button', onclick: () => { state.cols = null; saveURL(); rebuildView(); chooser.remove(); chooser = null; }}, 'Reset'), list);
    const r = columnsBtn.getBoundingClientRect();
    chooser.style.left = `${Math.max(8, Math.min(r.left + window.scrollX, window.innerWidth - 340))}px`;
    chooser.style.top = `${r.bottom + window.scrollY + 4}px`;
    document.body.append(chooser);
    drawList();
    search.focus();
  });

  const names = Promise.all(experimentIDs.map((id) => mlflow('experiments/get', {experiment_id: id}).then((r) => r.experiment.name).catch(() => `experiment ${id}`)));
  // The table and the column catalog are fetched at the same time; the catalog decides the
  // default columns, so the table is drawn once both are here.
  const runsLoaded = loadRuns();
  await loadCatalog();
  names.then((list) => { title.textContent = list.length > 1 ? `Runs of ${list.join(', ')}` : list[0]; crumbs.lastChild.textContent = list.join(', '); });
  if (await runsLoaded) rebuildView(); else { columns = (state.cols || defaultColumns()).map(columnDef); drawHead(); }
  window.__cairnTiming = Object.assign(window.__cairnTiming || {}, {firstTableMs: performance.now() - t0});
  await loadGroups();
  if (experimentIDs.length === 1 && runs.length === 0 && !state.filter) countLabel.textContent = 'No runs in this experiment yet.';

  return () => {
    window.removeEventListener('resize', onResize);
    document.removeEventListener('keydown', focusFilter);
    if (chooser) chooser.remove();
  };
}
