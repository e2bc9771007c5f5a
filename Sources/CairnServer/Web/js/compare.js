// Compare: line charts of any metrics for all selected runs (bucketed on the server, one
// request per chart, re-fetched on zoom), parallel coordinates with brushing, a scatter of
// any two columns, and a diff table of params and tags that highlights what differs.
import {el, clear, errorBox, fmtNumber, colorFor, setHashQuery, num} from './util.js';
import {cairn, mlflow} from './api.js';
import {LineChart} from './chart.js';

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
  };
  let experimentIDs = splitList(q.get('e'));
  app.append(el('div', {class: 'crumbs'}, el('a', {href: '#/experiments'}, 'Experiments'), experimentIDs.length ? [' / ', el('a', {href: `#/experiments/${experimentIDs.join(',')}`}, `runs of ${experimentIDs.join(', ')}`)] : '', ' / compare'),
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
  const color = new Map(runs.map((r, i) => [r.run_id, colorFor(i)]));
  const label = new Map(runs.map((r) => [r.run_id, r.run_name || r.run_id.slice(0, 8)]));

  const legend = el('div', {class: 'legend'}, runs.map((r) => {
    const sw = el('span', {class: 'sw'}); sw.style.background = color.get(r.run_id);
    return el('a', {href: `#/experiments/${r.experiment_id}/runs/${r.run_id}`}, sw, label.get(r.run_id));
  }));
  const tabs = el('div', {class: 'tabs', role: 'tablist'});
  const panel = el('div');
  app.append(legend, tabs, panel);
  const tabNames = {charts: 'Charts', parallel: 'Parallel coordinates', scatter: 'Scatter', diff: 'Diff'};
  let teardown = null;

  function saveURL() {
    const p = new URLSearchParams();
    p.set('e', joinList(experimentIDs)); p.set('runs', joinList(runIDs)); p.set('keys', joinList(state.keys));
    if (state.x !== 'step') p.set('x', state.x);
    if (state.log) p.set('log', '1');
    if (state.ema) p.set('ema', String(state.ema));
    if (state.tab !== 'charts') p.set('tab', state.tab);
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
    else diffTab();
  }
  for (const [k, v] of Object.entries(tabNames)) tabs.append(el('button', {type: 'button', role: 'tab', dataset: {tab: k}, onclick: () => showTab(k)}, v));

  // ---- Charts -------------------------------------------------------------------------
  function chartsTab() {
    const keyBox = el('select', {multiple: true, size: Math.min(6, Math.max(2, catalog.metrics.length)), id: 'metric-keys', 'aria-label': 'Metrics to chart'},
      catalog.metrics.map((k) => el('option', {value: k, selected: state.keys.includes(k) ? true : undefined}, k)));
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

    keyBox.addEventListener('change', () => { state.keys = [...keyBox.selectedOptions].map((o) => o.value); saveURL(); build(); });
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

  function axisScale(col) {
    if (!col.numeric) {
      const n = col.categories.length;
      return {pos: (v) => (v === undefined ? null : (col.categories.indexOf(v) + 0.5) / Math.max(1, n)), text: (t) => col.categories[Math.floor(t * n)] ?? ''};
    }
    const vals = runs.map(col.get).map(Number).filter((v) => isFinite(v));
    let lo = Math.min(...vals); let hi = Math.max(...vals);
    if (!vals.length) { lo = 0; hi = 1; }
    if (hi === lo) { hi = lo + 1; lo -= 0; }
    return {lo, hi, pos: (v) => { const x = Number(v); return v === undefined || !isFinite(x) ? null : (x - lo) / (hi - lo); }, text: (t) => fmtNumber(lo + t * (hi - lo))};
  }

  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  // ---- Parallel coordinates with brushing ----------------------------------------------------
  function parallelTab() {
    const cols = numericColumns().filter((c) => c.id.startsWith('params.') || state.keys.includes(c.label) || catalog.metrics.length <= 6);
    const canvas = el('canvas', {class: 'wide-canvas', id: 'parallel', role: 'img', 'aria-label': 'Parallel coordinates'});
    const info = el('div', {class: 'muted', id: 'parallel-info'}, 'Drag along an axis to brush; click an axis to clear its brush.');
    panel.append(canvas, info);
    if (!cols.length) { info.textContent = 'These runs have no params or metrics to plot.'; return null; }
    const scales = cols.map(axisScale);
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
          g.strokeStyle = on ? color.get(r.run_id) : cssVar('--line'); g.globalAlpha = on ? 0.85 : 0.5; g.lineWidth = on ? 1.4 : 1;
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
      window.__cairnParallel = {axes: cols.map((c) => c.id), kept: kept.map((r) => r.run_id), brushes: [...brushes.entries()]};
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
          values.map((v) => el('td', {class: v === undefined ? 'muted' : undefined}, v === undefined ? '—' : v.length > 80 ? `${v.slice(0, 80)}…` : v))));
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
