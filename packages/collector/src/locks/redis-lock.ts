import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { RedisClient, RedisOption } from '../internal/cluster.js';
import { type BackoffOptions, backoffDelay } from '@contexture/context/internal';
import { CollectorError } from '../internal/errors.js';
import {
  checkCount,
  checkFunction,
  checkOptionNames,
  checkSignal,
  emptyHashTag,
  holdsLoneSurrogate,
} from '../internal/checks.js';
import { LOCK_SCRIPTS } from './lock-scripts.js';
import { LockError } from './lock-error.js';
import { LockWaits } from './lock-waits.js';
import { closeClient, reaching, redisAddress, resolveRedis } from '../internal/redis-client.js';
import { printable } from '../internal/printable.js';
import { type LongTimer, setLongInterval, setLongTimeout } from '../internal/timers.js';

/** What `status()` says of a lock: `unavailable` when Redis cannot be asked, `error` when the key holds something else. */
export type LockStatus = 'free' | 'locked' | 'unavailable' | 'error';

/** Comparison of {@link RedisLock.setIf}: write when `value <op> current`. */
export type SetIfOp = 'gt' | 'lt' | 'ge' | 'le' | 'eq' | 'ne';

/** Options of {@link RedisLock}. */
export interface RedisLockOptions {
  /** An ioredis client, or a URL (the lock then owns its client and closes it). @default 'redis://127.0.0.1:6379' */
  redis?: RedisOption;
  /** Prefix of every key. @default 'contexture:' */
  prefix?: string;
  /** Owner of the locks this instance takes, unless a call names another. @default '<hostname>:<pid>:<random>' */
  owner?: string;
  /** Lock lifetime (ms) unless a call gives one. @default 30000 */
  ttl?: number;
  /**
   * `acquire()`: pause between attempts (ms). A waiter asks again as soon as the lock is released
   * (the release says so on the lock's channel); the pause bounds the wait when that word is lost
   * or the lock expires instead. @default 100
   */
  retryDelay?: number;
  /** `acquire()`: attempts after the first. @default 50 */
  maxRetries?: number;
  /** `acquire()`: up to this many ms added at random to each pause, so contenders spread out. @default 100 */
  jitter?: number;
}

/** Options of one lock call. */
export interface LockCallOptions {
  owner?: string;
  ttl?: number;
}

/** Options of {@link RedisLock.acquire}. */
export interface AcquireOptions extends LockCallOptions {
  retryDelay?: number;
  maxRetries?: number;
  jitter?: number;
  /** Give up after this many ms in all (`LC_LOCK_TIMEOUT`), a call to Redis under way or not. @default none */
  timeout?: number;
  /** Aborting it gives up at once (`LC_LOCK_ABORTED`), a call to Redis under way or not. */
  signal?: AbortSignal;
  /** Take it reentrantly (as `rlock`). @default false */
  reentrant?: boolean;
}

const ACQUIRE_OPTIONS = ['owner', 'ttl', 'retryDelay', 'maxRetries', 'jitter', 'timeout', 'signal', 'reentrant'];

/** A held lock. */
export interface LockHandle {
  readonly name: string;
  readonly owner: string;
  /** Fencing token: strictly increasing per name across acquisitions; pass it to what the lock protects. */
  readonly fence: number;
  /** Re-entries held by this owner when the handle was made. */
  readonly entries: number;
  /**
   * Sets a new lifetime (a re-entered lock's is only ever lengthened: another entry counts on it);
   * false when the lock is no longer this acquisition's.
   */
  extend(ttl?: number): Promise<boolean>;
  /** Gives back this entry; false when the lock was no longer this acquisition's. */
  release(): Promise<boolean>;
}

export const REDIS_LOCK_DEFAULTS = Object.freeze({
  redis: 'redis://127.0.0.1:6379',
  prefix: 'contexture:',
  ttl: 30_000,
  retryDelay: 100,
  maxRetries: 50,
  jitter: 100,
});

/** A lock name (or `what`): a non-empty string without NUL, well-formed Unicode; else LC_LOCK_INVALID_NAME. */
export function checkLockName(name: string, what = 'lock name'): void {
  if (typeof name !== 'string' || name.length === 0 || name.includes('\u0000')) {
    throw new LockError(
      'LC_LOCK_INVALID_NAME',
      String(name),
      `a ${what} must be a non-empty string without NUL characters`,
    );
  }
  if (holdsLoneSurrogate(name))
    throw new LockError(
      'LC_LOCK_INVALID_NAME',
      name,
      `a ${what} must be well-formed Unicode (it holds a lone surrogate: Redis would make it one with others)`,
    );
  if (emptyHashTag(`{${name}}`))
    throw new LockError(
      'LC_LOCK_INVALID_NAME',
      name,
      `a ${what} must not start with } (it would end the hash tag that keeps its keys in one Redis Cluster slot)`,
    );
}

function positive(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1)
    throw new CollectorError('LC_LOCK_INVALID_ARGUMENT', `${name} must be a positive integer (ms), got ${v}`);
  return v;
}

/**
 * The pauses of `acquire()` as backoff: `retryDelay` plus 0–`jitter` ms at random, every time
 * (factor 1, as redlock's `retryDelay` and `retryJitter`), so that contenders spread out.
 */
function acquireBackoff(retryDelay: number, jitter: number): BackoffOptions {
  const middle = retryDelay + jitter / 2;
  return {
    initialDelay: middle,
    maxDelay: retryDelay + jitter,
    factor: 1,
    jitter: middle > 0 ? jitter / 2 / middle : 0,
  };
}

function held(name: string, attempts: number): LockError {
  return new LockError('LC_LOCK_HELD', name, `'${name}' was held by another owner through ${attempts} attempts`);
}

/**
 * What `attempt` resolves with, unless `deadline` (Date.now() ms) comes or `signal` aborts first:
 * then rejects at once with what `stopped()` makes. A lock the attempt takes after all (Redis
 * answered late) is given back: the call that asked for it gave up.
 */
function giveUpAt(
  attempt: Promise<LockHandle | null>,
  deadline: number,
  signal: AbortSignal | undefined,
  stopped: () => LockError,
): Promise<LockHandle | null> {
  return new Promise((resolve, reject) => {
    let done = false;
    const end = (): boolean => {
      if (done) return false;
      done = true;
      timer?.clear();
      signal?.removeEventListener('abort', stop);
      return true;
    };
    const stop = (): void => {
      if (end()) reject(stopped());
    };
    const timer = deadline === Infinity ? undefined : setLongTimeout(stop, Math.max(0, deadline - Date.now()));
    signal?.addEventListener('abort', stop, { once: true });
    attempt.then(
      (handle) => {
        if (end()) resolve(handle);
        else if (handle !== null) void handle.release().catch(() => false);
      },
      (err: unknown) => {
        if (end()) reject(err);
      },
    );
  });
}

/** A lock's value: `<fence>:<re-entries>:<owner>`. */
const LOCK_VALUE = /^(\d+):(\d+):([\s\S]+)$/;

/** The handle of one acquisition: a class, so that taking a lock makes no closures. */
class Handle implements LockHandle {
  readonly #redis: RedisClient;
  readonly #key: string;
  readonly #ttl: number;
  readonly #fenceText: string;
  readonly #waits: LockWaits;
  readonly #handsOff: boolean;
  #released = false;

  constructor(
    redis: RedisClient,
    readonly name: string,
    key: string,
    readonly owner: string,
    readonly fence: number,
    readonly entries: number,
    ttl: number,
    waits: LockWaits,
    reentrant: boolean,
  ) {
    this.#redis = redis;
    this.#key = key;
    this.#ttl = ttl;
    this.#waits = waits;
    this.#handsOff = !reentrant;
    this.#fenceText = String(fence);
    Object.freeze(this);
  }

  async extend(ttl: number = this.#ttl): Promise<boolean> {
    positive('ttl', ttl);
    return (
      (await LOCK_SCRIPTS.extend.run(
        this.#redis,
        this.#key,
        `${this.#key}:waiting`,
        this.owner,
        this.#fenceText,
        ttl,
      )) === 1
    );
  }

  async release(): Promise<boolean> {
    if (this.#released) return false;
    this.#released = true;
    // A call of this instance waits for the lock: its attempt goes right behind the release, on the
    // same connection (see LockWaits.handOff). Not from a reentrant acquisition: its release may
    // give back one entry of several.
    const handOff = this.#handsOff && this.#waits.handOff(this.#key, this.fence);
    const released = LOCK_SCRIPTS.release.run(
      this.#redis,
      this.#key,
      `${this.#key}:waiting`,
      this.owner,
      this.#fenceText,
      this.#waits.publishTo(this.#key),
    );
    if (handOff) this.#waits.notify(this.#key);
    const r = await released;
    return r === 1 || r === 2;
  }
}

/**
 * Locks in Redis whose owner is checked inside every script, with fencing tokens, reentrancy,
 * retries with jitter and `withLock()` that keeps the lock alive while the work runs. Each lock's
 * keys share one hash tag (`<prefix>lock:{<name>}`), so every script touches one slot.
 *
 * @example
 * const locks = new RedisLock({ redis: 'redis://127.0.0.1:6379' });
 * await locks.withLock('reports.daily', 10_000, async (signal) => build(signal));
 */
export class RedisLock {
  readonly redis: RedisClient;
  readonly prefix: string;
  readonly owner: string;
  private readonly owned: boolean;
  private readonly defaults: { ttl: number; retryDelay: number; maxRetries: number; jitter: number };
  private closing: Promise<void> | null = null;
  /** The waiters of acquire(), and what they listen to on the client's subscriber. */
  private readonly waits: LockWaits;

  constructor(options: RedisLockOptions = {}) {
    checkOptionNames('LC_LOCK_INVALID_ARGUMENT', 'RedisLock', options, [...Object.keys(REDIS_LOCK_DEFAULTS), 'owner']);
    const o = {
      ...REDIS_LOCK_DEFAULTS,
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    } as Required<RedisLockOptions>;
    if (typeof o.prefix === 'string' && emptyHashTag(`${o.prefix}lock:{x}`))
      throw new CollectorError(
        'LC_LOCK_INVALID_ARGUMENT',
        "prefix must not hold { right before } (an empty hash tag: a lock's keys would be in several Redis Cluster slots)",
      );
    const client = resolveRedis(o.redis, () => {});
    if (typeof client === 'string') throw new CollectorError('LC_LOCK_INVALID_ARGUMENT', client);
    this.redis = client.redis;
    this.owned = client.owned;
    if (typeof o.prefix !== 'string') throw new CollectorError('LC_LOCK_INVALID_ARGUMENT', 'prefix must be a string');
    this.prefix = o.prefix;
    this.owner = o.owner ?? `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    checkLockName(this.owner, 'lock owner');
    this.defaults = {
      ttl: positive('ttl', o.ttl),
      retryDelay: o.retryDelay,
      maxRetries: o.maxRetries,
      jitter: o.jitter,
    };
    for (const k of ['retryDelay', 'maxRetries', 'jitter'] as const)
      checkCount('LC_LOCK_INVALID_ARGUMENT', k, this.defaults[k]);
    this.waits = new LockWaits(this.redis);
  }

  /** The key of a lock (its fence counter is `<key>:fence`). */
  key(name: string): string {
    return `${this.prefix}lock:{${name}}`;
  }

  /** Takes the lock if it is free; null when someone (this owner included) holds it. */
  lock(name: string, options: LockCallOptions = {}): Promise<LockHandle | null> {
    return this.take(name, options, false);
  }

  /** Takes the lock if it is free or already this owner's (counting re-entries, refreshing the ttl); null otherwise. */
  rlock(name: string, options: LockCallOptions = {}): Promise<LockHandle | null> {
    return this.take(name, options, true);
  }

  /** Gives back one re-entry of the owner's lock (the last one frees it). False when the owner did not hold it. */
  async unlock(name: string, owner: string = this.owner): Promise<boolean> {
    checkLockName(name);
    const key = this.key(name);
    const r = await LOCK_SCRIPTS.release.run(this.redis, key, `${key}:waiting`, owner, '', this.waits.publishTo(key));
    return r === 1 || r === 2;
  }

  /** Whether the lock is held, as Redis says now. */
  async status(name: string): Promise<LockStatus> {
    checkLockName(name);
    if (this.redis.status === 'end' || this.redis.status === 'close') return 'unavailable';
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('no answer')), 2000);
      });
      const value = await Promise.race([this.redis.get(this.key(name)), timeout]);
      if (value === null) return 'free';
      return LOCK_VALUE.test(value) ? 'locked' : 'error';
    } catch (err) {
      return /WRONGTYPE|^ERR/.test(String((err as Error).message)) ? 'error' : 'unavailable';
    } finally {
      clearTimeout(timer);
    }
  }

  /** Who holds the lock now, with its fencing token and re-entries; null when free. */
  async holder(name: string): Promise<{ owner: string; fence: number; entries: number } | null> {
    checkLockName(name);
    const value = await reaching(`lock holder of ${JSON.stringify(name)}`, this.redis, this.redis.get(this.key(name)));
    const m = value === null ? null : LOCK_VALUE.exec(value);
    if (m === null) return null;
    return { owner: m[3]!, fence: Number(m[1]), entries: Number(m[2]) };
  }

  /**
   * Takes the lock, waiting while another owner holds it: the calls of this instance that wait for
   * one lock queue first come first served, and the first of them asks Redis again as soon as the
   * lock is released (the release says so on the lock's channel) or when its pause (`retryDelay`
   * plus up to `jitter`) runs out; a pause spent behind another call counts as an attempt, as a
   * lock taken through it. Rejects with a `LockError`:
   * `LC_LOCK_HELD` when the retries run out, `LC_LOCK_TIMEOUT` when `timeout` passes,
   * `LC_LOCK_ABORTED` when `signal` aborts (both whether or not Redis has answered the attempt under
   * way: a lock it takes afterwards is given back); with a `CollectorError` `LC_REDIS_UNAVAILABLE`
   * when Redis does not answer (as every call of the lock does).
   */
  async acquire(name: string, options: AcquireOptions = {}): Promise<LockHandle> {
    return (await this.acquiring(name, options)).handle;
  }

  /** acquire(), and when the call that took the lock was sent (performance.now(): its ttl runs from no earlier). */
  private async acquiring(name: string, options: AcquireOptions): Promise<{ handle: LockHandle; sent: number }> {
    checkLockName(name);
    checkOptionNames('LC_LOCK_INVALID_ARGUMENT', 'acquire()', options, ACQUIRE_OPTIONS);
    const key = this.key(name);
    const owner = this.ownerOf(options);
    const ttl = this.ttlOf(options);
    const reentrant = options.reentrant === true;
    // Checked as the constructor checks its defaults: NaN or Infinity would never give up.
    const count = (k: 'retryDelay' | 'maxRetries' | 'jitter') =>
      options[k] === undefined ? this.defaults[k] : checkCount('LC_LOCK_INVALID_ARGUMENT', k, options[k]);
    const retryDelay = count('retryDelay');
    const maxRetries = count('maxRetries');
    const backoff = acquireBackoff(retryDelay, count('jitter'));
    const timeout =
      options.timeout === undefined
        ? undefined
        : checkCount('LC_LOCK_INVALID_ARGUMENT', 'timeout', options.timeout, ' (ms)');
    const deadline = timeout === undefined ? Infinity : Date.now() + timeout;
    const signal = checkSignal('LC_LOCK_INVALID_ARGUMENT', 'signal', options.signal);
    const stopped = (): LockError =>
      signal?.aborted
        ? new LockError('LC_LOCK_ABORTED', name, `acquiring '${name}' was aborted`, { cause: signal.reason })
        : new LockError('LC_LOCK_TIMEOUT', name, `'${name}' was not free within ${timeout} ms`);
    const check = (): void => {
      if (signal?.aborted || Date.now() >= deadline) throw stopped();
    };
    check();
    // An attempt ends at the deadline or the signal too, whether Redis answers or not.
    const bounded = deadline !== Infinity || signal !== undefined;
    // Tried at once unless calls of this instance already wait for it (they go first); a reentrant
    // call always is (its owner may hold it), and so is a call that has one attempt only.
    let attempts = 0;
    if (reentrant || maxRetries === 0 || !this.waits.waiting(key)) {
      const sent = performance.now();
      const attempt = this.attempt(name, key, owner, ttl, reentrant, 'f');
      const handle = await (bounded ? giveUpAt(attempt, deadline, signal, stopped) : attempt);
      if (handle !== null) return { handle, sent };
      attempts = 1;
      if (maxRetries === 0) throw held(name, attempts);
    }
    const waiter = this.waits.join(key);
    let took = false;
    try {
      for (;;) {
        if (attempts > maxRetries) throw held(name, attempts);
        const pause = Math.min(backoffDelay(attempts, backoff), Math.max(0, deadline - Date.now()));
        await this.waits.wait(key, waiter, pause, signal);
        check();
        attempts++;
        // Behind another waiter of this instance, the pause counts as an attempt: it asks Redis
        // once first in line, when the lock is said to be free or its pause runs out.
        if (!this.waits.first(key, waiter)) continue;
        const mark = this.waits.others(key) ? 'a' : 'f';
        const sent = performance.now();
        const attempt = this.attempt(name, key, owner, ttl, reentrant, mark);
        const handle = await (bounded ? giveUpAt(attempt, deadline, signal, stopped) : attempt);
        if (handle === null) continue;
        took = true;
        this.waits.leave(key, waiter);
        // Someone joined while the lock was taken unmarked: the next in line asks now, which
        // marks it (the release then says when it is free).
        if (mark === 'f' && this.waits.waiting(key)) this.waits.notify(key);
        return { handle, sent };
      }
    } finally {
      // First in line and giving up (timed out, aborted, Redis failing): it may have been woken
      // for a release that no one else heard, so the next in line asks now.
      if (!took && this.waits.leave(key, waiter)) this.waits.notify(key);
    }
  }

  /**
   * Runs `work` holding the lock: it is extended every ttl/3 while the work runs, `signal` aborts
   * (with a `LockError` `LC_LOCK_LOST` as its reason) if the lock is lost, and the lock is always
   * released at the end. Resolves with what the work resolves with.
   */
  async withLock<T>(
    name: string,
    ttl: number,
    work: (signal: AbortSignal) => Promise<T> | T,
    options: Omit<AcquireOptions, 'ttl'> = {},
  ): Promise<T> {
    positive('ttl', ttl);
    checkFunction('LC_LOCK_INVALID_ARGUMENT', 'work', work);
    // The lock is counted lost a little before Redis lets it go (1% of the ttl and 2 ms, for the
    // clocks' drift), each time from when the call that set its ttl was sent: never later than
    // another owner can take it, even while an extension waits for a Redis that does not answer.
    const drift = Math.floor(ttl * 0.01) + 2;
    const { handle, sent } = await this.acquiring(name, { ...options, ttl });
    const ac = new AbortController();
    let extending = false;
    let done = false;
    let lastError: unknown;
    const lose = (why: string, cause?: unknown) => {
      if (ac.signal.aborted) return;
      timer.clear();
      expiry.clear();
      ac.abort(new LockError('LC_LOCK_LOST', name, `lost '${name}' while working: ${why}`, { cause }));
    };
    const expire = () =>
      lose(
        lastError === undefined ? 'it expired before it could be extended' : 'it could not be extended in time',
        lastError,
      );
    const expireAt = (from: number): LongTimer =>
      setLongTimeout(expire, Math.max(0, from + ttl - drift - performance.now()), false);
    let expiry = expireAt(sent);
    const timer = setLongInterval(
      () => {
        if (extending) return;
        extending = true;
        const at = performance.now();
        handle.extend(ttl).then(
          (ok) => {
            extending = false;
            // An answer after the work ended (and the lock was given back) says nothing any more.
            if (done || ac.signal.aborted) return;
            if (!ok) return lose('another owner holds it or it expired');
            lastError = undefined;
            expiry.clear();
            expiry = expireAt(at);
          },
          (err) => {
            extending = false;
            lastError = err;
          },
        );
      },
      Math.max(5, Math.floor(ttl / 3)),
      false,
    );
    try {
      return await work(ac.signal);
    } finally {
      done = true;
      timer.clear();
      expiry.clear();
      // Counted lost, it may still be ours (an extension that went through late): given back all
      // the same, without waiting (the fence keeps it from freeing another owner's lock).
      if (ac.signal.aborted) void handle.release().catch(() => false);
      else await handle.release().catch(() => false);
    }
  }

  /**
   * Sets `key` to `value` when the key is missing or `value <op> current` holds (a numeric
   * compare-and-set, atomic). True when it wrote.
   */
  async setIf(key: string, op: SetIfOp, value: number, options: { ttl?: number } = {}): Promise<boolean> {
    checkLockName(key, 'key');
    if (!['gt', 'lt', 'ge', 'le', 'eq', 'ne'].includes(op))
      throw new CollectorError('LC_LOCK_INVALID_ARGUMENT', `op must be gt, lt, ge, le, eq or ne, got ${String(op)}`);
    if (typeof value !== 'number' || !Number.isFinite(value))
      throw new CollectorError('LC_LOCK_INVALID_ARGUMENT', `value must be a finite number, got ${String(value)}`);
    const [written] = await LOCK_SCRIPTS.setIf.run(
      this.redis,
      `${this.prefix}num:{${key}}`,
      op,
      String(value),
      // Left out: the number never expires.
      options.ttl === undefined ? 0 : positive('ttl', options.ttl),
    );
    return written === 1;
  }

  /** The number `setIf` keeps under `key`, or null. */
  async getNumber(key: string): Promise<number | null> {
    checkLockName(key, 'key');
    const v = await reaching(
      `lock getNumber of ${JSON.stringify(key)}`,
      this.redis,
      this.redis.get(`${this.prefix}num:{${key}}`),
    );
    return v === null ? null : Number(v);
  }

  /**
   * Ends the subscriptions of its waiters (the client's subscriber closes once no lock on it is
   * waited for, this call or not), and closes the client when the lock made it. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.waits.close().then(() => (this.owned ? closeClient(this.redis) : undefined));
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Validates one call's arguments, then makes one attempt. */
  private async take(name: string, options: LockCallOptions, reentrant: boolean): Promise<LockHandle | null> {
    checkLockName(name);
    checkOptionNames('LC_LOCK_INVALID_ARGUMENT', reentrant ? 'rlock()' : 'lock()', options, ['owner', 'ttl']);
    return this.attempt(name, this.key(name), this.ownerOf(options), this.ttlOf(options), reentrant, '');
  }

  private ownerOf(options: LockCallOptions): string {
    if (options.owner === undefined) return this.owner;
    checkLockName(options.owner, 'lock owner');
    return options.owner;
  }

  private ttlOf(options: LockCallOptions): number {
    return options.ttl === undefined ? this.defaults.ttl : positive('ttl', options.ttl);
  }

  /**
   * One script call with arguments already validated: the handle, or null when the lock is held.
   * `mark` (see acquire.lua): '' lock()/rlock(), 'f' a waiter of acquire(), 'a' one with others
   * waiting behind it.
   */
  private async attempt(
    name: string,
    key: string,
    owner: string,
    ttl: number,
    reentrant: boolean,
    mark: '' | 'f' | 'a',
  ): Promise<LockHandle | null> {
    const waiting = `${key}:waiting`;
    if (!reentrant) {
      const fence = await LOCK_SCRIPTS.acquire.run(this.redis, key, `${key}:fence`, waiting, owner, ttl, mark);
      return fence === null ? null : new Handle(this.redis, name, key, owner, fence, 1, ttl, this.waits, false);
    }
    const r = await LOCK_SCRIPTS.reenter.run(this.redis, key, `${key}:fence`, waiting, owner, ttl, mark);
    return r === null ? null : new Handle(this.redis, name, key, owner, r[0], r[1], ttl, this.waits, true);
  }
}

printable(RedisLock, (l) => ({ redis: redisAddress(l.redis), prefix: l.prefix, owner: l.owner }));
