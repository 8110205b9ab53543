import { isPlainObject, setOwn } from '@contexture/context/protocol';
import { CollectorError } from '../internal/errors.js';
import {
  cloneValue,
  encodeOwn,
  encodeValue,
  inKeyOrder,
  isOwnValue,
  keepFrozen,
  orderedKeys,
  sameOwnValue,
  unboxed,
} from './json.js';
import type { ContextDelta, ContextEvent, ContextStatus, DeltaLeaf, DeltaNode } from './types.js';

/**
 * One change inside a stored delta record: the top-level field `k`, and with `p` the path below it
 * (a merging `update()` records only what it changed); `o` the value there before, `n` after
 * (absent: no value there).
 */
export interface FieldChange {
  k: string;
  p?: string[];
  o?: unknown;
  n?: unknown;
}

/**
 * One version as both stores keep it: the changes it made, each a whole value before and after at
 * a field or at a path below one, the status after it (absent: none), and the store's clock (ms).
 * The recursive public delta is derived from these on read (see mergeRecords()).
 */
export interface DeltaRecord {
  v: number;
  t: number;
  c: FieldChange[];
  s?: ContextStatus;
}

const ABSENT: unique symbol = Symbol('absent');
type Slot = unknown | typeof ABSENT;

const has = Object.prototype.hasOwnProperty;

/** Parses a stored record (JSON text, as Redis keeps it and publishes it). */
export function parseRecord(text: string): DeltaRecord {
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch (err) {
    throw new CollectorError('LC_STORE_CORRUPT', 'a stored delta is not JSON', { cause: err });
  }
  if (!isPlainObject(r) || typeof r.v !== 'number' || !Array.isArray(r.c)) {
    throw new CollectorError('LC_STORE_CORRUPT', 'a stored delta has an unknown shape');
  }
  return r as unknown as DeltaRecord;
}

/**
 * `values` with each run of equal values (the same one, or two of the store's own that encode
 * alike) cut to one: what a merge makes of them is the same, and a large value most versions left
 * as it was is then walked once, not once per version.
 */
function compact(values: Slot[]): Slot[] {
  let out: Slot[] | null = null;
  for (let i = 1; i < values.length; i++) {
    const a = values[i - 1];
    const b = values[i];
    const same =
      a === b || (typeof a === 'object' && typeof b === 'object' && a !== null && b !== null && sameOwnValue(a, b));
    if (same) out ??= values.slice(0, i);
    else if (out !== null) out.push(b);
  }
  return out ?? values;
}

function leaf(all: Slot[], copy: (v: unknown) => unknown): DeltaNode | undefined {
  const values = all.length > 1 ? compact(all) : all;
  if (values.length === 1) return undefined;
  const first = values[0];
  const last = values[values.length - 1];
  if (first === ABSENT) return last === ABSENT ? undefined : { action: 'added', value: copy(last) };
  if (last === ABSENT) return { action: 'removed', old_value: copy(first) };
  // Removed and added again in between: an add, whatever the client had.
  for (let i = 1; i < values.length - 1; i++) if (values[i] === ABSENT) return { action: 'added', value: copy(last) };
  if (typeof first !== 'object' && typeof last !== 'object') {
    return first === last ? undefined : { action: 'modified', old_value: first, value: last };
  }
  if (values.every(isPlainObject)) {
    const keys = new Set<string>();
    for (const v of values as Array<Record<string, unknown>>) for (const k of Object.keys(v)) keys.add(k);
    const out: Record<string, DeltaNode> = {};
    let any = false;
    for (const k of keys) {
      const sub = leaf(
        (values as Array<Record<string, unknown>>).map((v) => (has.call(v, k) ? v[k] : ABSENT)),
        copy,
      );
      if (sub !== undefined) {
        setOwn(out, k, sub);
        any = true;
      }
    }
    return any ? out : undefined;
  }
  if (encodeValue(first) === encodeValue(last)) return undefined;
  return { action: 'modified', old_value: copy(first), value: copy(last) };
}

/** One change of a field: the path below it (empty: the field itself), the values there before and after. */
interface Step {
  path: readonly string[];
  o: Slot;
  n: Slot;
}

/**
 * The delta of one or more consecutive records (oldest first), merged: per field, recursively,
 * modified keeps the first old value and the last value, remove-then-add is an add, add-then-remove
 * is nothing, and a value back where it started is nothing. Changes recorded at a path below a
 * field give the same delta as the whole values of the field before and after them would.
 */
export function mergeRecords(records: readonly DeltaRecord[], copyValues = false): ContextDelta {
  const copy = copyValues ? cloneValue : identity;
  const steps = new Map<string, Step[]>();
  for (const r of records) {
    for (const ch of r.c) {
      let s = steps.get(ch.k);
      if (s === undefined) {
        s = [];
        steps.set(ch.k, s);
      }
      s.push({
        path: Array.isArray(ch.p) ? ch.p.map(String) : [],
        o: has.call(ch, 'o') ? ch.o : ABSENT,
        n: has.call(ch, 'n') ? ch.n : ABSENT,
      });
    }
  }
  const delta: ContextDelta = {};
  for (const [k, s] of steps) {
    const node = mergeSteps(s, 0, copy);
    if (node !== undefined) setOwn(delta, k, node);
  }
  return delta;
}

/**
 * The delta of one node from its changes in order, their paths read from `depth` on. Changes only
 * below it (it stayed an object throughout): the deltas of its children. A change of the node as
 * a whole: its whole values, one per change, rebuilt from that change's values and the ones below
 * it (copy-on-write: the records' values are never changed), then compared as whole values.
 */
function mergeSteps(steps: readonly Step[], depth: number, copy: (v: unknown) => unknown): DeltaNode | undefined {
  const whole = steps.findIndex((s) => s.path.length === depth);
  if (whole < 0) {
    const children = new Map<string, Step[]>();
    for (const s of steps) {
      const key = s.path[depth]!;
      let list = children.get(key);
      if (list === undefined) {
        list = [];
        children.set(key, list);
      }
      list.push(s);
    }
    const out: Record<string, DeltaNode> = {};
    let any = false;
    for (const [key, list] of children) {
      const sub = mergeSteps(list, depth + 1, copy);
      if (sub !== undefined) {
        setOwn(out, key, sub);
        any = true;
      }
    }
    return any ? out : undefined;
  }
  // The value before the first whole change is its recorded old value with the changes below it
  // made before undone, newest first.
  let before = steps[whole]!.o;
  for (let i = whole - 1; i >= 0; i--) before = setPath(before, steps[i]!.path, depth, steps[i]!.o);
  const values: Slot[] = [before];
  let cur = before;
  for (const s of steps) {
    cur = s.path.length === depth ? s.n : setPath(cur, s.path, depth, s.n);
    values.push(cur);
  }
  return leaf(values, copy);
}

/** `value` with the slot at `path` (read from `depth` on) set to `slot`, copied along the path. */
function setPath(value: Slot, path: readonly string[], depth: number, slot: Slot): Slot {
  if (depth === path.length) return slot;
  // Records of one store never change below a value that is not an object; read as one if so.
  const base = isPlainObject(value) ? value : {};
  const key = path[depth]!;
  const child = setPath(has.call(base, key) ? base[key] : ABSENT, path, depth + 1, slot);
  const out = { ...base };
  if (child === ABSENT) delete out[key];
  else setOwn(out, key, child);
  return out;
}

/**
 * `partial` deep-merged over `base`, the field `key`'s current value (an own value of the store:
 * see keepValue()): where both sides hold a plain object the merge recurses, anything else is
 * replaced by a copy; keys whose value JSON drops are skipped. Each value that changed (by its
 * canonical JSON) is pushed on `changes` with its path below the field; the result shares what the
 * merge kept with `base`, is the store's own, and is `base` itself when nothing changed (with
 * `fresh`, see mergeField(), also when `base` was an object of the batch, changed in place).
 */
export function mergeChanges(
  key: string,
  base: Record<string, unknown>,
  partial: Record<string, unknown>,
  changes: FieldChange[],
  fresh?: FreshObjects,
): Record<string, unknown> {
  return forField(key, () => {
    const out = mergeAt(key, base, partial, [], changes, fresh);
    return fresh === undefined ? keepFrozen(out) : out;
  });
}

/**
 * The objects merges of one batch made (see mergeField()): changed in place by the merges after
 * them instead of copied again, until freezeBatch() makes them the store's own.
 */
export type FreshObjects = Set<Record<string, unknown>>;

/**
 * Freezes the objects of a batch of merges (see mergeField()) and returns `value` (a field's value
 * after them) as the store's own.
 */
export function freezeBatch<T>(value: T, fresh: FreshObjects): T {
  for (const o of fresh) Object.freeze(o);
  fresh.clear();
  return keepFrozen(value);
}

/**
 * The field `key`, now `cur` (ABSENT_VALUE: none), after an update gives it `value` (from
 * copyFields()): objects merge (see mergeChanges()), anything else replaces (see replaceChanges()).
 * With `fresh`, for a batch of merges one on top of the other: the objects the merge makes are
 * not frozen but noted there, and a later merge of the batch changes them in place (a merge that
 * throws may leave them half changed: the batch is then void); `changes` must be read (encoded)
 * before the next merge, and the batch's last values go through freezeBatch().
 */
export function mergeField(
  key: string,
  cur: unknown,
  value: unknown,
  changes: FieldChange[],
  fresh?: FreshObjects,
): unknown {
  return isPlainObject(value) && isPlainObject(cur)
    ? mergeChanges(key, cur, value, changes, fresh)
    : replaceChanges(key, cur, value, changes);
}

/**
 * `make()`, for the field `key`: what JSON cannot hold (a BigInt, a cycle) becomes an
 * LC_STORE_INVALID_ARGUMENT error naming the field.
 */
export function forField<T>(key: string, make: () => T): T {
  try {
    return make();
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) {
      // The copy walks the value by recursion: a cycle (or nesting thousands deep) runs out of stack.
      const why =
        err instanceof RangeError && /call stack/i.test(err.message)
          ? 'it holds a cycle, or is nested too deep'
          : err.message;
      throw new CollectorError(
        'LC_STORE_INVALID_ARGUMENT',
        `field ${JSON.stringify(key)} cannot be stored as JSON (${why})`,
        { cause: err },
      );
    }
    throw err;
  }
}

function mergeAt(
  key: string,
  base: Record<string, unknown>,
  partial: Record<string, unknown>,
  path: string[],
  changes: FieldChange[],
  fresh: FreshObjects | undefined,
): Record<string, unknown> {
  let out: Record<string, unknown> | null = null;
  let added = false;
  for (const k of Object.keys(partial)) {
    const v = partial[k];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    const had = has.call(base, k);
    const cur = had ? base[k] : ABSENT;
    let next: Slot;
    path.push(k);
    if (isPlainObject(v) && isPlainObject(cur)) {
      next = mergeAt(key, cur, v, path, changes, fresh);
    } else {
      next = share(cur, v);
      if (next !== ABSENT && next !== cur)
        changes.push(had ? { k: key, p: path.slice(), o: cur, n: next } : { k: key, p: path.slice(), n: next });
    }
    path.pop();
    // An object of the batch changed in place below: `cur` is that object (and `base` one too).
    if (next === ABSENT || next === cur) continue;
    out ??= fresh?.has(base) ? base : { ...base };
    if (!had) added = true;
    setOwn(out, k, next);
  }
  if (out === null) return base;
  // A key added goes where the stores' key order puts it (see orderedKeys()).
  if (added) out = inKeyOrder(out);
  if (fresh !== undefined) {
    fresh.add(out);
    return out;
  }
  // What it holds is the store's own: kept from `base`, merged below, or copied by share().
  return Object.freeze(out);
}

/**
 * `value` as the store keeps the field `key` (JSON's reading of it, as its canonical text would
 * parse: the store's own, deeply frozen), sharing with `old`, the field's current value (see
 * {@link ABSENT_VALUE} for none), every part that is the same; what differs is pushed on `changes`
 * at the deepest path where both sides are plain objects. Returns ABSENT_VALUE, with the field's
 * removal pushed, when JSON drops `value`; `old` itself when nothing changed. Throws what encoding
 * throws (a BigInt, a cycle) before anything is pushed that the caller keeps.
 */
export function replaceChanges(key: string, old: unknown, value: unknown, changes: FieldChange[]): unknown {
  return forField(key, () => keepFrozen(diffAt(key, old, value, [], changes)));
}

/**
 * What JSON makes of the fields of a write, as frozen copies taken now (what the caller changes
 * afterwards is not written); a field whose value JSON drops is left out. With `own` each value is
 * made the store's own (see keepValue()); without, it is read once (an update's partial object).
 */
export function copyFields(fields: Record<string, unknown>, own = false): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(fields)) {
    const v = forField(key, () => share(ABSENT, fields[key]));
    if (v !== ABSENT) setOwn(out, key, own ? keepFrozen(v) : v);
  }
  return Object.freeze(out);
}

/** `value` as the store keeps it (see replaceChanges()); undefined when JSON drops it. */
export function ownCopy(value: unknown): unknown {
  const v = share(ABSENT, value);
  return v === ABSENT ? undefined : keepFrozen(v);
}

/** What replaceChanges() takes and returns for "no value". */
export const ABSENT_VALUE: unknown = ABSENT;

function diffAt(key: string, old: Slot, raw: unknown, path: string[], changes: FieldChange[]): Slot {
  const v = jsonOf(raw);
  if (isPlainObject(v) && isPlainObject(old) && v !== old) {
    const out: Record<string, unknown> = {};
    let same = true;
    let kept = 0;
    // The keys the stored object has (the usual case) come in its order, the stores' order already.
    const oldKeys = Object.keys(old);
    const sameKeys = Object.keys(v).length === oldKeys.length && oldKeys.every((k) => has.call(v, k));
    for (const k of sameKeys ? oldKeys : orderedKeys(v)) {
      const had = sameKeys || has.call(old, k);
      const o = had ? old[k] : ABSENT;
      const raw = v[k];
      let n: Slot;
      if (typeof raw === 'string' || typeof raw === 'boolean' || raw === null) {
        // A plain leaf (most of them): compared here.
        n = raw;
        if (n !== o) changes.push(had ? { k: key, p: [...path, k], o, n } : { k: key, p: [...path, k], n });
        else n = o;
      } else {
        path.push(k);
        n = diffAt(key, o, raw, path, changes);
        path.pop();
        if (n === ABSENT) continue;
      }
      if (k === '__proto__') setOwn(out, k, n);
      else out[k] = n;
      kept++;
      if (!had || o !== n) same = false;
    }
    if (!sameKeys) for (const k of oldKeys) if (!has.call(v, k)) changes.push({ k: key, p: [...path, k], o: old[k] });
    if (same && kept === oldKeys.length) return old;
    return Object.freeze(out);
  }
  const n = share(old, v);
  if (n !== old) {
    const c: FieldChange = path.length === 0 ? { k: key } : { k: key, p: path.slice() };
    if (old !== ABSENT) c.o = old;
    if (n !== ABSENT) c.n = n;
    changes.push(c);
  }
  return n;
}

/** What JSON makes of a value at the top: its toJSON() result, ABSENT for what it drops. */
function jsonOf(v: unknown): Slot {
  for (
    let depth = 0;
    typeof v === 'object' && v !== null && typeof (v as { toJSON?: unknown }).toJSON === 'function';
    depth++
  ) {
    if (depth > 100) throw new RangeError('toJSON() keeps returning objects with toJSON()');
    v = (v as { toJSON: () => unknown }).toJSON();
  }
  v = unboxed(v);
  switch (typeof v) {
    case 'undefined':
    case 'function':
    case 'symbol':
      return ABSENT;
    case 'number':
      return Number.isFinite(v) ? v + 0 : null;
    case 'bigint':
      // What JSON.stringify makes of it: its error, or what a BigInt.prototype.toJSON returns.
      return JSON.parse(JSON.stringify(v)) as unknown;
    default:
      return v;
  }
}

/** `raw` as the store's own value, sharing with `old` every part that is the same (ABSENT: JSON drops it). */
function share(old: Slot, raw: unknown): Slot {
  // One of the store's values given back (from a sync() answer, say): kept as it is, or `old` when
  // they are alike, so that writing back what is there changes nothing.
  if (isOwnValue(raw)) return raw === old || (old !== ABSENT && encodeValue(old) === encodeValue(raw)) ? old : raw;
  const v = jsonOf(raw);
  if (typeof v !== 'object' || v === null) return v === old ? old : v;
  if (isOwnValue(v)) return share(old, v);
  if (Array.isArray(v)) {
    const o = Array.isArray(old) ? (old as unknown[]) : null;
    let same = o !== null && o.length === v.length;
    const out: unknown[] = new Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const x = share(o !== null && i < o.length ? o[i] : ABSENT, v[i]);
      out[i] = x === ABSENT ? null : x;
      if (same && out[i] !== o![i]) same = false;
    }
    return same ? old : Object.freeze(out);
  }
  const o = isPlainObject(old) ? old : null;
  const out: Record<string, unknown> = {};
  let same = o !== null;
  let kept = 0;
  for (const k of orderedKeys(v)) {
    const had = o !== null && has.call(o, k);
    const x = share(had ? o[k] : ABSENT, (v as Record<string, unknown>)[k]);
    if (x === ABSENT) continue;
    setOwn(out, k, x);
    kept++;
    if (!had || o[k] !== x) same = false;
  }
  return same && kept === Object.keys(o!).length ? old : Object.freeze(out);
}

/**
 * The changes of one version as the items of a record's `c` list (JSON, without the brackets):
 * their values are the store's own, whose JSON.stringify() is their canonical text.
 */
export function changesText(changes: readonly FieldChange[]): string {
  return changes.length === 0 ? '' : encodeOwn(changes).slice(1, -1);
}

function identity<T>(v: T): T {
  return v;
}

/**
 * The `watch()` event of one record of the context's incarnation `incarnation` (`copyValues` when
 * the record's values are the store's own).
 */
export function recordEvent(id: string, record: DeltaRecord, incarnation: string, copyValues = false): ContextEvent {
  return {
    type: 'change',
    id,
    version: record.v,
    delta: mergeRecords([record], copyValues),
    status: record.s ?? null,
    updated_at: record.t / 1000,
    incarnation,
  };
}

/** True for a {@link DeltaLeaf}; otherwise the node holds the changes of an object's fields. */
export function isDeltaLeaf(node: DeltaNode): node is DeltaLeaf {
  return typeof (node as { action?: unknown }).action === 'string';
}

/**
 * Applies a delta (from `sync()` or a `watch()` event) to a client's copy of the context, in place,
 * and returns it.
 *
 * @example
 * // sync() answers are read-only: take a copy of the full one to apply deltas to.
 * const full = await store.sync(id, null);
 * const copy = structuredClone(full.context);
 * const r = await store.sync(id, full.version);
 * if (r.type === 'delta') applyDelta(copy, r.delta);
 */
export function applyDelta(target: Record<string, unknown>, delta: ContextDelta): Record<string, unknown> {
  for (const k of Object.keys(delta)) {
    const node = delta[k]!;
    if (isDeltaLeaf(node)) {
      if (node.action === 'removed') delete target[k];
      else setOwn(target, k, cloneValue(node.value));
    } else {
      // An own property only: `target.__proto__` would be Object.prototype.
      let child = has.call(target, k) ? target[k] : undefined;
      if (!isPlainObject(child)) {
        child = {};
        setOwn(target, k, child);
      }
      applyDelta(child as Record<string, unknown>, node as ContextDelta);
    }
  }
  return target;
}
