// Shared pieces of the statistics views (compare → Statistics, grouped runs, A/B report,
// online evidence on a model version): number formatting where an undefined statistic is
// "—" (the server leaves it out of the JSON), verdict badges that say their word, warnings.
import {el, fmtNumber} from './util.js';

const missing = (v) => v === undefined || v === null || (typeof v === 'number' && !isFinite(v));

/** A statistic with 4 significant digits, or "—" when the server left it out. */
export function stat(v, digits = 4) {
  if (missing(v)) return '—';
  if (v === 0) return '0';
  const a = Math.abs(v);
  const text = a >= 1e6 || a < 1e-4 ? v.toExponential(digits - 1) : String(Number(v.toPrecision(digits)));
  return text.replace(/^-/, '−');
}

/** A difference with its sign: +0.1, −0.02 (a real minus sign). */
export function signed(v, digits = 4) {
  if (missing(v)) return '—';
  return v > 0 ? `+${stat(v, digits)}` : v < 0 ? `−${stat(-v, digits)}` : '0';
}

/** A share as a percentage: 0.5 → 50%. */
export function percent(v, digits = 3) {
  if (missing(v)) return '—';
  return `${stat(v * 100, digits)}%`;
}

export function pValue(p) {
  if (missing(p)) return '—';
  return p < 0.0001 ? '<0.0001' : stat(p, 2);
}

/** "p = 0.03", or "p < 0.0001". */
export function pEquals(p) {
  if (missing(p)) return 'no p-value';
  return p < 0.0001 ? 'p < 0.0001' : `p = ${pValue(p)}`;
}

/** An interval "low to high", or "—" when either end is undefined. */
export function interval(low, high, format = stat) {
  if (missing(low) || missing(high)) return '—';
  return `${format(low)} to ${format(high)}`;
}

/**
 * A mean with its interval's half-width, both rounded to the half-width's precision:
 * 0.8123 ± 0.013. Without an interval the mean alone.
 */
export function meanPlusMinus(mean, low, high) {
  if (missing(mean)) return '—';
  if (missing(low) || missing(high)) return stat(mean);
  const half = (high - low) / 2;
  if (!(half > 0)) return `${stat(mean)} ± 0`;
  const decimals = Math.max(0, Math.min(12, 1 - Math.floor(Math.log10(half))));
  if (Math.abs(mean) >= 1e6 || half >= 1e6) return `${stat(mean)} ± ${stat(half, 2)}`;
  return `${mean.toFixed(decimals)} ± ${half.toFixed(decimals)}`;
}

/** Why runs did not count: "2 failed, 1 still running". */
export function excludedText(excluded) {
  const e = excluded || {};
  const parts = [];
  if (e.failed) parts.push(`${e.failed} failed`);
  if (e.killed) parts.push(`${e.killed} killed`);
  if (e.unfinished) parts.push(`${e.unfinished} unfinished`);
  if (e.missing) parts.push(`${e.missing} without the metric`);
  if (e.nonfinite) parts.push(`${e.nonfinite} with NaN or ∞`);
  return parts.join(', ');
}

export function excludedCount(excluded) {
  const e = excluded || {};
  return (e.failed || 0) + (e.killed || 0) + (e.unfinished || 0) + (e.missing || 0) + (e.nonfinite || 0);
}

const verdictTitles = {
  better: 'Better than the baseline, beyond the variation across runs',
  worse: 'Worse than the baseline, beyond the variation across runs',
  inconclusive: 'Not distinguishable from the baseline with these runs',
};

/** A verdict badge: coloured, and always with its word. */
export function verdictBadge(verdict) {
  const v = verdict || 'inconclusive';
  return el('span', {class: `verdict ${v}`, title: verdictTitles[v] || v}, v);
}

/** Warnings as a visible list, one per distinct message; nothing when there are none. */
export function warningList(warnings, id) {
  const seen = new Set();
  const items = [];
  for (const w of warnings || []) {
    if (!w || seen.has(w.message)) continue;
    seen.add(w.message);
    items.push(el('li', {dataset: {code: w.code || ''}}, el('span', {class: 'warn-code'}, (w.code || 'warning').replace(/_/g, ' ')), ' ', w.message));
  }
  if (!items.length) return null;
  return el('ul', {class: 'warnings', id, role: 'list'}, items);
}
