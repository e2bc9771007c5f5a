// Small DOM and formatting helpers shared by every page. Text is always set with
// textContent, never parsed as HTML.

/** Creates an element: el('a', {href: '#/x', class: 'btn'}, 'text', child, ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

export function fmtTime(ms) {
  if (ms === undefined || ms === null || ms === '' || Number(ms) <= 0) return '';
  const d = new Date(Number(ms));
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function fmtDuration(ms) {
  if (ms === undefined || ms === null || !isFinite(ms) || ms < 0) return '';
  const s = ms / 1000;
  if (s < 1) return `${Math.round(ms)} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${m - h * 60} min`;
}

export function fmtNumber(v) {
  if (v === undefined || v === null || v === '') return '';
  const n = typeof v === 'number' ? v : Number(v);
  if (Number.isNaN(n)) return 'NaN';
  if (!isFinite(n)) return n > 0 ? '∞' : '-∞';
  if (n === 0) return '0';
  const a = Math.abs(n);
  if (a >= 1e6 || a < 1e-4) return n.toExponential(4);
  if (Number.isInteger(n)) return String(n);
  return String(Number(n.toPrecision(6)));
}

/**
 * A number in few characters, for axis labels and group pills: 1.9e-4 (not 0.00019080112448884818),
 * 0.0125, 3.14, 12500, 1.2e+7. Text that is not a number is returned as it is.
 */
export function fmtCompact(v, digits = 3) {
  if (v === undefined || v === null || v === '') return '';
  const n = typeof v === 'number' ? v : Number(v);
  if (typeof v === 'string' && (v.trim() === '' || Number.isNaN(n))) return v;
  if (Number.isNaN(n)) return 'NaN';
  if (!isFinite(n)) return n > 0 ? '∞' : '-∞';
  if (n === 0) return '0';
  const a = Math.abs(n);
  if (a >= 1e6 || a < 1e-3) return n.toExponential(Math.max(0, digits - 2)).replace(/\.?0+e/, 'e');
  if (Number.isInteger(n)) return String(n);
  return String(Number(n.toPrecision(digits)));
}

export function fmtBytes(n) {
  if (n === undefined || n === null) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0; let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** Parses a wire double: numbers, or "NaN" / "Infinity" / "-Infinity" strings. */
export function num(v) {
  if (v === null || v === undefined) return NaN;
  return typeof v === 'number' ? v : Number(v);
}

/** A box for an error from the server, in words. */
export function errorBox(err, what) {
  return el('div', {class: 'error', role: 'alert'}, what ? `${what}: ` : '', err && err.message ? err.message : String(err));
}

/** A search over keys: plain text matches anywhere (case-insensitive), /…/ is a regular expression. */
export function keyMatcher(text) {
  const t = (text || '').trim();
  if (!t) return () => true;
  const m = /^\/(.*)\/([a-z]*)$/.exec(t);
  if (m) {
    try { const re = new RegExp(m[1], m[2].includes('i') ? 'i' : ''); return (k) => re.test(k); } catch { return () => false; }
  }
  const needle = t.toLowerCase();
  return (k) => k.toLowerCase().includes(needle);
}

/** Debounces fn by ms. */
export function debounce(fn, ms) {
  let t = null;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

/** Reads and writes the query part of the hash route (#/path?k=v). */
export function hashQuery() {
  const h = location.hash;
  const i = h.indexOf('?');
  return new URLSearchParams(i >= 0 ? h.slice(i + 1) : '');
}

export function setHashQuery(params, replace = true) {
  const h = location.hash;
  const i = h.indexOf('?');
  const path = i >= 0 ? h.slice(0, i) : h;
  const q = params.toString();
  const next = q ? `${path}?${q}` : path;
  if (next === h) return;
  if (replace) history.replaceState(null, '', next); else location.hash = next;
}

// Twenty colours that stay apart on white and on the dark background.
export const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f',
  '#393b79', '#ad494a', '#637939', '#e6550d', '#6b6ecf', '#843c39', '#d6616b', '#3182bd', '#31a354', '#756bb1'];

export function colorFor(i) {
  if (i < palette.length) return palette[i];
  const hue = (i * 137.508) % 360;
  return `hsl(${hue.toFixed(0)} 65% 45%)`;
}

// Run colours: stable per run and distinct among the runs on screen. A run gets a colour index
// the first time a page shows it and keeps it (remembered in localStorage, per browser), so the
// table, the workspace charts, compare and the run page agree and filtering or reloading
// changes no colour. Runs shown together get different indexes: an unknown run takes the
// colour least used among the runs shown with it (then least used overall), and when two runs
// that got the same colour on different pages are first shown together, the one that got it
// later takes a free colour and keeps that one from then on. Past the 20 palette colours,
// colorFor generates further hues, so 100 runs on one chart still differ.
const COLOR_KEY = 'cairn.runColors';
const COLOR_LIMIT = 50000;  // runs remembered; the ones seen longest ago are forgotten first
let colorMemo = null;

function colorStore() {
  if (colorMemo) return colorMemo;
  colorMemo = {seq: 0, runs: new Map()};
  try {
    const saved = JSON.parse(localStorage.getItem(COLOR_KEY) || 'null');
    if (saved && Array.isArray(saved.runs)) {
      colorMemo.seq = Number(saved.seq) || 0;
      for (const [id, index, seq] of saved.runs) colorMemo.runs.set(id, {index, seq});
    }
  } catch { /* private mode or damaged: start afresh */ }
  return colorMemo;
}

let saveTimer = null;
/** Writes the colours soon, once for many assignments (a table scrolled through 10,000 new runs). */
function saveColors() {
  if (saveTimer === null) saveTimer = setTimeout(writeColors, 300);
}

function writeColors() {
  saveTimer = null;
  const store = colorStore();
  let entries = [...store.runs];
  if (entries.length > COLOR_LIMIT) {
    entries.sort((a, b) => b[1].seq - a[1].seq);
    entries = entries.slice(0, COLOR_LIMIT);
    store.runs = new Map(entries);
  }
  try { localStorage.setItem(COLOR_KEY, JSON.stringify({seq: store.seq, runs: entries.map(([id, c]) => [id, c.index, c.seq])})); } catch { /* kept in memory */ }
}

// Another tab assigned colours: read them again before the next assignment.
if (typeof window !== 'undefined') {
  window.addEventListener('storage', (e) => { if (e.key === COLOR_KEY && saveTimer === null) colorMemo = null; });
  window.addEventListener('pagehide', () => { if (saveTimer !== null) { clearTimeout(saveTimer); writeColors(); } });
}

/**
 * The colours of runs shown together (ids in display order): a Map id → colour, every colour
 * different, each run's colour the one it had before unless that would repeat one shown.
 */
export function runColors(ids) {
  const store = colorStore();
  const unique = [...new Set(ids)];
  const taken = new Set();
  const pending = [];
  // Runs that already have a colour keep it, the one that got it first winning a clash.
  const known = unique.filter((id) => store.runs.has(id)).sort((a, b) => store.runs.get(a).seq - store.runs.get(b).seq);
  for (const id of known) {
    const {index} = store.runs.get(id);
    if (taken.has(index)) pending.push(id); else taken.add(index);
  }
  for (const id of unique) if (!store.runs.has(id)) pending.push(id);
  if (pending.length) {
    const overall = new Map();
    for (const {index} of store.runs.values()) overall.set(index, (overall.get(index) || 0) + 1);
    const size = Math.max(palette.length, unique.length);
    for (const id of pending) {
      let best = -1;
      for (let i = 0; i < size; i++) {
        if (taken.has(i)) continue;
        if (best < 0 || (overall.get(i) || 0) < (overall.get(best) || 0)) best = i;
      }
      taken.add(best);
      overall.set(best, (overall.get(best) || 0) + 1);
      store.runs.set(id, {index: best, seq: ++store.seq});
    }
    saveColors();
  }
  return new Map(unique.map((id) => [id, colorFor(store.runs.get(id).index)]));
}

/** One run's colour (given one the first time, the least used overall). */
export function runColor(runId) {
  return runColors([runId]).get(runId);
}

/** A small colour swatch. */
export function swatch(color) {
  const s = el('span', {class: 'sw'});
  s.style.background = color;
  return s;
}
