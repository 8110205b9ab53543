import { isPlainObject, setOwn } from '@contexture/context/protocol';
import { CollectorError } from '../errors.js';
import { cloneValue, encodeValue, sameOwnValue } from './json.js';
import type { ContextDelta, ContextEvent, ContextStatus, DeltaLeaf, DeltaNode } from './types.js';

/** One field's change inside a stored delta record: `o` the value before, `n` after (absent: no field). */
export interface FieldChange {
  k: string;
  o?: unknown;
  n?: unknown;
}

/**
 * One version as both stores keep it: the top-level fields it changed with their whole values
 * before and after, the status after it (absent: none), and the store's clock (ms). The recursive
 * public delta is derived from these on read, so merging versions works on whole values.
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
    const same = a === b || (typeof a === 'object' && typeof b === 'object' && a !== null && b !== null && sameOwnValue(a, b));
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
      const sub = leaf((values as Array<Record<string, unknown>>).map((v) => (has.call(v, k) ? v[k] : ABSENT)), copy);
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

/**
 * The delta of one or more consecutive records (oldest first), merged: per field, recursively,
 * modified keeps the first old value and the last value, remove-then-add is an add, add-then-remove
 * is nothing, and a value back where it started is nothing.
 */
export function mergeRecords(records: readonly DeltaRecord[], copyValues = false): ContextDelta {
  const copy = copyValues ? cloneValue : identity;
  const seqs = new Map<string, Slot[]>();
  for (const r of records) {
    for (const ch of r.c) {
      let s = seqs.get(ch.k);
      if (s === undefined) {
        s = [has.call(ch, 'o') ? ch.o : ABSENT];
        seqs.set(ch.k, s);
      }
      s.push(has.call(ch, 'n') ? ch.n : ABSENT);
    }
  }
  const delta: ContextDelta = {};
  for (const [k, values] of seqs) {
    const node = leaf(values, copy);
    if (node !== undefined) setOwn(delta, k, node);
  }
  return delta;
}

function identity<T>(v: T): T {
  return v;
}

/** The `watch()` event of one record (`copyValues` when the record's values are the store's own). */
export function recordEvent(id: string, record: DeltaRecord, copyValues = false): ContextEvent {
  return {
    type: 'change',
    id,
    version: record.v,
    delta: mergeRecords([record], copyValues),
    status: record.s ?? null,
    updated_at: record.t / 1000,
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
