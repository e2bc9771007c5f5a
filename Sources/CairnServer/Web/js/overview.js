// Overview: the health report of all experiments or one (GET /api/cairn/v1/report).
import {el, errorBox} from './util.js';
import {cairn} from './api.js';

function card(label, value, hint) {
  return el('div', {class: 'card'}, el('div', {class: 'muted'}, label), el('div', {class: 'big'}, value === null || value === undefined ? '—' : String(value)), hint ? el('div', {class: 'muted'}, hint) : '');
}

export async function render(app, route) {
  const experimentID = route.query.get('experiment_id');
  app.append(el('h1', {}, experimentID ? `Overview of experiment ${experimentID}` : 'Overview'));
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
  const runs = r.runs || {}; const link = r.linkage || {}; const art = r.artifacts || {}; const rep = r.reproducibility || {};
  app.append(el('p', {class: 'muted'}, `Experiments: ${(r.experiment_ids || []).join(', ') || 'all'}`),
    el('h2', {}, 'Runs'), el('div', {class: 'cards', id: 'report-runs'}, card('Total', runs.total), card('Finished', runs.finished), card('Failed', runs.failed),
      card('Killed', runs.killed), card('Running', runs.running), ...(runs.stale ? [card('Stale (running, silent)', runs.stale)] : []), card('Scheduled', runs.scheduled), card('Success rate', pct(r.success_rate))),
    el('h2', {}, 'Linkage'), el('div', {class: 'cards'}, card('Runs', link.total), card('With code version', link.with_code), card('With data version', link.with_data), card('With both', link.with_both)),
    el('h2', {}, 'Artifacts'), el('div', {class: 'cards'}, card('Files', art.files), card('Blobs', art.blobs), card('Verified', art.verified), card('Missing', art.missing), card('Damaged', art.damaged),
      ...(art.unchecked ? [card('Not checked yet', art.unchecked)] : [])),
    el('p', {class: 'muted'}, art.oldest_check_time ? `Blob checks are kept; the oldest counted here is from ${new Date(art.oldest_check_time).toLocaleString()}. Each visit re-hashes what is due (never checked, failed, or over a week old), up to 64 MiB; cairn verify checks everything.` : ''),
    el('h2', {}, 'Reproducibility'), el('div', {class: 'cards'}, card('Attempted', rep.attempted), card('Reproduced', rep.reproduced)));
}
