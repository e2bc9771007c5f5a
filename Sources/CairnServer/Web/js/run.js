// The run page: overview (status and duration, key params, latest metrics with sparklines,
// the run's own tags, the note (Markdown, editable), then the provenance: source, git commit
// with the dirty diff, command, host, environment), params, metrics (latest/min/max and a
// chart each), tags, datasets, logged models, child runs with their metrics and the artifact browser.
import {el, clear, fmtTime, fmtDuration, fmtNumber, fmtCompact, fmtBytes, errorBox, hashQuery, setHashQuery, runColor, runColors, swatch} from './util.js';
import {mlflow, mlflowPost, post, cairn, getText, artifactURL} from './api.js';
import {renderMarkdown} from './markdown.js';
import {LineChart} from './chart.js';
import {permissions} from './permissions.js';

const NOTE = 'mlflow.note.content';

export async function render(app, route) {
  window.__cairnPageHandlesQuery = true;
  const experimentID = route.path[1];
  const runID = route.path[3];
  let run; let experiment = null;
  try {
    run = (await mlflow('runs/get', {run_id: runID})).run;
  } catch (e) { app.append(el('h1', {}, 'Run'), errorBox(e, `Run ${runID} could not be loaded`)); return; }
  const may = permissions({experiments: [run.info.experiment_id]});
  try { experiment = (await mlflow('experiments/get', {experiment_id: run.info.experiment_id})).experiment; } catch { /* shown by id */ }
  // The note's Edit button only for callers who may change the run (EDIT on its experiment).
  const canEdit = (await may).experiment(run.info.experiment_id, 'EDIT');
  const info = run.info;
  const tags = Object.fromEntries((run.data.tags || []).map((t) => [t.key, t.value]));
  const params = run.data.params || [];
  const metrics = run.data.metrics || [];
  const expID = info.experiment_id || experimentID;
  app.append(el('div', {class: 'crumbs'}, el('a', {href: '#/experiments'}, 'Experiments'), ' / ',
    el('a', {href: `#/experiments/${expID}`}, experiment ? experiment.name : `experiment ${expID}`), ' / ', info.run_name || runID),
  el('h1', {}, info.run_name || runID, ' ', el('span', {class: `status ${info.status}`}, info.status)));
  if (info.status === 'RUNNING') {
    // The server's stale rule (no metric logged for --stale-after) comes with its run table rows.
    cairn('runs/table', {experiment_ids: expID, filter: `attributes.run_id = '${runID}'`}).then((t) => {
      const row = (t.runs || [])[0];
      if (row && row.stale) app.querySelector('h1').append(' ', el('span', {class: 'status RUNNING stale', id: 'run-stale', title: 'Nothing logged for the server\'s stale threshold: the job may have died.'}, `stale since ${fmtTime(row.last_activity)}`));
    }).catch(() => {});
  }
  const tabs = el('div', {class: 'tabs', role: 'tablist'});
  const panel = el('div', {id: 'run-panel'});
  app.append(tabs, panel);
  const names = {overview: 'Overview', params: `Params (${params.length})`, metrics: `Metrics (${metrics.length})`, tags: 'Tags',
    artifacts: 'Artifacts', datasets: `Datasets (${(run.inputs?.dataset_inputs || []).length})`, models: 'Models', children: 'Child runs'};
  let teardown = null;
  function show(name) {
    const p = hashQuery(); if (name === 'overview') p.delete('tab'); else p.set('tab', name); setHashQuery(p);
    for (const b of tabs.children) b.classList.toggle('active', b.dataset.tab === name);
    if (teardown) { teardown(); teardown = null; }
    clear(panel);
    const f = {overview, params: paramsTab, metrics: metricsTab, tags: tagsTab, artifacts: artifactsTab, datasets, models: modelsTab, children}[name];
    Promise.resolve(f()).then((t) => { teardown = typeof t === 'function' ? t : null; }).catch((e) => panel.append(errorBox(e)));
  }
  for (const [k, v] of Object.entries(names)) tabs.append(el('button', {type: 'button', role: 'tab', dataset: {tab: k}, onclick: () => show(k)}, v));

  // "by ann" under the start time; nothing when the client did not know the user.
  function startedBy() {
    const user = info.user_id || tags['mlflow.user'] || '';
    return user && user !== 'unknown' ? `by ${user}` : '';
  }

  function kv(pairs) {
    return el('div', {class: 'kv'}, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '').flatMap(([k, v]) => [el('div', {}, k), el('div', {}, v)]));
  }

  // A deleted run says that `cairn gc` forgets its artifacts, except those a model uses.
  function deletedNotice() {
    const box = el('div', {id: 'deleted-run'});
    if (info.lifecycle_stage !== 'deleted') return box;
    box.append(el('p', {class: 'card'}, 'This run is deleted: cairn gc forgets its artifacts.'));
    cairn('artifacts', {run_id: runID}).then((r) => {
      const users = r.kept_for || [];
      if (!users.length) return;
      clear(box);
      box.append(el('p', {class: 'card', id: 'kept-artifacts'}, `This run is deleted, but its artifacts are kept because ${users.join(', ')} ${users.length === 1 ? 'uses' : 'use'} them; cairn gc forgets only its other files.`));
    }).catch(() => { /* the notice stays general */ });
    return box;
  }

  // The run's MLflow 3 traces (an evaluation run's, or traces linked to the run): a card
  // linking to the experiment's trace list filtered to this run, when there are any.
  function tracesCard(cards) {
    const filter = `run_id = '${runID}'`;
    post('/ajax-api/3.0/mlflow/traces/search', {locations: [{type: 'MLFLOW_EXPERIMENT', mlflow_experiment: {experiment_id: expID}}], filter, max_results: 100})
      .then((page) => {
        const n = (page.traces || []).length;
        if (!n) return;
        const label = `${n}${page.next_page_token ? '+' : ''} trace${n === 1 && !page.next_page_token ? '' : 's'}`;
        cards.append(el('div', {class: 'card', id: 'run-traces'}, el('div', {class: 'muted'}, 'Traces'),
          el('a', {href: `#/experiments/${expID}/traces?filter=${encodeURIComponent(filter)}`}, label)));
      }).catch(() => { /* no traces card */ });
  }

  async function overview() {
    const storageLine = el('span', {id: 'run-storage'});
    const start = Number(info.start_time || 0); const end = Number(info.end_time || 0);
    const commit = tags['cairn.git.commit'] || tags['mlflow.source.git.commit'];
    const dirty = tags['cairn.git.dirty'];
    const parent = tags['mlflow.parentRunId'];
    // First what a researcher looks for: status and duration, key params, the latest metrics
    // with sparklines, their own tags and the note; then where the run came from.
    const duration = start && end ? fmtDuration(end - start) : info.status === 'RUNNING' && start ? `${fmtDuration(Date.now() - start)} so far` : '—';
    const userTags = Object.keys(tags).filter((k) => !k.startsWith('mlflow.') && !k.startsWith('cairn.')).sort();
    const sparks = el('div', {class: 'spark-grid', id: 'run-metrics'});
    panel.append(el('h2', {}, 'Overview'), deletedNotice(),
      el('div', {class: 'cards', id: 'run-summary'},
        el('div', {class: 'card'}, el('div', {class: 'muted'}, 'Status'), el('div', {class: 'big'}, el('span', {class: `status ${info.status}`}, info.status))),
        el('div', {class: 'card'}, el('div', {class: 'muted'}, 'Duration'), el('div', {class: 'big'}, duration)),
        el('div', {class: 'card'}, el('div', {class: 'muted'}, 'Started'), el('div', {}, fmtTime(start) || '—'), el('div', {class: 'muted'}, startedBy())),
        parent ? el('div', {class: 'card'}, el('div', {class: 'muted'}, 'Parent run'), el('a', {href: `#/experiments/${expID}/runs/${parent}`}, parent.slice(0, 12))) : ''),
      el('h3', {}, 'Key params'),
      params.length ? el('div', {class: 'chips', id: 'run-key-params'}, [...params].sort((a, b) => (a.key < b.key ? -1 : 1)).slice(0, 16).map((p) => el('span', {class: 'chip mono', title: `${p.key} = ${p.value}`}, `${p.key} = ${fmtCompact(p.value, 4)}`)),
        params.length > 16 ? el('a', {href: '#', onclick: (e) => { e.preventDefault(); show('params'); }}, `all ${params.length} params`) : '') : el('p', {class: 'muted'}, 'No params.'),
      el('h3', {}, 'Latest metrics'), metrics.length ? sparks : el('p', {class: 'muted'}, 'No metrics.'),
      ...(userTags.length ? [el('h3', {}, 'Tags'), el('div', {class: 'chips', id: 'run-user-tags'}, userTags.map((k) => el('span', {class: 'chip', title: `${k} = ${tags[k]}`}, `${k} = ${tags[k].length > 40 ? `${tags[k].slice(0, 40)}…` : tags[k]}`)))] : []));
    drawSparks(sparks);
    tracesCard(panel.querySelector('#run-summary'));
    const noteBox = el('div', {id: 'note'});
    panel.append(el('h2', {}, 'Note'), noteBox);
    panel.append(el('h2', {}, 'Provenance'), kv([
      ['Run ID', el('span', {class: 'mono'}, runID)],
      ['Started', fmtTime(start)], ['Ended', fmtTime(end)],
      ['User', info.user_id || tags['mlflow.user']],
      ['Source', tags['mlflow.source.name']],
      ['Git commit', commit ? el('span', {class: 'mono'}, commit, dirty === 'true' ? ' (uncommitted changes)' : dirty === 'false' ? ' (clean)' : '') : ''],
      ['Git branch', tags['cairn.git.branch']], ['Git remote', tags['cairn.git.remote']],
      ['Command', tags['cairn.command'] ? el('code', {}, tags['cairn.command']) : ''],
      ['Working directory', tags['cairn.cwd']],
      ['Python', tags['cairn.python.version']],
      ['Parent run', parent ? el('a', {href: `#/experiments/${expID}/runs/${parent}`}, parent) : ''],
      ['Artifact URI', el('span', {class: 'mono'}, info.artifact_uri)],
      ['Storage', storageLine],
    ]));
    cairn('storage', {experiment_ids: info.experiment_id, run_id: runID}).then((reply) => {
      const s = reply.experiments?.[0]?.runs?.[0]?.storage;
      if (!s) return;
      storageLine.append(`${s.artifact_files} artifact files, ${fmtBytes(s.blob_bytes)} stored (${fmtBytes(s.unique_bytes)} only this run's, ${fmtBytes(s.shared_bytes)} shared); `
        + `${s.metric_points} metric point${s.metric_points === 1 ? '' : 's'}, ${fmtBytes(s.metric_bytes)}`);
    }).catch(() => storageLine.append('—'));
    const host = Object.keys(tags).filter((k) => k.startsWith('cairn.host.')).sort();
    if (host.length) panel.append(el('h3', {}, 'Host'), kv(host.map((k) => [k.slice(11), tags[k]])));
    const env = Object.keys(tags).filter((k) => k.startsWith('cairn.env.')).sort();
    if (env.length) panel.append(el('h3', {}, 'Environment'), kv(env.map((k) => [k.slice(10), tags[k]])));
    function showNote() {
      clear(noteBox);
      const text = tags[NOTE] || '';
      noteBox.append(text ? renderMarkdown(text) : el('p', {class: 'muted'}, 'No note yet.'),
        ...(canEdit ? [el('button', {type: 'button', id: 'edit-note', onclick: editNote}, text ? 'Edit note' : 'Add a note')] : []));
    }
    function editNote() {
      clear(noteBox);
      const area = el('textarea', {id: 'note-text', 'aria-label': 'Note (Markdown)'});
      area.value = tags[NOTE] || '';
      const msg = el('div');
      const save = el('button', {type: 'button', class: 'primary', id: 'save-note'}, 'Save');
      save.addEventListener('click', async () => {
        clear(msg); save.disabled = true;
        try {
          await mlflowPost('runs/set-tag', {run_id: runID, key: NOTE, value: area.value});
          tags[NOTE] = area.value; showNote();
        } catch (e) { msg.append(errorBox(e, 'The note was not saved')); save.disabled = false; }
      });
      noteBox.append(el('div', {class: 'note-editor'}, area), el('div', {class: 'toolbar'}, save, el('button', {type: 'button', onclick: showNote}, 'Cancel'), el('span', {class: 'muted'}, 'Markdown: # headings, *emphasis*, `code`, lists, [links](https://…)')), msg);
      area.focus();
    }
    showNote();
    // The uncommitted diff and logs captured by `cairn run`.
    const captured = el('div');
    panel.append(captured);
    try {
      const listing = await cairn('artifacts', {run_id: runID, path: 'cairn'});
      const files = new Set((listing.files || []).map((f) => f.path));
      if (files.has('cairn/git.diff')) {
        const diff = await getText(artifactURL(info.artifact_uri, 'cairn/git.diff'), 200000);
        captured.append(el('h2', {}, 'Uncommitted changes (git diff)'), el('pre', {id: 'git-diff'}, diff.text), diff.truncated ? el('p', {class: 'muted'}, 'Truncated; download it from the Artifacts tab.') : '');
      }
      for (const log of ['cairn/stdout.log', 'cairn/stderr.log']) {
        if (files.has(log)) captured.append(el('p', {}, el('a', {href: '#', onclick: (e) => { e.preventDefault(); openArtifact(log); }}, `${log} — open in the artifact browser`)));
      }
    } catch { /* no captured artifacts */ }
  }

  /** Each metric's latest value and a sparkline of its whole series (60 buckets, one request). */
  async function drawSparks(box) {
    const keys = metrics.map((m) => m.key).sort();
    const latest = new Map(metrics.map((m) => [m.key, m.value]));
    const lines = new Map(keys.map((k) => {
      const line = el('span', {class: 'spark'});
      box.append(el('div', {class: 'spark-item', dataset: {key: k}}, el('div', {class: 'spark-key', title: k}, k), el('div', {class: 'spark-value'}, fmtNumber(latest.get(k))), line));
      return [k, line];
    }));
    if (!keys.length) return;
    try {
      const reply = await cairn('metrics/series', {run_ids: [runID], keys, buckets: 60});
      for (const s of reply.series || []) { const holder = lines.get(s.key); if (holder) holder.append(sparkline(s.last || [])); }
      window.__cairnSparklines = (reply.series || []).length;
    } catch { window.__cairnSparklines = 0; }
  }

  let pendingArtifact = null;
  function openArtifact(path) { pendingArtifact = path; show('artifacts'); }

  function simpleTable(head, rows, id) {
    return el('table', {class: 'plain', id}, el('thead', {}, el('tr', {}, head.map((h) => el('th', {class: h.num ? 'num' : undefined}, h.label || h)))),
      el('tbody', {}, rows.length ? rows.map((r) => el('tr', {}, r.map((c, i) => el('td', {class: head[i].num ? 'num' : undefined}, c))))
        : el('tr', {}, el('td', {colspan: head.length, class: 'muted'}, 'None.'))));
  }

  function paramsTab() {
    panel.append(simpleTable(['Param', 'Value'], params.map((p) => [p.key, p.value]), 'params-table'));
  }

  function tagsTab() {
    const keys = Object.keys(tags).sort();
    panel.append(simpleTable(['Tag', 'Value'], keys.map((k) => [k, tags[k].length > 500 ? `${tags[k].slice(0, 500)}…` : tags[k]]), 'tags-table'));
  }

  async function metricsTab() {
    let summary = {};
    try {
      const t = await cairn('runs/table', {experiment_ids: [expID], filter: `attributes.run_id = '${runID}'`, view_type: 'ALL'});
      summary = t.runs && t.runs[0] ? t.runs[0].metrics : {};
    } catch (e) { panel.append(errorBox(e, 'Metric summaries could not be loaded')); }
    const keys = metrics.map((m) => m.key).sort();
    panel.append(simpleTable(['Metric', {label: 'Latest', num: true}, {label: 'Min', num: true}, {label: 'Max', num: true}, {label: 'Step', num: true}, {label: 'Points', num: true}],
      keys.map((k) => { const s = summary[k] || []; return [k, fmtNumber(s[0]), fmtNumber(s[1]), fmtNumber(s[2]), String(s[3] ?? ''), String(s[5] ?? '')]; }), 'metrics-table'));
    const grid = el('div', {class: 'charts'});
    panel.append(el('h2', {}, 'Charts'), grid);
    const charts = [];
    for (const key of keys) {
      const entry = {key, range: null, seq: 0, requests: 0};
      entry.chart = new LineChart({id: `run:${key}`, title: key, xMode: 'step', onZoom: (a, b) => { entry.range = [a, b]; load(entry); }, onReset: () => { entry.range = null; load(entry); }});
      grid.append(entry.chart.node);
      charts.push(entry);
    }
    async function load(entry) {
      const seq = ++entry.seq;
      try {
        const r = await cairn('metrics/series', {run_ids: [runID], keys: [entry.key], buckets: entry.chart.plotWidth, min_x: entry.range?.[0], max_x: entry.range?.[1]});
        if (seq !== entry.seq) return;
        entry.requests++;
        entry.chart.setData((r.series || []).map((s) => ({runId: runID, label: info.run_name, color: runColor(runID), firstX: s.first_x || [], lastX: s.last_x || [], min: s.min || [], max: s.max || [], last: s.last || [], pointCount: s.point_count})),
          {zoomed: !!entry.range, minX: entry.range?.[0] ?? null, maxX: entry.range?.[1] ?? null, requests: entry.requests});
      } catch (e) { entry.chart.setError(e.message); }
    }
    requestAnimationFrame(() => charts.forEach(load));
    return () => charts.forEach((c) => c.chart.destroy());
  }

  function datasets() {
    const inputs = run.inputs?.dataset_inputs || [];
    panel.append(simpleTable(['Name', 'Digest', 'Context', 'Source type', 'Source'], inputs.map((d) => [
      d.dataset.name, el('span', {class: 'mono'}, d.dataset.digest), (d.tags || []).filter((t) => t.key === 'mlflow.data.context').map((t) => t.value).join(', '),
      d.dataset.source_type, d.dataset.source.length > 200 ? `${d.dataset.source.slice(0, 200)}…` : d.dataset.source]), 'datasets-table'));
  }

  async function modelsTab() {
    const outputs = run.outputs?.model_outputs || [];
    panel.append(el('h2', {}, 'Logged models'), simpleTable(['Model ID', 'Step'], outputs.map((o) => [el('span', {class: 'mono'}, o.model_id), String(o.step ?? '')]), 'logged-models'));
    try {
      const r = await mlflow('model-versions/search', {filter: `run_id = '${runID}'`, max_results: 200});
      panel.append(el('h2', {}, 'Registered versions'), simpleTable(['Model', 'Version', 'Aliases', 'Created'], (r.model_versions || []).map((v) => [
        el('a', {href: `#/models/${encodeURIComponent(v.name)}`}, v.name), v.version, (v.aliases || []).join(', '), fmtTime(v.creation_timestamp)]), 'registered-versions'));
    } catch (e) { panel.append(errorBox(e, 'Registered versions could not be loaded')); }
  }

  async function children() {
    try {
      const r = await cairn('runs/table', {experiment_ids: [expID], filter: `tags.mlflow.parentRunId = '${runID}'`});
      // Each child's latest value of every metric the children logged, and the params that differ between them.
      const kids = r.runs || [];
      const metricKeys = [...new Set(kids.flatMap((c) => Object.keys(c.metrics || {})))].sort();
      const paramKeys = [...new Set(kids.flatMap((c) => Object.keys(c.params || {})))].sort()
        .filter((k) => new Set(kids.map((c) => c.params[k])).size > 1);
      const colors = runColors(kids.map((c) => c.run_id));
      const head = ['Run', 'Status', 'Started', ...paramKeys, ...metricKeys.map((k) => ({label: k, num: true}))];
      panel.append(el('div', {class: 'scroll-x'}, simpleTable(head, kids.map((c) => [
        el('span', {}, swatch(colors.get(c.run_id)), el('a', {href: `#/experiments/${c.experiment_id}/runs/${c.run_id}`}, c.run_name)), c.status, fmtTime(c.start_time),
        ...paramKeys.map((k) => c.params[k] ?? ''), ...metricKeys.map((k) => (c.metrics[k] ? fmtNumber(Number(c.metrics[k][0])) : ''))]), 'child-runs')),
      kids.length ? el('p', {}, el('a', {href: `#/compare?e=${expID}&runs=${kids.map((c) => c.run_id).join(',')}&keys=${metricKeys.slice(0, 4).map(encodeURIComponent).join(',')}`, id: 'compare-children'}, `Compare the ${kids.length} child runs`)) : '');
    } catch (e) { panel.append(errorBox(e, 'Child runs could not be loaded')); }
  }

  async function artifactsTab() {
    const tree = el('div', {class: 'tree', id: 'artifact-tree'});
    const preview = el('div', {class: 'preview', id: 'artifact-preview'}, el('p', {class: 'muted'}, 'Choose a file to preview it.'));
    panel.append(el('div', {class: 'split'}, tree, preview));
    let active = null;
    async function list(path, container, depth) {
      let reply;
      try { reply = await cairn('artifacts', {run_id: runID, path}); } catch (e) { container.append(errorBox(e, 'Artifacts could not be listed')); return; }
      const files = (reply.files || []).sort((a, b) => (b.is_dir - a.is_dir) || a.path.localeCompare(b.path));
      if (!files.length && depth === 0) container.append(el('p', {class: 'muted'}, 'This run has no artifacts.'));
      for (const f of files) {
        const name = f.path.split('/').pop();
        const node = el('div', {class: 'node', dataset: {path: f.path}, tabindex: '0', role: 'treeitem'},
          el('span', {}, '\u00a0'.repeat(depth * 3), f.is_dir ? '▸ ' : '', name), f.is_dir ? '' : el('span', {class: 'size'}, fmtBytes(f.file_size)));
        const kids = el('div', {hidden: true});
        container.append(node, kids);
        const open = async () => {
          if (f.is_dir) {
            kids.hidden = !kids.hidden;
            if (!kids.hidden && !kids.childElementCount) await list(f.path, kids, depth + 1);
            node.firstChild.textContent = `${'\u00a0'.repeat(depth * 3)}${kids.hidden ? '▸' : '▾'} ${name}`;
          } else {
            if (active) active.classList.remove('active');
            active = node; node.classList.add('active');
            await showFile(f);
          }
        };
        node.addEventListener('click', open);
        node.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(); } });
        // The first level opens by itself (and the way to an artifact another tab links to).
        if (pendingArtifact ? pendingArtifact === f.path || pendingArtifact.startsWith(`${f.path}/`) : depth === 0 && f.is_dir) await open();
      }
    }
    async function showFile(f) {
      clear(preview);
      const url = artifactURL(info.artifact_uri, f.path);
      const ext = (f.path.split('.').pop() || '').toLowerCase();
      preview.append(el('h3', {}, f.path), kv([['Size', fmtBytes(f.file_size)], ['SHA-256', el('span', {class: 'mono'}, f.sha256 || '')]]),
        el('p', {}, el('a', {href: url, download: f.path.split('/').pop(), id: 'download-link'}, 'Download')));
      const body = el('div', {id: 'preview-body'});
      preview.append(body);
      try {
        if (['png', 'jpg', 'jpeg', 'gif', 'webp', 'bmp', 'svg'].includes(ext)) {
          body.append(el('img', {src: url, alt: f.path}));
        } else if (f.file_size > 5 * 1024 * 1024 && !['csv', 'tsv'].includes(ext)) {
          body.append(el('p', {class: 'muted'}, 'Too large to preview; download it.'));
        } else {
          const t = await getText(url, 2 * 1024 * 1024);
          if (ext === 'json') {
            let shown = t.text;
            try { shown = JSON.stringify(JSON.parse(t.text), null, 2); } catch { /* show as text */ }
            body.append(el('pre', {}, shown));
          } else if (ext === 'csv' || ext === 'tsv') {
            body.append(csvTable(t.text, ext === 'tsv' ? '\t' : ','));
          } else if (/[\u0000-\u0008\u000e-\u001f]/.test(t.text.slice(0, 4096))) {
            body.append(el('p', {class: 'muted'}, 'A binary file; download it.'));
          } else {
            body.append(el('pre', {}, t.text));
          }
          if (t.truncated) body.append(el('p', {class: 'muted'}, 'Only the beginning is shown; download the whole file.'));
        }
      } catch (e) { body.append(errorBox(e, 'The file could not be previewed')); }
    }
    await list('', tree, 0);
    pendingArtifact = null;
  }

  const initial = route.query.get('tab');
  show(names[initial] ? initial : 'overview');
  return () => { if (teardown) teardown(); };
}

/** Parses CSV (quotes, doubled quotes) into a table of at most 500 rows. */
export function csvTable(text, sep) {
  const rows = []; let row = []; let cell = ''; let quoted = false;
  for (let i = 0; i < text.length && rows.length <= 500; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (ch === '"') quoted = false; else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === sep) { row.push(cell); cell = ''; } else if (ch === '\n') { row.push(cell.replace(/\r$/, '')); rows.push(row); row = []; cell = ''; } else cell += ch;
  }
  if (cell || row.length) { row.push(cell); rows.push(row); }
  const [head, ...rest] = rows;
  return el('table', {class: 'plain', id: 'csv-preview'}, el('thead', {}, el('tr', {}, (head || []).map((h) => el('th', {}, h)))),
    el('tbody', {}, rest.slice(0, 500).map((r) => el('tr', {}, r.map((c) => el('td', {}, c))))));
}

/** An SVG polyline of the finite values, in the text colour (so it follows the theme). */
export function sparkline(values, width = 120, height = 28) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('width', width); svg.setAttribute('height', height); svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('aria-hidden', 'true'); svg.setAttribute('preserveAspectRatio', 'none');
  const ys = values.map(Number);
  const ok = ys.filter((v) => isFinite(v));
  if (!ok.length) return svg;
  const lo = Math.min(...ok); const hi = Math.max(...ok);
  const n = ys.length;
  const pts = [];
  ys.forEach((v, i) => { if (isFinite(v)) pts.push(`${(n === 1 ? width / 2 : (i / (n - 1)) * (width - 2) + 1).toFixed(1)},${(hi === lo ? height / 2 : height - 2 - ((v - lo) / (hi - lo)) * (height - 4)).toFixed(1)}`); });
  const line = document.createElementNS(ns, pts.length === 1 ? 'circle' : 'polyline');
  if (pts.length === 1) { const [x, y] = pts[0].split(','); line.setAttribute('cx', x); line.setAttribute('cy', y); line.setAttribute('r', '2'); line.setAttribute('fill', 'currentColor'); }
  else { line.setAttribute('points', pts.join(' ')); line.setAttribute('fill', 'none'); line.setAttribute('stroke', 'currentColor'); line.setAttribute('stroke-width', '1.5'); }
  svg.append(line);
  return svg;
}
