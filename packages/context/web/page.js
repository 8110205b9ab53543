// What the two live pages (lcmon --web, contexture-store web) share in the browser: finding and
// making elements, and showing values from messages or the store. Every such value (ids, routing
// keys, field names and values) reaches the document through textContent or attributes set as
// data, never as markup.

export const $ = (id) => document.getElementById(id);

/** Control characters, DEL, the C1 controls and the bidirectional marks, shown as \uXXXX. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

/** `s` as text with the characters that could hide or reorder what is shown escaped. */
export const visible = (s) => String(s).replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** A new element, with a class and text when given. */
export function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** One value as a line of JSON text, escaped for display. */
export function short(value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch {
    text = String(value);
  }
  return visible(text === undefined ? String(value) : text);
}

/**
 * One field of an object's tree: a row `key: value` for a plain value, or an open <details> whose
 * summary is `key {n}` / `key [n]` and whose body is `inner()` (the page draws the values inside).
 * `changed` highlights it.
 */
export function fieldNode(key, value, changed, inner) {
  if (value === null || typeof value !== 'object') {
    const row = el('div', changed ? 'row changed' : 'row');
    row.dataset.key = key;
    row.append(el('span', 'key', visible(key)), document.createTextNode(': '));
    row.append(el('span', typeof value === 'string' ? 'str' : 'num-v', short(value)));
    return row;
  }
  const d = el('details', changed ? 'changed' : '');
  d.dataset.key = key;
  d.open = true;
  const s = el('summary');
  const size = Array.isArray(value) ? `[${value.length}]` : `{${Object.keys(value).length}}`;
  s.append(el('span', 'key', visible(key)), document.createTextNode(` ${size}`));
  d.append(s, inner());
  return d;
}

/**
 * `load(id)` made to run one call at a time: a call that comes while one runs is not run then;
 * when the running one ends, `load` runs once more for `latest()` (the selection now, if any), so
 * the latest wins and the ones in between are skipped.
 */
export function oneAtATime(load, latest) {
  let running = false;
  let again = false;
  const run = async (id) => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await load(id);
    } finally {
      running = false;
      if (again) {
        again = false;
        const next = latest();
        if (next !== undefined) run(next);
      }
    }
  };
  return run;
}
