// A canvas line chart for bucketed series: per bucket a min–max band (so spikes are never
// lost) and a line through the bucket's last value; log scale, EMA smoothing, x as step,
// wall time or relative time; a hover crosshair listing every run's value at that x; drag to
// zoom (the owner re-fetches finer buckets), double-click to reset. The drawn data is kept on
// window.__cairnCharts[id] so tests can read what is on the canvas. The same chart draws a
// group's mean with its confidence band (band = min/max, line = last) and dashed reference
// lines (options.refLines, e.g. a zero lift).
import {el, fmtNumber, fmtCompact, fmtTime, fmtDuration, num} from './util.js';

window.__cairnCharts = window.__cairnCharts || {};

function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888'; }

export function formatX(x, mode) {
  if (mode === 'time') return fmtTime(x);
  if (mode === 'relative') return fmtDuration(x);
  return fmtCompact(x, 6);
}

function niceTicks(lo, hi, count, minStep = 0) {
  if (!(hi > lo)) return [lo];
  const raw = Math.max((hi - lo) / count, minStep);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(v);
  return ticks;
}

/** EMA with bias correction over finite values, like TensorBoard's smoothing. */
export function ema(values, alpha) {
  if (!alpha) return values;
  const out = new Array(values.length);
  let last = 0; let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!isFinite(v)) { out[i] = v; continue; }
    last = last * alpha + (1 - alpha) * v; n++;
    out[i] = last / (1 - Math.pow(alpha, n));
  }
  return out;
}

export class LineChart {
  /** options: {id, title, xMode, log, smoothing, onZoom(minX, maxX), onReset(), refLines: [y…], unit: 'runs'} */
  constructor(options) {
    this.o = options;
    this.series = [];
    this.canvas = el('canvas', {role: 'img', 'aria-label': `Chart of ${options.title}`, dataset: {chart: options.id}});
    this.tip = el('div', {class: 'tip', hidden: true});
    this.meta = el('div', {class: 'meta'}, 'Loading…');
    this.node = el('div', {class: 'chart', dataset: {chartId: options.id}}, el('h3', {}, options.title), this.canvas, this.meta, this.tip);
    this.drag = null;
    this.hoverX = null;
    this.canvas.addEventListener('mousedown', (e) => this.onDown(e));
    this.canvas.addEventListener('mousemove', (e) => this.onMove(e));
    this.canvas.addEventListener('mouseleave', () => { this.hoverX = null; this.tip.hidden = true; this.draw(); });
    window.addEventListener('mouseup', this.upHandler = (e) => this.onUp(e));
    this.canvas.addEventListener('dblclick', () => this.o.onReset && this.o.onReset());
    this.dirty = true;
    this.base = document.createElement('canvas');
    this.resizeObserver = new ResizeObserver(() => { this.dirty = true; this.draw(); });
    this.resizeObserver.observe(this.canvas);
    window.addEventListener('cairn-theme', this.themeHandler = () => { this.dirty = true; this.draw(); });
  }

  destroy() {
    this.resizeObserver.disconnect();
    window.removeEventListener('mouseup', this.upHandler);
    window.removeEventListener('cairn-theme', this.themeHandler);
    delete window.__cairnCharts[this.o.id];
  }

  /** The pixel columns available for data: what the owner asks the server for. */
  get plotWidth() { return Math.max(50, Math.round((this.canvas.clientWidth || 460) - 70)); }

  /**
   * series: [{runId, label, color, firstX, lastX, min, max, last, pointCount, bandAlpha}] (arrays of numbers).
   * info: {zoomed, minX, maxX, requests, meta} (meta: a sentence to show instead of the count of runs and points).
   */
  setData(series, info = {}) {
    this.dirty = true;
    this.series = series.map((s) => ({...s, min: s.min.map(num), max: s.max.map(num), last: s.last.map(num)}));
    this.info = info;
    const points = this.series.reduce((a, s) => a + (s.pointCount || 0), 0);
    const buckets = this.series.reduce((a, s) => a + s.last.length, 0);
    this.meta.classList.remove('error');
    this.meta.textContent = info.meta && this.series.length ? info.meta : this.series.length
      ? `${this.series.length} run${this.series.length === 1 ? '' : 's'} · ${points.toLocaleString()} points in range drawn as ${buckets.toLocaleString()} buckets${info.zoomed ? ' · zoomed (double-click to reset)' : ' · drag to zoom'}`
      : 'No data for this metric in the selected runs.';
    this.draw();
  }

  setError(message) { this.dirty = true; this.series = []; this.meta.textContent = message; this.meta.classList.add('error'); this.draw(); }

  bounds() {
    let x0 = Infinity; let x1 = -Infinity; let y0 = Infinity; let y1 = -Infinity;
    const log = this.o.log;
    for (const s of this.series) {
      for (let i = 0; i < s.last.length; i++) {
        x0 = Math.min(x0, s.firstX[i]); x1 = Math.max(x1, s.lastX[i]);
        for (const v of [s.min[i], s.max[i], s.last[i]]) {
          if (!isFinite(v) || (log && v <= 0)) continue;
          y0 = Math.min(y0, v); y1 = Math.max(y1, v);
        }
      }
    }
    if (this.info && this.info.minX !== undefined && this.info.minX !== null) { x0 = this.info.minX; x1 = this.info.maxX; }
    for (const v of this.o.refLines || []) if (isFinite(y0) && (!log || v > 0)) { y0 = Math.min(y0, v); y1 = Math.max(y1, v); }
    if (!isFinite(x0)) { x0 = 0; x1 = 1; }
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    if (!isFinite(y0)) { y0 = log ? 1 : 0; y1 = log ? 10 : 1; }
    if (y1 === y0) { const d = Math.abs(y0) * 0.05 || 1; y0 -= d; y1 += d; }
    if (log) { y0 = Math.log10(y0); y1 = Math.log10(y1); }
    const pad = (y1 - y0) * 0.05;
    return {x0, x1, y0: y0 - pad, y1: y1 + pad};
  }

  /** Paints the cached chart and, over it, the drag selection and the crosshair. */
  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth || 460; const h = c.clientHeight || 260;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) { c.width = Math.round(w * dpr); c.height = Math.round(h * dpr); this.dirty = true; }
    if (this.dirty) { this.render(w, h, dpr); this.dirty = false; }
    const g = c.getContext('2d');
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.clearRect(0, 0, c.width, c.height);
    g.drawImage(this.base, 0, 0);
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    const {T, ph} = this.layout;
    if (this.drag) {
      g.globalAlpha = 0.15; g.fillStyle = cssVar('--accent');
      const a = Math.min(this.drag.x0, this.drag.x1); const wdt = Math.abs(this.drag.x1 - this.drag.x0);
      g.fillRect(a, T, wdt, ph); g.globalAlpha = 1;
    }
    if (this.hoverX !== null) {
      g.strokeStyle = cssVar('--fg'); g.globalAlpha = 0.5; g.beginPath(); g.moveTo(this.hoverX, T); g.lineTo(this.hoverX, T + ph); g.stroke(); g.globalAlpha = 1;
    }
  }

  /** Draws axes and every series into the offscreen canvas. */
  render(w, h, dpr) {
    const c = this.base;
    c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const L = 60; const R = 10; const T = 8; const B = 26;
    const pw = w - L - R; const ph = h - T - B;
    const b = this.bounds();
    this.layout = {L, R, T, B, pw, ph, ...b};
    const fg = cssVar('--fg'); const line = cssVar('--line'); const muted = cssVar('--muted');
    const log = this.o.log;
    const X = (x) => L + (x - b.x0) / (b.x1 - b.x0) * pw;
    const Y = (v) => T + (1 - ((log ? Math.log10(v) : v) - b.y0) / (b.y1 - b.y0)) * ph;
    g.font = '11px system-ui, sans-serif';
    g.strokeStyle = line; g.fillStyle = muted; g.lineWidth = 1;
    for (const t of niceTicks(b.y0, b.y1, 5)) {
      const y = T + (1 - (t - b.y0) / (b.y1 - b.y0)) * ph;
      g.beginPath(); g.moveTo(L, y); g.lineTo(L + pw, y); g.stroke();
      g.textAlign = 'right'; g.textBaseline = 'middle';
      g.fillText(fmtCompact(log ? Math.pow(10, t) : t, 4), L - 4, y);
    }
    const xt = this.o.xMode === 'step' ? niceTicks(b.x0, b.x1, Math.max(2, Math.floor(pw / 90)), 1) : [b.x0, (b.x0 + b.x1) / 2, b.x1];
    g.textBaseline = 'top';
    for (const t of xt) {
      const x = X(t);
      g.beginPath(); g.moveTo(x, T); g.lineTo(x, T + ph); g.stroke();
      g.textAlign = x < L + 40 ? 'left' : x > L + pw - 40 ? 'right' : 'center';
      g.fillText(formatX(Math.round(t), this.o.xMode), x, T + ph + 6);
    }
    g.save();
    g.beginPath(); g.rect(L, T, pw, ph); g.clip();
    const drawn = [];
    for (const s of this.series) {
      const n = s.last.length;
      const ok = (v) => isFinite(v) && (!log || v > 0);
      // Min–max band: one polygon along the maxima and back along the minima.
      g.globalAlpha = s.bandAlpha ?? 0.22; g.fillStyle = s.color; g.strokeStyle = s.color;
      const kept = [];
      for (let i = 0; i < n; i++) if (ok(s.min[i]) && ok(s.max[i])) kept.push(i);
      if (kept.length) {
        g.beginPath();
        for (const i of kept) { g.lineTo(X(s.firstX[i]), Y(s.max[i]) - 0.5); g.lineTo(Math.max(X(s.lastX[i]), X(s.firstX[i]) + 1), Y(s.max[i]) - 0.5); }
        for (let k = kept.length - 1; k >= 0; k--) { const i = kept[k]; g.lineTo(Math.max(X(s.lastX[i]), X(s.firstX[i]) + 1), Y(s.min[i]) + 0.5); g.lineTo(X(s.firstX[i]), Y(s.min[i]) + 0.5); }
        g.closePath(); g.fill();
      }
      // Last-value line (smoothed when asked).
      g.globalAlpha = 1; g.lineWidth = 1.5;
      const values = this.smoothed(s);
      g.beginPath();
      let pen = false;
      for (let i = 0; i < n; i++) {
        if (!ok(values[i])) { pen = false; continue; }
        const x = X(s.lastX[i]); const y = Y(values[i]);
        if (pen) g.lineTo(x, y); else { g.moveTo(x, y); pen = true; }
      }
      g.stroke();
      if (n === 1 && ok(values[0])) { g.beginPath(); g.arc(X(s.lastX[0]), Y(values[0]), 3, 0, 7); g.fill(); }
      drawn.push({runId: s.runId, label: s.label, color: s.color, buckets: n, pointCount: s.pointCount, drawnPoints: kept.length,
        max: s.max.reduce((a, v) => (isFinite(v) && v > a ? v : a), -Infinity),
        min: s.min.reduce((a, v) => (isFinite(v) && v < a ? v : a), Infinity)});
    }
    for (const v of this.o.refLines || []) {
      if (!isFinite(v) || (log && v <= 0)) continue;
      g.strokeStyle = fg; g.globalAlpha = 0.7; g.lineWidth = 1; g.setLineDash([5, 4]);
      g.beginPath(); g.moveTo(L, Y(v)); g.lineTo(L + pw, Y(v)); g.stroke();
      g.setLineDash([]); g.globalAlpha = 1;
    }
    g.restore();
    g.strokeStyle = line; g.strokeRect(L + 0.5, T + 0.5, pw, ph);
    window.__cairnCharts[this.o.id] = {title: this.o.title, xMode: this.o.xMode, log: !!this.o.log, smoothing: this.o.smoothing || 0,
      xRange: [b.x0, b.x1], yRange: log ? [Math.pow(10, b.y0), Math.pow(10, b.y1)] : [b.y0, b.y1], refLines: this.o.refLines || [], series: drawn, zoomed: !!(this.info && this.info.zoomed), requests: (this.info && this.info.requests) || 0,
      plotWidth: pw};
    this.canvas.dataset.series = String(drawn.length);
    this.canvas.dataset.buckets = String(drawn.reduce((a, s) => a + s.buckets, 0));
  }

  xAt(px) {
    const l = this.layout;
    return l.x0 + (px - l.L) / l.pw * (l.x1 - l.x0);
  }

  /** Every run's value at data x: the bucket whose range holds x, else the nearest one before it. */
  valuesAt(x) {
    const out = [];
    for (const s of this.series) {
      const xs = s.lastX; let lo = 0; let hi = xs.length - 1; let found = -1;
      while (lo <= hi) { const mid = (lo + hi) >> 1; if (s.firstX[mid] <= x) { found = mid; lo = mid + 1; } else hi = mid - 1; }
      if (found < 0) continue;
      const values = this.smoothed(s);
      out.push({runId: s.runId, label: s.label, color: s.color, x: s.lastX[found], value: values[found], min: s.min[found], max: s.max[found]});
    }
    return out;
  }

  onDown(e) {
    if (e.button !== 0 || !this.layout) return;
    const r = this.canvas.getBoundingClientRect();
    const px = e.clientX - r.left;
    if (px < this.layout.L || px > this.layout.L + this.layout.pw) return;
    this.drag = {x0: px, x1: px};
    e.preventDefault();
  }

  onMove(e) {
    if (!this.layout) return;
    const r = this.canvas.getBoundingClientRect();
    const px = e.clientX - r.left;
    const l = this.layout;
    if (this.drag) { this.drag.x1 = Math.max(l.L, Math.min(l.L + l.pw, px)); }
    this.hoverX = px >= l.L && px <= l.L + l.pw ? px : null;
    this.draw();
    if (this.hoverX === null) { this.tip.hidden = true; return; }
    const x = this.xAt(px);
    const values = this.valuesAt(x).sort((a, b) => (isFinite(b.value) ? b.value : -Infinity) - (isFinite(a.value) ? a.value : -Infinity));
    this.tip.replaceChildren(el('div', {class: 'muted'}, `x = ${formatX(Math.round(x), this.o.xMode)}`),
      ...values.slice(0, 12).map((v) => el('div', {}, el('span', {class: 'sw', dataset: {c: v.color}}), `${v.label}: ${fmtNumber(v.value)}`,
        v.min !== v.max && isFinite(v.min) ? el('span', {class: 'muted'}, ` [${fmtNumber(v.min)} … ${fmtNumber(v.max)}]`) : '')),
      values.length > 12 ? el('div', {class: 'muted'}, `… and ${values.length - 12} more runs`) : '');
    for (const sw of this.tip.querySelectorAll('.sw')) sw.style.background = sw.dataset.c;
    this.tip.hidden = false;
    const left = px + 16 + 260 > r.width ? px - 16 - Math.min(260, this.tip.offsetWidth || 200) : px + 16;
    this.tip.style.left = `${Math.max(0, left)}px`;
    this.tip.style.top = `${30}px`;
    window.__cairnCharts[this.o.id].hover = {x, values: values.map((v) => ({runId: v.runId, value: v.value}))};
  }

  onUp() {
    if (!this.drag) return;
    const {x0, x1} = this.drag;
    this.drag = null;
    this.draw();
    if (Math.abs(x1 - x0) < 4) return;
    const a = Math.floor(this.xAt(Math.min(x0, x1)));
    const b = Math.ceil(this.xAt(Math.max(x0, x1)));
    if (b > a && this.o.onZoom) this.o.onZoom(a, b);
  }

  setOptions(o) { Object.assign(this.o, o); this.dirty = true; this.draw(); }

  /** The series' last values, smoothed with the current EMA factor (cached per series). */
  smoothed(s) {
    const alpha = this.o.smoothing || 0;
    if (s.smoothedAlpha !== alpha) { s.smoothedValues = ema(s.last, alpha); s.smoothedAlpha = alpha; }
    return s.smoothedValues;
  }
}
