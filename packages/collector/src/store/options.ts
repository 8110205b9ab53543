import { checkOptionNames, emptyHashTag, holdsLoneSurrogate } from '../internal/checks.js';
import { CollectorError } from '../internal/errors.js';
import { isPlainObject, type MessageMeta, type WireMessage } from '@contexture/context/protocol';
import { encodeValue, isOwnValue, unboxed } from './json.js';
import type { ApplyItem, CleanupOptions, ListOptions, StoredContext, WatchOptions } from './types.js';

/** What a `restoreProvider` gives back: at least the context and its version. */
export interface RestoredContext {
  context: Record<string, unknown>;
  version: number;
  status?: StoredContext['status'];
  rkey?: string | null;
  headers?: Record<string, unknown> | null;
  born_at?: number | null;
  finished_at?: number | null;
  /** When it last changed (unix seconds); absent or null: now, the store's clock. */
  updated_at?: number | null;
  /**
   * Its incarnation, for a copy of a context moved from another store (an export): a client's copy
   * of it stays current. Absent or empty: a new one, as for any context made anew.
   */
  incarnation?: string;
}

/** Retention and hooks shared by both stores. Durations are milliseconds. */
export interface StoreOptions {
  /**
   * Keep the newest N deltas of each context (0: none, so every `sync()` behind is `full`).
   * @default 100
   */
  deltaThreshold?: number;
  /**
   * Deltas older than this are gone: a client that needs one gets `full`. `null` keeps them.
   * @default 86400000 (24 h)
   */
  deltaTtl?: number | null;
  /**
   * Delete contexts idle for `contextTtl`, and finished ones `finishedTtl` after their last change.
   * @default false
   */
  autoDelete?: boolean;
  /**
   * Idle time after which a context is deleted when `autoDelete` is on.
   * @default 21600000 (6 h)
   */
  contextTtl?: number;
  /**
   * Time after its last change that a finished (or transient) context is deleted when `autoDelete`
   * is on; `null` uses `contextTtl`.
   * @default 3600000 (1 h)
   */
  finishedTtl?: number | null;
  /**
   * Start the periodic cleaner with this interval; `null` leaves it stopped (see `startCleaner()`).
   * @default null
   */
  cleanupInterval?: number | null;
  /**
   * The most contexts one cleaner run (and a `cleanup()` without `limit`) examines.
   * @default 1000
   */
  cleanupLimit?: number;
  /**
   * Called with errors of the periodic cleaner (they are also counted in `stats()`).
   * @default null
   */
  onCleanupError?: ((err: unknown) => void) | null;
  /**
   * Receives the context on `export(id)`, e.g. to save it in a database.
   * @default null
   */
  exportCallback?: ((context: StoredContext) => unknown) | null;
  /**
   * Gives the context of an id for `restore(id)` (or null when it has none).
   * @default null
   */
  restoreProvider?: ((id: string) => RestoredContext | null | Promise<RestoredContext | null>) | null;
  /**
   * Retries of `update()` when a concurrent writer changed an object field it merges into. In
   * Redis, each retry waits first, at random up to 2 ** retry ms and at most 50 ms (whole ms, see
   * backoffDelay() of `@contexture/context/internal`).
   * @default 50
   */
  updateRetries?: number;
}

/** The options after defaults and validation. */
export type ResolvedStoreOptions = { [K in keyof StoreOptions]-?: Exclude<StoreOptions[K], undefined> };

export const STORE_DEFAULTS: Readonly<ResolvedStoreOptions> = Object.freeze({
  deltaThreshold: 100,
  deltaTtl: 86_400_000,
  autoDelete: false,
  contextTtl: 21_600_000,
  finishedTtl: 3_600_000,
  cleanupInterval: null,
  cleanupLimit: 1000,
  onCleanupError: null,
  exportCallback: null,
  restoreProvider: null,
  updateRetries: 50,
});

function positiveInt(name: string, v: unknown, allowZero: boolean): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < (allowZero ? 0 : 1)) {
    throw new CollectorError(
      'LC_STORE_INVALID_ARGUMENT',
      `${name} must be an integer ${allowZero ? '>= 0' : '>= 1'}, got ${typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : String(v)}`,
    );
  }
  return v;
}

/**
 * Applies defaults and checks every retention option once; `backendKeys` are the names of the
 * backend's own options. A name that is neither (a misspelt option would otherwise be ignored) is
 * refused.
 */
export function resolveStoreOptions(
  options: StoreOptions | undefined,
  backendKeys: readonly string[] = [],
): ResolvedStoreOptions {
  if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) {
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'the options must be an object');
  }
  for (const key of Object.keys(options ?? {})) {
    if (!Object.hasOwn(STORE_DEFAULTS, key) && !backendKeys.includes(key)) {
      throw new CollectorError('LC_STORE_INVALID_ARGUMENT', `unknown option ${JSON.stringify(key.slice(0, 60))}`);
    }
  }
  const o = { ...STORE_DEFAULTS } as ResolvedStoreOptions;
  for (const key of Object.keys(STORE_DEFAULTS) as Array<keyof ResolvedStoreOptions>) {
    const v = options?.[key];
    if (v !== undefined) (o as Record<string, unknown>)[key] = v;
  }
  positiveInt('deltaThreshold', o.deltaThreshold, true);
  if (o.deltaTtl !== null) positiveInt('deltaTtl', o.deltaTtl, false);
  if (typeof o.autoDelete !== 'boolean')
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'autoDelete must be a boolean');
  positiveInt('contextTtl', o.contextTtl, false);
  if (o.finishedTtl !== null) positiveInt('finishedTtl', o.finishedTtl, false);
  if (o.cleanupInterval !== null) positiveInt('cleanupInterval', o.cleanupInterval, false);
  positiveInt('cleanupLimit', o.cleanupLimit, false);
  positiveInt('updateRetries', o.updateRetries, true);
  for (const key of ['onCleanupError', 'exportCallback', 'restoreProvider'] as const) {
    if (o[key] !== null && typeof o[key] !== 'function') {
      throw new CollectorError('LC_STORE_INVALID_ARGUMENT', `${key} must be a function or null`);
    }
  }
  return o;
}

/** TTL of a context's keys after a write (0: none): what autoDelete asks for, given its status. */
export function ttlFor(o: ResolvedStoreOptions, finished: boolean): number {
  if (!o.autoDelete) return 0;
  return finished ? (o.finishedTtl ?? o.contextTtl) : o.contextTtl;
}

// Ids and field names must be well-formed Unicode (see holdsLoneSurrogate()); a nested key is
// safe: JSON escapes it.

export function checkId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0) {
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'a context id must be a non-empty string');
  }
  if (holdsLoneSurrogate(id))
    throw new CollectorError(
      'LC_STORE_INVALID_ARGUMENT',
      'a context id must be well-formed Unicode (it holds a lone surrogate)',
    );
  if (emptyHashTag(`{${id}}`))
    throw new CollectorError(
      'LC_STORE_INVALID_ARGUMENT',
      `a context id must not start with } (it would end the hash tag that keeps its keys in one Redis Cluster slot), got ${JSON.stringify(id).slice(0, 60)}`,
    );
  return id;
}

export function checkObject(name: string, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', `${name} must be a plain object`);
  }
  return v as Record<string, unknown>;
}

/**
 * How deep a field's value may nest objects and arrays (`{ a: { b: 1 } }` is 2 deep): a write of a
 * deeper one is refused. The stores read values back, and merge their deltas, by recursion: a
 * value thousands deep that could be written would break those reads. 64 is also the collector's
 * `maxDepth` for a whole message.
 */
export const MAX_VALUE_DEPTH = 64;

/**
 * checkObject(), and its keys (the fields of a context) must be well-formed Unicode (see
 * holdsLoneSurrogate()), their values no deeper than MAX_VALUE_DEPTH.
 */
export function checkFields(name: string, v: unknown): Record<string, unknown> {
  const o = checkObject(name, v);
  for (const key in o) {
    checkFieldName(key);
    if (nestedDeeper(o[key], MAX_VALUE_DEPTH)) throw tooDeep(key);
  }
  return o;
}

/** The field of `o` whose value nests deeper than MAX_VALUE_DEPTH, or undefined. */
export function tooDeepField(o: Record<string, unknown>): string | undefined {
  for (const key in o) if (nestedDeeper(o[key], MAX_VALUE_DEPTH)) return key;
  return undefined;
}

function tooDeep(key: string): CollectorError {
  return new CollectorError(
    'LC_STORE_INVALID_ARGUMENT',
    `field ${JSON.stringify(key).slice(0, 60)} cannot be stored as JSON (it holds a cycle, or is nested deeper than ${MAX_VALUE_DEPTH} levels)`,
  );
}

/**
 * True when `v`, as JSON makes it (toJSON(), boxed primitives), nests objects and arrays more
 * than `left` deep. The store's own values (see keepValue()) were checked when written.
 */
function nestedDeeper(value: unknown, left: number): boolean {
  if (typeof value !== 'object' || value === null || isOwnValue(value)) return false;
  let v: unknown = value;
  // What the copy takes (see jsonOf() in field-changes.ts): toJSON() until it gives no such object;
  // one that keeps giving them is refused there.
  for (
    let n = 0;
    typeof v === 'object' && v !== null && typeof (v as { toJSON?: unknown }).toJSON === 'function';
    n++
  ) {
    if (n > 100) return false;
    v = (v as { toJSON: () => unknown }).toJSON();
  }
  if (typeof v !== 'object' || v === null || unboxed(v) !== v) return false;
  if (left === 0) return true;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (nestedDeeper(v[i], left - 1)) return true;
    return false;
  }
  for (const k of Object.keys(v)) if (nestedDeeper((v as Record<string, unknown>)[k], left - 1)) return true;
  return false;
}

function checkFieldName(key: string): void {
  if (holdsLoneSurrogate(key))
    throw new CollectorError(
      'LC_STORE_INVALID_ARGUMENT',
      `field name ${JSON.stringify(key).slice(0, 60)} must be well-formed Unicode (it holds a lone surrogate)`,
    );
}

/** An incarnation given to sync(): a string, or null / undefined for none. */
export function checkIncarnation(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string')
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', `an incarnation must be a string or null, got ${typeof v}`);
  return v;
}

export function checkVersion(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new CollectorError(
      'LC_STORE_INVALID_ARGUMENT',
      `a version must be an integer >= 0 or null, got ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`,
    );
  }
  return v;
}

/**
 * The few checks `apply()` makes on a message (the daemon validates bus input with the protocol's
 * `validateMessage` first; these keep a direct caller from storing nonsense).
 */
export function checkMessage(message: WireMessage): Record<string, unknown> {
  if (typeof message !== 'object' || message === null) {
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'a message must be an object');
  }
  checkId(message.obj_id);
  const obj = message.obj ?? {};
  checkFields('obj', obj);
  const seq = message.seq;
  if (seq !== undefined && !(Number.isSafeInteger(seq) && seq >= 0)) {
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', `seq must be an integer >= 0, got ${String(seq)}`);
  }
  const t = message.time_in;
  if (t !== undefined && !(typeof t === 'number' && Number.isFinite(t))) {
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'time_in must be a finite number');
  }
  const s = message.status;
  if (s !== undefined && s !== 'born' && s !== 'finished' && s !== 'transient') {
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', `unknown status ${String(s).slice(0, 40)}`);
  }
  return obj;
}

/** The items of `applyMany()`: an array of objects `{ message, meta }` (each message checked by checkMessage()). */
export function checkApplyItems(items: unknown): readonly ApplyItem[] {
  if (!Array.isArray(items))
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'applyMany() takes an array of { message, meta }');
  for (let i = 0; i < items.length; i++) {
    const item: unknown = items[i];
    if (typeof item !== 'object' || item === null || Array.isArray(item))
      throw new CollectorError(
        'LC_STORE_INVALID_ARGUMENT',
        `applyMany() item ${i} must be an object { message, meta }`,
      );
  }
  return items as readonly ApplyItem[];
}

/** The field names `assign()` removes: strings, none of them also set in the same call. */
export function checkRemove(remove: unknown, fields: Record<string, unknown>): string[] {
  if (!Array.isArray(remove) || remove.some((k) => typeof k !== 'string')) {
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'remove must be an array of field names');
  }
  for (const k of remove as string[]) {
    checkFieldName(k);
    if (Object.hasOwn(fields, k))
      throw new CollectorError('LC_STORE_INVALID_ARGUMENT', `field ${JSON.stringify(k)} is both set and removed`);
  }
  return remove as string[];
}

/** The options of `list()`, checked: an object, `limit` an integer >= 1, `cursor` a string or null, `rkey` a string, `status` a status or null. */
export function checkListOptions(options: unknown): ListOptions {
  const o = checkObject('list() options', options) as ListOptions;
  checkOptionNames('LC_STORE_INVALID_ARGUMENT', 'list()', o, ['rkey', 'status', 'cursor', 'limit']);
  if (o.limit !== undefined) positiveInt('limit', o.limit, false);
  if (o.cursor !== undefined && o.cursor !== null && typeof o.cursor !== 'string')
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'cursor must be the string a page gave, or null');
  if (o.rkey !== undefined && typeof o.rkey !== 'string')
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'rkey must be a glob string');
  if (
    o.status !== undefined &&
    o.status !== null &&
    o.status !== 'born' &&
    o.status !== 'finished' &&
    o.status !== 'transient'
  ) {
    throw new CollectorError(
      'LC_STORE_INVALID_ARGUMENT',
      `status must be born, finished, transient or null, got ${JSON.stringify(String(o.status)).slice(0, 40)}`,
    );
  }
  return o;
}

/**
 * The meta of an applied message, checked (an object; `rkey` a string, `headers` a plain object,
 * each when given), and its headers' text; undefined when it has none. Both stores take it so
 * before anything is applied.
 */
export function metaHeadersText(meta: MessageMeta | undefined): string | undefined {
  if (meta === undefined) return undefined;
  if (typeof meta !== 'object' || meta === null)
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', "a message's meta must be an object { rkey, headers }");
  if (meta.rkey !== undefined && typeof meta.rkey !== 'string')
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', `meta rkey must be a string, got a ${typeof meta.rkey}`);
  const headers = meta.headers;
  if (headers === undefined) return undefined;
  if (!isPlainObject(headers))
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'meta headers must be a plain object');
  try {
    return encodeValue(headers);
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) {
      // (Not narrowed by `instanceof RangeError`: TypeScript sees the two types as one shape.)
      const why = err instanceof RangeError ? 'they hold a cycle, or are nested too deep' : (err as Error).message;
      throw new CollectorError('LC_STORE_INVALID_ARGUMENT', `meta headers cannot be stored as JSON (${why})`, {
        cause: err,
      });
    }
    throw err;
  }
}

/** The options of `watch()`, checked: an object, `maxQueue` an integer >= 1, `keepAlive` a boolean. */
export function checkWatchOptions(options: unknown): WatchOptions {
  const o = checkObject('watch() options', options) as WatchOptions;
  checkOptionNames('LC_STORE_INVALID_ARGUMENT', 'watch()', o, ['maxQueue', 'keepAlive']);
  if (o.maxQueue !== undefined) positiveInt('maxQueue', o.maxQueue, false);
  if (o.keepAlive !== undefined && typeof o.keepAlive !== 'boolean')
    throw new CollectorError(
      'LC_STORE_INVALID_ARGUMENT',
      `keepAlive must be true or false, got ${String(o.keepAlive)}`,
    );
  return o;
}

/** The options of `cleanup()`, checked: an object, `limit` an integer >= 1. */
export function checkCleanupOptions(options: unknown): CleanupOptions {
  const o = checkObject('cleanup() options', options) as CleanupOptions;
  checkOptionNames('LC_STORE_INVALID_ARGUMENT', 'cleanup()', o, ['limit']);
  if (o.limit !== undefined) positiveInt('limit', o.limit, false);
  return o;
}
