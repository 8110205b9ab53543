import { stringifyJson } from '@contexture/context/protocol';
import { EventEmitter } from 'node:events';
import { isPlainObject } from '@contexture/context/protocol';
import { CollectorError } from '../internal/errors.js';
import { checkFunction, checkOptionNames } from '../internal/checks.js';
import { isClient, type RedisOption } from '../internal/cluster.js';
import { redisAddress, scrubAuth } from '../internal/redis-client.js';
import { RedisLock, type AcquireOptions, type RedisLockOptions } from '../locks/redis-lock.js';
import { applyDelta, isDeltaLeaf } from '../store/delta.js';
import { deepFreeze } from '../store/json.js';
import { RedisContextStore } from '../store/redis-store.js';
import type { ContextDelta, ContextEvent, ContextStore, ContextWatch } from '../store/types.js';
import { printable } from '../internal/printable.js';
import { type LongTimer, setLongInterval, setLongTimeout } from '../internal/timers.js';

/** Options of {@link SharedContext.open}. */
export interface SharedContextOptions {
  /**
   * An ioredis client or Cluster, or a URL or a cluster's node URLs (the shared context then owns its
   * clients). @default 'redis://127.0.0.1:6379'
   */
  redis?: RedisOption;
  /** Prefix of every key. @default 'contexture:' */
  prefix?: string;
  /**
   * The store the state lives in, instead of a Redis store made from `redis` and `prefix` (it is
   * not closed by `close()`). Locks need Redis: `withFieldLock()` then needs `lock`.
   */
  store?: ContextStore;
  /** Options of the per-field locks of `withFieldLock()` (the `redis` and `prefix` above by default). */
  lock?: RedisLockOptions;
  /**
   * Every this many ms the local copy is checked against the store (one small call, `no_change`
   * when nothing was missed): the bound on how stale a copy that missed notifications can stay.
   * 0 for never. @default 1000
   */
  resyncInterval?: number;
  /** Longest wait (ms) in `open()` for the subscription and the first load (`LC_REDIS_UNAVAILABLE` past it). @default 10000 */
  openTimeout?: number;
  /**
   * Whether the shared context keeps the process alive until `close()`, for a program that only
   * listens for changes. By default it does not: a script ends once its last call is answered.
   * @default false
   */
  keepAlive?: boolean;
}

/** Options of {@link SharedContext.withFieldLock}: those of `RedisLock.acquire()`, and the lock's lifetime. */
export interface FieldLockOptions extends Omit<AcquireOptions, 'owner' | 'ttl' | 'reentrant'> {
  /** Lifetime (ms) of the lock, renewed while the work runs. @default 10000 */
  ttl?: number;
}

/** Counters of a {@link SharedContext}. */
export interface SharedContextStats {
  /** Changes applied from notifications. */
  notified: number;
  /** Resynchronisations from the store (gaps in versions, reconnects, periodic checks that found something). */
  resyncs: number;
  /** Writes made through this instance. */
  writes: number;
}

/** The options {@link SharedContext.open} knows: any other is refused. */
const SHARED_OPTIONS: ReadonlyArray<keyof SharedContextOptions> = [
  'redis',
  'prefix',
  'store',
  'lock',
  'resyncInterval',
  'openTimeout',
  'keepAlive',
];

function invalid(message: string): CollectorError {
  return new CollectorError('LC_SHARED_INVALID_ARGUMENT', message);
}

/**
 * The deepest a shared context nests (the context itself is the first level, a field's object
 * value the second): as deep as the JSON bodies the collector takes by default. Much deeper values
 * could be written but not read back (copying them overflows the stack).
 */
const SHARED_MAX_DEPTH = 64;

/**
 * Refuses a field's value that nests deeper than {@link SHARED_MAX_DEPTH} allows, or holds a
 * function or a symbol anywhere (JSON would drop it without a word). A cycle is left to the JSON
 * check, which names it; an object with a `toJSON()` is what that gives.
 */
function checkValue(field: string, value: unknown): void {
  const ancestors: object[] = [];
  const walk = (v: unknown, depth: number): void => {
    if (typeof v === 'function' || typeof v === 'symbol')
      throw invalid(`field ${JSON.stringify(field)} must hold JSON: it holds a ${typeof v}`);
    if (typeof v !== 'object' || v === null || ancestors.includes(v)) return;
    if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return;
    if (depth > SHARED_MAX_DEPTH)
      throw invalid(
        `field ${JSON.stringify(field)} nests too deep: a shared context holds at most ${SHARED_MAX_DEPTH} levels (a field's value ${SHARED_MAX_DEPTH - 1})`,
      );
    ancestors.push(v);
    for (const x of Array.isArray(v) ? v : Object.values(v)) walk(x, depth + 1);
    ancestors.pop();
  };
  walk(value, 2);
}

function checkField(field: unknown): string {
  if (typeof field !== 'string' || field.length === 0)
    throw invalid(`a field name must be a non-empty string, got ${JSON.stringify(field)}`);
  return field;
}

/**
 * One state shared by many processes, each holding a local copy that change notifications keep
 * current. Writes go to Redis atomically, field by field (never by writing a whole local copy back,
 * so no process's update is ever lost); a copy that missed notifications (a gap in versions, a
 * reconnect) resynchronises from the store's `sync()`. `get()` reads the local copy synchronously.
 *
 * @example
 * await using shared = await SharedContext.open('room:1', { redis: 'redis://127.0.0.1:6379' });
 * await shared.update('topic', 'standup');
 * await shared.transaction({ host: 'ann', started: true });
 * await shared.withFieldLock('count', (n = 0) => n + 1);
 * shared.get(); // { topic: 'standup', host: 'ann', started: true, count: 1 }
 */
export class SharedContext<T extends Record<string, unknown> = Record<string, unknown>>
  extends EventEmitter
  implements AsyncDisposable
{
  readonly key: string;
  readonly store: ContextStore;
  private readonly ownsStore: boolean;
  private readonly locks: RedisLock | null;
  private readonly ownsLocks: boolean;
  private copy: Readonly<T> = deepFreeze({} as T);
  private _version = 0;
  /** The incarnation of the context the copy is of (null: none yet). */
  private incarnation: string | null = null;
  private watch: ContextWatch | null = null;
  private resyncing: Promise<void> | null = null;
  private resyncAgain = false;
  private timer: LongTimer | null = null;
  private closing: Promise<void> | null = null;
  private waiters: Array<{ version: number; resolve: () => void }> = [];
  private catchUpTimer: NodeJS.Timeout | null = null;
  private hold: NodeJS.Timeout | null = null;
  private lastTickVersion = -1;
  private readonly counts: SharedContextStats = { notified: 0, resyncs: 0, writes: 0 };

  private constructor(
    key: string,
    store: ContextStore,
    ownsStore: boolean,
    locks: RedisLock | null,
    ownsLocks: boolean,
  ) {
    super();
    this.key = key;
    this.store = store;
    this.ownsStore = ownsStore;
    this.locks = locks;
    this.ownsLocks = ownsLocks;
  }

  /** Loads the state of `key` (empty when there is none yet), subscribes to its changes, and resolves. */
  static async open<T extends Record<string, unknown> = Record<string, unknown>>(
    key: string,
    options: SharedContextOptions = {},
  ): Promise<SharedContext<T>> {
    if (typeof key !== 'string' || key.length === 0) throw invalid('the key must be a non-empty string');
    // Every option is checked before a client is made: a refused one leaves no connection open.
    checkOptionNames('LC_SHARED_INVALID_ARGUMENT', 'SharedContext.open', options, SHARED_OPTIONS);
    const resync = options.resyncInterval ?? 1000;
    if (!Number.isSafeInteger(resync) || resync < 0)
      throw invalid(`resyncInterval must be an integer >= 0 (ms), got ${String(resync)}`);
    if (options.keepAlive !== undefined && typeof options.keepAlive !== 'boolean')
      throw invalid(`keepAlive must be true or false, got ${String(options.keepAlive)}`);
    const openTimeout = options.openTimeout ?? 10_000;
    if (!Number.isSafeInteger(openTimeout) || openTimeout < 1)
      throw invalid(`openTimeout must be a positive integer (ms), got ${String(openTimeout)}`);
    let store = options.store;
    const ownsStore = store === undefined;
    store ??= new RedisContextStore({
      ...(options.redis === undefined ? {} : { redis: options.redis }),
      ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
    });
    let locks: RedisLock | null = null;
    let ownsLocks = false;
    const redis = options.lock?.redis ?? (store instanceof RedisContextStore ? store.redis : undefined);
    if (redis !== undefined) {
      try {
        locks = new RedisLock({ prefix: options.prefix, ...options.lock, redis });
      } catch (err) {
        // Lock options it refuses: the store made here is closed, not left connected.
        if (ownsStore) await store.close().catch(() => {});
        throw err;
      }
      ownsLocks = true;
    }
    const shared = new SharedContext<T>(key, store, ownsStore, locks, ownsLocks);
    let timer: LongTimer | undefined;
    try {
      await Promise.race([
        shared.start(resync),
        new Promise<never>((_, reject) => {
          const at = store instanceof RedisContextStore ? ` at ${redisAddress(store.redis)}` : '';
          timer = setLongTimeout(
            () =>
              reject(
                new CollectorError(
                  'LC_REDIS_UNAVAILABLE',
                  `shared context ${JSON.stringify(key)}: Redis${at} did not answer within ${openTimeout} ms`,
                ),
              ),
            openTimeout,
          );
        }),
      ]);
    } catch (err) {
      // A client made here is cut first, so that closing waits on no Redis that does not answer; a
      // caller's client is left as it is (it reconnects by itself).
      if (ownsStore && store instanceof RedisContextStore && !isClient(options.redis)) store.redis.disconnect();
      // Closed in the background: the call fails now, at openTimeout, not once closing is done (a
      // Redis that does not answer can hold it up to 2 s more).
      void shared.close().catch(() => {});
      if (err instanceof CollectorError) throw err;
      scrubAuth(err);
      throw new CollectorError(
        'LC_REDIS_UNAVAILABLE',
        `shared context ${JSON.stringify(key)}: cannot load it from Redis: ${(err as Error)?.message ?? String(err)}`,
        { cause: err },
      );
    } finally {
      timer?.clear();
    }
    // Held until close(); otherwise nothing of it keeps the process alive (see keepAlive).
    if (options.keepAlive === true) shared.hold = setInterval(() => {}, 2 ** 31 - 1);
    return shared;
  }

  /** The local copy (read-only: change it through `update()` and `transaction()`). */
  get(): Readonly<T>;
  /** One field of the local copy. */
  get<K extends keyof T & string>(field: K): T[K] | undefined;
  get(field?: string): unknown {
    return field === undefined ? this.copy : this.copy[field];
  }

  /** Its counters, as of now (a copy). */
  stats(): SharedContextStats {
    return { ...this.counts };
  }

  /** The version of the local copy (0: nothing stored yet). */
  get version(): number {
    return this._version;
  }

  /**
   * Sets one field (its whole value; undefined removes it) in Redis; resolves with the version once
   * the local copy has it.
   */
  async update<K extends keyof T & string>(field: K, value: T[K]): Promise<number> {
    checkField(field);
    return this.write({ [field]: value } as Record<string, unknown>, []);
  }

  /**
   * Sets several fields, and removes `remove`, in one atomic step; resolves with the version once
   * the local copy has it.
   */
  async transaction(fields: Partial<T>, remove: ReadonlyArray<keyof T & string> = []): Promise<number> {
    if (!isPlainObject(fields)) throw invalid('transaction takes an object of fields');
    if (!Array.isArray(remove) || remove.some((k) => typeof k !== 'string'))
      throw invalid('transaction: remove must be an array of field names');
    for (const k of Object.keys(fields)) checkField(k);
    return this.write(fields as Record<string, unknown>, remove as string[]);
  }

  /** Removes one field. */
  async delete(field: keyof T & string): Promise<number> {
    checkField(field);
    return this.write({}, [field]);
  }

  /**
   * Read-modify-write of one field under its lock: with the lock held, the local copy is brought up
   * to date, `work` gets the field's current value and what it returns is written (nothing when it
   * returns undefined). Every caller of `withFieldLock` on that field, in any process, takes turns;
   * plain `update()` calls do not wait for the lock. Retries as `RedisLock.acquire()` does.
   */
  async withFieldLock<K extends keyof T & string>(
    field: K,
    work: (current: T[K] | undefined, signal: AbortSignal) => T[K] | undefined | Promise<T[K] | undefined>,
    options: FieldLockOptions = {},
  ): Promise<T[K] | undefined> {
    checkField(field);
    checkFunction('LC_SHARED_INVALID_ARGUMENT', 'work', work);
    this.checkOpen();
    if (this.locks === null)
      throw invalid(
        'withFieldLock needs Redis locks: give options.lock (with a redis client) when the store is not a RedisContextStore',
      );
    const { ttl = 10_000, ...acquire } = options;
    return this.locks.withLock(
      `shared:${this.key}:${field}`,
      ttl,
      async (signal) => {
        await this.refresh();
        const next = await work(this.copy[field] as T[K] | undefined, signal);
        if (next !== undefined) {
          if (signal.aborted) throw signal.reason;
          await this.write({ [field]: next } as Record<string, unknown>, []);
        }
        return next;
      },
      acquire,
    );
  }

  /** Brings the local copy up to date with the store now (it does so by itself; this is for callers that must be sure). */
  async refresh(): Promise<void> {
    this.checkOpen();
    await this.resync();
  }

  /** Unsubscribes and closes what it opened. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.timer?.clear();
      if (this.catchUpTimer !== null) clearInterval(this.catchUpTimer);
      this.catchUpTimer = null;
      if (this.hold !== null) clearInterval(this.hold);
      for (const w of this.waiters.splice(0)) w.resolve();
      await this.watch?.close();
      if (this.ownsLocks) await this.locks?.close();
      if (this.ownsStore) await this.store.close();
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private checkOpen(): void {
    if (this.closing !== null)
      throw new CollectorError('LC_SHARED_CLOSED', `the shared context ${JSON.stringify(this.key)} is closed`);
  }

  private async start(resyncInterval: number): Promise<void> {
    // Its notifications alone never keep the process alive (see keepAlive).
    const watch = this.store.watch(this.key, { keepAlive: false });
    this.watch = watch;
    await watch.ready; // subscribed first: a sync from here on misses nothing
    await this.resync();
    // It goes on through anything one notification brings; should it end all the same, that is told.
    void this.follow(watch).catch((err: unknown) => this.report(err));
    if (resyncInterval > 0) {
      this.timer = setLongInterval(() => void this.resync().catch(() => {}), resyncInterval, false);
    }
  }

  /**
   * Applies notifications in order; a gap in versions means some were missed: resync. A
   * notification that fails to apply is reported (see report()) and the next ones are followed.
   */
  private async follow(watch: ContextWatch): Promise<void> {
    for await (const ev of watch) {
      try {
        this.onEvent(ev);
      } catch (err) {
        this.report(err);
      }
    }
  }

  private onEvent(ev: ContextEvent): void {
    if (ev.type === 'change') {
      // A change of another context of this id (made again after a deletion or expiry this copy
      // did not hear of): versions say nothing about the copy, the whole context is needed.
      if (this.incarnation !== null && ev.incarnation !== '' && ev.incarnation !== this.incarnation) {
        void this.resync().catch(() => {});
        return;
      }
      if (ev.version <= this._version) return;
      if (ev.version === this._version + 1 && this.resyncing === null) {
        this.counts.notified++;
        if (this._version === 0) this.incarnation = ev.incarnation === '' ? null : ev.incarnation;
        this.apply(ev.version, ev.delta);
      } else {
        void this.resync().catch(() => {});
      }
    } else if (ev.type === 'reset') {
      this._version = 0;
      void this.resync().catch(() => {});
    } else {
      this.incarnation = null;
      this.replace(0, {} as T);
    }
  }

  private apply(version: number, delta: ContextDelta): void {
    // Copy on write: the fields the delta changes inside are cloned; the rest is shared (frozen).
    const next: Record<string, unknown> = { ...this.copy };
    for (const k of Object.keys(delta)) {
      if (!isDeltaLeaf(delta[k]!) && isPlainObject(next[k])) next[k] = structuredClone(next[k]);
    }
    this.replace(version, applyDelta(next, delta) as T, delta);
  }

  private replace(version: number, next: T, delta?: ContextDelta): void {
    this.copy = deepFreeze(next);
    this._version = version;
    this.tell(this.copy, version, delta ?? null);
    if (this.waiters.length > 0) {
      const left: typeof this.waiters = [];
      for (const w of this.waiters) w.version > version ? left.push(w) : w.resolve();
      this.waiters = left;
    }
  }

  /**
   * Calls every `change` listener: one that throws (or whose promise rejects) is reported, and
   * neither the others nor the following of changes stop for it.
   */
  private tell(copy: Readonly<T>, version: number, delta: ContextDelta | null): void {
    for (const listener of this.rawListeners('change') as Array<(...args: unknown[]) => unknown>) {
      try {
        const r = listener.call(this, copy, version, delta);
        if (r instanceof Promise) r.catch((err: unknown) => this.report(err));
      } catch (err) {
        this.report(err);
      }
    }
  }

  /**
   * A failure of the background work (a `change` listener's error, a notification that cannot be
   * applied): an `error` event when one is listened to (an unheard one would throw), else dropped.
   */
  private report(err: unknown): void {
    if (this.listenerCount('error') === 0) return;
    try {
      this.emit('error', err);
    } catch {
      /* a throwing error listener must not stop the following either */
    }
  }

  /** One sync at a time; a request while one runs runs once more after it. */
  private resync(): Promise<void> {
    if (this.resyncing !== null) {
      this.resyncAgain = true;
      return this.resyncing;
    }
    this.resyncing = (async () => {
      try {
        do {
          this.resyncAgain = false;
          const from = this._version;
          const r = await this.store.sync(this.key, from === 0 ? null : from, from === 0 ? null : this.incarnation);
          if (this._version !== from) {
            // The copy moved meanwhile (a deletion): this answer is relative to an older one.
            this.resyncAgain = true;
          } else if (r === null) {
            this.incarnation = null;
            if (this._version !== 0) this.replace(0, {} as T);
          } else if (r.type === 'delta') {
            this.incarnation = r.incarnation;
            this.counts.resyncs++;
            this.apply(r.version, r.delta);
          } else if (r.type === 'full' && (r.version !== this._version || r.incarnation !== this.incarnation)) {
            this.counts.resyncs++;
            this.incarnation = r.incarnation;
            this.replace(r.version, r.context as T);
          }
        } while (this.resyncAgain);
      } finally {
        this.resyncing = null;
      }
    })();
    return this.resyncing;
  }

  private async write(given: Record<string, unknown>, remove: string[]): Promise<number> {
    this.checkOpen();
    // A field set to undefined is removed, as JSON would drop it; values must be JSON.
    const fields: Record<string, unknown> = {};
    const gone = [...remove];
    for (const k of Object.keys(given)) {
      const v = given[k];
      if (v === undefined) gone.push(k);
      else {
        checkValue(k, v);
        let text: string | undefined;
        try {
          text = stringifyJson(v);
        } catch (err) {
          throw new CollectorError(
            'LC_SHARED_INVALID_ARGUMENT',
            `field ${JSON.stringify(k)} must hold JSON: ${(err as Error).message}`,
            { cause: err },
          );
        }
        if (text === undefined) throw invalid(`field ${JSON.stringify(k)} must hold JSON, got a ${typeof v}`);
        Object.defineProperty(fields, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
    }
    let r: Awaited<ReturnType<ContextStore['assign']>>;
    try {
      r = await this.store.assign(this.key, fields, gone);
    } catch (err) {
      if (err instanceof CollectorError && err.code === 'LC_STORE_INVALID_ARGUMENT')
        throw new CollectorError('LC_SHARED_INVALID_ARGUMENT', err.message, { cause: err });
      throw err;
    }
    this.counts.writes++;
    // Closed while the write went: it landed, and the copy follows no more.
    if (this._version < r.version && this.closing === null) await this.caughtUp(r.version);
    return r.version;
  }

  /** Resolves once the local copy is at `version`: by notification, or by a sync if it is slow to come. */
  private caughtUp(version: number): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push({ version, resolve });
      if (this.catchUpTimer !== null) return;
      // It keeps the process alive while writes wait for the copy (the subscription does not);
      // close() stops it and resolves them.
      // Notifications normally bring it; when the copy stops moving while writes wait, sync.
      this.lastTickVersion = -1;
      this.catchUpTimer = setInterval(() => {
        if (this.waiters.length === 0) {
          clearInterval(this.catchUpTimer!);
          this.catchUpTimer = null;
          return;
        }
        if (this._version === this.lastTickVersion) void this.resync().catch(() => {});
        this.lastTickVersion = this._version;
      }, 50);
    });
  }
}

printable(SharedContext, (c) => ({ key: c.key, version: c.version }));
