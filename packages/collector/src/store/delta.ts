/**
 * The delta records both stores keep (one per version: the changes it made) and what is derived
 * from them: the public delta of one or more records merged (mergeRecords()), a watch() event,
 * and applyDelta() for clients that keep a copy.
 */
import { isPlainObject, parseJson, setOwn } from '@contexture/context/protocol';
import { CollectorError } from '../internal/errors.js';
import { ABSENT, type Slot } from './field-changes.js';
import { cloneValue, encodeOwn, encodeValue, sameOwnValue } from './json.js';
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

const has = Object.prototype.hasOwnProperty;

/** Parses a stored record (JSON text, as Redis keeps it and publishes it). */
export function parseRecord(text: string): DeltaRecord {
  let r: unknown;
  try {
    r = parseJson(text);
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
    return Object.is(first, last) ? undefined : { action: 'modified', old_value: first, value: last };
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
    let node: DeltaNode | undefined;
    try {
      node = mergeSteps(s, 0, copy);
    } catch (err) {
      // The merge walks the paths and values by recursion: records of a value thousands deep (the
      // stores refuse writing one: see MAX_VALUE_DEPTH) run out of stack.
      if (err instanceof RangeError && /call stack/i.test(err.message))
        throw new CollectorError(
          'LC_STORE_CORRUPT',
          `the deltas of field ${JSON.stringify(k)} are nested too deep to read`,
          {
            cause: err,
          },
        );
      throw err;
    }
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
