// The A/B report of an online experiment (#/experiments/<id>/online): its runs are the
// variants (the control tagged cairn.control=true). The variants and the sample-ratio check
// (a loud banner when the split differs from the plan), then per metric the arms, the lifts
// with their fixed-horizon and always-valid intervals and verdicts, and the cumulative lift
// over time; the warnings and the model versions tested here.
import {el, errorBox, colorFor, num} from './util.js';
import {cairn} from './api.js';
import {LineChart} from './chart.js';
import {stat, signed, percent, pValue, pEquals, interval, verdictBadge, warningList} from './stats.js';

export async function render(app, route) {
  const id = route.path[1];
  const crumbs = el('div', {class: 'crumbs'}, el('a', {href: '#/experiments'}, 'Experiments'), ' / ', el('a', {href: `#/experiments/${id}`}, `experiment ${id}`), ' / A/B report');
  const title = el('h1', {}, 'A/B report');
  app.append(crumbs, title);
  let report;
  try {
    report = await cairn('online/report', {experiment_id: id});
  } catch (e) {
    app.append(errorBox(e, 'No A/B report'), el('p', {class: 'muted'},
      'An online experiment has one run per variant, the control tagged cairn.control=true, and per time bucket the metrics exposures and <metric>.conversions (or <metric>.sum and <metric>.sum_squares).'));
    window.__cairnOnline = {loaded: true, error: e.message};
    return null;
  }
  crumbs.children[1].textContent = report.experiment_name;
  title.textContent = `A/B report: ${report.experiment_name}`;
  const level = `${stat(report.level * 100, 3)}%`;
  const colors = new Map(report.variants.filter((v) => !v.control).map((v, i) => [v.name, colorFor(i + 1)]));

  // The sample-ratio check first: when it fails, nothing below is to be trusted.
  const srm = report.sample_ratio || {};
  const srmWarning = (report.warnings || []).find((w) => w.code === 'sample_ratio_mismatch');
  if (srm.mismatch) {
    app.append(el('div', {class: 'banner srm', id: 'srm-banner', role: 'alert'},
      el('strong', {}, 'Sample-ratio mismatch: do not trust these results.'), ' ',
      srmWarning ? srmWarning.message.replace(/^Sample-ratio mismatch:\s*(.)/i, (_, c) => c.toUpperCase()) : `The split of units differs from the plan (chi-square ${pEquals(srm.p)}).`));
  }

  app.append(el('h2', {}, 'Variants'), el('div', {class: 'scroll-x'}, el('table', {class: 'plain stats', id: 'online-variants'},
    el('thead', {}, el('tr', {}, ['Variant', 'Exposures', 'Observed share', 'Planned share', 'Run'].map((h, i) => el('th', {class: i >= 1 && i <= 3 ? 'num' : undefined}, h)))),
    el('tbody', {}, report.variants.map((v) => {
      const off = v.observed_share !== undefined && Math.abs(v.observed_share - v.planned_share) >= 0.005;
      return el('tr', {dataset: {variant: v.name}},
        el('th', {scope: 'row'}, v.name, v.control && v.name.toLowerCase() !== 'control' ? el('span', {class: 'tag'}, 'control') : ''),
        el('td', {class: 'num'}, Number(v.exposures).toLocaleString()),
        el('td', {class: `num${srm.mismatch && off ? ' warn-text' : ''}`}, percent(v.observed_share)),
        el('td', {class: 'num'}, percent(v.planned_share)),
        el('td', {class: 'mono'}, el('a', {href: `#/experiments/${id}/runs/${v.run_id}`}, v.run_id.slice(0, 12))));
    })))),
  el('p', {class: 'muted', id: 'srm-check'}, `Sample-ratio check (chi-square, ${srm.df ?? '—'} df): χ² = ${stat(srm.chi_square)}, ${pEquals(srm.p)}; `,
    srm.mismatch ? el('strong', {class: 'warn-text'}, 'the split differs from the plan.') : 'the split matches the plan.'));

  const warnings = warningList((report.warnings || []).filter((w) => w.code !== 'sample_ratio_mismatch'), 'online-warnings');
  if (warnings) app.append(el('h2', {}, 'Warnings'), warnings);

  const charts = [];
  for (const m of report.metrics || []) {
    const key = m.key;
    const section = el('section', {class: 'online-metric', dataset: {metric: key}});
    const rate = m.kind === 'rate';
    const value = (v) => (rate ? percent(v) : stat(v));
    const diff = (v) => (rate ? (v === undefined ? '—' : `${signed(v * 100, 3)} pp`) : signed(v));
    section.append(el('h2', {}, key, el('span', {class: 'muted'}, ` · ${rate ? 'conversion rate' : 'mean per unit'} · ${m.direction === 'minimize' ? 'lower is better' : 'higher is better'}`)));
    if (m.cuped_theta !== undefined) {
      section.append(el('p', {class: 'muted'}, `CUPED-adjusted with the pre-experiment covariate (θ = ${stat(m.cuped_theta, 3)}; control variance reduced by ${percent(m.cuped_variance_reduction)}).`));
    }
    section.append(el('h3', {}, 'Arms'), el('div', {class: 'scroll-x'}, el('table', {class: 'plain stats', id: `arms-${key}`},
      el('thead', {}, el('tr', {}, ['Variant', 'Units', rate ? 'Rate' : 'Mean', `${level} CI`].map((h, i) => el('th', {class: i ? 'num' : undefined}, h)))),
      el('tbody', {}, (m.arms || []).map((a) => el('tr', {}, el('th', {scope: 'row'}, a.variant), el('td', {class: 'num'}, Number(a.n).toLocaleString()),
        el('td', {class: 'num'}, value(a.mean)), el('td', {class: 'num'}, interval(a.ci_low, a.ci_high, value))))))));
    section.append(el('h3', {}, `Lift against ${report.control}`), el('div', {class: 'scroll-x'}, el('table', {class: 'plain stats', id: `lifts-${key}`},
      el('thead', {}, el('tr', {}, ['Variant', 'Absolute', `${level} CI (fixed)`, `${level} CI (always valid)`, 'Relative', 'Relative CI', 'p', 'Verdict'].map((h, i) => el('th', {class: i && i < 7 ? 'num' : undefined}, h)))),
      el('tbody', {}, (m.lifts || []).map((l) => el('tr', {dataset: {variant: l.variant, verdict: l.verdict}},
        el('th', {scope: 'row'}, l.variant),
        el('td', {class: 'num'}, diff(l.absolute)),
        el('td', {class: 'num'}, interval(l.absolute_low, l.absolute_high, diff)),
        el('td', {class: 'num', title: 'Valid however often the report is read: the verdict is decided on this interval'}, interval(l.sequential_low, l.sequential_high, diff)),
        el('td', {class: 'num'}, l.relative === undefined ? '—' : `${signed(l.relative * 100, 3)}%`),
        el('td', {class: 'num'}, interval(l.relative_low, l.relative_high, (v) => `${signed(v * 100, 3)}%`)),
        el('td', {class: 'num'}, pValue(l.p)),
        el('td', {}, verdictBadge(l.verdict))))))));
    section.append(el('ul', {class: 'summaries', id: `summaries-${key}`}, (m.lifts || []).map((l) => el('li', {dataset: {verdict: l.verdict}}, verdictBadge(l.verdict), ' ', l.summary))));

    // Cumulative lift: per variant the line, the fixed-horizon band (darker) inside the always-valid band.
    const chart = new LineChart({id: `online:${key}`, title: `${key}: cumulative lift against ${report.control}${rate ? ' (rate difference)' : ''}`, xMode: 'step', refLines: [0]});
    charts.push(chart);
    section.append(chart.node);
    app.append(section);
    const series = [];
    for (const [name, color] of colors) {
      const points = (m.timeline || []).filter((p) => p.variant === name);
      const xs = points.map((p) => p.step);
      const lift = points.map((p) => num(p.lift));
      series.push({runId: `${name}:always-valid`, label: `${name} always-valid`, color, firstX: xs, lastX: xs, bandAlpha: 0.14,
        min: points.map((p) => num(p.sequential_low)), max: points.map((p) => num(p.sequential_high)), last: lift, pointCount: points.length});
      series.push({runId: `${name}:fixed`, label: `${name} lift (fixed CI)`, color, firstX: xs, lastX: xs, bandAlpha: 0.3,
        min: points.map((p) => num(p.low)), max: points.map((p) => num(p.high)), last: lift, pointCount: points.length});
    }
    const steps = new Set((m.timeline || []).map((p) => p.step)).size;
    requestAnimationFrame(() => chart.setData(series.filter((s) => s.pointCount), {requests: 1,
      meta: `Lift after each step (${steps} step${steps === 1 ? '' : 's'}), x = step. Line: the lift; dark band: the fixed-horizon ${level} interval; light band: the always-valid ${level} interval; dashed: no difference.`}));
  }
  if (!(report.metrics || []).length) app.append(el('p', {class: 'muted'}, 'No metric to report: log <metric>.conversions, or <metric>.sum and <metric>.sum_squares, per time bucket.'));

  app.append(el('h2', {}, 'Model versions tested here'), (report.model_versions || []).length
    ? el('ul', {id: 'online-models'}, report.model_versions.map((mv) => {
      const slash = mv.lastIndexOf('/');
      const name = mv.slice(0, slash); const version = mv.slice(slash + 1);
      return el('li', {}, el('a', {href: `#/models/${encodeURIComponent(name)}?version=${encodeURIComponent(version)}`}, `${name} version ${version}`));
    }))
    : el('p', {class: 'muted', id: 'online-models'}, 'No model version links here. Tag a version with cairn.online.experiment_id = ', el('code', {}, id), ' to link it.'));
  window.__cairnOnline = {loaded: true, mismatch: !!srm.mismatch, variants: report.variants.map((v) => v.name),
    verdicts: (report.metrics || []).flatMap((m) => (m.lifts || []).map((l) => ({metric: m.key, variant: l.variant, verdict: l.verdict})))};
  return () => { for (const c of charts) c.destroy(); };
}
