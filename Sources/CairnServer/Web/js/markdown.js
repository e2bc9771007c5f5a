// A small, safe Markdown renderer for run notes. It never parses HTML: it builds DOM nodes
// and sets text with textContent, so `<script>` in a note stays text. Supported: headings,
// paragraphs, emphasis (*x*, **x**), inline and fenced code, bullet and numbered lists,
// block quotes, and links whose target is http(s) (anything else stays plain text).
import {el} from './util.js';

const inlinePattern = /(`[^`]+`)|(\*\*[^*]+\*\*)|(__[^_]+__)|(\*[^*\s][^*]*\*)|(_[^_\s][^_]*_)|(\[[^\]]+\]\([^)\s]+\))/;

export function renderInline(text) {
  const out = [];
  let rest = text;
  while (rest.length) {
    const m = inlinePattern.exec(rest);
    if (!m) { out.push(document.createTextNode(rest)); break; }
    if (m.index > 0) out.push(document.createTextNode(rest.slice(0, m.index)));
    const t = m[0];
    if (m[1]) out.push(el('code', {}, t.slice(1, -1)));
    else if (m[2] || m[3]) out.push(el('strong', {}, ...renderInline(t.slice(2, -2))));
    else if (m[4] || m[5]) out.push(el('em', {}, ...renderInline(t.slice(1, -1))));
    else if (m[6]) {
      const label = t.slice(1, t.indexOf(']('));
      const href = t.slice(t.indexOf('](') + 2, -1);
      if (/^https?:\/\//i.test(href)) out.push(el('a', {href, rel: 'noopener noreferrer nofollow', target: '_blank'}, ...renderInline(label)));
      else out.push(document.createTextNode(t));
    }
    rest = rest.slice(m.index + t.length);
  }
  return out;
}

export function renderMarkdown(source) {
  const root = el('div', {class: 'markdown'});
  const lines = String(source || '').replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  let para = [];
  const flush = () => {
    if (para.length) { root.append(el('p', {}, ...renderInline(para.join(' ')))); para = []; }
  };
  while (i < lines.length) {
    const line = lines[i];
    if (/^```/.test(line)) {
      flush();
      const code = [];
      i++;
      while (i < lines.length && !/^```/.test(lines[i])) code.push(lines[i++]);
      i++;
      root.append(el('pre', {}, el('code', {}, code.join('\n'))));
      continue;
    }
    const h = /^(#{1,6})\s+(.*)$/.exec(line);
    if (h) { flush(); root.append(el(`h${Math.min(6, h[1].length + 2)}`, {}, ...renderInline(h[2]))); i++; continue; }
    if (/^\s*([-*+]|\d+[.)])\s+/.test(line)) {
      flush();
      const ordered = /^\s*\d+[.)]\s+/.test(line);
      const list = el(ordered ? 'ol' : 'ul');
      while (i < lines.length && /^\s*([-*+]|\d+[.)])\s+/.test(lines[i])) {
        list.append(el('li', {}, ...renderInline(lines[i].replace(/^\s*([-*+]|\d+[.)])\s+/, ''))));
        i++;
      }
      root.append(list);
      continue;
    }
    if (/^>\s?/.test(line)) {
      flush();
      const quote = [];
      while (i < lines.length && /^>\s?/.test(lines[i])) quote.push(lines[i++].replace(/^>\s?/, ''));
      root.append(el('blockquote', {}, ...renderInline(quote.join(' '))));
      continue;
    }
    if (!line.trim()) { flush(); i++; continue; }
    para.push(line.trim());
    i++;
  }
  flush();
  return root;
}
