// lcmon --web: the page. Everything that comes from messages (ids, routing keys, field names and
// values) reaches the document through textContent or attributes set as data, never as markup
// (see page.js).
import { $, el, fieldNode, oneAtATime, short, visible } from './page.js';

const state = {
  /** id → the object's latest view. */
  objects: new Map(),
  /** id → its table row. */
  rows: new Map(),
  /** Updates not yet drawn (drawn once per animation frame; held while paused). */
  pending: new Map(),
  gone: new Set(),
  /** Rows highlighted as just changed, and since when (ms). */
  fresh: new Map(),
  /** Rows of finished objects fading out, and since when (ms). */
  fading: new Map(),
  paused: false,
  fadeMs: 10000,
  selected: undefined,
  filter: { rkey: undefined, id: '', field: undefined },
};

// ---- formatting ----------------------------------------------------------------------------

function ago(seconds) {
  const s = Math.max(0, Date.now() / 1000 - seconds);
  if (s < 60) return `${s.toFixed(1)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${Math.floor(s % 60)}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

function clock(seconds) {
  const d = new Date(seconds * 1000);
  return `${d.toLocaleTimeString()}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

// ---- filter ----------------------------------------------------------------------------------

function globToRegExp(glob) {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

function readFilter() {
  const rkey = $('f-rkey').value.trim();
  const field = $('f-field').value.trim();
  const eq = field.indexOf('=');
  state.filter = {
    rkey: rkey === '' ? undefined : globToRegExp(rkey),
    id: $('f-id').value.trim(),
    field:
      field === '' ? undefined : eq < 0 ? { name: field } : { name: field.slice(0, eq), value: field.slice(eq + 1) },
  };
  rebuild();
}

function matches(v) {
  const f = state.filter;
  if (v === undefined) return false;
  if (f.rkey !== undefined && !f.rkey.test(v.rkey ?? '')) return false;
  if (f.id !== '' && !v.id.includes(f.id)) return false;
  if (f.field !== undefined) {
    if (!Object.hasOwn(v.fields, f.field.name)) return false;
    if (f.field.value !== undefined) {
      const value = v.fields[f.field.name];
      if (String(value) !== f.field.value && JSON.stringify(value) !== f.field.value) return false;
    }
  }
  return true;
}

function countShown() {
  let shown = 0;
  for (const tr of state.rows.values()) if (!tr.hidden) shown++;
  const more = state.rows.size >= MAX_ROWS ? ` (the newest ${MAX_ROWS} drawn: filter to see others)` : '';
  $('shown').textContent = `${shown} of ${state.objects.size} shown${more}`;
}

// ---- table -----------------------------------------------------------------------------------

/**
 * The table draws at most this many rows, the newest objects that pass the filter: thousands of
 * rows changing many times a second would keep the page from answering.
 */
const MAX_ROWS = 500;

function makeRow(id) {
  const tr = el('tr');
  tr.dataset.id = id;
  for (const c of ['id', 'rkey', 'age num', 'last num', 'nfields num', 'nmsgs num']) tr.append(el('td', c));
  tr.addEventListener('click', () => select(id));
  if (id === state.selected) tr.classList.add('selected');
  state.rows.set(id, tr);
  return tr;
}

/** Draws the rows again from the objects known: after the filter changed. */
function rebuild() {
  state.rows.clear();
  const rows = [];
  const all = [...state.objects.values()];
  for (let i = all.length - 1; i >= 0 && rows.length < MAX_ROWS; i--) {
    if (!matches(all[i])) continue;
    const tr = makeRow(all[i].id);
    fill(tr, all[i], false);
    rows.push(tr);
  }
  $('rows').replaceChildren(...rows);
  countShown();
}

/** Writes an object's cells into its row (the same element every time: updated in place). */
function fill(tr, v, changed) {
  const [id, rkey, age, last, nfields, nmsgs] = tr.children;
  id.textContent = visible(v.id);
  id.title = visible(v.id);
  rkey.textContent = visible(v.rkey ?? '');
  age.textContent = ago(v.start);
  last.textContent = `${ago(v.last)} ago`;
  last.title = clock(v.last);
  nfields.textContent = String(Object.keys(v.fields).length);
  nmsgs.textContent = String(v.messages);
  tr.hidden = !matches(v);
  if (changed) {
    // A static highlight, cleared by the next tick: repainted twice, not animated every frame.
    tr.classList.add('fresh');
    state.fresh.set(tr, performance.now());
  }
  if (v.status !== 'open' && !tr.classList.contains('finished')) {
    if (v.status === 'transient') tr.classList.add('transient');
    if (v.complete === false) tr.classList.add('incomplete');
    tr.classList.add('finished');
    state.fading.set(tr, performance.now());
  }
}

/**
 * Twice a second: clears the highlight of rows not changed since, steps the fading rows' opacity
 * down (a step at a time rather than an animation per row), and moves the ages on.
 */
function tick() {
  const now = performance.now();
  for (const [tr, at] of state.fresh) {
    if (now - at < 400) continue;
    tr.classList.remove('fresh');
    state.fresh.delete(tr);
  }
  for (const [tr, at] of state.fading) {
    if (!tr.isConnected) state.fading.delete(tr);
    else tr.style.opacity = String(Math.max(0.1, 1 - (now - at) / state.fadeMs).toFixed(2));
  }
  for (const [id, tr] of state.rows) {
    const v = state.objects.get(id);
    if (v === undefined) continue;
    if (v.status === 'open') tr.children[2].textContent = ago(v.start);
    tr.children[3].textContent = `${ago(v.last)} ago`;
  }
}

function drawRow(v, isNew) {
  const tr = state.rows.get(v.id);
  if (tr !== undefined) {
    fill(tr, v, !isNew);
    return;
  }
  if (!isNew || !matches(v)) return;
  const row = makeRow(v.id);
  fill(row, v, false);
  $('rows').prepend(row);
  if (state.rows.size > MAX_ROWS) {
    const oldest = $('rows').lastElementChild;
    state.rows.delete(oldest.dataset.id);
    oldest.remove();
  }
}

/** The server let the object go (faded out after it finished, or dropped). */
function removeObject(id) {
  state.rows.get(id)?.remove();
  state.rows.delete(id);
  state.objects.delete(id);
}

function apply() {
  state.frame = undefined;
  if (state.paused) return;
  for (const id of state.gone) removeObject(id);
  state.gone.clear();
  for (const v of state.pending.values()) {
    const isNew = !state.objects.has(v.id);
    state.objects.set(v.id, v);
    drawRow(v, isNew);
    if (v.id === state.selected) showDetail(v.id);
  }
  state.pending.clear();
  countShown();
}

function schedule() {
  if (state.frame === undefined) state.frame = requestAnimationFrame(apply);
}

// ---- detail pane -----------------------------------------------------------------------------

function select(id) {
  for (const tr of state.rows.values()) tr.classList.toggle('selected', tr.dataset.id === id);
  state.selected = id;
  showDetail(id);
}

/** Loads the selected object's fields and history (one request at a time; the latest wins). */
const showDetail = oneAtATime(
  async (id) => {
    try {
      const res = await fetch(`/api/object?id=${encodeURIComponent(id)}`);
      const d = await res.json();
      if (id === state.selected) renderDetail(id, res.ok ? d : undefined);
    } catch {
      /* the server went away: the link indicator says so */
    }
  },
  () => state.selected,
);

function tree(value, changed) {
  const box = el('div');
  const entries = Object.entries(value);
  for (const [k, v] of entries) box.append(node(k, v, changed?.has(k)));
  return box;
}

function node(key, value, isChanged) {
  return fieldNode(key, value, isChanged, () => tree(value));
}

function renderDetail(id, d) {
  $('detail-empty').hidden = d !== undefined;
  $('detail-body').hidden = d === undefined;
  if (d === undefined) {
    $('detail-empty').textContent = `${visible(id)}: gone (finished and faded, or dropped).`;
    return;
  }
  $('d-id').textContent = visible(d.id);
  const status = d.status === 'open' ? 'open' : `${d.status}${d.complete === false ? ' (incomplete)' : ''}`;
  $('d-meta').textContent =
    `${visible(d.rkey ?? '')} · ${status} · ${d.messages} message(s) · started ${clock(d.start)}`;
  $('d-fields').replaceChildren(tree(d.fields, new Set(d.changed)));
  const items = d.history
    .slice()
    .reverse()
    .map((h) => {
      const li = el('li');
      const head = `${h.seq === undefined ? '' : `#${h.seq} `}${clock(h.time)}${h.status ? ` ${h.status}` : ''}${h.action ? ` ${h.action}` : ''}`;
      li.append(el('b', '', visible(head)), document.createTextNode(` ${short(h.fields)}`));
      return li;
    });
  $('d-history').replaceChildren(...items);
}

// ---- counters and handlers ------------------------------------------------------------------

function showStats(body) {
  const c = body.counters;
  $('c-rate').textContent = String(c.rate);
  $('c-messages').textContent = String(c.messages);
  $('c-open').textContent = String(c.open);
  $('c-malformed').textContent = String(c.malformed);
  $('c-coalesced').textContent = String(c.coalesced);
  $('c-heap').textContent = String(c.heapMiB);
  $('c-dropped').textContent = String(c.droppedObjects + c.droppedHistory + c.droppedByLink);
  $('c-dropped').title = `objects ${c.droppedObjects}, history ${c.droppedHistory}, browser link ${c.droppedByLink}`;
  const rows = (body.handlers ?? []).map((h) => {
    const tr = el('tr');
    const st = h.stats ?? {};
    const collector = h.kind === 'collector';
    const n = (v) => (typeof v === 'number' ? String(Math.round(v * 10) / 10) : '-');
    const cells = [
      h.kind,
      h.id,
      h.name,
      h.host,
      String(h.pid),
      n(collector ? st.queue_depth : st.queued),
      n(collector ? st.dead_lettered : st.dropped),
      n(collector ? st.rate : st.published_per_s),
      n(st.reconnects),
      `${h.seen_ago.toFixed(1)}s ago`,
    ];
    for (const c of cells) tr.append(el('td', '', visible(c)));
    return tr;
  });
  $('handler-rows').replaceChildren(...rows);
  $('handlers-box').hidden = body.handlers === null;
}

// ---- wiring ----------------------------------------------------------------------------------

function connect() {
  const es = new EventSource('/events');
  es.addEventListener('hello', (e) => {
    const body = JSON.parse(e.data);
    $('link').textContent = 'live';
    $('link').classList.remove('down');
    $('source').textContent = visible(body.source);
    state.fadeMs = body.fadeMs;
    document.documentElement.style.setProperty('--fade', `${body.fadeMs}ms`);
    // A fresh snapshot: what is not in it is gone.
    state.objects = new Map(body.objects.map((v) => [v.id, v]));
    state.pending.clear();
    state.gone.clear();
    rebuild();
    showStats(body);
  });
  es.addEventListener('update', (e) => {
    const body = JSON.parse(e.data);
    for (const v of body.changed) state.pending.set(v.id, v);
    for (const id of body.gone) {
      state.pending.delete(id);
      state.gone.add(id);
    }
    schedule();
  });
  es.addEventListener('stats', (e) => showStats(JSON.parse(e.data)));
  es.addEventListener('error', () => {
    $('link').textContent = 'disconnected, retrying…';
    $('link').classList.add('down');
  });
}

for (const id of ['f-rkey', 'f-id', 'f-field']) $(id).addEventListener('input', readFilter);
$('pause').addEventListener('click', () => {
  state.paused = !state.paused;
  $('pause').textContent = state.paused ? 'Resume' : 'Pause';
  document.body.classList.toggle('paused', state.paused);
  if (!state.paused) schedule();
});
for (const id of ['f-rkey', 'f-id', 'f-field']) $(id).value = '';
readFilter();
connect();
setInterval(tick, 500);
