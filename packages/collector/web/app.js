// contexture-store web: the page. Everything that comes from the store (ids, routing keys, field
// names and values) reaches the document through textContent or attributes set as data, never
// as markup (see page.js).
import { $, el, fieldNode, oneAtATime, short, visible } from './page.js';

const state = {
  /** id → its table row. */
  rows: new Map(),
  selected: undefined,
  /** The selected context's live stream. */
  events: undefined,
  /** Deltas received since the detail was last drawn: what to highlight in it. */
  highlight: undefined,
};

// ---- formatting ----------------------------------------------------------------------------

function when(seconds) {
  if (typeof seconds !== 'number') return '';
  const d = new Date(seconds * 1000);
  return `${d.toLocaleDateString()} ${d.toLocaleTimeString()}`;
}

/** A delta node is a leaf when its `action` is a string; else a map of the changes inside a field. */
const isLeaf = (node) => node !== null && typeof node === 'object' && typeof node.action === 'string';

/** The leaves of a delta as [path, leaf], path as `a.b.c`. */
function leaves(delta, path = []) {
  const out = [];
  for (const [k, node] of Object.entries(delta ?? {})) {
    if (isLeaf(node)) out.push([[...path, k], node]);
    else if (node !== null && typeof node === 'object') out.push(...leaves(node, [...path, k]));
  }
  return out;
}

/**
 * The value of `o`'s own key `key`, undefined when it has none: a field named `toString` or
 * `__proto__` reads nothing inherited.
 */
const own = (o, key) => (o !== null && typeof o === 'object' && Object.hasOwn(o, key) ? o[key] : undefined);

/** Two deltas as one highlight (the later leaf wins). */
function mergeDelta(a, b) {
  if (a === undefined) return b;
  // No prototype: assigning a key `__proto__` makes it a key like any other.
  const out = Object.assign(Object.create(null), a);
  for (const [k, node] of Object.entries(b)) {
    const prev = own(out, k);
    out[k] = isLeaf(node) || prev === undefined || isLeaf(prev) ? node : mergeDelta(prev, node);
  }
  return out;
}

// ---- list ------------------------------------------------------------------------------------

let listTimer;
let listSeq = 0;

async function loadList() {
  const seq = ++listSeq;
  const params = new URLSearchParams({ q: $('f-text').value, status: $('f-status').value });
  try {
    const res = await fetch(`/api/contexts?${params}`);
    const body = await res.json();
    if (seq !== listSeq) return;
    if (!res.ok) {
      $('shown').textContent = visible(body.error ?? `error ${res.status}`);
      return;
    }
    drawList(body);
    linkUp();
  } catch {
    linkDown();
  }
}

function fillRow(tr, row) {
  const [id, status, version, rkey, updated] = tr.children;
  id.textContent = visible(row.id);
  id.title = visible(row.id);
  status.textContent = row.status ?? '—';
  status.className = `status-${row.status ?? 'none'}`;
  version.textContent = String(row.version);
  rkey.textContent = visible(row.rkey ?? '');
  updated.textContent = when(row.updated_at);
}

function drawList(body) {
  const items = body.items.slice().sort((a, b) => (b.updated_at ?? 0) - (a.updated_at ?? 0));
  state.rows.clear();
  const trs = items.map((row) => {
    const tr = el('tr');
    tr.dataset.id = row.id;
    for (const c of ['id', 'status', 'version num', 'rkey', 'updated']) tr.append(el('td', c));
    fillRow(tr, row);
    tr.classList.toggle('selected', row.id === state.selected);
    tr.addEventListener('click', () => select(row.id));
    state.rows.set(row.id, tr);
    return tr;
  });
  $('rows').replaceChildren(...trs);
  const more =
    body.more > 0 ? `; ${body.moreAtLeast ? 'at least ' : ''}${body.more} more not shown (filter to narrow)` : '';
  $('shown').textContent = `${items.length} shown${more}`;
}

function scheduleList() {
  clearTimeout(listTimer);
  listTimer = setTimeout(loadList, 200);
}

// ---- detail pane -----------------------------------------------------------------------------

function select(id) {
  for (const tr of state.rows.values()) tr.classList.toggle('selected', tr.dataset.id === id);
  state.selected = id;
  state.highlight = undefined;
  state.events?.close();
  $('detail-body').dataset.live = 'no';
  const es = new EventSource(`/events?id=${encodeURIComponent(id)}`);
  state.events = es;
  es.addEventListener('ready', () => {
    // Live from here: a load now misses no change.
    $('detail-body').dataset.live = 'yes';
    showDetail(id);
  });
  for (const type of ['change', 'reset']) {
    es.addEventListener(type, (e) => {
      if (state.events !== es) return;
      const event = JSON.parse(e.data);
      if (type === 'change') {
        state.highlight = mergeDelta(state.highlight, event.delta);
        const tr = state.rows.get(id);
        if (tr !== undefined) {
          tr.children[1].textContent = event.status ?? '—';
          tr.children[2].textContent = String(event.version);
          tr.children[4].textContent = when(event.updated_at);
        }
      }
      showDetail(id);
    });
  }
  es.addEventListener('deleted', () => {
    if (state.events !== es) return;
    state.rows.get(id)?.remove();
    state.rows.delete(id);
    renderGone(id, 'deleted');
  });
  es.addEventListener('failed', (e) => {
    $('link').textContent = `following failed: ${visible(JSON.parse(e.data).error)}`;
    $('link').classList.add('down');
  });
  es.addEventListener('error', () => {
    if (state.events === es) $('detail-body').dataset.live = 'no';
  });
}

/** Loads the selected context and its history (one request at a time; the latest wins). */
const showDetail = oneAtATime(
  async (id) => {
    try {
      const res = await fetch(`/api/context?id=${encodeURIComponent(id)}`);
      const d = await res.json();
      if (id === state.selected) {
        if (res.ok) {
          renderDetail(d, state.highlight);
          state.highlight = undefined;
        } else renderGone(id, res.status === 404 ? 'not in the store' : visible(d.error));
      }
      linkUp();
    } catch {
      linkDown();
    }
  },
  () => state.selected,
);

function renderGone(id, why) {
  $('detail-body').hidden = true;
  $('detail-empty').hidden = false;
  $('detail-empty').textContent = `${visible(id)}: ${why}.`;
}

/** An object's fields as a tree; `delta` (the changes to highlight) has the same shape. */
function tree(value, delta) {
  const box = el('div');
  for (const [k, v] of Object.entries(value)) box.append(node(k, v, own(delta, k)));
  // Fields the last change removed: shown struck through, highlighted.
  for (const [k, d] of Object.entries(delta ?? {})) {
    if (Object.hasOwn(value, k) || !isLeaf(d) || d.action !== 'removed') continue;
    const row = el('div', 'row changed removed');
    row.dataset.key = k;
    row.append(el('span', 'key', visible(k)), document.createTextNode(`: ${short(d.old_value)}`));
    box.append(row);
  }
  return box;
}

function node(key, value, delta) {
  const changed = delta !== undefined;
  // Inside a field replaced whole, every value is new: the field is highlighted, not each one.
  return fieldNode(key, value, changed, () => tree(value, changed && !isLeaf(delta) ? delta : undefined));
}

function historyItem(event) {
  const li = el('li');
  li.dataset.version = String(event.version);
  const head = `v${event.version} ${when(event.updated_at)}${event.status ? ` ${event.status}` : ''}`;
  li.append(el('b', '', visible(head)));
  for (const [path, leaf] of leaves(event.delta)) {
    const line = el('div', leaf.action);
    const name = visible(path.join('.'));
    if (leaf.action === 'added') line.textContent = `+ ${name}: ${short(leaf.value)}`;
    else if (leaf.action === 'modified')
      line.textContent = `~ ${name}: ${short(leaf.old_value)} → ${short(leaf.value)}`;
    else line.textContent = `- ${name}: ${short(leaf.old_value)}`;
    li.append(line);
  }
  return li;
}

function renderDetail(d, highlight) {
  const c = d.context;
  $('detail-empty').hidden = true;
  $('detail-body').hidden = false;
  $('detail-body').dataset.version = String(c.version);
  $('d-id').textContent = visible(c.id);
  $('d-meta').textContent =
    `${visible(c.rkey ?? '')} · ${c.status ?? 'no status'} · version ${c.version} · ` +
    `born ${when(c.born_at) || '—'} · updated ${when(c.updated_at) || '—'}` +
    (c.finished_at ? ` · finished ${when(c.finished_at)}` : '');
  $('d-fields').replaceChildren(tree(c.context, highlight));
  const items = d.history.slice().reverse().map(historyItem);
  if (items.length === 0) items.push(el('li', 'dim', 'no deltas kept'));
  $('d-history').replaceChildren(...items);
}

// ---- wiring ----------------------------------------------------------------------------------

function linkUp() {
  $('link').textContent = 'connected';
  $('link').classList.remove('down');
}

function linkDown() {
  $('link').textContent = 'server unreachable';
  $('link').classList.add('down');
}

async function hello() {
  try {
    const res = await fetch('/api/source');
    const body = await res.json();
    $('source').textContent = visible(body.source);
  } catch {
    linkDown();
  }
}

$('f-text').addEventListener('input', scheduleList);
$('f-status').addEventListener('change', loadList);
$('refresh').addEventListener('click', loadList);
$('f-text').value = '';
$('f-status').value = '';
hello();
loadList();
