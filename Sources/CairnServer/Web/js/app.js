// Cairn's web UI: a hash router over the pages. Routes:
//   #/experiments                         experiments list
//   #/experiments/<id>[,<id>…][?filter=…&sort=…&cols=…&sel=…&group=…&w=…&pin=…&ws=…&tree=1&charts=0&view=…]
//                                         runs table with the chart workspace and saved views
//   #/experiments/<id>/runs/<run_id>      run page (the link the mlflow client prints)
//   #/experiments/<id>/online             A/B report of an online experiment
//   #/experiments/<id>/traces[/<trace_id>] MLflow 3 traces of an experiment, one trace
//   #/compare?runs=…&keys=…&x=step|time|relative&log=1&ema=0.6[&tab=stats&sg=…&sm=…]   compare
//   #/models, #/models/<name>[?version=N] model registry
//   #/overview[?experiment_id=…]          health report
//   #/webhooks, #/webhooks/<id>           webhooks and their deliveries
//   #/accounts[?user=…]                   users, their permissions and API tokens (administrators)
//   #/audit[?actor=…&action=…&target=…&since=…&until=…]   audit log of every change
import {el, clear, errorBox} from './util.js';
import * as experiments from './experiments.js';
import * as runs from './runs.js';
import * as run from './run.js';
import * as compare from './compare.js';
import * as online from './online.js';
import * as models from './models.js';
import * as overview from './overview.js';
import * as webhooks from './webhooks.js';
import * as session from './session.js';
import * as accounts from './accounts.js';
import * as traces from './traces.js';
import * as audit from './audit.js';

window.__cairnErrors = [];
window.addEventListener('error', (e) => window.__cairnErrors.push(String(e.message)));
window.addEventListener('unhandledrejection', (e) => window.__cairnErrors.push(String(e.reason && e.reason.message || e.reason)));

// Theme: system by default; ?theme=dark|light in the page URL (or in the hash route's query)
// or the toggle forces one.
const themes = ['system', 'light', 'dark'];
function applyTheme(theme) {
  if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
  const button = document.getElementById('theme-toggle');
  if (button) button.textContent = `Theme: ${theme}`;
  window.dispatchEvent(new Event('cairn-theme'));
}
function initialTheme() {
  // ?theme= in the page URL or inside the hash route (#/experiments?theme=dark).
  const h = location.hash;
  const forced = new URLSearchParams(location.search).get('theme') || new URLSearchParams(h.includes('?') ? h.slice(h.indexOf('?') + 1) : '').get('theme');
  if (themes.includes(forced)) return forced;
  try { return localStorage.getItem('cairn.theme') || 'system'; } catch { return 'system'; }
}
let theme = initialTheme();
applyTheme(theme);

let cleanup = null;
let renderCount = 0;

function parseRoute() {
  const h = location.hash.replace(/^#/, '') || '/experiments';
  const q = h.indexOf('?');
  const path = (q >= 0 ? h.slice(0, q) : h).split('/').filter((x) => x).map(decodeURIComponent);
  return {path, query: new URLSearchParams(q >= 0 ? h.slice(q + 1) : '')};
}

let lastPathKey = null;

async function route(force = false) {
  const r = parseRoute();
  // MLflow's own link to an evaluation (the client prints
  // `#/experiments/<id>/evaluation-runs?selectedRunUuid=<run>` after mlflow.genai.evaluate):
  // the traces of that run, with their assessments.
  if (r.path[0] === 'experiments' && r.path[2] === 'evaluation-runs' && r.path.length === 3) {
    const runId = r.query.get('selectedRunUuid');
    const filter = runId ? `?filter=${encodeURIComponent(`run_id = '${runId.replace(/'/g, '')}'`)}` : '';
    location.replace(`#/experiments/${encodeURIComponent(r.path[1])}/traces${filter}`);
    return;
  }
  const pathKey = r.path.join('/');
  // Query-only changes (filter, sort, selection) are handled by the page itself.
  if (!force && pathKey === lastPathKey && window.__cairnPageHandlesQuery) return;
  lastPathKey = pathKey;
  window.__cairnPageHandlesQuery = false;
  if (cleanup) { try { cleanup(); } catch { /* page already gone */ } cleanup = null; }
  const app = clear(document.getElementById('app'));
  const section = r.path[0] || 'experiments';
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.nav === section);
  const token = ++renderCount;
  window.__cairnReady = false;
  if (session.needed) {
    session.renderSignIn(app, () => route(true));
    window.__cairnReady = true;
    return;
  }
  try {
    let result;
    if (section === 'experiments' && r.path.length === 1) result = await experiments.render(app, r);
    else if (section === 'experiments' && r.path.length === 2) result = await runs.render(app, r);
    else if (section === 'experiments' && r.path[2] === 'runs' && r.path[3]) result = await run.render(app, r);
    else if (section === 'experiments' && r.path[2] === 'online' && r.path.length === 3) result = await online.render(app, r);
    else if (section === 'experiments' && r.path[2] === 'traces' && r.path.length <= 4) result = await traces.render(app, r);
    else if (section === 'compare') result = await compare.render(app, r);
    else if (section === 'models') result = await models.render(app, r);
    else if (section === 'overview') result = await overview.render(app, r);
    else if (section === 'webhooks') result = await webhooks.render(app, r);
    else if (section === 'accounts') result = await accounts.render(app, r);
    else if (section === 'audit') result = await audit.render(app, r);
    else app.append(el('h1', {}, 'Not found'), el('p', {}, `There is no page at #/${r.path.join('/')}. `, el('a', {href: '#/experiments'}, 'Go to the experiments.')));
    if (token === renderCount) cleanup = typeof result === 'function' ? result : null;
  } catch (e) {
    if (token === renderCount) app.append(errorBox(e, 'This page could not be loaded'));
  }
  if (token === renderCount) window.__cairnReady = true;
}

window.addEventListener('hashchange', () => route());
// A session that ends while a page is open (expired, signed out elsewhere): back to the sign-in form.
window.addEventListener('cairn-unauthenticated', () => {
  if (session.needed) return;
  session.init().then(() => { if (session.needed) route(true); });
});
window.addEventListener('DOMContentLoaded', () => {
  document.getElementById('theme-toggle').addEventListener('click', () => {
    theme = themes[(themes.indexOf(theme) + 1) % themes.length];
    try { localStorage.setItem('cairn.theme', theme); } catch { /* private mode */ }
    applyTheme(theme);
  });
  applyTheme(theme);
  session.init().then(() => route(true));
});
