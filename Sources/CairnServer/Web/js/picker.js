// A searchable list of keys with checkboxes: a search box (plain text, or /regex/), "Select
// all shown", "Clear", and a count. Used for the metrics of the compare charts and of the
// Statistics tab.
import {el, clear, keyMatcher} from './util.js';

/** options: {id, keys, selected, label, onChange(selected)} → node */
export function keyPicker(options) {
  const chosen = new Set(options.selected || []);
  const search = el('input', {type: 'search', id: `${options.id}-search`, placeholder: 'Search (text or /regex/)', 'aria-label': `Search ${options.label}`});
  const list = el('div', {class: 'picker-list', id: options.id, role: 'group', 'aria-label': options.label});
  const count = el('span', {class: 'muted picker-count'});
  const all = el('button', {type: 'button', id: `${options.id}-all`}, 'Select all shown');
  const none = el('button', {type: 'button', id: `${options.id}-none`}, 'Clear');
  const node = el('div', {class: 'picker'}, el('div', {class: 'picker-bar'}, search, all, none, count), list);
  const shown = () => options.keys.filter(keyMatcher(search.value));
  // The selection keeps the order of the key list.
  const emit = () => options.onChange(options.keys.filter((k) => chosen.has(k)));

  function draw() {
    clear(list);
    const keys = shown();
    for (const k of keys) {
      const box = el('input', {type: 'checkbox', value: k, checked: chosen.has(k) ? true : undefined});
      box.addEventListener('change', () => { if (box.checked) chosen.add(k); else chosen.delete(k); drawCount(); emit(); });
      list.append(el('label', {title: k}, box, ' ', k));
    }
    if (!keys.length) list.append(el('span', {class: 'muted'}, search.value ? 'No key matches.' : 'No keys.'));
    drawCount();
  }
  function drawCount() { count.textContent = `${chosen.size} of ${options.keys.length} selected · ${shown().length} shown`; }

  search.addEventListener('input', draw);
  all.addEventListener('click', () => { for (const k of shown()) chosen.add(k); draw(); emit(); });
  none.addEventListener('click', () => { chosen.clear(); draw(); emit(); });
  draw();
  return node;
}
