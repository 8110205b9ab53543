/**
 * The changes a write makes to a field, worked out as it is made: an update's deep merge
 * (mergeField(), mergeChanges()), a replacement sharing what stayed the same (replaceChanges()),
 * and what JSON makes of the values written, as the store's own (copyFields(), ownCopy()).
 */
import { isPlainObject, setOwn } from '@contexture/context/protocol';
import { CollectorError } from '../internal/errors.js';
import type { FieldChange } from './delta.js';
import { encodeValue, inKeyOrder, isOwnValue, keepFrozen, orderedKeys, unboxed } from './json.js';

/** No value (a field or key that is not there); see {@link ABSENT_VALUE}. */
export const ABSENT: unique symbol = Symbol('absent');
/** A value, or ABSENT. */
export type Slot = unknown | typeof ABSENT;

/** What replaceChanges() takes and returns for "no value". */
export const ABSENT_VALUE: unknown = ABSENT;

const has = Object.prototype.hasOwnProperty;
const enumerable = Object.prototype.propertyIsEnumerable;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

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
 * A batch of merges (see mergeField()): the objects they make are left unfrozen and changed in
 * place by the merges after them instead of copied again, until freezeBatch() makes them the
 * store's own. Every other object of the store's values is frozen: an object below a field's
 * value that can still take keys (Object.isExtensible(), a quicker test than isFrozen()) is one of
 * the batch. `made` lists the objects the batch made, to freeze.
 */
export interface FreshObjects {
  made: Array<Record<string, unknown>>;
}

/** A new batch of merges (see FreshObjects). */
export function freshObjects(): FreshObjects {
  return { made: [] };
}

/**
 * Freezes the objects of a batch of merges (see mergeField()) and returns `value` (a field's value
 * after them) as the store's own.
 */
export function freezeBatch<T>(value: T, fresh: FreshObjects): T {
  for (const o of fresh.made) Object.freeze(o);
  fresh.made.length = 0;
  return keepFrozen(value);
}

/**
 * The field `key`, now `cur` (ABSENT_VALUE: none), after an update gives it `value` (from
 * copyFields()): objects merge (see mergeChanges()), anything else replaces (see replaceChanges()).
 * With `fresh`, for a batch of merges one on top of the other: the objects the merge makes are
 * not frozen (see FreshObjects), and a later merge of the batch changes them in place (a merge that
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

// Slots are compared with Object.is: NaN (which the store keeps) is then the same as NaN; the
// store never holds -0 (jsonOf() makes it 0).

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
  // In the stores' key order: the changes are recorded in it, as when the partial was copied in it.
  for (const k of orderedKeys(partial)) {
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
      if (next !== ABSENT && !Object.is(next, cur))
        changes.push(had ? { k: key, p: path.slice(), o: cur, n: next } : { k: key, p: path.slice(), n: next });
    }
    path.pop();
    // An object of the batch changed in place below: `cur` is that object (and `base` one too).
    if (next === ABSENT || Object.is(next, cur)) continue;
    out ??= fresh !== undefined && Object.isExtensible(base) ? base : copyOf(base);
    if (!had) added = true;
    setOwn(out, k, next);
  }
  if (out === null) return base;
  // A key added goes where the stores' key order puts it (see orderedKeys()).
  if (added) out = inKeyOrder(out);
  if (fresh !== undefined) {
    if (out !== base) fresh.made.push(out);
    return out;
  }
  // What it holds is the store's own: kept from `base`, merged below, or copied by share().
  return Object.freeze(out);
}

/**
 * A shallow copy of one of the store's objects, made key by key: spreading a frozen object with
 * many keys (which V8 keeps as a dictionary) takes several times as long.
 */
function copyOf(base: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(base)) setOwn(out, k, base[k]);
  return out;
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
 * What JSON makes of the fields of a write, as copies taken now (what the caller changes
 * afterwards is not written); a field whose value JSON drops is left out. With `own` each value is
 * made the store's own (see keepValue()); without, it is read once (an update's partial object,
 * see readJson()).
 */
export function copyFields(fields: Record<string, unknown>, own = false): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(fields)) {
    const v = forField(key, () => (own ? share(ABSENT, fields[key]) : readJson(fields[key])));
    if (v !== ABSENT) setOwn(out, key, own ? keepFrozen(v) : v);
  }
  return Object.freeze(out);
}

/**
 * What JSON makes of a value, read now (ABSENT: JSON drops it): plain objects and arrays that
 * nothing else holds, neither frozen nor with their keys in order, but for the store's own values
 * kept as they are. What a merge keeps of it goes through share() (see mergeAt()).
 */
function readJson(raw: unknown): Slot {
  const v = jsonOf(raw);
  if (typeof v !== 'object' || v === null || isOwnValue(v)) return v;
  if (Array.isArray(v)) {
    const out: unknown[] = new Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const x = readJson(v[i]);
      out[i] = x === ABSENT ? null : x;
    }
    return out;
  }
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    const x = readJson((v as Record<string, unknown>)[k]);
    if (x !== ABSENT) setOwn(out, k, x);
  }
  return out;
}

/** `value` as the store keeps it (see replaceChanges()); undefined when JSON drops it. */
export function ownCopy(value: unknown): unknown {
  const v = share(ABSENT, value);
  return v === ABSENT ? undefined : keepFrozen(v);
}

/**
 * `value` as the store keeps the field `key`, as replaceChanges() makes it, its change pushed on
 * `changes` as one change of the whole field (its values before and after), not at the paths
 * below it: the same delta (see mergeRecords()) for less to make and keep. Nothing is pushed when
 * nothing changed; returns `old` itself then.
 */
export function replaceWhole(key: string, old: unknown, value: unknown, changes: FieldChange[]): unknown {
  const n = forField(key, () => keepFrozen(ownFrom(old, value)));
  if (!Object.is(n, old)) {
    const c: FieldChange = { k: key };
    if (old !== ABSENT) c.o = old;
    if (n !== ABSENT) c.n = n;
    changes.push(c);
  }
  return n;
}

/**
 * The bytes of value text the changes at the paths below a field would hold between two of the
 * store's values of it, `o` made into `n` by replaceWhole() (whose parts that stayed the same are
 * the same objects): what diffAt() records, weighed without making it.
 */
export function changedBytes(o: Slot, n: Slot): number {
  if (Object.is(o, n)) return 0;
  if (isPlainObject(o) && isPlainObject(n)) {
    let bytes = 0;
    for (const k of Object.keys(n)) bytes += has.call(o, k) ? changedBytes(o[k], n[k]) : textBytes(n[k]);
    for (const k of Object.keys(o)) if (!has.call(n, k)) bytes += textBytes(o[k]);
    return bytes;
  }
  return (o === ABSENT ? 0 : textBytes(o)) + (n === ABSENT ? 0 : textBytes(n));
}

/**
 * A change of a whole field as replaceWhole() records it, as the changes at the paths below it
 * diffAt() would have recorded (the change itself when the field was not an object before and after).
 */
export function pathChanges(c: FieldChange): FieldChange[] {
  const out: FieldChange[] = [];
  const o = has.call(c, 'o') ? c.o : ABSENT;
  const n = has.call(c, 'n') ? c.n : ABSENT;
  if (c.p !== undefined || !isPlainObject(o) || !isPlainObject(n)) out.push(c);
  else changesBelow(c.k, o, n, [], out);
  return out;
}

function changesBelow(key: string, o: Slot, n: Slot, path: string[], out: FieldChange[]): void {
  if (Object.is(o, n)) return;
  if (isPlainObject(o) && isPlainObject(n)) {
    for (const k of Object.keys(n)) {
      path.push(k);
      if (has.call(o, k)) changesBelow(key, o[k], n[k], path, out);
      else out.push({ k: key, p: path.slice(), n: n[k] });
      path.pop();
    }
    for (const k of Object.keys(o)) if (!has.call(n, k)) out.push({ k: key, p: [...path, k], o: o[k] });
    return;
  }
  const c: FieldChange = path.length === 0 ? { k: key } : { k: key, p: path.slice() };
  if (o !== ABSENT) c.o = o;
  if (n !== ABSENT) c.n = n;
  out.push(c);
}

function textBytes(v: unknown): number {
  return encodeValue(v)?.length ?? 0;
}

/** With `changes` null, nothing is recorded: whether anything changed is whether `old` comes back. */
function diffAt(key: string, old: Slot, raw: unknown, path: string[], changes: FieldChange[] | null): Slot {
  const v = jsonOf(raw);
  if (isPlainObject(v) && isPlainObject(old) && v !== old) {
    const out: Record<string, unknown> = {};
    let same = true;
    let kept = 0;
    // The keys the stored object has (the usual case) come in its order, the stores' order already.
    const oldKeys = Object.keys(old);
    let sameKeys = Object.keys(v).length === oldKeys.length;
    for (let i = 0; sameKeys && i < oldKeys.length; i++) sameKeys = enumerable.call(v, oldKeys[i]!);
    for (const k of sameKeys ? oldKeys : orderedKeys(v)) {
      const had = sameKeys || has.call(old, k);
      const o = had ? old[k] : ABSENT;
      const raw = v[k];
      let n: Slot;
      if (typeof raw === 'string' || typeof raw === 'boolean' || raw === null) {
        // A plain leaf (most of them): compared here.
        n = raw;
        if (n === o) n = o;
        else if (changes !== null)
          changes.push(had ? { k: key, p: [...path, k], o, n } : { k: key, p: [...path, k], n });
      } else {
        path.push(k);
        n = diffAt(key, o, raw, path, changes);
        path.pop();
        if (n === ABSENT) continue;
      }
      if (k === '__proto__') setOwn(out, k, n);
      else out[k] = n;
      kept++;
      if (!had || !Object.is(o, n)) same = false;
    }
    if (!sameKeys && changes !== null)
      for (const k of oldKeys) if (!enumerable.call(v, k)) changes.push({ k: key, p: [...path, k], o: old[k] });
    if (same && kept === oldKeys.length) return old;
    return Object.freeze(out);
  }
  const n = share(old, v);
  if (!Object.is(n, old) && changes !== null) {
    const c: FieldChange = path.length === 0 ? { k: key } : { k: key, p: path.slice() };
    if (old !== ABSENT) c.o = old;
    if (n !== ABSENT) c.n = n;
    changes.push(c);
  }
  return n;
}

/**
 * What diffAt() makes of `raw` over `old` when it records nothing: `raw` as the store's own, `old`
 * itself when they are the same, sharing the parts of `old` that are the same. Compared first: an
 * object or array is copied only from its first difference on, and one that is the same makes
 * nothing.
 */
function ownFrom(old: Slot, raw: unknown): Slot {
  if (typeof raw === 'string' || typeof raw === 'boolean' || raw === null) return raw === old ? old : raw;
  const v = jsonOf(raw);
  if (typeof v !== 'object' || v === null) return Object.is(v, old) ? old : v;
  if (v === old) return old;
  if (isOwnValue(v)) return share(old, v);
  if (Array.isArray(v)) {
    if (!Array.isArray(old) || old.length !== v.length) return share(old, v);
    let out: unknown[] | null = null;
    for (let i = 0; i < v.length; i++) {
      const o: unknown = old[i];
      const x = ownFrom(o, v[i]);
      const y = x === ABSENT ? null : x;
      if (out === null) {
        if (Object.is(y, o)) continue;
        out = old.slice(0, i);
      }
      out.push(y);
    }
    return out === null ? old : Object.freeze(out);
  }
  if (!isPlainObject(old)) return share(old, v);
  // The same keys (the usual case): walked in the stored object's order, the stores' order already.
  // Walked with for-in, which makes no array of keys: an inherited key counted (an enumerable one
  // on a prototype) only makes the counts differ, and diffAt() then reads the object as JSON does.
  // A stored key must be an own enumerable one of `v`: JSON leaves out an own key that is not
  // enumerable, as for-in does when counting.
  let keys = 0;
  for (const _ in v) keys++;
  let out: Record<string, unknown> | null = null;
  for (const k in old) {
    keys--;
    if (!enumerable.call(v, k)) return diffAt('', old, v, [], null);
    const o = old[k];
    const x = ownFrom(o, (v as Record<string, unknown>)[k]);
    if (out === null) {
      if (Object.is(x, o)) continue;
      if (x === ABSENT) return diffAt('', old, v, [], null);
      out = {};
      for (const j in old) {
        if (j === k) break;
        setOwn(out, j, old[j]);
      }
    } else if (x === ABSENT) return diffAt('', old, v, [], null);
    setOwn(out, k, x);
  }
  if (keys !== 0) return diffAt('', old, v, [], null);
  return out === null ? old : Object.freeze(out);
}

/** What JSON makes of a value at the top: its toJSON() result, ABSENT for what it drops. */
function jsonOf(v: unknown): Slot {
  for (
    let depth = 0;
    typeof v === 'object' && v !== null && typeof (v as { toJSON?: unknown }).toJSON === 'function';
    depth++
  ) {
    if (depth > 100)
      throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'toJSON() keeps returning objects with toJSON()');
    v = (v as { toJSON: () => unknown }).toJSON();
  }
  v = unboxed(v);
  switch (typeof v) {
    case 'undefined':
    case 'function':
    case 'symbol':
      return ABSENT;
    case 'number':
      // NaN and the infinities are kept, written as Python writes them (see json.ts); -0 is 0.
      return v + 0;
    case 'bigint':
      // What a BigInt.prototype.toJSON returns, as JSON.stringify would; else its digits, read back
      // as a number when a double holds it exactly (what its text parses to, see json.ts).
      if (typeof (BigInt.prototype as { toJSON?: unknown }).toJSON === 'function')
        return JSON.parse(JSON.stringify(v)) as unknown;
      return v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v;
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
  if (typeof v !== 'object' || v === null) return Object.is(v, old) ? old : v;
  if (isOwnValue(v)) return share(old, v);
  if (Array.isArray(v)) {
    const o = Array.isArray(old) ? (old as unknown[]) : null;
    let same = o !== null && o.length === v.length;
    const out: unknown[] = new Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const x = share(o !== null && i < o.length ? o[i] : ABSENT, v[i]);
      out[i] = x === ABSENT ? null : x;
      if (same && !Object.is(out[i], o![i])) same = false;
    }
    return same ? old : Object.freeze(out);
  }
  const o = isPlainObject(old) ? old : null;
  const out: Record<string, unknown> = {};
  let same = o !== null;
  let kept = 0;
  // The keys of the value it replaces, when they are the same (in the stores' order already).
  const oldKeys = o === null ? null : Object.keys(o);
  let sameKeys = oldKeys !== null && Object.keys(v).length === oldKeys.length;
  for (let i = 0; sameKeys && i < oldKeys!.length; i++) sameKeys = enumerable.call(v, oldKeys![i]!);
  for (const k of sameKeys ? oldKeys! : orderedKeys(v)) {
    const had = o !== null && has.call(o, k);
    const x = share(had ? o[k] : ABSENT, (v as Record<string, unknown>)[k]);
    if (x === ABSENT) continue;
    setOwn(out, k, x);
    kept++;
    if (!had || !Object.is(o[k], x)) same = false;
  }
  return same && kept === oldKeys!.length ? old : Object.freeze(out);
}

/**
 * Puts the field `k` replaced by `value` in `next`, its changes on `changes`; a value JSON drops
 * leaves the field alone.
 */
export function replaceField(
  next: Map<string, unknown>,
  k: string,
  cur: unknown,
  value: unknown,
  changes: FieldChange[],
): void {
  const found: FieldChange[] = [];
  const n = replaceChanges(k, cur, value, found);
  if (n === ABSENT_VALUE) return;
  next.set(k, n);
  for (const c of found) changes.push(c);
}
