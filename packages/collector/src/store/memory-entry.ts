/**
 * The state of one context in the memory store (an Entry: what the Redis store keeps in its keys),
 * and what reads it or keeps its delta records: the record and summary it answers, the records
 * kept and dropped by deltaThreshold and deltaTtl, when a delta weighs more than the context, and
 * the fields of a bus message as an entry takes them.
 */
import { isPlainObject, setOwn, type WireMessage } from '@contexture/context/protocol';
import type { DeltaRecord } from './delta.js';
import { changedBytes, forField, pathChanges } from './field-changes.js';
import { cloneValue, decodeValue, encodeValue, inKeyOrder } from './json.js';
import { checkMessage, type ResolvedStoreOptions } from './options.js';
import type { ContextStatus, ContextSummary, StoredContext, SyncResult } from './types.js';

/** A field of a context. */
export interface Field {
  /**
   * The store's own value (see keepValue()): handed out only frozen (sync()) or copied (get()),
   * never changed in place. Its canonical JSON text (encodeValue(), remembered once computed) is
   * what "the same value" is compared by.
   */
  value: unknown;
}

/** One context; the same state the Redis store keeps in its keys, with the same rules. */
export interface Entry {
  ord: number;
  version: number;
  /** Highest seq seen (-1: none). Direct writes stamp their fields with it. */
  hs: number;
  status: ContextStatus | null;
  rkey: string | null;
  headers: string | null;
  bornAt: number | null;
  finishedAt: number | null;
  /** Store clock (ms) of the last version. */
  updated: number | null;
  /** Store clock (ms) of the last write of any kind: what idleness is measured from. */
  touched: number;
  /** 0: never expires. */
  expiresAt: number;
  /** Which context of this id it is (see StoredContext.incarnation). */
  incarnation: string;
  fields: Map<string, Field>;
  /** Per-field seq of the last message that set or deleted it (deletions leave a tombstone). */
  seqs: Map<string, number>;
  /**
   * From index `dskip` on: consecutive versions dmin, dmin + 1, …, version (those before it are
   * dropped, cut off the array a few at a time: see keepDelta()).
   */
  deltas: DeltaRecord[];
  dskip: number;
  dmin: number;
  deltasExpireAt: number;
  /**
   * sync() answers of the current version, frozen and shared by every caller until the next write:
   * `full` the whole context, `deltas` per client version.
   */
  answers: { full: SyncResult | null; deltas: Map<number, SyncResult> } | null;
}

const own = Object.prototype.hasOwnProperty;

let incarnations = 0;

/** A new incarnation: the clock (ms) and a count, as no two contexts made in one process share. */
function newIncarnation(): string {
  return `${Date.now()}.${++incarnations}`;
}

/** A context of no version yet (`ord`: its place in list() order). */
export function newEntry(ord: number): Entry {
  return {
    ord,
    version: 0,
    hs: -1,
    status: null,
    rkey: null,
    headers: null,
    bornAt: null,
    finishedAt: null,
    updated: null,
    touched: 0,
    expiresAt: 0,
    incarnation: newIncarnation(),
    fields: new Map(),
    seqs: new Map(),
    deltas: [],
    dskip: 0,
    dmin: 0,
    deltasExpireAt: 0,
    answers: null,
  };
}

/** What list() says of a context. */
export function summary(id: string, e: Entry): ContextSummary {
  return {
    id,
    version: e.version,
    status: e.status,
    rkey: e.rkey,
    born_at: e.bornAt,
    updated_at: e.updated === null ? null : e.updated / 1000,
    finished_at: e.finishedAt,
  };
}

/**
 * The context as a record: its values copied, or with `copy` false the store's own (to freeze);
 * its fields in the stores' key order (see orderedKeys()), as the Redis store answers them.
 */
export function entryRecord(id: string, e: Entry, copy = true): StoredContext {
  const context: Record<string, unknown> = {};
  for (const [k, f] of e.fields) setOwn(context, k, copy ? cloneValue(f.value) : f.value);
  return {
    id,
    version: e.version,
    context: inKeyOrder(context),
    status: e.status,
    rkey: e.rkey,
    headers: e.headers === null ? null : (decodeValue(e.headers) as Record<string, unknown>),
    born_at: e.bornAt,
    updated_at: e.updated === null ? null : e.updated / 1000,
    finished_at: e.finishedAt,
    incarnation: e.incarnation,
  };
}

/**
 * Keeps the record of the version a write made, as deltaThreshold and deltaTtl say (`ttl`: the
 * context's own, 0 for none): the records stay consecutive, the oldest dropped past the threshold.
 */
export function keepDelta(e: Entry, rec: DeltaRecord, o: ResolvedStoreOptions, now: number, ttl: number): void {
  const threshold = o.deltaThreshold;
  if (threshold === 0) {
    dropDeltas(e);
    return;
  }
  const kept = e.deltas.length - e.dskip;
  if (kept === 0 || e.dmin + kept !== rec.v) {
    dropDeltas(e);
    e.dmin = rec.v;
  }
  e.deltas.push(rec);
  const over = e.deltas.length - e.dskip - threshold;
  if (over > 0) {
    e.dskip += over;
    e.dmin += over;
    // Cut off a few at a time: not the whole array moved for every version.
    if (e.dskip >= SKIP_SLACK) compactDeltas(e);
  }
  const dttl = o.deltaTtl;
  e.deltasExpireAt = dttl === null ? (ttl > 0 ? e.expiresAt : 0) : now + (ttl > 0 ? Math.min(dttl, ttl) : dttl);
}

/** How many dropped records an entry's array may still hold before they are cut off. */
const SKIP_SLACK = 16;

/** Drops every delta record of an entry. */
export function dropDeltas(e: Entry): void {
  e.deltas = [];
  e.dskip = 0;
}

/** Cuts the dropped records off an entry's array. */
function compactDeltas(e: Entry): void {
  if (e.dskip === 0) return;
  e.deltas.splice(0, e.dskip);
  e.dskip = 0;
}

/** Index into `e.deltas` of version `need` when every delta from it on is kept and fresh; else -1. */
export function deltasFrom(e: Entry, need: number, now: number, deltaTtl: number | null): number {
  if (e.deltas.length === e.dskip || e.dmin > need) return -1;
  const i = need - e.dmin + e.dskip;
  const first = e.deltas[i];
  if (first === undefined) return -1;
  if (deltaTtl !== null && first.t <= now - deltaTtl) return -1;
  return i;
}

/** Drops deltas past the threshold or older than deltaTtl; returns how many. */
export function pruneDeltas(e: Entry, now: number, o: ResolvedStoreOptions): number {
  compactDeltas(e);
  let drop = Math.max(0, e.deltas.length - o.deltaThreshold);
  const ttl = o.deltaTtl;
  if (ttl !== null) while (drop < e.deltas.length && e.deltas[drop]!.t <= now - ttl) drop++;
  if (drop > 0) {
    e.deltas.splice(0, drop);
    e.dmin += drop;
  }
  return drop;
}

/** The bytes of value text of the records weighed so far (a record never changes once kept). */
const weights = new WeakMap<DeltaRecord, number>();

/** The bytes of value text of a record: its changes' values before and after, encoded. */
function recordBytes(r: DeltaRecord): number {
  let bytes = weights.get(r);
  if (bytes === undefined) {
    bytes = 0;
    for (const c of r.c) {
      // A whole field that was an object before and after (see replaceWhole()): weighed as the
      // changes at the paths below it, as the Redis store records them.
      if (c.p === undefined && isPlainObject(c.o) && isPlainObject(c.n)) {
        bytes += changedBytes(c.o, c.n);
        continue;
      }
      if (own.call(c, 'o')) bytes += encodeValue(c.o)?.length ?? 0;
      if (own.call(c, 'n')) bytes += encodeValue(c.n)?.length ?? 0;
    }
    weights.set(r, bytes);
  }
  return bytes;
}

/** The records of whole fields (see replaceWhole()) as records of paths, made once. */
const atPaths = new WeakMap<DeltaRecord, DeltaRecord>();

/**
 * A record with its changes of whole object fields (see replaceWhole()) as the changes at the paths
 * below them: the same delta, merged with the records of merging updates path by path rather
 * than as whole values rebuilt for each of them.
 */
export function recordAtPaths(r: DeltaRecord): DeltaRecord {
  if (!r.c.some((c) => c.p === undefined && isPlainObject(c.o) && isPlainObject(c.n))) return r;
  let out = atPaths.get(r);
  if (out === undefined) {
    out = { ...r, c: r.c.flatMap(pathChanges) };
    atPaths.set(r, out);
  }
  return out;
}

/** Records up to this many bytes of value text are always answered as a delta (as sync.lua does). */
const DELTA_FLOOR = 65_536;

/**
 * True when the records hold more than {@link DELTA_FLOOR} bytes of value text and more than the
 * context's fields: a client is then sent the whole context instead (the rule of both stores).
 */
export function heavierThanContext(records: readonly DeltaRecord[], e: { fields: Map<string, Field> }): boolean {
  let bytes = 0;
  for (const r of records) bytes += recordBytes(r);
  if (bytes <= DELTA_FLOOR) return false;
  let context = 0;
  for (const [k, f] of e.fields) context += k.length + encodeValue(f.value)!.length;
  return bytes > context;
}

/**
 * A message checked, and its fields' canonical texts (undefined for each field a delete removes;
 * none for a value JSON drops): a value JSON cannot hold (a cycle, a BigInt) fails here, before
 * anything changes, as in the Redis store.
 */
export function messageTexts(message: WireMessage): Array<[string, string | undefined]> {
  const obj = checkMessage(message);
  const del = message.action === 'delete';
  const texts: Array<[string, string | undefined]> = [];
  for (const k in obj) {
    if (!own.call(obj, k)) continue;
    if (del) {
      texts.push([k, undefined]);
      continue;
    }
    const text = forField(k, () => encodeValue(obj[k]));
    if (text !== undefined) texts.push([k, text]);
  }
  return texts;
}
