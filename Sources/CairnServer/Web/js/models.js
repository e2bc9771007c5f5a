// The model registry: registered models; per model its versions, aliases, tags, the
// lineage of each version to its source run, its online evidence (the A/B experiment a
// version tagged cairn.online.experiment_id was tested in), and the history of changes.
import {el, clear, fmtTime, errorBox} from './util.js';
import {mlflow, cairn} from './api.js';
import {verdictBadge} from './stats.js';

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
  try {
    m = (await mlflow('registered-models/get', {name})).registered_model;
    const r = await mlflow('model-versions/search', {filter: `name = '${name.replace(/'/g, "''")}'`, max_results: 1000});
    versions = (r.model_versions || []).sort((a, b) => Number(b.version) - Number(a.version));
  } catch (e) { app.append(errorBox(e, `Model "${name}" could not be loaded`)); return; }
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
  if (m.description) app.append(el('p', {}, m.description));
  const tags = m.tags || [];
  if (tags.length) app.append(el('h2', {}, 'Tags'), el('div', {class: 'kv'}, tags.flatMap((t) => [el('div', {}, t.key), el('div', {}, t.value)])));
  app.append(el('h2', {}, 'Aliases'), el('p', {id: 'aliases'}, (m.aliases || []).length ? (m.aliases || []).map((a) => `@${a.alias} → version ${a.version}`).join(' · ') : 'No aliases.'));
  const detail = el('div', {id: 'version-detail'});
  app.append(el('h2', {}, 'Versions'), el('div', {class: 'scroll-x'}, el('table', {class: 'plain', id: 'versions'},
    el('thead', {}, el('tr', {}, ['Version', 'Aliases', 'Stage', 'Source run', 'Created', ''].map((h) => el('th', {}, h)))),
    el('tbody', {}, versions.map((v) => el('tr', {}, el('td', {}, `v${v.version}`), el('td', {}, (v.aliases || []).map((a) => `@${a}`).join(', ')), el('td', {}, v.current_stage || ''),
      el('td', {}, sourceRun(v.run_id)), el('td', {}, fmtTime(v.creation_timestamp)),
      el('td', {}, el('button', {type: 'button', onclick: () => showVersion(v)}, 'Lineage & history'))))))), detail);

  async function showVersion(v) {
    clear(detail).append(el('h2', {}, `Version ${v.version}`));
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
      const experimentID = (v.tags || []).find((t) => t.key === 'cairn.online.experiment_id')?.value;
      if (experimentID) detail.append(await onlineEvidence(experimentID));
      detail.append(el('h3', {}, 'History'), el('div', {class: 'scroll-x'}, el('table', {class: 'plain', id: 'history'},
        el('thead', {}, el('tr', {}, ['When', 'Who', 'Action', 'Changes'].map((h) => el('th', {}, h)))),
        el('tbody', {}, (history.events || []).map((e) => el('tr', {class: e.action.startsWith('gate_') ? `gate ${e.action}` : undefined},
          el('td', {}, fmtTime(e.timestamp)), el('td', {}, e.user || '—'), el('td', {}, e.action),
          e.action.startsWith('gate_') ? gateCell(e.changes || {}) : el('td', {class: 'mono'}, JSON.stringify(e.changes))))))));
    } catch (e) { detail.append(errorBox(e, 'Lineage or history could not be loaded')); }
  }
  if (versions.length) await showVersion(versions.find((v) => v.version === wanted) || versions[0]);
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
