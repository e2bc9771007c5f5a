// The workspace above the runs table: a grid of chart panels, one per metric by default,
// in sections by key prefix (`train/`, `val/`), searchable, drawing the runs the table shows
// (the selected runs when some are ticked, else the top N by the table's sort; filter and
// grouping apply). Grouped, each panel draws every group's mean with a band (min–max, ± sd or
// a confidence interval, chosen per panel) from stats/bands. Panels can be added, removed,
// resized and reordered (drag the title, or the arrows). Series come bucketed from the server,
// many panels in one metrics/series request; a panel is fetched when it scrolls into view.
// The panel layout is part of the page state (URL and saved views): {panels, size, band, closed}.
import {el, clear, runColor, keyMatcher} from './util.js';
import {cairn} from './api.js';
import {LineChart} from './chart.js';

const MAX_SERIES = 2000;  // ExplorerService.maxSeries: run_ids × keys per request
const SIZES = ['s', 'm', 'l'];
const SIZE_NAMES = {s: 'small', m: 'medium', l: 'large'};
const BAND_NAMES = {minmax: 'min–max', std: '± 1 sd', ci: '95% CI'};

/** The section of a metric key: its prefix up to the first '/', or '' for keys without one. */
export function sectionOf(key) {
  const i = key.indexOf('/');
  return i > 0 ? key.slice(0, i) : '';
}

/**
 * options: {experimentIDs, catalog, layout: {panels, size, band, closed, search, top, x, log, ema}, onLayout(layout)}
 * Returns {node, update({runs, group, filter, sortLabel, selected, groupColors}), layout(), destroy()}.
 */
export function createWorkspace(options) {
  const layout = {panels: null, size: {}, band: {}, closed: [], search: '', top: 10, x: 'step', log: false, ema: 0, ...(options.layout || {})};
  const metrics = options.catalog.metrics || [];
  const search = el('input', {type: 'search', id: 'panel-search', 'aria-label': 'Search panels', placeholder: 'Search panels (text or /regex/)', value: layout.search});
  const addSel = el('select', {id: 'add-panel', 'aria-label': 'Add a panel'});
  const topSel = el('select', {id: 'top-n', 'aria-label': 'Runs to chart'}, [5, 10, 20, 50, 100].map((n) => el('option', {value: String(n), selected: n === layout.top ? true : undefined}, `top ${n}`)));
  const xSel = el('select', {id: 'ws-x', 'aria-label': 'X axis'}, ['step', 'time', 'relative'].map((x) => el('option', {value: x, selected: layout.x === x ? true : undefined}, {step: 'x: step', time: 'x: wall time', relative: 'x: relative time'}[x])));
  const logBox = el('input', {type: 'checkbox', id: 'ws-log', checked: layout.log ? true : undefined});
  const emaIn = el('input', {type: 'range', min: '0', max: '0.99', step: '0.01', value: String(layout.ema), id: 'ws-smoothing', 'aria-label': 'EMA smoothing'});
  const resetBtn = el('button', {type: 'button', id: 'reset-panels', title: 'One panel per metric again'}, 'Reset panels');
  const what = el('div', {class: 'muted', id: 'ws-what'});
  const sections = el('div', {class: 'ws-sections', id: 'workspace-panels'});
  const node = el('section', {class: 'workspace', id: 'workspace', 'aria-label': 'Charts of the runs in the table'},
    el('div', {class: 'toolbar'}, search, addSel, topSel, xSel, el('label', {}, logBox, ' log'), emaIn, resetBtn), what, sections);

  let ctx = {runs: [], group: '', filter: '', selected: [], groupColors: new Map()};
  let entries = new Map();  // key -> {key, chart, panel, range, requests, loaded, seq, visible}
  let seq = 0;
  const observer = new IntersectionObserver((items) => {
    for (const it of items) {
      const e = entries.get(it.target.dataset.key);
      if (e) e.visible = it.isIntersecting;
    }
    markLoaded();
    scheduleLoad();
  }, {rootMargin: '200px'});
  window.__cairnWorkspace = {panels: [], loaded: 0, requests: 0};

  const panelKeys = () => layout.panels || metrics;
  function changed() { options.onLayout && options.onLayout({...layout}); }

  function drawAdd() {
    const shown = new Set(panelKeys());
    clear(addSel).append(el('option', {value: ''}, '+ Add panel'), ...metrics.filter((k) => !shown.has(k)).map((k) => el('option', {value: k}, k)));
    addSel.disabled = addSel.options.length <= 1;
  }

  /** Rebuilds the panels (layout or data source changed). */
  function build() {
    for (const e of entries.values()) { observer.unobserve(e.panel); e.chart.destroy(); }
    entries = new Map();
    clear(sections);
    const match = keyMatcher(layout.search);
    const keys = panelKeys();
    const shown = keys.filter(match);
    const bySection = new Map();
    for (const k of shown) {
      const s = sectionOf(k);
      if (!bySection.has(s)) bySection.set(s, []);
      bySection.get(s).push(k);
    }
    // Sections in order of first appearance, keys without a prefix last.
    const names = [...bySection.keys()].sort((a, b) => (a === '') - (b === '') || keys.indexOf(bySection.get(a)[0]) - keys.indexOf(bySection.get(b)[0]));
    for (const name of names) {
      const list = bySection.get(name);
      const grid = el('div', {class: 'panels', dataset: {section: name}});
      const details = el('details', {class: 'ws-section', dataset: {section: name}, open: layout.closed.includes(name) ? undefined : true},
        el('summary', {}, name ? `${name}/` : (names.length > 1 ? 'Other metrics' : 'Metrics'), el('span', {class: 'muted'}, ` ${list.length}`)), grid);
      details.addEventListener('toggle', () => {
        layout.closed = details.open ? layout.closed.filter((x) => x !== name) : [...new Set([...layout.closed, name])];
        changed();
        scheduleLoad();
      });
      for (const key of list) grid.append(makePanel(key));
      sections.append(details);
    }
    if (!metrics.length) sections.append(el('p', {class: 'muted'}, 'No metrics logged in these runs yet.'));
    else if (!shown.length) sections.append(el('p', {class: 'muted'}, keys.length ? `No panel matches “${layout.search}”.` : 'No panels: add one with “+ Add panel”.'));
    drawAdd();
    window.__cairnWorkspace.panels = shown;
    window.__cairnWorkspace.sections = names;
    refresh();
  }

  function makePanel(key) {
    const size = layout.size[key] || 'm';
    const entry = {key, range: null, requests: 0, loaded: false, seq: 0, visible: false};
    entry.chart = new LineChart({id: `ws:${key}`, title: key, xMode: layout.x, log: layout.log, smoothing: layout.ema,
      onZoom: (a, b) => { entry.range = [a, b]; loadOne(entry); },
      onReset: () => { entry.range = null; loadOne(entry); }});
    const move = (d) => () => movePanel(key, d);
    const bandSel = el('select', {class: 'band', 'aria-label': `Band of ${key}`, title: 'Band around each group mean'},
      Object.entries(BAND_NAMES).map(([v, t]) => el('option', {value: v, selected: (layout.band[key] || 'minmax') === v ? true : undefined}, t)));
    bandSel.hidden = !ctx.group;
    bandSel.addEventListener('change', () => { layout.band[key] = bandSel.value; changed(); loadOne(entry); });
    const title = el('span', {class: 'ptitle', draggable: 'true', title: `${key} (drag to move)`}, key);
    const head = el('div', {class: 'phead'}, title, bandSel,
      el('button', {type: 'button', class: 'icon', title: 'Move left', 'aria-label': `Move ${key} left`, onclick: move(-1)}, '◀'),
      el('button', {type: 'button', class: 'icon', title: 'Move right', 'aria-label': `Move ${key} right`, onclick: move(1)}, '▶'),
      el('button', {type: 'button', class: 'icon resize', title: 'Resize: small, medium, large', 'aria-label': `Resize ${key}`, onclick: () => resize(key)}, '⤢'),
      el('button', {type: 'button', class: 'icon remove', title: 'Remove the panel', 'aria-label': `Remove ${key}`, onclick: () => removePanel(key)}, '×'));
    const panel = el('div', {class: `panel size-${size}`, dataset: {key, size}}, head, entry.chart.node);
    title.addEventListener('dragstart', (e) => { e.dataTransfer.setData('text/x-cairn-panel', key); e.dataTransfer.effectAllowed = 'move'; panel.classList.add('dragging'); });
    title.addEventListener('dragend', () => panel.classList.remove('dragging'));
    panel.addEventListener('dragover', (e) => { if (e.dataTransfer.types.includes('text/x-cairn-panel')) { e.preventDefault(); panel.classList.add('drop'); } });
    panel.addEventListener('dragleave', () => panel.classList.remove('drop'));
    panel.addEventListener('drop', (e) => {
      panel.classList.remove('drop');
      const from = e.dataTransfer.getData('text/x-cairn-panel');
      if (from && from !== key) { e.preventDefault(); placeBefore(from, key); }
    });
    entry.panel = panel;
    entry.bandSel = bandSel;
    entries.set(key, entry);
    observer.observe(panel);
    return panel;
  }

  function explicit() { if (!layout.panels) layout.panels = [...metrics]; return layout.panels; }
  function movePanel(key, d) {
    const list = explicit(); const i = list.indexOf(key); const j = i + d;
    if (i < 0 || j < 0 || j >= list.length) return;
    [list[i], list[j]] = [list[j], list[i]];
    changed(); build();
  }
  function placeBefore(from, to) {
    const list = explicit().filter((k) => k !== from);
    list.splice(list.indexOf(to), 0, from);
    layout.panels = list;
    changed(); build();
  }
  function resize(key) {
    const next = SIZES[(SIZES.indexOf(layout.size[key] || 'm') + 1) % SIZES.length];
    if (next === 'm') delete layout.size[key]; else layout.size[key] = next;
    const e = entries.get(key);
    e.panel.className = `panel size-${next}`;
    e.panel.dataset.size = next;
    e.panel.querySelector('.resize').title = `Resize (now ${SIZE_NAMES[next]})`;
    changed();
    e.loaded = false;  // a new width asks for a new number of buckets
    scheduleLoad();
  }
  function removePanel(key) {
    layout.panels = explicit().filter((k) => k !== key);
    delete layout.size[key]; delete layout.band[key];
    changed(); build();
  }

  /** Every panel must be fetched again (other runs, grouping, axis). */
  function refresh() {
    seq++;
    for (const e of entries.values()) { e.loaded = false; e.bandSel.hidden = !ctx.group; }
    markLoaded();
    scheduleLoad();
  }

  let pending = false;
  function scheduleLoad() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; loadVisible(); });
  }

  function describe() {
    if (ctx.group) return `Each line is the mean of a group (${ctx.group}) of the runs the filter keeps, with its band.`;
    if (!ctx.runs.length) return 'No runs to chart.';
    return ctx.selectedOnly ? `Charting the ${ctx.runs.length} selected run${ctx.runs.length === 1 ? '' : 's'}.`
      : `Charting the top ${ctx.runs.length} run${ctx.runs.length === 1 ? '' : 's'} by ${ctx.sortLabel}; tick runs to chart those instead.`;
  }

  /** Fetches every visible panel that is not loaded: ungrouped in batched series requests, grouped one band request per panel. */
  async function loadVisible() {
    what.textContent = describe();
    const due = [...entries.values()].filter((e) => e.visible && !e.loaded && e.panel.offsetParent !== null);
    if (!due.length) return;
    for (const e of due) e.loaded = true;
    if (ctx.group) { await Promise.all(due.map((e) => loadOne(e))); return; }
    if (!ctx.runs.length) { for (const e of due) { e.chart.setData([], {requests: ++e.requests}); e.drawn = seq; } markLoaded(); return; }
    const zoomed = due.filter((e) => e.range);
    const plain = due.filter((e) => !e.range);
    const byWidth = new Map();
    for (const e of plain) {
      const w = e.chart.plotWidth;
      if (!byWidth.has(w)) byWidth.set(w, []);
      byWidth.get(w).push(e);
    }
    const per = Math.max(1, Math.floor(MAX_SERIES / ctx.runs.length));
    const jobs = [];
    for (const [w, list] of byWidth) for (let i = 0; i < list.length; i += per) jobs.push(fetchSeries(list.slice(i, i + per), w));
    await Promise.all([...jobs, ...zoomed.map((e) => loadOne(e))]);
  }

  async function fetchSeries(list, buckets) {
    const mine = seq;
    const runIDs = ctx.runs.map((r) => r.run_id);
    const started = performance.now();
    for (const e of list) e.seq++;
    const tokens = list.map((e) => e.seq);
    try {
      const reply = await cairn('metrics/series', {run_ids: runIDs, keys: list.map((e) => e.key), x: layout.x, buckets});
      window.__cairnWorkspace.requests++;
      if (mine !== seq) return;
      const byKey = new Map(list.map((e) => [e.key, []]));
      for (const s of reply.series || []) if (byKey.has(s.key)) byKey.get(s.key).push(s);
      list.forEach((e, i) => { if (tokens[i] === e.seq) show(e, byKey.get(e.key), mine); });
      window.__cairnTiming = Object.assign(window.__cairnTiming || {}, {workspaceBatchMs: performance.now() - started});
    } catch (err) {
      list.forEach((e, i) => { if (tokens[i] === e.seq) { e.chart.setError(err.message); e.drawn = mine; } });
      markLoaded();
    }
  }

  function show(entry, series, gen = seq) {
    const names = new Map(ctx.runs.map((r) => [r.run_id, r.run_name || r.run_id.slice(0, 8)]));
    const order = new Map(ctx.runs.map((r, i) => [r.run_id, i]));
    series.sort((a, b) => order.get(a.run_id) - order.get(b.run_id));
    entry.requests++;
    entry.chart.setData(series.map((s) => ({runId: s.run_id, label: names.get(s.run_id) || s.run_id, color: runColor(s.run_id),
      firstX: s.first_x || [], lastX: s.last_x || [], min: s.min || [], max: s.max || [], last: s.last || [], pointCount: s.point_count})),
    {zoomed: !!entry.range, minX: entry.range ? entry.range[0] : null, maxX: entry.range ? entry.range[1] : null, requests: entry.requests});
    entry.drawn = gen;
    markLoaded();
  }

  // For tests and the benchmark: how many panels are on screen and how many show the current data.
  function markLoaded() {
    const all = [...entries.values()];
    window.__cairnWorkspace.loaded = all.filter((e) => e.drawn === seq).length;
    window.__cairnWorkspace.visible = all.filter((e) => e.visible && e.panel.offsetParent !== null).length;
    window.__cairnWorkspace.generation = seq;
    window.__cairnWorkspace.group = ctx.group;
    window.__cairnWorkspace.runs = ctx.runs.map((r) => r.run_id);
  }

  /** One panel: its own series request (zoomed) or its band request (grouped). */
  async function loadOne(entry) {
    entry.loaded = true;
    const mine = ++entry.seq;
    const gen = seq;
    const range = entry.range ? {min_x: entry.range[0], max_x: entry.range[1]} : {};
    try {
      if (ctx.group) {
        const band = layout.band[entry.key] || 'minmax';
        const reply = await cairn('stats/bands', {experiment_ids: options.experimentIDs, filter: ctx.bandFilter, group_by: [ctx.group],
          metric: entry.key, x: layout.x, buckets: Math.min(400, entry.chart.plotWidth), band});
        window.__cairnWorkspace.requests++;
        if (mine !== entry.seq) return;
        const series = (reply.series || []).filter((s) => (s.x || []).length).map((s) => ({
          runId: s.group, label: `${s.group} (n ${Math.max(0, ...(s.n || [0]))})`, color: ctx.groupColors.get(groupValue(s.group)) || '#888',
          firstX: s.x, lastX: s.x, min: s.low || [], max: s.high || [], last: s.mean || [], pointCount: (s.n || []).reduce((a, b) => a + b, 0)}));
        entry.requests++;
        entry.chart.setData(series, {requests: entry.requests, zoomed: false,
          meta: `${series.length} group${series.length === 1 ? '' : 's'} · line: mean, band: ${BAND_NAMES[band]}`});
        window.__cairnCharts[`ws:${entry.key}`].band = band;
        window.__cairnCharts[`ws:${entry.key}`].groups = series.map((s) => s.runId);
        entry.drawn = gen;
      } else {
        if (!ctx.runs.length) { entry.chart.setData([], {requests: ++entry.requests}); entry.drawn = gen; markLoaded(); return; }
        const reply = await cairn('metrics/series', {run_ids: ctx.runs.map((r) => r.run_id), keys: [entry.key], x: layout.x, buckets: entry.chart.plotWidth, ...range});
        window.__cairnWorkspace.requests++;
        if (mine !== entry.seq) return;
        show(entry, reply.series || [], gen);
        return;
      }
    } catch (err) {
      if (mine === entry.seq) { entry.chart.setError(err.message); entry.drawn = gen; }
    }
    markLoaded();
  }

  // stats/bands names a group "params.lr=0.01"; the table names it by its value.
  function groupValue(name) {
    const i = name.indexOf('=');
    return i >= 0 ? name.slice(i + 1) : name;
  }

  search.addEventListener('input', () => { layout.search = search.value; changed(); build(); });
  addSel.addEventListener('change', () => {
    if (!addSel.value) return;
    explicit().push(addSel.value);
    changed(); build();
    const e = entries.get(addSel.value);
    if (e) e.panel.scrollIntoView({block: 'nearest'});
  });
  topSel.addEventListener('change', () => { layout.top = Number(topSel.value); changed(); options.onTop && options.onTop(); });
  xSel.addEventListener('change', () => { layout.x = xSel.value; changed(); for (const e of entries.values()) { e.range = null; e.chart.setOptions({xMode: layout.x}); } refresh(); });
  logBox.addEventListener('change', () => { layout.log = logBox.checked; changed(); for (const e of entries.values()) e.chart.setOptions({log: layout.log}); });
  emaIn.addEventListener('input', () => { layout.ema = Number(emaIn.value); changed(); for (const e of entries.values()) e.chart.setOptions({smoothing: layout.ema}); });
  resetBtn.addEventListener('click', () => { layout.panels = null; layout.size = {}; layout.band = {}; layout.search = ''; search.value = ''; changed(); build(); });

  build();
  return {
    node,
    /** The runs to chart and how: {runs, selectedOnly, sortLabel, group, bandFilter, groupColors}. */
    update(next) {
      const key = (c) => JSON.stringify([c.runs.map((r) => r.run_id), c.group, c.bandFilter]);
      const same = key(next) === key(ctx);
      ctx = {...ctx, ...next};
      if (!same) refresh(); else what.textContent = describe();
    },
    layout: () => ({...layout}),
    destroy() { observer.disconnect(); for (const e of entries.values()) e.chart.destroy(); },
  };
}
