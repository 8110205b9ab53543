/**
 * The options of RedisContextStore on top of every store's (see options.ts): their TSDoc, their
 * frozen defaults, and their validation.
 */
import type { RedisOption } from '../internal/cluster.js';
import { emptyHashTag } from '../internal/checks.js';
import { CollectorError } from '../internal/errors.js';
import type { StoreOptions } from './options.js';

/** Options of {@link RedisContextStore}. */
export interface RedisContextStoreOptions extends StoreOptions {
  /**
   * An ioredis client (the caller keeps owning it) or a Redis URL (the store creates its client and
   * closes it in `close()`).
   * @default 'redis://127.0.0.1:6379'
   */
  redis?: RedisOption;
  /**
   * Start of every key and channel of the store.
   * @default 'contexture:'
   */
  prefix?: string;
  /**
   * Publish every change on the context's channel (what `watch()` listens to).
   * @default true
   */
  publish?: boolean;
  /**
   * COUNT hint of the SCANs of `list()` and `cleanup()`.
   * @default 500
   */
  scanCount?: number;
  /**
   * The most contexts `applyMany()` folds in one script call. Several share the call's fixed cost;
   * their keys are all declared, but in different slots: use 1 with Redis Cluster (one slot per
   * call).
   * @default 100
   */
  contextsPerCall?: number;
  /**
   * How many contexts' fields, as this store last wrote or read them, it remembers (text, and the
   * parsed value once used, with the version and incarnation they are known at): merging updates
   * start from them without reading the fields first, a `set()` of a context known whole sends the
   * changes it works out from them (its records then hold only what changed, at the paths that
   * changed), and a full sync() answer of the version it knows whole takes the fields from what
   * it knows (Redis sends only the rest), of another version reuses the parsed values of the texts
   * it finds unchanged.
   * Such writes check that the context is still at that version and incarnation (else they read
   * and merge again, or write the whole context). 0: none.
   * @default 256
   */
  knownContexts?: number;
}

export type RedisStoreSettings = {
  redis: RedisOption;
  prefix: string;
  publish: boolean;
  scanCount: number;
  contextsPerCall: number;
  knownContexts: number;
};

export const REDIS_STORE_DEFAULTS: Readonly<RedisStoreSettings> = Object.freeze({
  redis: 'redis://127.0.0.1:6379',
  prefix: 'contexture:',
  publish: true,
  scanCount: 500,
  contextsPerCall: 100,
  knownContexts: 256,
});

/**
 * The store's own options over their defaults, checked (the options every store has are checked
 * before, by BaseContextStore).
 */
export function redisStoreSettings(options: RedisContextStoreOptions): RedisStoreSettings {
  const o: RedisStoreSettings = { ...REDIS_STORE_DEFAULTS };
  if (options.redis !== undefined) o.redis = options.redis;
  if (options.prefix !== undefined) o.prefix = options.prefix;
  if (options.publish !== undefined) o.publish = options.publish;
  if (options.scanCount !== undefined) o.scanCount = options.scanCount;
  if (options.contextsPerCall !== undefined) o.contextsPerCall = options.contextsPerCall;
  if (options.knownContexts !== undefined) o.knownContexts = options.knownContexts;
  if (typeof o.prefix !== 'string') throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'prefix must be a string');
  if (emptyHashTag(`${o.prefix}ctx:{x}`))
    throw new CollectorError(
      'LC_STORE_INVALID_ARGUMENT',
      "prefix must not hold { right before } (an empty hash tag: a context's keys would be in several Redis Cluster slots)",
    );
  if (typeof o.publish !== 'boolean')
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'publish must be a boolean');
  if (!Number.isSafeInteger(o.scanCount) || o.scanCount < 1)
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'scanCount must be an integer >= 1');
  if (!Number.isSafeInteger(o.contextsPerCall) || o.contextsPerCall < 1)
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'contextsPerCall must be an integer >= 1');
  if (!Number.isSafeInteger(o.knownContexts) || o.knownContexts < 0)
    throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'knownContexts must be an integer >= 0');
  return o;
}
