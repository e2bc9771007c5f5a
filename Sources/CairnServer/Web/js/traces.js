// MLflow 3 traces of one experiment: the list (#/experiments/<id>/traces[?filter=…]) with state,
// latency, tokens and a filter in MLflow's trace grammar, and one trace
// (#/experiments/<id>/traces/<trace_id>): its span tree on a timeline, and for the chosen span its
// inputs, outputs, attributes and events, beside the trace's assessments and tags.
import {el, clear, errorBox, fmtTime, fmtDuration, hashQuery, setHashQuery} from './util.js';
import {get, post, mlflow} from './api.js';

const V3 = '/ajax-api/3.0/mlflow/traces';

function requestTime(info) { return Date.parse(info.request_time); }
function durationMs(info) {
  const d = info.execution_duration;
  return d ? Math.round(parseFloat(d) * 1000) : null;
}
function tokens(info) {
  try { return JSON.parse((info.trace_metadata || {})['mlflow.trace.tokenUsage'] || 'null'); } catch { return null; }
}
function stateBadge(state) {
  const cls = state === 'OK' ? 'FINISHED' : state === 'ERROR' ? 'FAILED' : 'RUNNING';
  return el('span', {class: `status ${cls}`}, state || '');
}
// The breadcrumb link to the experiment: its name once known (its id until then, or if unreadable).
function experimentCrumb(experimentID) {
  const link = el('a', {href: `#/experiments/${experimentID}`, class: 'experiment-crumb'}, `Experiment ${experimentID}`);
  mlflow('experiments/get', {experiment_id: experimentID})
    .then((r) => { link.textContent = r.experiment.name; })
    .catch(() => { /* shown by id */ });
  return link;
}
function preview(text) {
  if (!text) return '';
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}

export async function render(app, route) {
  if (route.path[3]) return renderTrace(app, route);
  const experimentID = route.path[1];
  // The filter is written back into the hash with replaceState (no hashchange), so any hash change the
  // page sees comes from outside (back, a link to the unfiltered list) and re-renders it from the hash.
  const filter = el('input', {type: 'search', class: 'grow mono', id: 'trace-filter', value: hashQuery().get('filter') || '',
    'aria-label': 'Filter traces', placeholder: "Filter: status = 'ERROR' AND tags.reviewed = 'yes'  (Enter to apply)"});
  const message = el('div', {id: 'trace-filter-error'});
  const runNote = el('p', {class: 'muted', id: 'traces-run', hidden: true});
  const count = el('span', {class: 'muted', id: 'trace-count'}, 'Loading traces…');
  const body = el('tbody');
  const more = el('button', {type: 'button', id: 'more-traces', hidden: true}, 'Load more');
  const table = el('table', {class: 'plain', id: 'traces-table'},
    el('thead', {}, el('tr', {}, ...['Trace', 'Name', 'State', 'Started', 'Latency', 'Tokens', 'Request', 'Response', 'Assessments']
      .map((h) => el('th', {}, h)))), body);
  app.append(
    el('div', {class: 'crumbs'}, el('a', {href: '#/experiments'}, 'Experiments'), ' / ',
      experimentCrumb(experimentID), ' / Traces'),
    el('h1', {}, 'Traces'),
    el('div', {class: 'toolbar'}, filter, el('button', {type: 'button', id: 'apply-trace-filter', onclick: () => load(true)}, 'Apply')),
    runNote, message, el('div', {class: 'toolbar'}, count), table, more);
  filter.addEventListener('keydown', (e) => { if (e.key === 'Enter') load(true); });
  more.addEventListener('click', () => load(false));

  let token = null;
  let shown = 0;
  async function load(reset) {
    if (reset) { clear(body); shown = 0; token = null; clear(message); }
    const q = hashQuery();
    if (filter.value) q.set('filter', filter.value); else q.delete('filter');
    setHashQuery(q);
    showRun(filter.value);
    let page;
    try {
      page = await post(`${V3}/search`, {locations: [{type: 'MLFLOW_EXPERIMENT', mlflow_experiment: {experiment_id: experimentID}}],
        filter: filter.value || undefined, max_results: 100, page_token: token || undefined});
    } catch (e) {
      message.append(errorBox(e, 'The filter was not accepted'));
      count.textContent = '';
      return;
    }
    for (const info of page.traces || []) {
      const usage = tokens(info);
      const href = `#/experiments/${experimentID}/traces/${encodeURIComponent(info.trace_id)}`;
      body.append(el('tr', {dataset: {traceId: info.trace_id}},
        el('td', {class: 'mono'}, el('a', {href}, info.trace_id)),
        el('td', {}, (info.tags || {})['mlflow.traceName'] || ''),
        el('td', {}, stateBadge(info.state)),
        el('td', {}, fmtTime(requestTime(info))),
        el('td', {class: 'num'}, fmtDuration(durationMs(info))),
        el('td', {class: 'num'}, usage && usage.total_tokens !== undefined ? String(usage.total_tokens) : ''),
        el('td', {class: 'mono wrap'}, preview(info.request_preview)),
        el('td', {class: 'mono wrap'}, preview(info.response_preview)),
        el('td', {}, (info.assessments || []).map((a) => el('span', {class: 'tag', title: a.rationale || ''},
          `${a.assessment_name}: ${JSON.stringify(a.feedback ? a.feedback.value : a.expectation ? (a.expectation.value ?? a.expectation.serialized_value?.value) : '')}`)))));
      shown++;
    }
    token = page.next_page_token || null;
    more.hidden = !token;
    count.textContent = shown === 0 ? 'No traces match.' : `${shown} trace${shown === 1 ? '' : 's'}${token ? ' (more available)' : ''}`;
  }
  // A list of one run's traces (an evaluation, or the run page's Traces card) names that run and links
  // to its page, where the run's metrics (the scorers' means after mlflow.genai.evaluate) are.
  async function showRun(text) {
    const m = /^\s*(?:attributes\.)?run_id\s*=\s*'([0-9A-Za-z_-]+)'\s*$/.exec(text || '');
    runNote.hidden = true;
    clear(runNote);
    if (!m) return;
    const runID = m[1];
    let name = runID;
    try { name = (await mlflow('runs/get', {run_id: runID})).run.info.run_name || runID; } catch { return; }
    if (filter.value !== text) return;
    runNote.append('Traces of run ', el('a', {href: `#/experiments/${experimentID}/runs/${encodeURIComponent(runID)}`}, name),
      ' — its metrics and parameters are on the run page.');
    runNote.hidden = false;
  }
  await load(true);
}

/** The attribute value of an OTLP AnyValue in protobuf JSON, as a plain JS value. */
function anyValue(v) {
  if (!v) return null;
  if ('string_value' in v) return v.string_value;
  if ('bool_value' in v) return v.bool_value;
  if ('int_value' in v) return Number(v.int_value);
  if ('double_value' in v) return Number(v.double_value);
  if ('array_value' in v) return (v.array_value.values || []).map(anyValue);
  if ('kvlist_value' in v) return Object.fromEntries((v.kvlist_value.values || []).map((kv) => [kv.key, anyValue(kv.value)]));
  if ('bytes_value' in v) return v.bytes_value;
  return null;
}
/** A protobuf-JSON `bytes` id (base64) as the hex MLflow shows. */
function hexID(b64) {
  if (!b64) return null;
  try { return [...atob(b64)].map((c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join(''); } catch { return b64; }
}
function attributes(list) { return Object.fromEntries((list || []).map((kv) => [kv.key, anyValue(kv.value)])); }
function pretty(value) { return typeof value === 'string' ? value : JSON.stringify(value, null, 2); }

async function renderTrace(app, route) {
  const experimentID = route.path[1];
  const traceID = route.path[3];
  const reply = await get(`${V3}/get`, {trace_id: traceID, allow_partial: 'true'});
  const info = reply.trace.trace_info;
  const spans = (reply.trace.spans || []).map((s) => ({
    id: hexID(s.span_id), parent: hexID(s.parent_span_id), name: s.name || '(unnamed)',
    start: Number(s.start_time_unix_nano || 0), end: Number(s.end_time_unix_nano || 0),
    status: (s.status && s.status.code) || 'STATUS_CODE_UNSET', message: s.status && s.status.message,
    attributes: attributes(s.attributes), events: (s.events || []).map((e) => ({name: e.name, time: Number(e.time_unix_nano || 0), attributes: attributes(e.attributes)})),
  }));
  const children = new Map();
  for (const s of spans) {
    const key = spans.some((p) => p.id === s.parent) ? s.parent : null;
    if (!children.has(key)) children.set(key, []);
    children.get(key).push(s);
  }
  const t0 = Math.min(...spans.map((s) => s.start));
  const t1 = Math.max(...spans.map((s) => s.end || s.start));
  const span = Math.max(1, t1 - t0);
  const usage = tokens(info);

  const tree = el('div', {class: 'span-tree', id: 'span-tree', role: 'tree'});
  const detail = el('div', {class: 'span-detail', id: 'span-detail'});
  let selected = null;
  const rows = new Map();
  function addRows(parent, depth) {
    for (const s of children.get(parent) || []) {
      const left = ((s.start - t0) / span) * 100;
      const width = Math.max(0.5, (((s.end || s.start) - s.start) / span) * 100);
      // Positions through the CSSOM: the page's CSP allows no inline style attributes.
      const name = el('div', {class: 'span-name'}, el('span', {class: 'tag'}, s.attributes['mlflow.spanType'] || 'SPAN'), ' ', s.name);
      name.style.paddingLeft = `${depth * 16 + 4}px`;
      const bar = el('div', {class: 'span-bar'});
      bar.style.left = `${left}%`;
      bar.style.width = `${width}%`;
      const row = el('div', {class: `span-row${s.status === 'STATUS_CODE_ERROR' ? ' span-error' : ''}`, role: 'treeitem', tabindex: '0', dataset: {spanId: s.id}},
        name, el('div', {class: 'span-bar-track'}, bar), el('div', {class: 'span-time num'}, fmtDuration((s.end - s.start) / 1e6)));
      row.addEventListener('click', () => choose(s));
      row.addEventListener('keydown', (e) => { if (e.key === 'Enter') choose(s); });
      rows.set(s.id, row);
      tree.append(row);
      addRows(s.id, depth + 1);
    }
  }
  addRows(null, 0);

  function section(title, value) {
    return [el('h3', {}, title), el('pre', {class: 'mono span-value'}, pretty(value))];
  }
  function choose(s) {
    if (selected) rows.get(selected.id).classList.remove('selected');
    selected = s;
    rows.get(s.id).classList.add('selected');
    const {['mlflow.spanInputs']: inputs, ['mlflow.spanOutputs']: outputs, ...rest} = s.attributes;
    clear(detail).append(...[
      el('h2', {}, s.name),
      el('div', {class: 'kv'},
        el('div', {}, 'Span ID'), el('div', {class: 'mono'}, s.id),
        el('div', {}, 'Status'), el('div', {}, s.status.replace('STATUS_CODE_', '') + (s.message ? ` — ${s.message}` : '')),
        el('div', {}, 'Duration'), el('div', {}, fmtDuration((s.end - s.start) / 1e6))),
      inputs !== undefined ? section('Inputs', inputs) : [],
      outputs !== undefined ? section('Outputs', outputs) : [],
      section('Attributes', rest),
      s.events.length ? [el('h3', {}, 'Events'), ...s.events.map((e) => el('div', {class: 'span-event'},
        el('strong', {}, e.name), ' ', el('span', {class: 'muted'}, `+${fmtDuration((e.time - s.start) / 1e6)}`),
        el('pre', {class: 'mono span-value'}, pretty(e.attributes))))] : []].flat());
  }

  const assessments = el('div', {id: 'trace-assessments'}, el('h3', {}, 'Assessments'),
    (info.assessments || []).length === 0 ? el('p', {class: 'muted'}, 'None.') : el('table', {class: 'plain'},
      el('thead', {}, el('tr', {}, ...['Name', 'Value', 'Source', 'Rationale', 'Valid'].map((h) => el('th', {}, h)))),
      el('tbody', {}, ...info.assessments.map((a) => el('tr', {},
        el('td', {}, a.assessment_name),
        el('td', {class: 'mono'}, JSON.stringify(a.feedback ? a.feedback.value : a.expectation ? (a.expectation.value ?? a.expectation.serialized_value?.value) : null)),
        el('td', {}, a.source ? `${a.source.source_type}${a.source.source_id ? `: ${a.source.source_id}` : ''}` : ''),
        el('td', {}, a.rationale || ''),
        el('td', {}, a.valid === false ? 'overridden' : 'yes'))))));
  const tags = Object.entries(info.tags || {}).filter(([k]) => !k.startsWith('mlflow.'));
  app.append(
    el('div', {class: 'crumbs'}, el('a', {href: '#/experiments'}, 'Experiments'), ' / ',
      experimentCrumb(experimentID), ' / ',
      el('a', {href: `#/experiments/${experimentID}/traces`}, 'Traces'), ' / ', traceID),
    el('h1', {}, (info.tags || {})['mlflow.traceName'] || traceID, ' ', stateBadge(info.state)),
    el('div', {class: 'kv', id: 'trace-summary'},
      el('div', {}, 'Trace ID'), el('div', {class: 'mono'}, traceID),
      el('div', {}, 'Started'), el('div', {}, fmtTime(requestTime(info))),
      el('div', {}, 'Latency'), el('div', {}, fmtDuration(durationMs(info))),
      usage ? [el('div', {}, 'Tokens'), el('div', {}, `${usage.input_tokens ?? '?'} in, ${usage.output_tokens ?? '?'} out, ${usage.total_tokens ?? '?'} total`)] : [],
      (info.trace_metadata || {})['mlflow.sourceRun'] ? [el('div', {}, 'Run'),
        el('div', {}, el('a', {href: `#/experiments/${experimentID}/runs/${info.trace_metadata['mlflow.sourceRun']}`}, info.trace_metadata['mlflow.sourceRun']))] : [],
      tags.length ? [el('div', {}, 'Tags'), el('div', {}, tags.map(([k, v]) => el('span', {class: 'tag'}, `${k}=${v}`)))] : []),
    el('div', {class: 'trace-layout'}, el('div', {}, el('h3', {}, `Spans (${spans.length})`), tree), detail),
    assessments);
  const root = (children.get(null) || [])[0];
  if (root) choose(root);
}
