// The runs table: one or several experiments, every param / metric / tag as a column, sort
// by any column, a filter box with the search grammar (errors shown inline), a column
// chooser, group by a param or tag, selection (click, shift-click ranges, keyboard) and
// rows virtualized so 10,000 runs scroll smoothly. All state lives in the URL hash. Grouped,
// each group row shows per visible metric column the group's mean ± CI half-width and n
// (finished runs only, from stats/groups). An experiment whose runs are A/B variants (tag
// cairn.control) links to its A/B report. Above the table, the workspace charts every metric
// of the runs the table shows (workspace.js); columns can be resized, dragged to a new place
// and pinned (the Run column is pinned by default); nested runs can be shown as a tree; the
// whole state can be saved on the server as a named view (views.js). A big table shows its
// first page (in the order asked, with the server's count) at once and reads the other rows
// behind it, page by page; sorting, grouping and select-all over every run wait for those.
import {el, clear, fmtTime, fmtDuration, fmtNumber, fmtCompact, errorBox, setHashQuery, debounce, runColor, runColors, swatch} from './util.js';
import {cairn, mlflow} from './api.js';
import {meanPlusMinus, interval, stat, excludedCount, excludedText} from './stats.js';
import {createWorkspace} from './workspace.js';
import {createViewsBar} from './views.js';
import {permissions} from './permissions.js';

const ROW = 30;
const FIRST_PAGE = 500;    // rows of the first screen, read before anything else
const PAGE = 10000;        // rows per request while the rest are read behind the table
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

/** The server's order_by for a column sort, when the server orders that column as the table
 * does (numeric params and derived columns are sorted only here, once every row is in). */
export function serverOrder(sort) {
  const i = sort.lastIndexOf(':');
  const id = sort.slice(0, i); const dir = sort.slice(i + 1) === 'asc' ? 'ASC' : 'DESC';
  const attrs = {'attr:run_name': 'run_name', 'attr:status': 'status', 'attr:start_time': 'start_time', 'attr:user_id': 'user_id', 'attr:run_id': 'run_id'};
  if (attrs[id]) return `attributes.${attrs[id]} ${dir}`;
  const j = id.indexOf(':');
  const kind = id.slice(0, j); const key = id.slice(j + 1);
  if ((kind === 'metric' || kind === 'tag') && !key.includes('`')) return `${kind}s.\`${key}\` ${dir}`;
  return null;
}

function splitList(s) { return s ? s.split(',').filter((x) => x).map(decodeURIComponent) : []; }
function joinList(xs) { return xs.map(encodeURIComponent).join(','); }
function parseJSON(text) { try { const v = JSON.parse(text); return v && typeof v === 'object' ? v : null; } catch { return null; } }

const PARENT_TAG = 'mlflow.parentRunId';
const DEFAULT_PINS = ['attr:run_name'];

/** The page state from the URL query (also the shape of a saved view). */
export function stateFromQuery(q) {
  return {
    filter: q.get('filter') || '',
    sort: q.get('sort') || 'attr:start_time:desc',
    cols: q.get('cols') ? splitList(q.get('cols')) : null,
    sel: new Set(splitList(q.get('sel'))),
    group: q.get('group') || '',
    widths: parseJSON(q.get('w')) || {},
    pins: q.has('pin') ? splitList(q.get('pin')) : [...DEFAULT_PINS],
    charts: q.get('charts') !== '0',
    ws: parseJSON(q.get('ws')) || {},
    tree: q.get('tree') === '1',
    view: q.get('view') || '',
  };
}

/** The URL query of a state (defaults left out). */
export function queryFromState(state) {
  const p = new URLSearchParams();
  if (state.view) p.set('view', state.view);
  if (state.filter) p.set('filter', state.filter);
  if (state.sort !== 'attr:start_time:desc') p.set('sort', state.sort);
  if (state.cols) p.set('cols', joinList(state.cols));
  if (state.sel && state.sel.size) p.set('sel', joinList([...state.sel]));
  if (state.group) p.set('group', state.group);
  if (Object.keys(state.widths || {}).length) p.set('w', JSON.stringify(state.widths));
  if (JSON.stringify(state.pins) !== JSON.stringify(DEFAULT_PINS)) p.set('pin', joinList(state.pins));
  if (!state.charts) p.set('charts', '0');
  if (Object.keys(state.ws || {}).length) p.set('ws', JSON.stringify(state.ws));
  if (state.tree) p.set('tree', '1');
  return p;
}

export async function render(app, route) {
  const experimentIDs = route.path[1].split(',').filter((x) => x);
  window.__cairnPageHandlesQuery = true;
  const q = route.query;
  const state = stateFromQuery(q);
  const t0 = performance.now();

  const title = el('h1', {}, experimentIDs.length > 1 ? `Runs of experiments ${experimentIDs.join(', ')}` : 'Runs');
  const filter = el('input', {type: 'search', class: 'grow mono', id: 'filter', value: state.filter, 'aria-label': 'Filter runs',
    placeholder: "Filter: metrics.acc > 0.9 OR params.model = 'resnet'  (Enter to apply)"});
  const filterError = el('div', {id: 'filter-error'});
  const countLabel = el('span', {class: 'muted', id: 'run-count'}, 'Loading runs…');
  const columnsBtn = el('button', {type: 'button', id: 'columns-button'}, 'Columns');
  const groupSelect = el('select', {id: 'group-by', 'aria-label': 'Group by'}, el('option', {value: ''}, 'No grouping'));
  const compareBtn = el('button', {type: 'button', id: 'compare-button', class: 'primary'}, 'Compare');
  const chartsBox = el('input', {type: 'checkbox', id: 'show-charts', checked: state.charts ? true : undefined});
  const treeBox = el('input', {type: 'checkbox', id: 'tree-view', checked: state.tree ? true : undefined});
  const wsHolder = el('div', {id: 'workspace-holder'});
  const viewsHolder = el('div', {class: 'views-bar', id: 'views-holder'});
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
  const crumbs = el('div', {class: 'crumbs'}, el('a', {href: '#/experiments'}, 'Experiments'), ' / ', el('span', {id: 'crumb-experiment'}, experimentIDs.join(', ')));
  app.append(crumbs, title, viewsHolder,
    el('div', {class: 'toolbar'}, filter, el('button', {type: 'button', id: 'apply-filter', onclick: () => applyFilter()}, 'Apply')),
    filterError,
    el('div', {class: 'toolbar'}, countLabel, columnsBtn, groupSelect, clearSel, compareBtn, abLink, tracesLink,
      el('label', {title: 'Charts of every metric of the runs in the table'}, chartsBox, ' charts'),
      el('label', {title: 'Child runs under their parent run'}, treeBox, ' nested runs as a tree')),
    groupsBar, wsHolder, grid);

  let catalog = {params: [], metrics: [], tags: []};
  let runs = [];
  let view = [];       // display list: {run} or {group, count}
  let cursor = 0;
  let anchor = null;   // index in view of the last plain click, for shift ranges
  let columns = [];
  let sortedRuns = [];
  let groupColors = new Map();
  const expanded = new Set();  // parent runs open in the tree
  let workspace = null;
  let viewsBar = null;

  function defaultColumns() {
    return ['attr:run_name', 'attr:status', 'attr:start_time', 'attr:duration', 'attr:user_id',
      ...(experimentIDs.length > 1 ? ['attr:experiment_id'] : []),
      ...catalog.params.map((k) => `param:${k}`), ...catalog.metrics.map((k) => `metric:${k}`)];
  }

  function saveURL() {
    setHashQuery(queryFromState(state));
    if (viewsBar) viewsBar.changed();
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
  let complete = true; // whether `runs` holds every run the filter keeps (else the rest are being read)
  let total = 0;       // how many runs the filter keeps (the server's count)
  let loadedOrder = null;  // the server order of the rows read so far
  let loadSeq = 0;     // a newer read (filter, sort) stops an older one
  let closed = false;

  function countText() {
    const n = complete ? runs.length : total;
    const text = `${complete ? n : n.toLocaleString('en-US')} run${n === 1 ? '' : 's'} · ${state.sel.size} selected`;
    return complete ? text : `${text} · ${runs.length.toLocaleString('en-US')} loaded…`;
  }

  function showLoadError(e) {
    filter.setAttribute('aria-invalid', 'true');
    filterError.append(errorBox(e, state.filter ? 'The filter was not applied' : 'Runs could not be loaded'));
    countLabel.textContent = `${runs.length} runs (previous result)`;
  }

  // The first page in the order the table shows (when the server can order it so), with the
  // count; the other rows are read behind the table (readRest).
  async function loadRuns() {
    clear(filterError);
    const started = performance.now();
    const mine = ++loadSeq;
    const order = serverOrder(state.sort);
    try {
      const reply = await cairn('runs/table', {experiment_ids: experimentIDs, filter: state.filter, order_by: order, max_results: FIRST_PAGE, total: 'true'});
      if (mine !== loadSeq) return false;
      runs = reply.runs || [];
      total = reply.total ?? runs.length;
      complete = !reply.has_more;
      loadedOrder = order;
      allRuns = !state.filter && complete ? runs : null;
      filter.removeAttribute('aria-invalid');
      window.__cairnTiming = Object.assign(window.__cairnTiming || {}, {fetchMs: performance.now() - started});
      if (!complete) readRest(mine, order, started);
    } catch (e) {
      if (mine !== loadSeq) return false;
      showLoadError(e);
      return false;
    }
    return true;
  }

  async function readRest(mine, order, started) {
    const seen = new Set(runs.map((r) => r.run_id));
    let rows = runs;
    while (true) {
      let reply;
      try {
        reply = await cairn('runs/table', {experiment_ids: experimentIDs, filter: state.filter, order_by: order, max_results: PAGE, offset: rows.length});
      } catch (e) {
        if (mine === loadSeq && !closed) { filterError.append(errorBox(e, 'The rest of the runs could not be loaded')); countLabel.textContent = countText(); }
        return;
      }
      if (mine !== loadSeq || closed) return;
      rows = rows.concat((reply.runs || []).filter((r) => !seen.has(r.run_id) && seen.add(r.run_id)));
      runs = rows;
      if (!reply.has_more || !(reply.runs || []).length) break;
      // The rows so far, when they are in the table's order; else only the count moves.
      if (serverOrder(state.sort) === order) rebuildView(); else countLabel.textContent = countText();
    }
    complete = true;
    if (!state.filter) allRuns = runs;
    window.__cairnTiming = Object.assign(window.__cairnTiming || {}, {allRowsMs: performance.now() - started});
    rebuildView();
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
      for (const g of reply.groups || []) {
        const value = g.missing ? '(none)' : g.value;
        groupsBar.append(el('span', {class: 'chip', title: `${value}: ${g.count} runs`, dataset: {value}}, swatch(groupColors.get(value) || '#888'), `${fmtCompact(value)} · ${g.count}`));
      }
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
    const title = `${c.key} over ${m.n} finished run${m.n === 1 ? '' : 's'}: mean ${stat(m.mean)} ± sd ${stat(m.sd)}, ${level} CI ${interval(m.ci_low, m.ci_high)}`
      + (excluded ? `; ${excluded} not counted (${excludedText(m.excluded)})` : '; every run counted');
    const sd = typeof m.sd === 'number' && isFinite(m.sd) ? m.sd : undefined;
    return el('div', {class: `cell num group-stat${excluded ? ' has-excluded' : ''}`, title, dataset: {metric: c.key}},
      `${meanPlusMinus(m.mean, sd === undefined ? undefined : m.mean - sd, sd === undefined ? undefined : m.mean + sd)} (n ${m.n}${excluded ? ` of ${m.n + excluded}` : ''})`);
  }

  /** The columns in order, pinned ones first, with their widths and sticky offsets. */
  function layoutColumns() {
    const all = (state.cols || defaultColumns()).map((id) => ({...columnDef(id)}));
    if (state.group) for (const c of all) if (c.kind === 'metric') c.width = 190;
    for (const c of all) if (state.widths[c.id]) c.width = state.widths[c.id];
    const pinned = all.filter((c) => state.pins.includes(c.id));
    let left = 34;
    for (const c of pinned) { c.pinned = true; c.left = left; left += c.width; }
    return [...pinned, ...all.filter((c) => !c.pinned)];
  }

  function groupValueOf(r) {
    const [prefix, ...rest] = state.group.split('.');
    const v = (prefix === 'params' ? r.params : r.tags)[rest.join('.')];
    return v === undefined ? '(none)' : v;
  }
  const colorOf = (r) => (state.group ? groupColors.get(groupValueOf(r)) || '#888' : runColor(r.run_id));

  function rebuildView() {
    const started = performance.now();
    columns = layoutColumns();
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
    sortedRuns = sorted;
    view = [];
    groupColors = new Map();
    if (state.group) {
      const groups = new Map();
      for (const r of sorted) {
        const g = groupValueOf(r);
        if (!groups.has(g)) groups.set(g, []);
        groups.get(g).push(r);
      }
      const names = [...groups.keys()].sort((a, b) => (a === '(none)') - (b === '(none)') || compareValues(a, b));
      // One colour per group, kept like a run's (a filter that hides a group changes no other group's colour).
      const colors = runColors(names.map((g) => `group\u0000${state.group}\u0000${g}`));
      names.forEach((g) => groupColors.set(g, colors.get(`group\u0000${state.group}\u0000${g}`)));
      for (const g of names) {
        view.push({group: `${state.group} = ${fmtCompact(g, 4)}`, value: g, count: groups.get(g).length});
        for (const r of groups.get(g)) view.push({run: r});
      }
    } else if (state.tree) {
      // Children under their parent (when the parent is in the table), in the same sort order.
      const here = new Set(sorted.map((r) => r.run_id));
      const kids = new Map();
      for (const r of sorted) {
        const p = r.tags[PARENT_TAG];
        if (p && here.has(p) && p !== r.run_id) { if (!kids.has(p)) kids.set(p, []); kids.get(p).push(r); }
      }
      const add = (r, depth, seen) => {
        const children = kids.get(r.run_id) || [];
        view.push({run: r, depth, children: children.length});
        if (!expanded.has(r.run_id) || seen.has(r.run_id)) return;
        seen.add(r.run_id);
        for (const c of children) add(c, depth + 1, seen);
      };
      for (const r of sorted) {
        const p = r.tags[PARENT_TAG];
        if (!(p && here.has(p) && p !== r.run_id)) add(r, 0, new Set());
      }
    } else {
      for (const r of sorted) view.push({run: r});
    }
    cursor = Math.min(cursor, Math.max(0, view.length - 1));
    drawHead();
    inner.style.height = `${ROW * (view.length + 1)}px`;
    inner.style.width = `${34 + columns.reduce((s, c) => s + c.width, 0)}px`;
    drawRows(true);
    updateWorkspace();
    countLabel.textContent = countText();
    compareBtn.disabled = state.sel.size === 0;
    window.__cairnTable = {
      rowCount: runs.length, viewCount: view.length, complete, total,
      order: view.filter((v) => v.run).slice(0, 200).map((v) => v.run.run_id),
      names: view.filter((v) => v.run).slice(0, 200).map((v) => v.run.run_name),
      columns: columns.map((c) => c.id), selected: [...state.sel], sort: state.sort, filter: state.filter,
      pinned: columns.filter((c) => c.pinned).map((c) => c.id), widths: Object.fromEntries(columns.map((c) => [c.id, c.width])),
      colors: Object.fromEntries(view.filter((v) => v.run).slice(0, 200).map((v) => [v.run.run_id, colorOf(v.run)])),
      tree: view.filter((v) => v.run && v.depth).map((v) => v.run.run_id),
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
    if (!complete) { all.disabled = true; all.title = 'Select all: once every run is read'; }
    all.addEventListener('change', () => {
      for (const r of runs) { if (all.checked) state.sel.add(r.run_id); else state.sel.delete(r.run_id); }
      saveURL(); rebuildView();
    });
    head.append(el('div', {class: 'cell check pinned'}, all));
    for (const c of columns) {
      const sorted = c.id === sortId;
      const pin = el('button', {type: 'button', class: `pin${c.pinned ? ' on' : ''}`, title: c.pinned ? 'Unpin the column' : 'Pin the column (stays visible when scrolling right)',
        'aria-label': `${c.pinned ? 'Unpin' : 'Pin'} ${c.label}`, 'aria-pressed': c.pinned ? 'true' : 'false'}, c.pinned ? '◆' : '◇');
      const handle = el('span', {class: 'rz', title: 'Drag to resize', 'aria-hidden': 'true'});
      const cell = el('div', {class: `cell${c.num ? ' num' : ''}${sorted ? ' sorted' : ''}${c.pinned ? ' pinned' : ''}`, role: 'columnheader', title: `Sort by ${c.label} · drag to move`,
        draggable: 'true', dataset: {col: c.id}}, el('span', {class: 'label'}, c.label, sorted ? (dir === 'asc' ? ' ▲' : ' ▼') : ''), pin, handle);
      cell.style.width = `${c.width}px`;
      if (c.pinned) cell.style.left = `${c.left}px`;
      cell.addEventListener('click', (e) => {
        if (e.target === pin || e.target === handle || resizing) return;
        state.sort = `${c.id}:${sorted && dir === 'desc' ? 'asc' : 'desc'}`;
        saveURL();
        // Rows still being read: the first page again in the new order (when the server orders that column).
        if (!complete && serverOrder(state.sort) && serverOrder(state.sort) !== loadedOrder) loadRuns().then((ok) => ok && rebuildView());
        else rebuildView();
      });
      pin.addEventListener('click', () => {
        state.pins = c.pinned ? state.pins.filter((x) => x !== c.id) : [...state.pins, c.id];
        saveURL(); rebuildView();
      });
      handle.addEventListener('mousedown', (e) => startResize(e, c, cell));
      cell.addEventListener('dragstart', (e) => { if (resizing) { e.preventDefault(); return; } e.dataTransfer.setData('text/x-cairn-column', c.id); e.dataTransfer.effectAllowed = 'move'; });
      cell.addEventListener('dragover', (e) => { if (e.dataTransfer.types.includes('text/x-cairn-column')) { e.preventDefault(); cell.classList.add('drop'); } });
      cell.addEventListener('dragleave', () => cell.classList.remove('drop'));
      cell.addEventListener('drop', (e) => {
        cell.classList.remove('drop');
        const from = e.dataTransfer.getData('text/x-cairn-column');
        if (from && from !== c.id) { e.preventDefault(); moveColumn(from, c.id); }
      });
      head.append(cell);
    }
  }

  /** Puts column `from` just before column `to` (the order of state.cols; pinned ones stay first). */
  function moveColumn(from, to) {
    const ids = (state.cols || defaultColumns()).filter((x) => x !== from);
    ids.splice(Math.max(0, ids.indexOf(to)), 0, from);
    state.cols = ids;
    saveURL(); rebuildView();
  }

  let resizing = null;
  function startResize(e, c, cell) {
    e.preventDefault(); e.stopPropagation();
    const x0 = e.clientX; const w0 = c.width;
    resizing = {id: c.id};
    const move = (ev) => { const w = Math.max(50, Math.min(800, Math.round(w0 + ev.clientX - x0))); resizing.width = w; cell.style.width = `${w}px`; };
    const up = () => {
      window.removeEventListener('mousemove', move); window.removeEventListener('mouseup', up);
      if (resizing.width) { state.widths = {...state.widths, [c.id]: resizing.width}; saveURL(); rebuildView(); }
      setTimeout(() => { resizing = null; }, 0);
    };
    window.addEventListener('mousemove', move); window.addEventListener('mouseup', up);
  }

  /** What the workspace charts: the selected runs when some are ticked, else the top N by the sort. */
  function chartedRuns() {
    const selectedOnly = state.sel.size > 0;
    const pool = selectedOnly ? sortedRuns.filter((r) => state.sel.has(r.run_id)) : sortedRuns;
    return {selectedOnly, runs: pool.slice(0, selectedOnly ? 100 : workspace ? workspace.layout().top : 10)};
  }

  function updateWorkspace() {
    if (!workspace) return;
    const {selectedOnly, runs: chartRuns} = chartedRuns();
    const ids = [...state.sel].map((id) => `'${id.replace(/'/g, '')}'`).join(', ');
    const bandFilter = selectedOnly ? [state.filter && `(${state.filter})`, `attributes.run_id IN (${ids})`].filter((x) => x).join(' AND ') : state.filter;
    const [sortId, dir] = splitSort(state.sort);
    workspace.update({runs: chartRuns, selectedOnly, sortLabel: `${columnDef(sortId).label} ${dir === 'asc' ? '▲' : '▼'}`, group: state.group, bandFilter, groupColors});
  }
  const updateWorkspaceSoon = debounce(updateWorkspace, 150);

  // Rows on screen (plus a margin) are in the DOM; scrolling adds the rows that come into
  // view and removes those that left, so a frame touches a handful of rows, not all of them.
  const rendered = new Map();
  function drawRows(force) {
    const top = grid.scrollTop;
    const height = grid.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW) - 10);
    const last = Math.min(view.length, Math.ceil((top + height) / ROW) + 10);
    if (force) {
      rendered.clear(); clear(rowsLayer);
      // The charted runs and the first rows get colours that all differ (util.js runColors);
      // rows further down keep or get theirs one by one.
      if (!state.group) runColors([...chartedRuns().runs, ...view.slice(0, 150).filter((v) => v.run).map((v) => v.run)].map((r) => r.run_id));
    }
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
      const label = el('div', {class: 'cell group-label pinned', title: `${state.group} = ${item.value} (${item.count} runs)`}, swatch(groupColors.get(item.value) || '#888'), `${item.group} (${item.count})`);
      label.style.width = `${34 + columns.slice(0, span).reduce((s, c) => s + c.width, 0)}px`;
      label.style.left = '0px';
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
    row.append(el('div', {class: 'cell check pinned'}, check));
    for (const c of columns) {
      let content = cellText(r, c);
      if (c.id === 'attr:run_name') {
        const link = el('a', {href: `#/experiments/${r.experiment_id}/runs/${r.run_id}`}, r.run_name || r.run_id);
        const twisty = item.children ? el('button', {type: 'button', class: 'twisty', dataset: {parent: r.run_id}, 'aria-expanded': expanded.has(r.run_id) ? 'true' : 'false',
          title: `${item.children} child run${item.children === 1 ? '' : 's'}`}, expanded.has(r.run_id) ? '▾' : '▸', ` ${item.children}`) : null;
        content = el('span', {class: 'run-name'}, item.depth ? el('span', {class: 'indent'}, '\u00a0'.repeat(item.depth * 3), '└ ') : null, twisty,
          swatch(colorOf(r)), link);
      }
      else if (c.id === 'attr:status') {
        content = r.stale
          ? el('span', {class: 'status RUNNING stale', title: `Still RUNNING, but nothing logged since ${fmtTime(r.last_activity)}: the job may have died (cairn runs close-stale marks such runs KILLED).`}, 'stale')
          : el('span', {class: `status ${r.status}`}, r.status);
      }
      const cell = el('div', {class: `cell${c.num ? ' num' : ''}${c.pinned ? ' pinned' : ''}`, title: typeof content === 'string' ? content : undefined}, content);
      cell.style.width = `${c.width}px`;
      if (c.pinned) cell.style.left = `${c.left}px`;
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
    countLabel.textContent = countText();
    compareBtn.disabled = state.sel.size === 0;
    window.__cairnTable.selected = [...state.sel];
    updateWorkspaceSoon();
  }

  rowsLayer.addEventListener('click', (e) => {
    const twisty = e.target.closest('.twisty');
    if (twisty) {
      const id = twisty.dataset.parent;
      if (expanded.has(id)) expanded.delete(id); else expanded.add(id);
      rebuildView();
      return;
    }
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
    countLabel.textContent = countText();
    compareBtn.disabled = state.sel.size === 0;
    updateWorkspaceSoon();
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
  treeBox.addEventListener('change', () => { state.tree = treeBox.checked; saveURL(); rebuildView(); });
  chartsBox.addEventListener('change', () => { state.charts = chartsBox.checked; saveURL(); showCharts(); });

  /** The workspace's layout without its defaults, for the URL and saved views. */
  function compactLayout(l) {
    const defaults = {panels: null, search: '', top: 10, x: 'step', log: false, ema: 0};
    const out = {};
    for (const [k, v] of Object.entries(l)) {
      if (k in defaults ? JSON.stringify(defaults[k]) === JSON.stringify(v) : (Array.isArray(v) ? !v.length : !Object.keys(v || {}).length)) continue;
      out[k] = v;
    }
    return out;
  }

  function showCharts() {
    wsHolder.hidden = !state.charts;
    if (!state.charts || workspace) return;
    workspace = createWorkspace({experimentIDs, catalog, layout: state.ws,
      onLayout: (l) => { state.ws = compactLayout(l); saveURL(); }, onTop: () => { drawRows(true); updateWorkspace(); }});
    wsHolder.append(workspace.node);
    updateWorkspace();
  }

  /** Applies a saved view's state (or the page's defaults) and redraws everything. */
  async function applyState(next) {
    Object.assign(state, next, {sel: state.sel});
    filter.value = state.filter; groupSelect.value = state.group;
    chartsBox.checked = state.charts; treeBox.checked = state.tree;
    if (workspace) { workspace.destroy(); workspace = null; clear(wsHolder); }
    saveURL();
    if (await filterRuns()) rebuildView();
    showCharts();
    await loadGroups();
  }
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
  const may = permissions({experiments: experimentIDs});
  await loadCatalog();
  names.then((list) => { title.textContent = list.length > 1 ? `Runs of ${list.join(', ')}` : list[0]; document.getElementById('crumb-experiment').textContent = list.join(', '); });
  if (experimentIDs.length === 1) {
    viewsBar = createViewsBar({experimentID: experimentIDs[0], holder: viewsHolder, current: () => snapshot(), apply: (v) => applyState(v), viewID: state.view,
      canEdit: (await may).experiment(experimentIDs[0], 'EDIT'), hasQuery: [...q.keys()].some((k) => k !== 'view' && k !== 'theme')});
  }
  const initial = viewsBar ? await viewsBar.initial() : null;
  if (initial) Object.assign(state, initial, {sel: state.sel});
  filter.value = state.filter; groupSelect.value = state.group; chartsBox.checked = state.charts; treeBox.checked = state.tree;
  if (initial) {
    saveURL();
    if (state.filter || (await runsLoaded.then(() => !complete && serverOrder(state.sort) !== loadedOrder))) await runsLoaded.then(() => filterRuns());
  }
  if (await runsLoaded) rebuildView(); else { columns = layoutColumns(); drawHead(); }
  showCharts();
  window.__cairnTiming = Object.assign(window.__cairnTiming || {}, {firstTableMs: performance.now() - t0});
  await loadGroups();
  if (experimentIDs.length === 1 && runs.length === 0 && !state.filter) countLabel.textContent = 'No runs in this experiment yet.';

  /** The state a saved view keeps (everything but the selection). */
  function snapshot() {
    const {sel, view, ...rest} = state;
    return JSON.parse(JSON.stringify(rest));
  }

  return () => {
    closed = true;
    if (workspace) workspace.destroy();
    window.removeEventListener('resize', onResize);
    document.removeEventListener('keydown', focusFilter);
    if (chooser) chooser.remove();
  };
}
