// Compare: line charts of any metrics for all selected runs (bucketed on the server, one
// request per chart, re-fetched on zoom), parallel coordinates with brushing, a scatter of
// any two columns, a diff table of params and tags that highlights what differs, and
// statistics: the runs grouped (by configuration or a param/tag), each group summarized and
// compared against a baseline with the server's tests, verdicts, warnings and band charts.
import {el, clear, errorBox, fmtCompact, colorFor, runColors, setHashQuery, num} from './util.js';
import {keyPicker} from './picker.js';
import {renderMarkdown} from './markdown.js';
import {cairn, mlflow, experimentNames} from './api.js';
import {LineChart} from './chart.js';
import {stat, signed, pValue, interval, excludedText, excludedCount, verdictBadge, warningList} from './stats.js';

function splitList(s) { return s ? s.split(',').filter((x) => x).map(decodeURIComponent) : []; }
function joinList(xs) { return xs.map(encodeURIComponent).join(','); }

export async function render(app, route) {
  window.__cairnPageHandlesQuery = true;
  const q = route.query;
  const runIDs = splitList(q.get('runs'));
  const state = {
    keys: splitList(q.get('keys')),
    x: q.get('x') || 'step',
    log: q.get('log') === '1',
    ema: Number(q.get('ema') || 0),
    tab: q.get('tab') || 'charts',
    // Statistics tab: group by ('' = configuration), metrics, value at, baseline, correction, band.
    sGroup: q.get('sg') || '',
    sMetrics: splitList(q.get('sm')),
    sAt: q.get('at') || 'last',
    sBaseline: q.get('base') || '',
    sCorrection: q.get('corr') || 'holm',
    sBand: q.get('band') || 'ci',
    pAll: q.get('pall') === '1',
    pColor: q.get('pcolor') || '',
  };
  let experimentIDs = splitList(q.get('e'));
  const crumbs = el('div', {class: 'crumbs'});
  const drawCrumbs = (names) => crumbs.replaceChildren(el('a', {href: '#/experiments'}, 'Experiments'),
    ...(experimentIDs.length ? [' / ', el('a', {href: `#/experiments/${experimentIDs.join(',')}`, id: 'crumb-experiment'}, experimentIDs.map((id) => names.get(id) || `experiment ${id}`).join(', '))] : []), ' / compare');
  drawCrumbs(new Map());
  experimentNames().then(drawCrumbs);
  app.append(crumbs,
    el('h1', {}, `Compare ${runIDs.length} run${runIDs.length === 1 ? '' : 's'}`));
  if (!runIDs.length) { app.append(el('p', {}, 'No runs are selected. Select runs in a runs table and press Compare.')); return; }
  const status = el('div');
  app.append(status);

  if (!experimentIDs.length) {
    try {
      const infos = await Promise.all(runIDs.slice(0, 200).map((id) => mlflow('runs/get', {run_id: id})));
      experimentIDs = [...new Set(infos.map((r) => r.run.info.experiment_id))];
    } catch (e) { status.append(errorBox(e, 'The runs could not be found')); return; }
  }
  let runs = [];
  let catalog = {params: [], metrics: [], tags: []};
  try {
    const ids = runIDs.map((id) => `'${id.replace(/'/g, '')}'`).join(', ');
    const [table, cat] = await Promise.all([
      cairn('runs/table', {experiment_ids: experimentIDs, filter: `attributes.run_id IN (${ids})`}),
      cairn('runs/columns', {experiment_ids: experimentIDs}),
    ]);
    const order = new Map(runIDs.map((id, i) => [id, i]));
    runs = (table.runs || []).sort((a, b) => order.get(a.run_id) - order.get(b.run_id));
    catalog = cat;
  } catch (e) { status.append(errorBox(e, 'The selected runs could not be loaded')); return; }
  if (!state.keys.length) state.keys = catalog.metrics.slice(0, 4);
  const color = runColors(runs.map((r) => r.run_id));
  const label = new Map(runs.map((r) => [r.run_id, r.run_name || r.run_id.slice(0, 8)]));

  const legend = el('div', {class: 'legend'}, runs.map((r) => {
    const sw = el('span', {class: 'sw'}); sw.style.background = color.get(r.run_id);
    return el('a', {href: `#/experiments/${r.experiment_id}/runs/${r.run_id}`}, sw, label.get(r.run_id));
  }));
  const tabs = el('div', {class: 'tabs', role: 'tablist'});
  const panel = el('div');
  app.append(legend, tabs, panel);
  const tabNames = {charts: 'Charts', parallel: 'Parallel coordinates', scatter: 'Scatter', diff: 'Diff', stats: 'Statistics'};
  const runFilter = `attributes.run_id IN (${runIDs.map((id) => `'${id.replace(/'/g, '')}'`).join(', ')})`;
  let teardown = null;

  function saveURL() {
    const p = new URLSearchParams();
    p.set('e', joinList(experimentIDs)); p.set('runs', joinList(runIDs)); p.set('keys', joinList(state.keys));
    if (state.x !== 'step') p.set('x', state.x);
    if (state.log) p.set('log', '1');
    if (state.ema) p.set('ema', String(state.ema));
    if (state.tab !== 'charts') p.set('tab', state.tab);
    if (state.tab === 'parallel') {
      if (state.pAll) p.set('pall', '1');
      if (state.pColor) p.set('pcolor', state.pColor);
    }
    if (state.tab === 'stats') {
      if (state.sGroup) p.set('sg', state.sGroup);
      if (state.sMetrics.length) p.set('sm', joinList(state.sMetrics));
      if (state.sAt !== 'last') p.set('at', state.sAt);
      if (state.sBaseline) p.set('base', state.sBaseline);
      if (state.sCorrection !== 'holm') p.set('corr', state.sCorrection);
      if (state.sBand !== 'ci') p.set('band', state.sBand);
    }
    setHashQuery(p);
  }

  function showTab(name) {
    state.tab = name; saveURL();
    for (const b of tabs.children) b.classList.toggle('active', b.dataset.tab === name);
    if (teardown) { teardown(); teardown = null; }
    clear(panel);
    if (name === 'charts') teardown = chartsTab();
    else if (name === 'parallel') teardown = parallelTab();
    else if (name === 'scatter') teardown = scatterTab();
    else if (name === 'stats') teardown = statsTab();
    else diffTab();
  }
  for (const [k, v] of Object.entries(tabNames)) tabs.append(el('button', {type: 'button', role: 'tab', dataset: {tab: k}, onclick: () => showTab(k)}, v));

  // ---- Charts -------------------------------------------------------------------------
  function chartsTab() {
    const keyBox = keyPicker({id: 'metric-keys', label: 'Metrics to chart', keys: catalog.metrics, selected: state.keys,
      onChange: (keys) => { state.keys = keys; saveURL(); build(); }});
    const xSel = el('select', {id: 'x-axis', 'aria-label': 'X axis'}, ['step', 'time', 'relative'].map((x) => el('option', {value: x, selected: state.x === x ? true : undefined}, {step: 'x: step', time: 'x: wall time', relative: 'x: relative time'}[x])));
    const logBox = el('input', {type: 'checkbox', id: 'log-scale', checked: state.log ? true : undefined});
    const emaIn = el('input', {type: 'range', min: '0', max: '0.99', step: '0.01', value: String(state.ema), id: 'smoothing', 'aria-label': 'EMA smoothing'});
    const emaLabel = el('span', {class: 'muted'}, `smoothing ${state.ema.toFixed(2)}`);
    const grid = el('div', {class: 'charts'});
    panel.append(el('div', {class: 'toolbar'}, keyBox, xSel, el('label', {}, logBox, ' log scale'), emaIn, emaLabel), grid);
    let charts = [];

    function build() {
      for (const c of charts) c.chart.destroy();
      charts = [];
      clear(grid);
      for (const key of state.keys) {
        const entry = {key, range: null, requests: 0, seq: 0};
        entry.chart = new LineChart({id: `compare:${key}`, title: key, xMode: state.x, log: state.log, smoothing: state.ema,
          onZoom: (a, b) => { entry.range = [a, b]; load(entry); },
          onReset: () => { entry.range = null; load(entry); }});
        grid.append(entry.chart.node);
        charts.push(entry);
      }
      if (!state.keys.length) grid.append(el('p', {class: 'muted'}, 'Choose one or more metrics to chart.'));
      requestAnimationFrame(() => { for (const c of charts) load(c); });
    }

    async function load(entry) {
      const seq = ++entry.seq;
      const started = performance.now();
      try {
        const reply = await cairn('metrics/series', {run_ids: runIDs, keys: [entry.key], x: state.x,
          buckets: entry.chart.plotWidth, min_x: entry.range ? entry.range[0] : undefined, max_x: entry.range ? entry.range[1] : undefined});
        if (seq !== entry.seq) return;
        entry.requests++;
        const series = (reply.series || []).map((s) => ({runId: s.run_id, label: label.get(s.run_id) || s.run_id, color: color.get(s.run_id) || '#888',
          firstX: s.first_x || [], lastX: s.last_x || [], min: s.min || [], max: s.max || [], last: s.last || [], pointCount: s.point_count}));
        entry.chart.setData(series, {zoomed: !!entry.range, minX: entry.range ? entry.range[0] : null, maxX: entry.range ? entry.range[1] : null, requests: entry.requests});
        window.__cairnTiming = Object.assign(window.__cairnTiming || {}, {[`chart:${entry.key}`]: performance.now() - started});
      } catch (e) {
        if (seq === entry.seq) entry.chart.setError(e.message);
      }
    }

    xSel.addEventListener('change', () => { state.x = xSel.value; saveURL(); build(); });
    logBox.addEventListener('change', () => { state.log = logBox.checked; saveURL(); for (const c of charts) c.chart.setOptions({log: state.log}); });
    emaIn.addEventListener('input', () => {
      state.ema = Number(emaIn.value); emaLabel.textContent = `smoothing ${state.ema.toFixed(2)}`; saveURL();
      for (const c of charts) c.chart.setOptions({smoothing: state.ema});
    });
    build();
    return () => { for (const c of charts) c.chart.destroy(); };
  }

  // ---- Columns shared by parallel coordinates and scatter ----------------------------------
  function numericColumns() {
    const cols = [];
    for (const k of catalog.params) {
      const values = runs.map((r) => r.params[k]);
      const numeric = values.every((v) => v === undefined || (v !== '' && !Number.isNaN(Number(v))));
      cols.push({id: `params.${k}`, label: k, get: (r) => r.params[k], numeric,
        categories: numeric ? null : [...new Set(values.filter((v) => v !== undefined))].sort()});
    }
    for (const k of catalog.metrics) cols.push({id: `metrics.${k}`, label: k, get: (r) => (r.metrics[k] ? num(r.metrics[k][0]) : undefined), numeric: true});
    return cols;
  }

  /**
   * A column's axis: categories evenly spaced; numbers from their min to their max, on a log
   * scale when every value is positive and they span two decades or more (learning rates), and
   * a single value in the middle of a small range around it (not a 128–129 axis).
   */
  function axisScale(col) {
    if (!col.numeric) {
      const n = col.categories.length;
      return {pos: (v) => (v === undefined ? null : (col.categories.indexOf(v) + 0.5) / Math.max(1, n)), text: (t) => col.categories[Math.floor(t * n)] ?? ''};
    }
    const vals = runs.map(col.get).filter((v) => v !== undefined).map(Number).filter((v) => isFinite(v));
    let lo = Math.min(...vals); let hi = Math.max(...vals);
    if (!vals.length) { lo = 0; hi = 1; }
    const log = vals.length > 1 && lo > 0 && hi / lo >= 100;
    const f = log ? Math.log10 : (x) => x;
    const g = log ? (y) => Math.pow(10, y) : (y) => y;
    let a = f(lo); let b = f(hi);
    if (b === a) { const d = Math.abs(a) * 0.1 || 1; a -= d; b += d; }
    return {lo, hi, log, pos: (v) => { const x = Number(v); return v === undefined || !isFinite(x) || (log && x <= 0) ? null : (f(x) - a) / (b - a); }, text: (t) => fmtCompact(g(a + t * (b - a)))};
  }

  /** Whether a column says something about these runs: some value, and not the same everywhere. */
  function informative(col) {
    const values = new Set(runs.map(col.get).filter((v) => v !== undefined && v !== null && v !== '' && !(typeof v === 'number' && Number.isNaN(v))).map(String));
    return values.size > 1;
  }

  /** A cool-to-warm colour for t in [0, 1]. */
  function ramp(t) {
    const stops = [[59, 76, 192], [170, 170, 170], [180, 4, 38]];
    const x = Math.max(0, Math.min(1, t)) * 2; const i = Math.min(1, Math.floor(x)); const u = x - i;
    const c = stops[i].map((v, k) => Math.round(v + (stops[i + 1][k] - v) * u));
    return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  }

  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  // ---- Parallel coordinates with brushing ----------------------------------------------------
  function parallelTab() {
    const candidates = numericColumns().filter((c) => c.id.startsWith('params.') || state.keys.includes(c.label) || catalog.metrics.length <= 6);
    const allBox = el('input', {type: 'checkbox', id: 'parallel-all', checked: state.pAll ? true : undefined});
    const colorSel = el('select', {id: 'parallel-color', 'aria-label': 'Colour lines by'}, el('option', {value: ''}, 'colour: each run'),
      candidates.filter((c) => c.numeric && informative(c)).map((c) => el('option', {value: c.id, selected: state.pColor === c.id ? true : undefined}, `colour by ${c.id}`)));
    const cols = state.pAll ? candidates : candidates.filter(informative);
    const skipped = candidates.length - cols.length;
    const canvas = el('canvas', {class: 'wide-canvas', id: 'parallel', role: 'img', 'aria-label': 'Parallel coordinates'});
    const info = el('div', {class: 'muted', id: 'parallel-info'}, 'Drag along an axis to brush; click an axis to clear its brush.');
    panel.append(el('div', {class: 'toolbar'}, colorSel, el('label', {}, allBox, ' show constant and empty axes'),
      skipped ? el('span', {class: 'muted', id: 'parallel-skipped'}, `${skipped} constant or empty axis${skipped === 1 ? '' : 'es'} hidden`) : ''), canvas, info);
    allBox.addEventListener('change', () => { state.pAll = allBox.checked; saveURL(); showTab('parallel'); });
    colorSel.addEventListener('change', () => { state.pColor = colorSel.value; saveURL(); draw(); });
    if (!cols.length) { info.textContent = 'These runs have no params or metrics that differ.'; window.__cairnParallel = {axes: [], kept: [], brushes: [], skipped}; return null; }
    const scales = cols.map(axisScale);
    const lineColor = (r) => {
      const by = candidates.find((c) => c.id === colorSel.value);
      if (!by) return color.get(r.run_id);
      const p = axisScale(by).pos(by.get(r));
      return p === null ? cssVar('--muted') : ramp(p);
    };
    const brushes = new Map();
    let drag = null;
    const geometry = () => {
      const w = canvas.clientWidth; const h = canvas.clientHeight; const T = 36; const B = 24;
      const xs = cols.map((_, i) => 40 + i * (w - 80) / Math.max(1, cols.length - 1));
      return {w, h, T, B, ph: h - T - B, xs};
    };
    const passes = (r) => [...brushes.entries()].every(([i, [a, b]]) => { const p = scales[i].pos(cols[i].get(r)); return p !== null && p >= a && p <= b; });
    function draw() {
      const dpr = window.devicePixelRatio || 1; const gm = geometry();
      canvas.width = gm.w * dpr; canvas.height = gm.h * dpr;
      const g = canvas.getContext('2d'); g.setTransform(dpr, 0, 0, dpr, 0, 0);
      const Y = (p) => gm.T + (1 - p) * gm.ph;
      const kept = runs.filter(passes);
      for (const pass of [false, true]) {
        for (const r of runs) {
          const on = kept.includes(r);
          if (on !== pass) continue;
          g.strokeStyle = on ? lineColor(r) : cssVar('--line'); g.globalAlpha = on ? 0.85 : 0.5; g.lineWidth = on ? 1.4 : 1;
          g.beginPath(); let pen = false;
          cols.forEach((c, i) => { const p = scales[i].pos(c.get(r)); if (p === null) { pen = false; return; } if (pen) g.lineTo(gm.xs[i], Y(p)); else { g.moveTo(gm.xs[i], Y(p)); pen = true; } });
          g.stroke();
        }
      }
      g.globalAlpha = 1; g.font = '11px system-ui, sans-serif'; g.fillStyle = cssVar('--fg'); g.strokeStyle = cssVar('--muted');
      cols.forEach((c, i) => {
        g.beginPath(); g.moveTo(gm.xs[i], gm.T); g.lineTo(gm.xs[i], gm.T + gm.ph); g.stroke();
        g.textAlign = i === 0 ? 'left' : i === cols.length - 1 ? 'right' : 'center';
        g.fillText(c.label.length > 18 ? `${c.label.slice(0, 17)}…` : c.label, gm.xs[i], 12);
        g.fillStyle = cssVar('--muted');
        if (c.categories) {
          g.textAlign = 'left';
          for (const cat of c.categories) g.fillText(cat, gm.xs[i] + 4, Y(scales[i].pos(cat)) + 4);
        } else {
          g.fillText(scales[i].text(1), gm.xs[i], 26);
          g.fillText(scales[i].text(0), gm.xs[i], gm.T + gm.ph + 14);
        }
        g.fillStyle = cssVar('--fg');
        const br = brushes.get(i);
        if (br) { g.globalAlpha = 0.3; g.fillStyle = cssVar('--accent'); g.fillRect(gm.xs[i] - 6, Y(br[1]), 12, Y(br[0]) - Y(br[1])); g.globalAlpha = 1; g.fillStyle = cssVar('--fg'); }
      });
      info.textContent = `${kept.length} of ${runs.length} runs inside the brushes. Drag along an axis to brush; click an axis to clear its brush.`;
      window.__cairnParallel = {axes: cols.map((c) => c.id), kept: kept.map((r) => r.run_id), brushes: [...brushes.entries()], skipped,
        colorBy: colorSel.value, ranges: Object.fromEntries(cols.map((c, i) => [c.id, c.numeric ? [scales[i].text(0), scales[i].text(1)] : c.categories]))};
    }
    const axisAt = (px) => { const gm = geometry(); let best = -1; let d = 20; gm.xs.forEach((x, i) => { if (Math.abs(x - px) < d) { d = Math.abs(x - px); best = i; } }); return best; };
    const posAt = (py) => { const gm = geometry(); return Math.max(0, Math.min(1, 1 - (py - gm.T) / gm.ph)); };
    canvas.addEventListener('mousedown', (e) => {
      const r = canvas.getBoundingClientRect(); const i = axisAt(e.clientX - r.left);
      if (i < 0) return; drag = {i, a: posAt(e.clientY - r.top), moved: false}; e.preventDefault();
    });
    canvas.addEventListener('mousemove', (e) => {
      if (!drag) return; const r = canvas.getBoundingClientRect(); const b = posAt(e.clientY - r.top);
      if (Math.abs(b - drag.a) > 0.01) { drag.moved = true; brushes.set(drag.i, [Math.min(drag.a, b), Math.max(drag.a, b)]); draw(); }
    });
    const up = () => { if (drag && !drag.moved) { brushes.delete(drag.i); draw(); } drag = null; };
    window.addEventListener('mouseup', up);
    const ro = new ResizeObserver(draw); ro.observe(canvas);
    window.addEventListener('cairn-theme', draw);
    return () => { window.removeEventListener('mouseup', up); ro.disconnect(); window.removeEventListener('cairn-theme', draw); };
  }

  // ---- Scatter of any two columns ---------------------------------------------------------------
  function scatterTab() {
    const cols = numericColumns().filter((c) => c.numeric);
    const pick = (id, def) => el('select', {id, 'aria-label': id}, cols.map((c) => el('option', {value: c.id, selected: c.id === def ? true : undefined}, c.id)));
    const xs = pick('scatter-x', cols[0]?.id); const ys = pick('scatter-y', cols[Math.min(1, cols.length - 1)]?.id);
    const canvas = el('canvas', {class: 'wide-canvas', id: 'scatter', role: 'img', 'aria-label': 'Scatter plot'});
    const info = el('div', {class: 'muted'});
    panel.append(el('div', {class: 'toolbar'}, 'x ', xs, ' y ', ys), canvas, info);
    if (!cols.length) { info.textContent = 'No numeric columns to plot.'; return null; }
    function draw() {
      const cx = cols.find((c) => c.id === xs.value); const cy = cols.find((c) => c.id === ys.value);
      const sx = axisScale(cx); const sy = axisScale(cy);
      const dpr = window.devicePixelRatio || 1; const w = canvas.clientWidth; const h = canvas.clientHeight;
      canvas.width = w * dpr; canvas.height = h * dpr;
      const g = canvas.getContext('2d'); g.setTransform(dpr, 0, 0, dpr, 0, 0);
      const L = 60; const B = 28; const T = 10; const R = 10; const pw = w - L - R; const ph = h - T - B;
      g.strokeStyle = cssVar('--line'); g.strokeRect(L, T, pw, ph);
      g.fillStyle = cssVar('--muted'); g.font = '11px system-ui, sans-serif';
      g.textAlign = 'left'; g.fillText(sx.text(0), L, h - 8); g.textAlign = 'right'; g.fillText(sx.text(1), L + pw, h - 8);
      g.fillText(sy.text(1), L - 4, T + 10); g.fillText(sy.text(0), L - 4, T + ph);
      g.textAlign = 'center'; g.fillText(cx.label, L + pw / 2, h - 8);
      const plotted = [];
      for (const r of runs) {
        const px = sx.pos(cx.get(r)); const py = sy.pos(cy.get(r));
        if (px === null || py === null) continue;
        g.fillStyle = color.get(r.run_id); g.beginPath(); g.arc(L + px * pw, T + (1 - py) * ph, 4, 0, 7); g.fill();
        plotted.push(r.run_id);
      }
      info.textContent = `${plotted.length} of ${runs.length} runs have both ${cx.id} and ${cy.id}.`;
      window.__cairnScatter = {x: cx.id, y: cy.id, plotted};
    }
    xs.addEventListener('change', draw); ys.addEventListener('change', draw);
    const ro = new ResizeObserver(draw); ro.observe(canvas);
    window.addEventListener('cairn-theme', draw);
    return () => { ro.disconnect(); window.removeEventListener('cairn-theme', draw); };
  }

  // ---- Statistics: groups, comparison with a baseline, band charts ----------------------------
  function statsTab() {
    const available = catalog.metrics.filter((k) => runs.some((r) => r.metrics[k]));
    if (!state.sMetrics.length) {
      const charted = state.keys.filter((k) => available.includes(k));
      state.sMetrics = (charted.length ? charted : available).slice(0, 2);
    }
    const option = (value, text, current) => el('option', {value, selected: value === current ? true : undefined}, text);
    const groupSel = el('select', {id: 'stats-group', 'aria-label': 'Group runs by'}, option('', 'configuration', state.sGroup),
      catalog.params.map((k) => option(`params.${k}`, `param ${k}`, state.sGroup)),
      catalog.tags.filter((k) => !k.startsWith('mlflow.')).map((k) => option(`tags.${k}`, `tag ${k}`, state.sGroup)));
    const metricSel = keyPicker({id: 'stats-metrics', label: 'Metrics to compare', keys: available, selected: state.sMetrics,
      onChange: (keys) => { state.sMetrics = keys; reload(); }});
    const atMode = state.sAt.startsWith('step=') ? 'step' : state.sAt;
    const atSel = el('select', {id: 'stats-at', 'aria-label': 'Value of each run'}, option('last', 'last value', atMode), option('best', 'best value', atMode), option('step', 'value at step…', atMode));
    const stepIn = el('input', {type: 'number', min: '0', step: '1', id: 'stats-step', 'aria-label': 'Step', class: 'narrow-num', value: atMode === 'step' ? state.sAt.slice(5) : '0', hidden: atMode !== 'step' ? true : undefined});
    const baseSel = el('select', {id: 'stats-baseline', 'aria-label': 'Baseline group'}, option('', 'first group', state.sBaseline));
    if (state.sBaseline) baseSel.append(option(state.sBaseline, state.sBaseline, state.sBaseline));
    const corrSel = el('select', {id: 'stats-correction', 'aria-label': 'Multiple-comparison correction'}, option('holm', 'Holm', state.sCorrection), option('bh', 'Benjamini–Hochberg', state.sCorrection));
    const bandSel = el('select', {id: 'stats-band', 'aria-label': 'Band around the mean'}, option('ci', 'band: confidence interval', state.sBand), option('std', 'band: ± 1 sd', state.sBand), option('minmax', 'band: min–max', state.sBand));
    const field = (text, ...controls) => el('label', {class: 'field'}, el('span', {class: 'muted'}, text), ...controls);
    const status = el('div', {id: 'stats-status'});
    const context = el('p', {class: 'muted', id: 'stats-context'});
    const out = el('div', {id: 'stats-result'});
    const grid = el('div', {class: 'charts', id: 'stats-bands'});
    panel.append(el('div', {class: 'toolbar stats-controls'}, field('Group by', groupSel), el('div', {class: 'field'}, el('span', {class: 'muted'}, 'Metrics'), metricSel), field('Value at', el('span', {class: 'inline'}, atSel, stepIn)),
      field('Baseline', baseSel), field('Correction', corrSel), field('Bands', bandSel)), status, context, out, grid);
    window.__cairnStats = {loaded: false};
    let seq = 0;
    let charts = [];

    const selection = () => ({experiment_ids: experimentIDs, filter: runFilter, group_by: state.sGroup ? [state.sGroup] : undefined});

    async function load() {
      const mine = ++seq;
      clear(status);
      window.__cairnStats = {loaded: false};
      if (!state.sMetrics.length) { clear(out); clearCharts(); context.textContent = 'Choose one or more metrics to compare.'; return; }
      context.textContent = 'Comparing…';
      let reply;
      try {
        reply = await cairn('stats/compare', {...selection(), metrics: state.sMetrics, at: state.sAt, baseline: state.sBaseline, correction: state.sCorrection});
      } catch (e) {
        if (mine !== seq) return;
        clear(out); clearCharts(); context.textContent = '';
        status.append(errorBox(e, 'No comparison'));
        window.__cairnStats = {loaded: true, error: e.message};
        return;
      }
      if (mine !== seq) return;
      draw(reply);
      drawBands(reply);
    }

    // Each group keeps its colour across reloads, and shown groups differ (util.js runColors),
    // keyed like the runs page's groups.
    function groupColors(groups) {
      const ids = groups.map((g) => `group\u0000${state.sGroup || 'configuration'}\u0000${g.key}`);
      const colors = runColors(ids);
      return new Map(groups.map((g, i) => [g.key, colors.get(ids[i])]));
    }

    function draw(reply) {
      const groups = reply.groups.groups || [];
      const colors = groupColors(groups);
      const swatch = (key) => { const s = el('span', {class: 'sw'}); s.style.background = colors.get(key) || '#888'; return s; };
      clear(baseSel).append(option('', 'first group', state.sBaseline), ...groups.map((g) => option(g.key, g.key, state.sBaseline)));
      if (!state.sBaseline) baseSel.value = '';
      const comparisons = reply.comparisons || [];
      const g = reply.groups;
      const by = g.by_configuration ? `configuration (${g.group_by.length ? g.group_by.join(', ') : 'no param differs'})` : g.group_by.join(', ');
      const correction = reply.correction === 'holm' ? 'Holm' : 'Benjamini–Hochberg';
      context.textContent = `${g.run_count} run${g.run_count === 1 ? '' : 's'} in ${groups.length} groups by ${by}; each run's ${g.at === 'last' ? 'last value' : g.at === 'best' ? 'best value' : `value at ${g.at.replace('=', ' ')}`}; `
        + `${stat(g.level * 100, 3)}% intervals; p-values ${correction}-adjusted over ${comparisons.filter((c) => c.p !== undefined).length} comparisons; baseline ${reply.baseline}.`;
      const level = `${stat(g.level * 100, 3)}% CI`;

      const groupRows = [];
      for (const grp of groups) {
        (grp.metrics || []).forEach((m, i) => {
          const excluded = excludedCount(m.excluded);
          groupRows.push(el('tr', {dataset: {group: grp.key, metric: m.key}},
            i === 0 ? el('th', {rowspan: grp.metrics.length, class: 'group-name', scope: 'row'}, swatch(grp.key), grp.key,
              grp.key === reply.baseline ? el('span', {class: 'tag'}, 'baseline') : '') : null,
            el('td', {}, m.key, el('span', {class: 'muted', title: m.direction === 'minimize' ? 'lower is better' : 'higher is better'}, m.direction === 'minimize' ? ' ↓' : ' ↑')),
            el('td', {class: 'num'}, String(m.n)),
            el('td', {class: 'num'}, stat(m.mean)),
            el('td', {class: 'num'}, stat(m.sd)),
            el('td', {class: 'num', title: m.interval === 'bootstrap' ? 'percentile bootstrap' : 'Student t'}, interval(m.ci_low, m.ci_high)),
            el('td', {class: `num${excluded ? ' warn-text' : ''}`, title: excludedText(m.excluded) || 'every run counted'}, excluded ? `${excluded} (${excludedText(m.excluded)})` : '0')));
        });
      }
      const groupTable = el('table', {class: 'plain stats', id: 'stats-groups'},
        el('thead', {}, el('tr', {}, ['Group', 'Metric', 'n', 'Mean', 'SD', level, 'Not counted'].map((h, i) => el('th', {class: i >= 2 ? 'num' : undefined}, h)))),
        el('tbody', {}, groupRows));

      const compRows = comparisons.map((c) => el('tr', {dataset: {group: c.group, metric: c.metric, verdict: c.verdict}},
        el('th', {scope: 'row', class: 'group-name'}, swatch(c.group), c.group, el('span', {class: 'muted'}, ` vs ${c.baseline}`)),
        el('td', {}, c.metric),
        el('td', {class: 'num'}, signed(c.diff)),
        el('td', {class: 'num'}, interval(c.ci_low, c.ci_high, signed)),
        el('td', {class: 'num'}, c.relative === undefined ? '—' : `${signed(c.relative * 100, 3)}%`),
        el('td', {title: c.paired ? `paired by ${(c.paired_by || []).join(', ')}` : `n = ${c.n} vs ${c.baseline_n}`},
          c.paired ? `paired t (${(c.paired_by || []).map((x) => x.replace(/^params\./, '')).join(', ')})` : 'Welch t'),
        el('td', {class: 'num'}, pValue(c.p)),
        el('td', {class: 'num'}, pValue(c.p_adjusted)),
        el('td', {class: 'num', title: c.hedges_g_low !== undefined ? `${level} ${interval(c.hedges_g_low, c.hedges_g_high)}` : undefined}, stat(c.hedges_g, 3)),
        el('td', {}, verdictBadge(c.verdict))));
      const compTable = el('table', {class: 'plain stats', id: 'stats-comparisons'},
        el('thead', {}, el('tr', {}, ['Group', 'Metric', 'Difference', level, 'Relative', 'Test', 'p', 'Adjusted p', "Hedges' g", 'Verdict'].map((h, i) => el('th', {class: i >= 2 && i !== 5 && i !== 9 ? 'num' : undefined}, h)))),
        el('tbody', {}, compRows.length ? compRows : el('tr', {}, el('td', {colspan: 10, class: 'muted'}, 'Nothing to compare.'))));

      const summaries = el('ul', {class: 'summaries', id: 'stats-summaries'}, comparisons.map((c) => el('li', {dataset: {verdict: c.verdict}}, verdictBadge(c.verdict), ' ', c.summary)));
      const allWarnings = comparisons.flatMap((c) => c.warnings || []);
      const warnings = warningList(allWarnings, 'stats-warnings');
      clear(out).append(
        el('h3', {}, 'Verdicts'), summaries,
        el('h3', {}, 'Warnings'), warnings || el('p', {class: 'muted', id: 'stats-warnings'}, 'No warnings: the groups used the same data, code and environment as far as the runs record them.'),
        el('h3', {}, 'Groups'), el('div', {class: 'scroll-x'}, groupTable),
        el('h3', {}, `Against the baseline (${reply.baseline})`), el('div', {class: 'scroll-x'}, compTable));
      window.__cairnStats = {loaded: true, baseline: reply.baseline, groups: groups.map((x) => x.key),
        verdicts: comparisons.map((c) => ({group: c.group, metric: c.metric, verdict: c.verdict})), warnings: [...new Set(allWarnings.map((w) => w.code))]};
    }

    function clearCharts() { for (const c of charts) c.destroy(); charts = []; clear(grid); }

    function drawBands(reply) {
      clearCharts();
      const colors = groupColors(reply.groups.groups || []);
      const bandName = {ci: `${stat(reply.groups.level * 100, 3)}% confidence interval of the mean`, std: 'mean ± 1 standard deviation', minmax: 'min to max'}[state.sBand];
      grid.append(el('div', {class: 'span-all'}, el('h3', {}, 'Mean per group over steps'), el('div', {class: 'legend', id: 'stats-legend'},
        [...colors].map(([key, color]) => { const sw = el('span', {class: 'sw'}); sw.style.background = color; return el('span', {}, sw, key); }))));
      for (const key of state.sMetrics) {
        const chart = new LineChart({id: `stats:${key}`, title: `${key}: mean per group, band ${bandName}`, xMode: 'step'});
        charts.push(chart);
        grid.append(chart.node);
        requestAnimationFrame(async () => {
          try {
            const bands = await cairn('stats/bands', {...selection(), metric: key, x: 'step', buckets: chart.plotWidth, band: state.sBand});
            if (!charts.includes(chart)) return;
            const series = (bands.series || []).filter((s) => (s.x || []).length).map((s, i) => ({runId: s.group, label: `${s.group} (n ${Math.max(0, ...(s.n || [0]))})`,
              color: colors.get(s.group) || colorFor(i), firstX: s.x, lastX: s.x, min: (s.low || []).map(num), max: (s.high || []).map(num), last: (s.mean || []).map(num),
              pointCount: (s.n || []).reduce((a, b) => a + b, 0)}));
            chart.setData(series, {requests: 1, meta: `${series.length} group${series.length === 1 ? '' : 's'}: the line is the mean of the runs, the band ${bandName}. Hover for values.`});
          } catch (e) { if (charts.includes(chart)) chart.setError(e.message); }
        });
      }
    }

    const reload = () => { saveURL(); load(); };
    groupSel.addEventListener('change', () => { state.sGroup = groupSel.value; state.sBaseline = ''; reload(); });
    const readAt = () => { state.sAt = atSel.value === 'step' ? `step=${Math.max(0, Math.floor(Number(stepIn.value) || 0))}` : atSel.value; };
    atSel.addEventListener('change', () => { stepIn.hidden = atSel.value !== 'step'; readAt(); reload(); });
    stepIn.addEventListener('change', () => { readAt(); reload(); });
    baseSel.addEventListener('change', () => { state.sBaseline = baseSel.value; reload(); });
    corrSel.addEventListener('change', () => { state.sCorrection = corrSel.value; reload(); });
    bandSel.addEventListener('change', () => { state.sBand = bandSel.value; saveURL(); if (window.__cairnStats.loaded && !window.__cairnStats.error) load(); });
    load();
    return () => { seq++; clearCharts(); };
  }

  // ---- Diff table ------------------------------------------------------------------------------
  function diffTab() {
    const shown = runs.slice(0, 60);
    const onlyDiff = el('input', {type: 'checkbox', checked: true, id: 'only-differences'});
    const table = el('table', {class: 'plain', id: 'diff-table'});
    panel.append(el('div', {class: 'toolbar'}, el('label', {}, onlyDiff, ' only what differs'),
      runs.length > shown.length ? el('span', {class: 'muted'}, `showing the first ${shown.length} of ${runs.length} runs`) : ''), el('div', {class: 'scroll-x'}, table));
    function draw() {
      clear(table);
      table.append(el('thead', {}, el('tr', {}, el('th', {}, 'Key'), shown.map((r) => el('th', {}, label.get(r.run_id))))));
      const body = el('tbody');
      const rows = [...catalog.params.map((k) => ['params', k]), ...catalog.tags.filter((k) => !k.startsWith('mlflow.log-model')).map((k) => ['tags', k])];
      let differing = 0;
      for (const [kind, k] of rows) {
        const values = shown.map((r) => r[kind][k]);
        const differs = new Set(values.map((v) => (v === undefined ? '\u0000' : v))).size > 1;
        if (differs) differing++;
        if (onlyDiff.checked && !differs) continue;
        body.append(el('tr', {class: differs ? 'differs' : undefined, dataset: {key: `${kind}.${k}`}}, el('th', {}, `${kind}.${k}`),
          values.map((v) => (v !== undefined && kind === 'tags' && k === 'mlflow.note.content'
            ? el('td', {class: 'markdown note-cell'}, renderMarkdown(v))
            : el('td', {class: v === undefined ? 'muted' : undefined}, v === undefined ? '—' : v.length > 80 ? `${v.slice(0, 80)}…` : v)))));
      }
      if (!body.childElementCount) body.append(el('tr', {}, el('td', {colspan: shown.length + 1, class: 'muted'}, 'The selected runs have the same params and tags.')));
      table.append(body);
      window.__cairnDiff = {differing};
    }
    onlyDiff.addEventListener('change', draw);
    draw();
  }

  showTab(tabNames[state.tab] ? state.tab : 'charts');
  return () => { if (teardown) teardown(); };
}
