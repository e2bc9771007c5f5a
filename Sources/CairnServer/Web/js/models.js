// The model registry: registered models; per model its editable description, aliases (set and
// removed here), tags, its versions side by side with their source runs' metrics (the legacy
// Stage column only when a version uses stages); per version its description, lineage to its
// source run, the run's metrics, the signature and input example from its MLmodel file, its
// online evidence (the A/B experiment a version tagged cairn.online.experiment_id was tested
// in), and the history of changes in sentences.
import {el, clear, fmtTime, fmtNumber, errorBox} from './util.js';
import {mlflow, cairn, send, get, getText, artifactURL} from './api.js';
import {verdictBadge} from './stats.js';
import {permissions} from './permissions.js';

export async function render(app, route) {
  const name = route.path[1];
  if (!name) return list(app);
  return model(app, name, route.query.get('version'));
}

async function list(app) {
  app.append(el('h1', {}, 'Registered models'));
  const search = el('input', {type: 'search', class: 'grow', placeholder: 'Search models by name', 'aria-label': 'Search models'});
  const body = el('tbody');
  app.append(el('div', {class: 'toolbar'}, search),
    el('table', {class: 'plain', id: 'models'}, el('thead', {}, el('tr', {}, ['Name', 'Latest version', 'Aliases', 'Updated', 'Description'].map((h) => el('th', {}, h)))), body));
  let models = [];
  try {
    let token = '';
    do {
      const r = await mlflow('registered-models/search', {max_results: 1000, page_token: token});
      models.push(...(r.registered_models || []));
      token = r.next_page_token || '';
    } while (token);
  } catch (e) { app.append(errorBox(e, 'Models could not be loaded')); return; }
  function draw() {
    clear(body);
    const q = search.value.toLowerCase();
    const shown = models.filter((m) => m.name.toLowerCase().includes(q));
    for (const m of shown) {
      const latest = (m.latest_versions || []).reduce((a, v) => Math.max(a, Number(v.version)), 0);
      body.append(el('tr', {}, el('td', {}, el('a', {href: `#/models/${encodeURIComponent(m.name)}`}, m.name)), el('td', {}, latest ? `v${latest}` : ''),
        el('td', {}, (m.aliases || []).map((a) => `@${a.alias} → v${a.version}`).join(', ')), el('td', {}, fmtTime(m.last_updated_timestamp)), el('td', {}, m.description || '')));
    }
    if (!shown.length) body.append(el('tr', {}, el('td', {colspan: 5, class: 'muted'}, models.length ? 'No model matches.' : 'No registered models yet. Register one with mlflow.register_model or registered_model_name=… when logging.')));
  }
  search.addEventListener('input', draw);
  draw();
}

async function model(app, name, wanted) {
  app.append(el('div', {class: 'crumbs'}, el('a', {href: '#/models'}, 'Models'), ' / ', name), el('h1', {}, name));
  let m; let versions = [];
  const may = permissions({models: [name]});
  try {
    m = (await mlflow('registered-models/get', {name})).registered_model;
    const r = await mlflow('model-versions/search', {filter: `name = '${name.replace(/'/g, "''")}'`, max_results: 1000});
    versions = (r.model_versions || []).sort((a, b) => Number(b.version) - Number(a.version));
  } catch (e) { app.append(errorBox(e, `Model "${name}" could not be loaded`)); return; }
  // Descriptions and aliases are editable only with EDIT on the model (the server's rule).
  const canEdit = (await may).model(name, 'EDIT');
  // A version may name a run of another server (as MLflow allows): only held runs are links.
  const held = new Map();
  const runIDs = [...new Set(versions.map((v) => v.run_id).filter(Boolean))];
  const chunks = [];
  for (let i = 0; i < runIDs.length; i += 100) chunks.push(runIDs.slice(i, i + 100));
  try {
    for (const reply of await Promise.all(chunks.map((ids) => cairn('model-versions/runs', {run_ids: ids})))) {
      for (const run of reply.runs || []) held.set(run.run_id, run);
    }
  } catch (e) { app.append(errorBox(e, 'The versions\' runs could not be looked up')); }
  const sourceRun = (runID) => {
    if (!runID) return '';
    const run = held.get(runID);
    if (run) return el('a', {href: `#/experiments/${run.experiment_id}/runs/${runID}`}, run.run_name || runID.slice(0, 12));
    return el('span', {class: 'remote-run', title: `Run ${runID} is not on this server`}, el('span', {class: 'mono'}, runID.slice(0, 12)), el('span', {class: 'muted'}, ' (not on this server)'));
  };
  app.append(editableText({id: 'model-description', label: 'Description', value: m.description || '', empty: 'No description.', canEdit,
    save: (text) => send('PATCH', '/ajax-api/2.0/mlflow/registered-models/update', {name, description: text})}));
  const tags = m.tags || [];
  if (tags.length) app.append(el('h2', {}, 'Tags'), el('div', {class: 'kv'}, tags.flatMap((t) => [el('div', {}, t.key), el('div', {}, t.value)])));
  const aliasBox = el('div', {id: 'alias-editor'});
  app.append(el('h2', {}, 'Aliases'), el('p', {id: 'aliases'}, (m.aliases || []).length ? (m.aliases || []).map((a) => `@${a.alias} → version ${a.version}`).join(' · ') : 'No aliases.'), aliasBox);
  if (canEdit) drawAliasEditor(aliasBox, name, m.aliases || [], versions);

  // The versions side by side: the source run's metrics as columns; the legacy Stage column only when a version uses stages.
  const usesStages = versions.some((v) => v.current_stage && v.current_stage !== 'None');
  const runs = await sourceRuns(versions.slice(0, 50));
  const metricKeys = [...new Set([...runs.values()].flatMap((r) => (r.data.metrics || []).map((x) => x.key)))].sort().slice(0, 8);
  const metricOf = (v, k) => { const r = runs.get(v.run_id); const x = r && (r.data.metrics || []).find((y) => y.key === k); return x ? fmtNumber(x.value) : ''; };
  const detail = el('div', {id: 'version-detail'});
  app.append(el('h2', {}, 'Versions'), el('div', {class: 'scroll-x'}, el('table', {class: 'plain', id: 'versions'},
    el('thead', {}, el('tr', {}, ['Version', 'Aliases', ...(usesStages ? ['Stage'] : []), 'Source run', ...metricKeys, 'Created', ''].map((h) => el('th', {class: metricKeys.includes(h) ? 'num' : undefined}, h)))),
    el('tbody', {}, versions.map((v) => el('tr', {dataset: {version: v.version}}, el('td', {}, `v${v.version}`), el('td', {}, (v.aliases || []).map((a) => `@${a}`).join(', ')),
      usesStages ? el('td', {}, v.current_stage || '') : null,
      el('td', {}, sourceRun(v.run_id)),
      ...metricKeys.map((k) => el('td', {class: 'num'}, metricOf(v, k))),
      el('td', {class: 'time'}, fmtTime(v.creation_timestamp)),
      el('td', {}, el('button', {type: 'button', onclick: () => showVersion(v)}, 'Details')))),
    versions.length ? null : el('tr', {}, el('td', {colspan: 5 + metricKeys.length, class: 'muted'}, 'No versions yet. Register one with mlflow.register_model or registered_model_name=… when logging.'))))), detail);

  async function showVersion(v) {
    clear(detail).append(el('h2', {}, `Version ${v.version}`));
    detail.append(editableText({id: 'version-description', label: 'Description', value: v.description || '', empty: 'No description.', canEdit,
      save: (text) => send('PATCH', '/ajax-api/2.0/mlflow/model-versions/update', {name, version: v.version, description: text})}));
    try {
      const [lineage, history] = await Promise.all([
        cairn('model-versions/lineage', {name, version: v.version}),
        cairn('model-versions/history', {name, version: v.version}),
      ]);
      const run = lineage.run;
      const tagOf = (k) => (run?.data?.tags || []).find((t) => t.key === k)?.value;
      detail.append(el('h3', {}, 'Lineage'), el('div', {class: 'kv', id: 'lineage'},
        el('div', {}, 'Source'), el('div', {class: 'mono'}, v.source),
        el('div', {}, 'Logged model'), el('div', {class: 'mono'}, lineage.logged_model?.info?.model_id || '—'),
        el('div', {}, 'Run'), el('div', {}, runCell(lineage)),
        el('div', {}, 'Git commit'), el('div', {class: 'mono'}, tagOf('cairn.git.commit') || tagOf('mlflow.source.git.commit') || '—'),
        el('div', {}, 'Datasets'), el('div', {}, (run?.inputs?.dataset_inputs || []).map((d) => `${d.dataset.name} (${d.dataset.digest})`).join(', ') || '—')));
      const metrics = run?.data?.metrics || [];
      detail.append(el('h3', {}, 'Source run metrics'), metrics.length
        ? el('div', {class: 'chips', id: 'version-metrics'}, metrics.map((x) => el('span', {class: 'chip', title: `${x.key} at step ${x.step}`}, `${x.key} = ${fmtNumber(x.value)}`)))
        : el('p', {class: 'muted', id: 'version-metrics'}, 'The source run logged no metrics.'));
      const signature = el('div', {id: 'signature'}, el('p', {class: 'muted'}, 'Looking for the signature…'));
      detail.append(el('h3', {}, 'Signature and input example'), signature);
      showSignature(signature, v, lineage);
      const experimentID = (v.tags || []).find((t) => t.key === 'cairn.online.experiment_id')?.value;
      if (experimentID) detail.append(await onlineEvidence(experimentID));
      detail.append(el('h3', {}, 'History'), el('div', {class: 'scroll-x'}, el('table', {class: 'plain', id: 'history'},
        el('thead', {}, el('tr', {}, ['When', 'Who', 'Action', 'What happened'].map((h) => el('th', {}, h)))),
        el('tbody', {}, (history.events || []).map((e) => el('tr', {class: e.action.startsWith('gate_') ? `gate ${e.action}` : undefined},
          el('td', {}, fmtTime(e.timestamp)), el('td', {}, e.user || '—'), el('td', {}, e.action),
          e.action.startsWith('gate_') ? gateCell(e.changes || {}) : el('td', {title: JSON.stringify(e.changes)}, historySentence(e))))))));
    } catch (e) { detail.append(errorBox(e, 'Lineage or history could not be loaded')); }
  }
  if (versions.length) await showVersion(versions.find((v) => v.version === wanted) || versions[0]);
}

/** The source runs of the versions (run id → run), each asked once. */
async function sourceRuns(versions) {
  const ids = [...new Set(versions.map((v) => v.run_id).filter((x) => x))];
  const out = new Map();
  await Promise.all(ids.map((id) => mlflow('runs/get', {run_id: id}).then((r) => out.set(id, r.run)).catch(() => {})));
  return out;
}

/** A registry history event as a sentence: "alias champion moved from v1 to v2 by ada". */
export function historySentence(e) {
  const c = e.changes || {};
  const by = e.user ? ` by ${e.user}` : '';
  const q = (x) => `“${String(x).length > 60 ? `${String(x).slice(0, 60)}…` : x}”`;
  const v = e.version ? `v${e.version}` : 'the model';
  switch (e.action) {
    case 'create_registered_model': return `model created${by}`;
    case 'create': return `${v} registered${c.run_id ? ` from run ${String(c.run_id).slice(0, 12)}` : ''}${c.source ? ` (${c.source})` : ''}${by}`;
    case 'rename': return `renamed from ${q(c.from)} to ${q(c.to)}${by}`;
    case 'update_description': return c.to ? `description of ${v} set to ${q(c.to)}${by}` : `description of ${v} cleared${by}`;
    case 'set_tag': return c.from === null || c.from === undefined ? `tag ${c.key} set to ${q(c.to)}${by}` : `tag ${c.key} changed from ${q(c.from)} to ${q(c.to)}${by}`;
    case 'delete_tag': return `tag ${c.key} removed (was ${q(c.from)})${by}`;
    case 'transition_stage': return `stage of ${v} moved from ${c.from || 'None'} to ${c.to}${c.because ? ` because ${c.because}` : ''}${by}`;
    case 'set_alias': return c.from_version === null || c.from_version === undefined ? `alias ${c.alias} set to ${v}${by}` : `alias ${c.alias} moved from v${c.from_version} to ${v}${by}`;
    case 'delete_alias': return c.moved_to_version !== undefined ? `alias ${c.alias} left ${v} for v${c.moved_to_version}${by}` : `alias ${c.alias} removed from ${v}${by}`;
    case 'delete': return `${v} deleted${by}`;
    case 'delete_registered_model': return `model deleted${by}`;
    default: return `${e.action.replace(/_/g, ' ')}${by}`;
  }
}

/** A text shown as Markdown-free prose with an Edit button (when o.canEdit); saving calls save(text). */
function editableText(o) {
  const box = el('div', {id: o.id, class: 'editable'});
  let value = o.value;
  function show() {
    clear(box).append(el('p', {class: value ? undefined : 'muted'}, value || o.empty), ...(o.canEdit ? [el('button', {type: 'button', class: 'edit', onclick: edit}, `Edit ${o.label.toLowerCase()}`)] : []));
  }
  function edit() {
    const area = el('textarea', {'aria-label': o.label, rows: '3'});
    area.value = value;
    const msg = el('div');
    const save = el('button', {type: 'button', class: 'primary save'}, 'Save');
    save.addEventListener('click', async () => {
      save.disabled = true; clear(msg);
      try { await o.save(area.value); value = area.value; show(); } catch (e) { msg.append(errorBox(e, `The ${o.label.toLowerCase()} was not saved`)); save.disabled = false; }
    });
    clear(box).append(area, el('div', {class: 'toolbar'}, save, el('button', {type: 'button', onclick: show}, 'Cancel')), msg);
    area.focus();
  }
  show();
  return box;
}

/** Set an alias on a version, or remove one; the page reloads with the new state. */
function drawAliasEditor(box, name, aliases, versions) {
  const alias = el('input', {type: 'text', id: 'alias-name', placeholder: 'alias (e.g. champion)', 'aria-label': 'Alias'});
  const version = el('select', {id: 'alias-version', 'aria-label': 'Version'}, versions.map((v) => el('option', {value: v.version}, `v${v.version}`)));
  const msg = el('div');
  const act = async (fn) => { clear(msg); try { await fn(); window.dispatchEvent(new HashChangeEvent('hashchange')); } catch (e) { msg.append(errorBox(e, 'The alias was not changed')); } };
  box.append(el('div', {class: 'toolbar'}, alias, version,
    el('button', {type: 'button', id: 'alias-set', onclick: () => act(() => send('POST', '/ajax-api/2.0/mlflow/registered-models/alias', {name, alias: alias.value.trim(), version: version.value}))}, 'Set alias'),
    ...aliases.map((a) => el('button', {type: 'button', class: 'alias-remove', dataset: {alias: a.alias}, title: `Remove @${a.alias}`,
      onclick: () => act(() => send('DELETE', '/ajax-api/2.0/mlflow/registered-models/alias', {name, alias: a.alias}))}, `× @${a.alias}`))), msg);
}

/**
 * The model's signature (inputs and outputs from its MLmodel file) and its input example, read
 * from the logged model's artifacts, or from the run artifact folder a runs:/ source names.
 */
async function showSignature(box, v, lineage) {
  let base = null;
  if (lineage.logged_model?.info?.artifact_uri) base = {uri: lineage.logged_model.info.artifact_uri, dir: ''};
  else {
    const m = /^runs:\/[^/]+\/(.*)$/.exec(v.source || '');
    if (m && lineage.run) base = {uri: lineage.run.info.artifact_uri, dir: m[1].replace(/\/+$/, '')};
  }
  const at = (file) => artifactURL(base.uri, base.dir ? `${base.dir}/${file}` : file);
  let mlmodel = null;
  // Listed first, so that a version without an MLmodel file costs no failed request.
  const folder = base ? at('').replace(/^\/api\/2\.0\/mlflow-artifacts\/artifacts\//, '').replace(/\/$/, '') : '';
  let files = new Set();
  if (base) { try { files = new Set(((await get('/api/2.0/mlflow-artifacts/artifacts', {path: decodeURIComponent(folder)})).files || []).map((f) => f.path)); } catch { files = new Set(); } }
  if (files.has('MLmodel')) { try { mlmodel = (await getText(at('MLmodel'), 256 * 1024)).text; } catch { mlmodel = null; } }
  clear(box);
  if (!mlmodel) { box.append(el('p', {class: 'muted'}, 'No MLmodel file next to this version’s source, so no signature is known.')); return; }
  const field = (name) => {
    const m = new RegExp(`^\\s+${name}:\\s*'(.*)'\\s*$`, 'm').exec(mlmodel);
    if (!m) return null;
    try { return JSON.parse(m[1].replace(/''/g, "'")); } catch { return null; }
  };
  const inputs = field('inputs'); const outputs = field('outputs');
  const cols = (spec) => (Array.isArray(spec) ? spec : []).map((c) => [c.name ?? '(unnamed)', c.type + (c.tensor_spec ? ` ${JSON.stringify(c.tensor_spec)}` : ''), c.required === false ? 'optional' : '']);
  const table = (id, rows) => el('table', {class: 'plain', id}, el('thead', {}, el('tr', {}, ['Name', 'Type', ''].map((h) => el('th', {}, h)))),
    el('tbody', {}, rows.map((r) => el('tr', {}, r.map((x) => el('td', {}, x))))));
  if (inputs || outputs) {
    box.append(el('div', {class: 'signature-grid'}, el('div', {}, el('h4', {}, 'Inputs'), inputs ? table('signature-inputs', cols(inputs)) : el('p', {class: 'muted'}, '—')),
      el('div', {}, el('h4', {}, 'Outputs'), outputs ? table('signature-outputs', cols(outputs)) : el('p', {class: 'muted'}, '—'))));
  } else box.append(el('p', {class: 'muted'}, 'The MLmodel file has no signature.'));
  const example = /saved_input_example_info:[\s\S]*?artifact_path:\s*(\S+)/.exec(mlmodel);
  if (example && files.has(example[1])) {
    try {
      const t = await getText(at(example[1]), 4096);
      let shown = t.text;
      try { shown = JSON.stringify(JSON.parse(t.text), null, 2); } catch { /* as text */ }
      box.append(el('h4', {}, 'Input example'), el('pre', {id: 'input-example'}, shown), t.truncated ? el('p', {class: 'muted'}, 'Only the beginning is shown.') : '');
    } catch { /* no example file */ }
  }
}

// What the A/B experiment found: each lift's verdict and sentence, and the sample-ratio check.
async function onlineEvidence(experimentID) {
  const box = el('section', {id: 'online-evidence'}, el('h3', {}, 'Online evidence'));
  const link = el('a', {href: `#/experiments/${encodeURIComponent(experimentID)}/online`, id: 'online-report-link'}, 'Open the A/B report');
  try {
    const report = await cairn('online/report', {experiment_id: experimentID});
    box.append(el('p', {class: 'muted'}, `Tested in the online experiment ${report.experiment_name} (${report.variants.length} variants; the control is “${report.control}”). `, link));
    if (report.sample_ratio && report.sample_ratio.mismatch) {
      box.append(el('div', {class: 'banner srm', role: 'alert'}, el('strong', {}, 'Sample-ratio mismatch: '), 'the split of units differs from the plan, so these lifts are not to be trusted.'));
    }
    const lifts = (report.metrics || []).flatMap((m) => (m.lifts || []).map((l) => ({metric: m.key, ...l})));
    box.append(lifts.length
      ? el('ul', {class: 'summaries'}, lifts.map((l) => el('li', {dataset: {verdict: l.verdict, metric: l.metric}}, verdictBadge(l.verdict), ' ', l.summary)))
      : el('p', {class: 'muted'}, 'The experiment has no metric to report yet.'));
  } catch (e) {
    box.append(errorBox(e, `The A/B report of experiment ${experimentID} could not be loaded`), el('p', {}, link));
  }
  return box;
}

// The producing run: a link when this server holds it; MLflow also lets a version or a logged
// model name a run of another server, shown by its id and marked as such.
function runCell(lineage) {
  const run = lineage.run;
  if (run) return el('a', {href: `#/experiments/${run.info.experiment_id}/runs/${run.info.run_id}`}, run.info.run_name || run.info.run_id);
  if (lineage.run_id) return el('span', {id: 'remote-run'}, el('span', {class: 'mono'}, lineage.run_id), el('span', {class: 'muted'}, ' (not on this server)'));
  return '—';
}

// A promotion gate's evaluation in words: what it was for, each check, and an override's reason.
function gateCell(c) {
  const target = c.alias !== undefined ? `alias ${c.alias}` : `stage ${c.stage}`;
  return el('td', {},
    el('div', {}, `Gate for ${target}: ${c.result}`, c.override_reason ? ` — override: "${c.override_reason}"` : ''),
    el('ul', {class: 'gate-checks'}, (c.checks || []).map((k) => el('li', {class: k.passed ? 'passed' : 'failed'}, `${k.passed ? '✓' : '✗'} ${k.requirement}: ${k.detail}`))));
}
