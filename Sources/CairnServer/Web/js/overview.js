// Overview: a dashboard over a time window (GET /api/cairn/v1/dashboard: runs per day by
// status, success rate, promotion gate pass rate, storage growth, reproductions and time to
// reproduce, audit events with a known actor, recent failures, running and stale runs), then the health report of all experiments or one (GET /api/cairn/v1/report).
import {el, errorBox, fmtTime, fmtBytes, hashQuery, setHashQuery} from './util.js';
import {cairn, experimentNames} from './api.js';

function card(label, value, hint) {
  return el('div', {class: 'card'}, el('div', {class: 'muted'}, label), el('div', {class: 'big'}, value === null || value === undefined ? '—' : String(value)), hint ? el('div', {class: 'muted'}, hint) : '');
}

export async function render(app, route) {
  const experimentID = route.query.get('experiment_id');
  const heading = el('h1', {}, experimentID ? `Overview of experiment ${experimentID}` : 'Overview');
  app.append(heading);
  const names = await experimentNames();
  const named = (id) => names.get(id) || `experiment ${id}`;
  if (experimentID) heading.textContent = `Overview of ${named(experimentID)}`;
  let r;
  try {
    r = await cairn('report', {experiment_id: experimentID || undefined});
  } catch (e) {
    if (e.status === 404 && (e.code === 'ENDPOINT_NOT_FOUND' || !e.code)) {
      app.append(el('div', {class: 'error', role: 'alert', id: 'report-missing'}, 'This server has no health report yet (GET /api/cairn/v1/report answered 404: ', e.message, '). It comes with a newer Cairn.'));
    } else {
      app.append(errorBox(e, 'The report could not be loaded'));
    }
    return;
  }
  const pct = (x) => (x === null || x === undefined ? '—' : `${(x * 100).toFixed(1)} %`);
  app.append(await dashboard(r.experiment_ids || [], experimentID, pct));
  const runs = r.runs || {}; const link = r.linkage || {}; const art = r.artifacts || {}; const rep = r.reproducibility || {};
  app.append(el('p', {class: 'muted', id: 'report-experiments'}, 'Experiments: ',
    (r.experiment_ids || []).length ? (r.experiment_ids || []).flatMap((id, i) => [i ? ', ' : '', el('a', {href: `#/experiments/${id}`}, named(id))]) : 'all'),
    el('h2', {}, 'All runs'), el('div', {class: 'cards', id: 'report-runs'}, card('Total', runs.total), card('Finished', runs.finished), card('Failed', runs.failed),
      card('Killed', runs.killed), card('Running', runs.running), ...(runs.stale ? [card('Stale (running, silent)', runs.stale)] : []), card('Scheduled', runs.scheduled), card('Success rate', pct(r.success_rate))),
    el('h2', {}, 'Linkage'), el('div', {class: 'cards'}, card('Runs', link.total), card('With code version', link.with_code), card('With data version', link.with_data), card('With both', link.with_both)),
    el('h2', {}, 'Artifacts'), el('div', {class: 'cards'}, card('Files', art.files), card('Blobs', art.blobs), card('Verified', art.verified), card('Missing', art.missing), card('Damaged', art.damaged),
      ...(art.unchecked ? [card('Not checked yet', art.unchecked)] : [])),
    el('p', {class: 'muted'}, art.oldest_check_time ? `Blob checks are kept; the oldest counted here is from ${new Date(art.oldest_check_time).toLocaleString()}. Each visit re-hashes what is due (never checked, failed, or over a week old), up to 64 MiB; cairn verify checks everything.` : ''),
    el('h2', {}, 'Reproducibility'), el('div', {class: 'cards'}, card('Attempted', rep.attempted), card('Reproduced', rep.reproduced)));
  // The audit SLI is over the whole store (the log is not per experiment).
  const au = r.audit;
  if (au) {
    app.append(el('h2', {}, 'Audit'), el('div', {class: 'cards', id: 'report-audit'},
      card('Audit completeness', pct(au.sli), 'changes with an audit event, actor known'),
      card('Changes with an event', pct(au.coverage), `${au.changes_with_event} of ${au.counted_changes} experiments, runs and models created since the log began`),
      card('Actor known', pct(au.actor_known), `${au.events_with_actor} of ${au.events} events`)),
    el('p', {class: 'muted'}, el('a', {href: '#/audit'}, 'Open the audit log'), '; cairn audit verify checks its hash chain.'));
  }
}

const STATUS_COLORS = {finished: '--ok', failed: '--error-fg', killed: '--warn', running: '--accent'};

// The window's figures: cards, runs per day (stacked by status; a bar opens those runs), storage
// growth, the latest failures and the runs running now.
async function dashboard(experimentIDs, experimentID, pct) {
  const box = el('section', {id: 'dashboard'});
  const q = hashQuery();
  const span = q.get('window') || 'week';
  const picker = el('select', {id: 'dashboard-window', 'aria-label': 'Time window'},
    ...[['day', 'Last day'], ['week', 'Last 7 days'], ['month', 'Last 30 days']].map(([v, t]) => el('option', {value: v, selected: v === span ? true : undefined}, t)));
  picker.addEventListener('change', () => {
    const next = hashQuery();
    if (picker.value === 'week') next.delete('window'); else next.set('window', picker.value);
    setHashQuery(next, false);
  });
  box.append(el('div', {class: 'toolbar'}, el('h2', {}, 'Dashboard'), picker));
  let d;
  try {
    d = await cairn('dashboard', {window: span, experiment_id: experimentID || undefined});
  } catch (e) { box.append(errorBox(e, 'The dashboard could not be loaded')); return box; }
  const days = d.days || [];
  const sum = (k) => days.reduce((a, x) => a + (x[k] || 0), 0);
  const growth = days.reduce((a, x) => a + (x.artifact_bytes || 0), 0);
  const stale = (d.running || []).filter((x) => x.stale).length;
  box.append(el('div', {class: 'cards', id: 'dashboard-cards'},
    card('Runs started', sum('finished') + sum('failed') + sum('killed') + sum('running') + sum('scheduled')),
    card('Success rate', pct(d.success_rate), 'finished / ended, runs started in the window'),
    card('Failed or killed', sum('failed') + sum('killed')),
    card('Running now', (d.running || []).length, stale ? `${stale} stale (silent too long)` : ''),
    card('Promotion pass rate', pct(d.promotion_pass_rate), `${sum('gates_passed')} passed, ${sum('gates_failed')} refused, ${sum('gates_overridden')} overridden`),
    card('Artifacts written', fmtBytes(growth), `${fmtBytes(d.artifact_bytes_before + growth)} in all`)));
  // Cost exists only with a cost model (cairn server --cost-model); without one the card is left out.
  if (d.cost) {
    const c = d.cost;
    box.querySelector('#dashboard-cards').append(card('Cost per effective run', c.cost_per_effective_run !== undefined ? `${c.cost_per_effective_run.toFixed(2)} ${c.currency}` : '—',
      `${c.total.toFixed(2)} ${c.currency} over ${c.finished_runs} finished runs, all time${(c.over_budget || []).length ? `; over budget: ${c.over_budget.join(', ')}` : ''}`));
  }
  const seconds = (x) => (x === null || x === undefined ? '—' : x < 120 ? `${x.toFixed(1)} s` : x < 7200 ? `${(x / 60).toFixed(1)} min` : `${(x / 3600).toFixed(1)} h`);
  box.querySelector('#dashboard-cards').append(
    card('Reproduced', d.reproduce_attempts ? `${d.reproduced} of ${d.reproduce_attempts}` : '—', 'cairn reproduce runs started in the window'),
    card('Time to reproduce', seconds(d.time_to_reproduce_median_seconds),
      d.time_to_reproduce_max_seconds !== undefined ? `median wall time of the runs that reproduced; slowest ${seconds(d.time_to_reproduce_max_seconds)}` : 'no run reproduced in the window'),
    card('Audit: actor known', pct(d.audit_actor_known), `${sum('audit_events_with_actor')} of ${sum('audit_events')} audit events in the window`));
  const range = (x) => `attributes.start_time >= ${x.day} AND attributes.start_time < ${x.day + 86400000}`;
  box.append(barChart(days, experimentIDs, range));
  const reproduceRange = (x) => `${range(x)} AND tags.\`cairn.reproduce.of\` != ''`;
  box.append(el('div', {class: 'dash-charts'},
    pairChart('dashboard-reproduce-chart', 'cairn reproduce runs per day', days, ['reproduce_attempts', 'attempted', '--warn'], ['reproduced', 'reproduced', '--ok'],
      (x) => { if (experimentIDs.length) location.hash = `#/experiments/${experimentIDs.join(',')}?filter=${encodeURIComponent(reproduceRange(x))}`; }),
    pairChart('dashboard-audit-chart', 'Audit events per day', days, ['audit_events', 'events', '--muted'], ['audit_events_with_actor', 'actor known', '--accent'],
      (x) => { location.hash = `#/audit?since=${new Date(x.day).toISOString()}&until=${new Date(x.day + 86400000).toISOString()}`; })));
  const runLink = (x) => el('a', {href: `#/experiments/${x.experiment_id}/runs/${x.run_id}`}, x.run_name || x.run_id);
  const list = (id, title, items, line, empty) => el('div', {class: 'dash-list', id},
    el('h3', {}, title), items.length ? el('ul', {}, items.map((x) => el('li', {}, ...line(x)))) : el('p', {class: 'muted'}, empty));
  box.append(el('div', {class: 'dash-lists'},
    list('dashboard-failures', 'Recent failures', d.recent_failures || [], (x) => [runLink(x), ` ${x.status.toLowerCase()} `, el('span', {class: 'muted'}, fmtTime(x.end_time || x.start_time))], 'No failed or killed runs in the window.'),
    list('dashboard-running', 'Running now', d.running || [], (x) => [runLink(x), ' ', x.stale ? el('span', {class: 'status RUNNING stale'}, 'stale') : '', ' ',
      el('span', {class: 'muted'}, `last activity ${fmtTime(x.last_activity)}`)], 'Nothing is running.')));
  return box;
}

// Runs started per day, stacked by their status now; clicking a bar opens those runs.
function barChart(days, experimentIDs, range) {
  const canvas = el('canvas', {role: 'img', 'aria-label': 'Runs started per day by status', id: 'dashboard-runs-chart'});
  const node = el('div', {class: 'chart dash-chart'}, el('h3', {}, 'Runs started per day'), canvas,
    el('div', {class: 'legend muted'}, ...Object.keys(STATUS_COLORS).map((k) => el('span', {class: `swatch ${k}`}, k))));
  const keys = Object.keys(STATUS_COLORS);
  const bars = [];
  const draw = () => {
    const max = Math.max(1, ...days.map((x) => keys.reduce((a, k) => a + (x[k] || 0), 0)));
    const {css, g, left, bottom, slot, height} = dayFrame(canvas, days, 160, 600, max);
    bars.length = 0;
    days.forEach((x, i) => {
      let y = bottom; const x0 = left + i * slot + slot * 0.15; const w = slot * 0.7;
      for (const k of keys) {
        const h = ((x[k] || 0) / max) * (bottom - 8);
        if (h > 0) { g.fillStyle = css.getPropertyValue(STATUS_COLORS[k]).trim() || '#888'; g.fillRect(x0, y - h, w, h); y -= h; }
      }
      bars.push({x0, w, day: x});
      if (days.length <= 31 && (days.length <= 8 || i % Math.ceil(days.length / 8) === 0)) {
        g.fillStyle = css.getPropertyValue('--muted') || '#888';
        g.fillText(new Date(x.day).toISOString().slice(5, 10), x0, height - 4);
      }
    });
    window.__cairnDashboard = {bars: days.map((x) => keys.reduce((a, k) => a + (x[k] || 0), 0)), centers: bars.map((b) => b.x0 + b.w / 2)};
  };
  canvas.addEventListener('click', (e) => {
    const box = canvas.getBoundingClientRect(); const px = e.clientX - box.left;
    const hit = bars.find((b) => px >= b.x0 && px <= b.x0 + b.w);
    if (hit && experimentIDs.length) location.hash = `#/experiments/${experimentIDs.join(',')}?filter=${encodeURIComponent(range(hit.day))}`;
  });
  requestAnimationFrame(draw);
  return node;
}

// Two counts per day side by side (e.g. attempts and successes); clicking a day calls open(day).
function pairChart(id, title, days, [allKey, allLabel, allColor], [partKey, partLabel, partColor], open) {
  const canvas = el('canvas', {role: 'img', 'aria-label': title, id});
  // The swatch colour goes through the CSSOM: the page's CSP refuses inline style attributes.
  const key = (label, color) => { const s = el('span', {class: 'swatch'}, label); s.style.setProperty('--swatch', `var(${color})`); return s; };
  const node = el('div', {class: 'chart dash-chart'}, el('h3', {}, title), canvas,
    el('div', {class: 'legend muted'}, key(allLabel, allColor), key(partLabel, partColor)));
  const slots = [];
  const draw = () => {
    const max = Math.max(1, ...days.map((x) => x[allKey] || 0));
    const {css, g, left, bottom, slot} = dayFrame(canvas, days, 120, 300, max);
    slots.length = 0;
    days.forEach((x, i) => {
      const x0 = left + i * slot + slot * 0.15; const w = slot * 0.35;
      [[allKey, allColor, 0], [partKey, partColor, w]].forEach(([k, color, dx]) => {
        const h = ((x[k] || 0) / max) * (bottom - 8);
        if (h > 0) { g.fillStyle = css.getPropertyValue(color).trim() || '#888'; g.fillRect(x0 + dx, bottom - h, w, h); }
      });
      slots.push({x0, w: 2 * w, day: x});
    });
    window.__cairnDashboardCharts = {...(window.__cairnDashboardCharts || {}), [id]: {all: days.map((x) => x[allKey] || 0), part: days.map((x) => x[partKey] || 0)}};
  };
  canvas.addEventListener('click', (e) => {
    const box = canvas.getBoundingClientRect(); const px = e.clientX - box.left;
    const hit = slots.find((b) => px >= b.x0 && px <= b.x0 + b.w);
    if (hit) open(hit.day);
  });
  requestAnimationFrame(draw);
  return node;
}

// Sizes a dashboard chart's canvas to its box (sharp on high-DPI screens) and draws the y scale
// 0…max; returns what a chart draws its days with.
function dayFrame(canvas, days, height, fallbackWidth, max) {
  const css = getComputedStyle(document.body);
  const width = Math.max(canvas.parentNode ? canvas.parentNode.clientWidth : fallbackWidth, 200);
  const ratio = window.devicePixelRatio || 1;
  canvas.width = width * ratio; canvas.height = height * ratio; canvas.style.width = `${width}px`; canvas.style.height = `${height}px`;
  const g = canvas.getContext('2d'); g.scale(ratio, ratio); g.clearRect(0, 0, width, height);
  const left = 30; const bottom = height - 18; const slot = (width - left) / Math.max(days.length, 1);
  g.fillStyle = css.getPropertyValue('--muted') || '#888'; g.font = '11px system-ui, sans-serif';
  g.fillText(String(max), 2, 12); g.fillText('0', 2, bottom);
  return {css, g, left, bottom, slot, height};
}
