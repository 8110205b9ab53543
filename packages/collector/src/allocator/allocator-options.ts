import { randomUUID } from 'node:crypto';
import type { RedisOption } from '../internal/cluster.js';
import { CollectorError } from '../internal/errors.js';
import { checkOptionNames, holdsLoneSurrogate } from '../internal/checks.js';

/** Options of {@link Allocator}. Durations are milliseconds. */
export interface AllocatorOptions {
  /**
   * An ioredis client (the caller keeps owning it) or a Redis URL (the allocator creates its
   * client and closes it in `close()`).
   * @default 'redis://127.0.0.1:6379'
   */
  redis?: RedisOption;
  /**
   * Start of every key; must not hold `{` or `}` (the pool name is the hash tag).
   * @default 'contexture:'
   */
  prefix?: string;
  /**
   * Name of the pool: its keys are `<prefix>alloc:{<pool>}:…`, all in one Redis Cluster slot.
   * @default 'default'
   */
  pool?: string;
  /**
   * Spreads the pool over this many shards, each its own hash tag (`{<pool>}` for shard 0, then
   * `{<pool>\u001f<n>}`), so that one pool can use every master of a Redis Cluster. A resource
   * lives in one shard, chosen by its key's hash slot. Each call stays atomic within a shard;
   * priority order, round-robin and fencing tokens hold per shard, and `malloc()` tries the
   * shards in turn. Every client of a pool must use the same count: the first to reach Redis
   * stores it (`<prefix>alloc:{<pool>}:shards`), and an allocator with another fails its calls with
   * `LC_ALLOC_SHARDS_MISMATCH`. 1 keeps the layout of an unsharded pool.
   * @default 1
   */
  shards?: number;
  /**
   * Shared mode: `malloc()` hands resources out round-robin and holds nothing; `free()` does
   * nothing. Exclusive mode (false): one holder per resource until it frees it or its hold expires.
   * Every client of one pool must use the same mode.
   * @default false
   */
  shared?: boolean;
  /**
   * The owner token written into this allocator's holds: only it can free or update them.
   * @default a random UUID per allocator
   */
  owner?: string;
  /**
   * Hold timeout of `malloc()` and `mallocKey()` when the call gives none.
   * @default 120000 (2 min)
   */
  timeout?: number;
  /**
   * Lifetime of a soft binding (`malloc({ name })`, `bind()`) when the call gives none; every
   * allocation through the binding renews it.
   * @default 3600000 (1 h)
   */
  cacheTimeout?: number;
  /**
   * How long `checkHealth()` takes a failing resource out of rotation.
   * @default 60000 (1 min)
   */
  unhealthyFor?: number;
  /**
   * The most due entries of each kind (expired holds, expired resources, ended unhealthy periods,
   * expired bindings) that `malloc()` settles before allocating, so that a pool heals between
   * `gc()` runs while malloc stays O(log n).
   * @default 8
   */
  reclaimLimit?: number;
}

export type ResolvedAllocatorOptions = Required<AllocatorOptions>;

export const ALLOCATOR_DEFAULTS: Readonly<Omit<ResolvedAllocatorOptions, 'owner'>> = Object.freeze({
  redis: 'redis://127.0.0.1:6379',
  prefix: 'contexture:',
  pool: 'default',
  shards: 1,
  shared: false,
  timeout: 120_000,
  cacheTimeout: 3_600_000,
  unhealthyFor: 60_000,
  reclaimLimit: 8,
});

/** Options of `extend()` and `assign()`. */
export interface ExtendOptions {
  /** The resources leave the pool this many ms from now unless extended again; omitted: never (an earlier expiry is cleared). */
  timeout?: number;
  /** Priority of the resources (integer within ±1,000,000; higher first); omitted: kept (0 for new ones). */
  priority?: number;
}

/** Options of `malloc()` and `mallocKey()`. */
export interface MallocOptions {
  /** Hold timeout (ms); exclusive pools. Default: the allocator's `timeout`. */
  timeout?: number;
  /** Soft-binding name: the resource bound to it is preferred while free, and the binding is set or renewed. */
  name?: string;
  /** Lifetime (ms) of the binding set by `name`. Default: the allocator's `cacheTimeout`. */
  cacheTimeout?: number;
  /** Only resources of at least this priority qualify. */
  priority?: number;
}

/** What one `gc()` step did. */
export interface GcResult {
  /** Expired resources removed from the pool. */
  removed: number;
  /** Expired holds whose resources went back to the pool. */
  returned: number;
  /** Unhealthy periods that ended. */
  healed: number;
  /** Expired bindings removed. */
  unbound: number;
  /** Inconsistent entries repaired. */
  repaired: number;
}

/** Counts of a pool's states. */
export interface PoolStats {
  size: number;
  free: number;
  held: number;
  unhealthy: number;
  bindings: number;
}

/** Result of `checkHealth()`. */
export interface HealthReport {
  healthy: string[];
  unhealthy: string[];
}

/** Priorities are integers in this range (they share a 53-bit score with a 32-bit sequence). */
export const MAX_PRIORITY = 1_000_000;

const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Checks a resource key, binding name or owner: a non-empty string of at most 1,024 characters
 * without control characters (NUL is the separator of the binding index; line breaks and tabs
 * would break line-oriented tools), well-formed Unicode (see holdsLoneSurrogate()).
 */
export function checkKey(value: unknown, what = 'resource key'): string {
  if (typeof value !== 'string')
    throw new CollectorError('LC_ALLOC_INVALID_KEY', `${what} must be a string, got ${typeof value}`);
  if (value.length === 0) throw new CollectorError('LC_ALLOC_INVALID_KEY', `${what} must not be empty`);
  if (value.length > 1024) throw new CollectorError('LC_ALLOC_INVALID_KEY', `${what} is longer than 1024 characters`);
  const bad = CONTROL.exec(value);
  if (bad !== null) {
    const code = bad[0].charCodeAt(0);
    const label = code === 0 ? 'a NUL character' : `the control character U+${code.toString(16).padStart(4, '0')}`;
    throw new CollectorError(
      'LC_ALLOC_INVALID_KEY',
      `${what} ${JSON.stringify(value)} holds ${label} (NUL is the separator of the binding index)`,
    );
  }
  if (holdsLoneSurrogate(value))
    throw new CollectorError(
      'LC_ALLOC_INVALID_KEY',
      `${what} ${JSON.stringify(value).slice(0, 60)} must be well-formed Unicode (it holds a lone surrogate: Redis would make it one with others)`,
    );
  return value;
}

/** Checks a list of keys (an array, or one string); rejects duplicates. */
export function checkKeys(keys: unknown, what = 'resource key'): string[] {
  const list = typeof keys === 'string' ? [keys] : keys;
  if (!Array.isArray(list)) throw new CollectorError('LC_ALLOC_INVALID_ARGUMENT', 'keys must be an array of strings');
  const seen = new Set<string>();
  for (const k of list) {
    checkKey(k, what);
    if (seen.has(k)) throw new CollectorError('LC_ALLOC_INVALID_KEY', `${what} ${JSON.stringify(k)} is listed twice`);
    seen.add(k);
  }
  return list as string[];
}

/** Checks a duration in ms: a positive safe integer. */
export function checkDuration(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new CollectorError(
      'LC_ALLOC_INVALID_ARGUMENT',
      `${what} must be a whole number of milliseconds >= 1, got ${String(value)}`,
    );
  }
  return value;
}

export function checkPriority(value: unknown, what = 'priority'): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || Math.abs(value) > MAX_PRIORITY) {
    throw new CollectorError(
      'LC_ALLOC_INVALID_ARGUMENT',
      `${what} must be an integer within ±${MAX_PRIORITY}, got ${String(value)}`,
    );
  }
  return value;
}

function checkCount(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new CollectorError('LC_ALLOC_INVALID_ARGUMENT', `${what} must be an integer >= 1, got ${String(value)}`);
  }
  return value;
}
export { checkCount };

/** Merges options over the defaults and validates them once. */
export function resolveAllocatorOptions(options: AllocatorOptions): ResolvedAllocatorOptions {
  if (options === null || typeof options !== 'object')
    throw new CollectorError('LC_ALLOC_INVALID_ARGUMENT', 'options must be an object');
  checkOptionNames('LC_ALLOC_INVALID_ARGUMENT', 'Allocator', options, [...Object.keys(ALLOCATOR_DEFAULTS), 'owner']);
  const o: ResolvedAllocatorOptions = { ...ALLOCATOR_DEFAULTS, owner: '' };
  for (const k of Object.keys(o) as Array<keyof ResolvedAllocatorOptions>) {
    if (options[k] !== undefined) (o as Record<string, unknown>)[k] = options[k];
  }
  if (o.owner === '') o.owner = options.owner ?? randomUUID();
  if (typeof o.prefix !== 'string' || /[{}]/.test(o.prefix)) {
    throw new CollectorError(
      'LC_ALLOC_INVALID_ARGUMENT',
      'prefix must be a string without { or } (the pool name is the hash tag)',
    );
  }
  checkKey(o.pool, 'pool');
  if (/[{}]/.test(o.pool))
    throw new CollectorError(
      'LC_ALLOC_INVALID_KEY',
      `pool ${JSON.stringify(o.pool)} must not hold { or } (it is the hash tag)`,
    );
  checkKey(o.owner, 'owner');
  checkCount(o.shards, 'shards');
  if (o.shards > 1024)
    throw new CollectorError('LC_ALLOC_INVALID_ARGUMENT', `shards must be at most 1024, got ${o.shards}`);
  if (typeof o.shared !== 'boolean') throw new CollectorError('LC_ALLOC_INVALID_ARGUMENT', 'shared must be a boolean');
  checkDuration(o.timeout, 'timeout');
  checkDuration(o.cacheTimeout, 'cacheTimeout');
  checkDuration(o.unhealthyFor, 'unhealthyFor');
  checkCount(o.reclaimLimit, 'reclaimLimit');
  if (typeof o.redis !== 'string' && (typeof o.redis !== 'object' || o.redis === null)) {
    throw new CollectorError('LC_ALLOC_INVALID_ARGUMENT', 'redis must be an ioredis client or a URL');
  }
  return o;
}
