import { byMaster, type RedisClient } from '../internal/cluster.js';
import { CollectorError } from '../internal/errors.js';
import { holdsLoneSurrogate } from '../internal/checks.js';
import {
  checkLockName,
  RedisLock,
  type LockCallOptions,
  type LockHandle,
  type RedisLockOptions,
} from './redis-lock.js';
import { reaching, replies } from '../internal/redis-client.js';
import { printable } from '../internal/printable.js';

/** Options of {@link LockPool}. */
export interface LockPoolOptions extends RedisLockOptions {
  /** The pool's name. */
  pool: string;
  /** Share the client and owner of an existing RedisLock instead of making one. */
  locks?: RedisLock;
}

/**
 * A named set of lock names kept in Redis (`<prefix>lockpool:{<pool>}`), to lock its members and
 * see at a glance which of them are held.
 *
 * @example
 * const workers = new LockPool({ redis, pool: 'workers' });
 * await workers.add('w1', 'w2');
 * const { locked, free } = await workers.healthCheck();
 */
export class LockPool {
  readonly locks: RedisLock;
  readonly pool: string;
  private readonly ownsLocks: boolean;

  constructor(options: LockPoolOptions) {
    if (typeof options?.pool !== 'string' || options.pool.length === 0 || options.pool.includes('\u0000')) {
      throw new CollectorError('LC_LOCK_INVALID_NAME', 'pool must be a non-empty string without NUL characters');
    }
    if (holdsLoneSurrogate(options.pool))
      throw new CollectorError(
        'LC_LOCK_INVALID_NAME',
        'pool must be well-formed Unicode (it holds a lone surrogate: Redis would make it one with others)',
      );
    this.pool = options.pool;
    this.ownsLocks = options.locks === undefined;
    if (options.locks === undefined) {
      // Its own options go to the RedisLock it makes; an unknown one is refused there.
      const { pool: _pool, locks: _locks, ...lockOptions } = options;
      this.locks = new RedisLock(lockOptions);
    } else this.locks = options.locks;
  }

  private get redis(): RedisClient {
    return this.locks.redis;
  }

  private get key(): string {
    return `${this.locks.prefix}lockpool:{${this.pool}}`;
  }

  async add(...names: string[]): Promise<number> {
    if (names.length === 0) return 0;
    for (const n of names) checkLockName(n);
    return reaching(`lock pool ${JSON.stringify(this.pool)} add`, this.redis, this.redis.sadd(this.key, names));
  }

  async remove(...names: string[]): Promise<number> {
    if (names.length === 0) return 0;
    return reaching(`lock pool ${JSON.stringify(this.pool)} remove`, this.redis, this.redis.srem(this.key, names));
  }

  async names(): Promise<string[]> {
    return (
      await reaching(`lock pool ${JSON.stringify(this.pool)} names`, this.redis, this.redis.smembers(this.key))
    ).sort();
  }

  async clear(): Promise<void> {
    await reaching(`lock pool ${JSON.stringify(this.pool)} clear`, this.redis, this.redis.del(this.key));
  }

  /** Locks a member of the pool; null when it is held (or not a member). */
  async lock(name: string, options: LockCallOptions = {}): Promise<LockHandle | null> {
    if (
      (await reaching(
        `lock pool ${JSON.stringify(this.pool)} lock`,
        this.redis,
        this.redis.sismember(this.key, name),
      )) !== 1
    )
      return null;
    return this.locks.lock(name, options);
  }

  /** Which members are held and which are free, now. */
  async healthCheck(): Promise<{ locked: string[]; free: string[] }> {
    const names = await this.names();
    const locked: string[] = [];
    const free: string[] = [];
    if (names.length === 0) return { locked, free };
    const what = `lock pool ${JSON.stringify(this.pool)} health check`;
    // One pipeline per master on a cluster (the members' locks are in many slots).
    const groups = byMaster(this.redis, names, (n) => this.locks.key(n));
    const answers = await Promise.all(
      groups.map((group) => {
        const pipeline = this.redis.pipeline();
        for (const n of group) pipeline.exists(this.locks.key(n));
        // A command that failed fails the check: a lock Redis did not answer for is not free.
        return replies(what, this.redis, pipeline.exec());
      }),
    );
    for (const [g, group] of groups.entries())
      for (const [i, n] of group.entries()) (answers[g]![i] === 1 ? locked : free).push(n);
    if (groups.length === 1) return { locked, free };
    // Several masters answered: back to the members' order.
    const order = new Map(names.map((n, i) => [n, i]));
    const byName = (a: string, b: string) => order.get(a)! - order.get(b)!;
    return { locked: locked.sort(byName), free: free.sort(byName) };
  }

  close(): Promise<void> {
    return this.ownsLocks ? this.locks.close() : Promise.resolve();
  }
}

printable(LockPool, (p) => ({ pool: p.pool, locks: p.locks }));
