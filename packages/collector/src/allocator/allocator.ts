import type { RedisClient } from '../internal/cluster.js';
import { CollectorError } from '../internal/errors.js';
import { checkOptionNames } from '../internal/checks.js';
import { ALLOC_SCRIPTS } from './alloc-scripts.js';
import type { ScriptArg } from '../internal/lua-script.js';
import { Allocation, type AllocationHost } from './allocation.js';
import {
  checkCount,
  checkDuration,
  checkKey,
  checkKeys,
  checkPriority,
  resolveAllocatorOptions,
  type AllocatorOptions,
  type ExtendOptions,
  type GcResult,
  type HealthReport,
  type MallocOptions,
  type PoolStats,
} from './allocator-options.js';
import { byShard, type PoolKeys, type PoolShard, poolShards, shardIndex } from './pool-keys.js';
import { closeClient, reaching, redisAddress, replies, resolveRedis, trackCall } from '../internal/redis-client.js';
import { printable } from '../internal/printable.js';
import { checkEach } from './health-check.js';
import { ShardCount } from '../internal/shard-count.js';

export type {
  AllocatorOptions,
  ExtendOptions,
  GcResult,
  HealthReport,
  MallocOptions,
  PoolStats,
} from './allocator-options.js';

export type AllocatorStatus = 'open' | 'closing' | 'closed';

/**
 * A pool of resources (proxies, workers, accounts…) in Redis that many processes allocate from.
 *
 * Exclusive pools (the default) hold a resource for one allocation until it is freed or its hold
 * expires; every hold carries the allocator's owner token and a fencing token strictly increasing
 * per pool (per shard of a sharded pool), both checked by the scripts. Shared pools hand resources
 * out round-robin and hold nothing. Higher priorities go first, ties in round-robin order; `malloc()` costs O(log n) in the
 * pool size. Soft bindings give a named client the same resource again while it is free;
 * unhealthy resources sit out for a while; `gc()` heals the pool incrementally.
 *
 * Layout: see {@link PoolKeys}; every key is `<prefix>alloc:{<pool>}:…` (one Cluster slot), or
 * with `shards` > 1 spread over that many hash tags (see {@link AllocatorOptions.shards}).
 *
 * @example
 * const pool = new Allocator({ redis: 'redis://127.0.0.1:6379', prefix: 'app:', pool: 'proxies' });
 * await pool.extend(['10.0.0.1:3128', '10.0.0.2:3128']);
 * const a = await pool.malloc({ timeout: 30_000, name: 'crawler-7' });
 * if (a) {
 *   try { await fetchThrough(a.key); } finally { await a.free(); }
 * }
 * await pool.close();
 */
export class Allocator implements AllocationHost {
  readonly redis: RedisClient;
  readonly prefix: string;
  readonly pool: string;
  readonly shared: boolean;
  /** The number of shards the pool is spread over. */
  readonly shards: number;
  /** The check that the pool's other allocators say the same number of shards. */
  private readonly shardCount: ShardCount;
  /** Calls made again once their check passed (see checked()), while they start. */
  private resumed = 0;
  /** The owner token of this allocator's holds. */
  readonly owner: string;
  private readonly parts: readonly PoolShard[];
  /** The shard `malloc()` tries first next: it turns, so that allocations spread over the shards. */
  private rotor: number;
  private readonly mode: 'x' | 's';
  private readonly timeout: number;
  private readonly cacheTimeout: number;
  private readonly unhealthyFor: number;
  private readonly reclaimLimit: number;
  private readonly owned: boolean;
  private closing: Promise<void> | null = null;
  private _status: AllocatorStatus = 'open';

  /** The last connection error of a client the allocator owns (it is retried, not thrown). */
  lastRedisError: string | null = null;

  constructor(options: AllocatorOptions = {}) {
    const o = resolveAllocatorOptions(options);
    const client = resolveRedis(o.redis, (message) => (this.lastRedisError = message));
    if (typeof client === 'string') throw new CollectorError('LC_ALLOC_INVALID_ARGUMENT', client);
    this.redis = client.redis;
    this.owned = client.owned;
    this.prefix = o.prefix;
    this.pool = o.pool;
    this.shared = o.shared;
    this.mode = o.shared ? 's' : 'x';
    this.owner = o.owner;
    this.timeout = o.timeout;
    this.cacheTimeout = o.cacheTimeout;
    this.unhealthyFor = o.unhealthyFor;
    this.reclaimLimit = o.reclaimLimit;
    this.shards = o.shards;
    this.parts = poolShards(o.prefix, o.pool, o.shards);
    const countKey = `${o.prefix}alloc:{${o.pool}}:shards`;
    this.shardCount = new ShardCount(
      this.redis,
      countKey,
      o.shards,
      (stored) =>
        new CollectorError(
          'LC_ALLOC_SHARDS_MISMATCH',
          `pool ${JSON.stringify(o.pool)} is spread over ${stored} shard(s) (${countKey}), this allocator says shards: ${o.shards}`,
        ),
    );
    this.rotor = Math.floor(Math.random() * o.shards);
  }

  get status(): AllocatorStatus {
    return this._status;
  }

  /** The Redis keys of the pool (all in the `{<pool>}` hash-tag slot); of its first shard when sharded. */
  get redisKeys(): PoolKeys {
    return this.parts[0]!.keys;
  }

  /** The Redis keys of each shard of the pool, by shard number. */
  get shardKeys(): readonly PoolKeys[] {
    return this.parts.map((p) => p.keys);
  }

  /** The shard that holds a resource key. */
  shardOf(key: string): number {
    return shardIndex(checkKey(key), this.shards);
  }

  private partOf(key: string): PoolShard {
    return this.parts[shardIndex(key, this.shards)]!;
  }

  /** Runs `call` on the shard of each group of keys (every shard when `all`), in parallel; resolves the results. */
  private eachShard<T>(
    keys: readonly string[],
    call: (part: PoolShard, keys: string[]) => Promise<T>,
    all = false,
  ): Promise<T[]> {
    const groups = byShard(keys, this.shards);
    const parts = all ? this.parts : this.parts.filter((p) => groups.has(p.n));
    return Promise.all(parts.map((p) => call(p, groups.get(p.n) ?? [])));
  }

  // ── the pool ────────────────────────────────────────────────────────────────────────────────

  /**
   * Adds resources, or refreshes those already in the pool (expiry, priority). A new resource is
   * free at once, at the tail of its priority level. Resolves the number of new resources.
   */
  async extend(keys: readonly string[] | string, options: ExtendOptions = {}): Promise<number> {
    const [added] = await this.extendOrAssign(keys, options, false);
    return added;
  }

  /**
   * Makes the pool exactly `keys`: the others leave it (their holds and bindings with them), the
   * listed ones are added or refreshed as by `extend()`.
   */
  async assign(
    keys: readonly string[] | string,
    options: ExtendOptions = {},
  ): Promise<{ added: number; removed: number }> {
    const [added, removed] = await this.extendOrAssign(keys, options, true);
    return { added, removed };
  }

  private async extendOrAssign(
    keys: readonly string[] | string,
    options: ExtendOptions,
    replace: boolean,
  ): Promise<[number, number]> {
    const list = checkKeys(keys);
    const timeout = options.timeout === undefined ? '' : checkDuration(options.timeout, 'timeout');
    const priority = options.priority === undefined ? '' : checkPriority(options.priority);
    this.open();
    if (!this.shardCount.ok) return this.checked('allocator extend', () => this.extendOrAssign(keys, options, replace));
    // assign() reaches every shard: one without listed keys is emptied
    const r = await this.eachShard(
      list,
      (p, keys) =>
        ALLOC_SCRIPTS.extend.runList(this.redis, [...p.list, timeout, priority, replace ? '1' : '0', ...keys]),
      replace,
    );
    return [sum(r.map((x) => x[0])), sum(r.map((x) => x[1]))];
  }

  /** Removes resources from the pool with their holds and bindings; resolves how many were in it. */
  async shrink(keys: readonly string[] | string): Promise<number> {
    const list = checkKeys(keys);
    this.open();
    if (!this.shardCount.ok) return this.checked('allocator shrink', () => this.shrink(keys));
    if (list.length === 0) return 0;
    return sum(await this.eachShard(list, (p, keys) => ALLOC_SCRIPTS.shrink.runList(this.redis, [...p.list, ...keys])));
  }

  /** Empties the pool; fencing tokens keep increasing afterwards. Resolves how many resources it held. */
  async clear(): Promise<number> {
    this.open();
    if (!this.shardCount.ok) return this.checked('allocator clear', () => this.clear());
    return sum(await Promise.all(this.parts.map((p) => ALLOC_SCRIPTS.clear.run(this.redis, ...p.list))));
  }

  /** The resources of the pool, sorted. */
  async keys(): Promise<string[]> {
    this.open();
    if (!this.shardCount.ok) return this.checked('allocator keys', () => this.keys());
    const r = await Promise.all(
      this.parts.map((p) => reaching('allocator keys', this.redis, this.redis.hkeys(p.keys.resources))),
    );
    return r.flat().sort();
  }

  /** The number of resources in the pool. */
  async size(): Promise<number> {
    this.open();
    if (!this.shardCount.ok) return this.checked('allocator size', () => this.size());
    return sum(
      await Promise.all(
        this.parts.map((p) => reaching('allocator size', this.redis, this.redis.hlen(p.keys.resources))),
      ),
    );
  }

  /** Counts of the pool's states, read in one transaction per shard. */
  async stats(): Promise<PoolStats> {
    this.open();
    if (!this.shardCount.ok) return this.checked('allocator stats', () => this.stats());
    const all = await Promise.all(
      this.parts.map(({ keys: k }) =>
        replies(
          'allocator stats',
          this.redis,
          this.redis.multi().hlen(k.resources).zcard(k.free).hlen(k.held).zcard(k.unhealthy).hlen(k.bindings).exec(),
        ),
      ),
    );
    const n = (i: number): number => sum(all.map((r) => Number(r[i])));
    return { size: n(0), free: n(1), held: n(2), unhealthy: n(3), bindings: n(4) };
  }

  // ── allocation ──────────────────────────────────────────────────────────────────────────────

  /**
   * Allocates a free resource: the one bound to `name` when it is free, else the highest-priority
   * one freed longest ago. Resolves null when nothing (suitable) is free.
   */
  async malloc(options: MallocOptions = {}): Promise<Allocation | null> {
    return this.allocate('', options);
  }

  /** Allocates one given resource if it is free; resolves null otherwise. */
  async mallocKey(key: string, options: MallocOptions = {}): Promise<Allocation | null> {
    return this.allocate(checkKey(key), options);
  }

  private async allocate(want: string, options: MallocOptions): Promise<Allocation | null> {
    checkOptionNames('LC_ALLOC_INVALID_ARGUMENT', 'malloc()', options, ['timeout', 'name', 'cacheTimeout', 'priority']);
    const timeout = options.timeout === undefined ? this.timeout : checkDuration(options.timeout, 'timeout');
    const cacheTimeout =
      options.cacheTimeout === undefined ? this.cacheTimeout : checkDuration(options.cacheTimeout, 'cacheTimeout');
    const name = options.name === undefined ? '' : checkKey(options.name, 'binding name');
    const priority = options.priority === undefined ? '' : checkPriority(options.priority);
    this.open();
    if (!this.shardCount.ok) return this.checked('allocator malloc', () => this.allocate(want, options));
    // the optional arguments last, and only as many as this call needs (see malloc.lua)
    const args: ScriptArg[] = [this.mode, this.owner, timeout, this.reclaimLimit];
    if (name !== '' || priority !== '' || want !== '') args.push(name, cacheTimeout, priority, want);
    const attempt = async (part: PoolShard): Promise<Allocation | null> => {
      const r = await ALLOC_SCRIPTS.malloc.runList(this.redis, [...part.list, ...args]);
      return r === null ? null : new Allocation(this, r[0], this.owner, Number(r[1]), Number(r[2]));
    };
    if (this.shards === 1) return attempt(this.parts[0]!);
    // A named call starts in the shard holding the name's binding; the others follow in turn.
    const bound = name === '' ? [] : await this.boundIn(name);
    let order: PoolShard[];
    if (want !== '') order = [this.partOf(want)];
    else {
      const start = this.rotor;
      this.rotor = (this.rotor + 1) % this.shards;
      order = this.parts.map((_, i) => this.parts[(start + i) % this.shards]!);
      if (bound.length > 0) order = [this.parts[bound[0]!]!, ...order.filter((p) => p.n !== bound[0])];
    }
    for (const part of order) {
      const got = await attempt(part);
      if (got === null) continue;
      // the name is now bound in this shard: its bindings left in others would compete with it
      if (bound.some((n) => n !== part.n)) await this.unbindIn(name, bound, part.n);
      return got;
    }
    return null;
  }

  /** The shards where `name` has a binding (a sharded pool keeps each binding with its resource). */
  private async boundIn(name: string): Promise<number[]> {
    const found = await Promise.all(
      this.parts.map((p) =>
        reaching('allocator binding lookup', this.redis, this.redis.hexists(p.keys.bindings, name)),
      ),
    );
    return this.parts.filter((_, i) => found[i] === 1).map((p) => p.n);
  }

  /** Removes the binding of `name` from the shards in `shards` other than `keep`; resolves whether one was removed. */
  private async unbindIn(name: string, shards: readonly number[], keep = -1): Promise<boolean> {
    const r = await Promise.all(
      shards
        .filter((n) => n !== keep)
        .map((n) => ALLOC_SCRIPTS.bind.run(this.redis, ...this.parts[n]!.list, 'unbind', name, '', 0)),
    );
    return r.some((x) => x === 1);
  }

  /**
   * Frees an allocation (only if it still holds its resource: same owner and fence), or this
   * allocator's hold of a resource key whatever its fence. Resolves true when the hold was live
   * until now. In shared pools it does nothing and resolves true.
   */
  async free(allocation: Allocation | string): Promise<boolean> {
    if (allocation instanceof Allocation) return this.freeHold(allocation);
    const key = checkKey(allocation);
    this.open();
    if (!this.shardCount.ok) return this.checked('allocator free', () => this.free(allocation));
    if (this.shared) return true;
    const [ok] = await ALLOC_SCRIPTS.free.run(this.redis, ...this.partOf(key).list, this.owner, key, '');
    return ok === 1;
  }

  /** Frees this allocator's holds of these resource keys; resolves how many were live. */
  async freeKeys(keys: readonly string[] | string): Promise<number> {
    const list = checkKeys(keys);
    this.open();
    if (!this.shardCount.ok) return this.checked('allocator free', () => this.freeKeys(keys));
    if (this.shared || list.length === 0) return 0;
    const counts = await this.eachShard(list, async (p, keys) => {
      const args: string[] = [];
      for (const k of keys) args.push(k, '');
      const flags = await ALLOC_SCRIPTS.free.runList(this.redis, [...p.list, this.owner, ...args]);
      return flags.reduce((a, b) => a + Number(b), 0);
    });
    return sum(counts);
  }

  /** @internal the body of `Allocation.free()`. */
  async freeHold(allocation: Allocation): Promise<boolean> {
    this.open();
    if (!this.shardCount.ok) return this.checked('allocator free', () => this.freeHold(allocation));
    if (this.shared) return true;
    const [ok] = await ALLOC_SCRIPTS.free.run(
      this.redis,
      ...this.partOf(allocation.key).list,
      allocation.owner,
      allocation.key,
      allocation.fence,
    );
    return ok === 1;
  }

  /** @internal the body of `Allocation.update()`. */
  async updateHold(allocation: Allocation, timeout?: number): Promise<boolean> {
    const t = timeout === undefined ? this.timeout : checkDuration(timeout, 'timeout');
    this.open();
    if (!this.shardCount.ok) return this.checked('allocator update', () => this.updateHold(allocation, timeout));
    if (this.shared) return true;
    const expires = await ALLOC_SCRIPTS.update.run(
      this.redis,
      ...this.partOf(allocation.key).list,
      allocation.owner,
      allocation.fence,
      t,
      allocation.key,
    );
    if (expires === 0) return false;
    allocation.expiresAt = Number(expires);
    return true;
  }

  // ── soft binding ────────────────────────────────────────────────────────────────────────────

  /** Binds `name` to a resource for `timeout` ms (default `cacheTimeout`); false when the key is not in the pool. */
  async bind(name: string, key: string, options: { timeout?: number } = {}): Promise<boolean> {
    checkKey(name, 'binding name');
    checkKey(key);
    const timeout = options.timeout === undefined ? this.cacheTimeout : checkDuration(options.timeout, 'timeout');
    this.open();
    if (!this.shardCount.ok) return this.checked('allocator bind', () => this.bind(name, key, options));
    const part = this.partOf(key);
    const bound = this.shards === 1 ? [] : await this.boundIn(name);
    const ok = (await ALLOC_SCRIPTS.bind.run(this.redis, ...part.list, 'bind', name, key, timeout)) === 1;
    if (ok && bound.some((n) => n !== part.n)) await this.unbindIn(name, bound, part.n);
    return ok;
  }

  /** Removes the binding of `name`; resolves whether there was one. */
  async unbind(name: string): Promise<boolean> {
    checkKey(name, 'binding name');
    this.open();
    if (!this.shardCount.ok) return this.checked('allocator bind', () => this.unbind(name));
    return this.unbindIn(
      name,
      this.parts.map((p) => p.n),
    );
  }

  /** The names with a live binding to a resource, in byte order. */
  async bindingsFor(key: string): Promise<string[]> {
    checkKey(key);
    this.open();
    if (!this.shardCount.ok) return this.checked('allocator bindings', () => this.bindingsFor(key));
    return ALLOC_SCRIPTS.bindings.run(this.redis, ...this.partOf(key).list, key);
  }

  // ── health ──────────────────────────────────────────────────────────────────────────────────

  /**
   * Takes resources out of rotation for `duration` ms (default `unhealthyFor`). A holder keeps its
   * hold; the resource returns to the free set when both the hold and the period have ended.
   * Resolves how many of the keys are in the pool.
   */
  async markUnhealthy(keys: readonly string[] | string, duration?: number): Promise<number> {
    const list = checkKeys(keys);
    const d = duration === undefined ? this.unhealthyFor : checkDuration(duration, 'duration');
    this.open();
    if (!this.shardCount.ok) return this.checked('allocator health', () => this.markUnhealthy(keys, duration));
    if (list.length === 0) return 0;
    return sum(
      await this.eachShard(list, (p, keys) =>
        ALLOC_SCRIPTS.health.runList(this.redis, [...p.list, 'sick', d, ...keys]),
      ),
    );
  }

  /** Ends the unhealthy period of resources now; resolves how many of the keys are in the pool. */
  async markHealthy(keys: readonly string[] | string): Promise<number> {
    const list = checkKeys(keys);
    this.open();
    if (!this.shardCount.ok) return this.checked('allocator health', () => this.markHealthy(keys));
    if (list.length === 0) return 0;
    return sum(
      await this.eachShard(list, (p, keys) =>
        ALLOC_SCRIPTS.health.runList(this.redis, [...p.list, 'well', 0, ...keys]),
      ),
    );
  }

  /**
   * Runs `check(key)` on every resource of the pool, at most `concurrency` at once. A resource
   * whose check resolves false, throws or rejects is marked unhealthy for `duration` ms at once;
   * one whose check resolves true is marked healthy (ending an earlier unhealthy period).
   */
  async checkHealth(
    check: (key: string) => boolean | Promise<boolean>,
    options: { concurrency?: number; duration?: number } = {},
  ): Promise<HealthReport> {
    if (typeof check !== 'function') throw new CollectorError('LC_ALLOC_INVALID_ARGUMENT', 'check must be a function');
    const concurrency = options.concurrency === undefined ? 8 : checkCount(options.concurrency, 'concurrency');
    const duration = options.duration === undefined ? this.unhealthyFor : checkDuration(options.duration, 'duration');
    return checkEach(this, check, concurrency, duration);
  }

  // ── garbage collection ──────────────────────────────────────────────────────────────────────

  /**
   * One incremental step: removes up to `count` expired resources, returns up to `count` expired
   * holds and ended unhealthy periods, drops up to `count` expired bindings (all found through
   * expiry indexes, O(k log n)), then repairs inconsistent entries in about `count` entries of each
   * structure, resuming where the previous step stopped (cursors stored in the pool's meta hash).
   */
  async gc(count = 100): Promise<GcResult> {
    checkCount(count, 'count');
    this.open();
    if (!this.shardCount.ok) return this.checked('allocator gc', () => this.gc(count));
    const r = await Promise.all(this.parts.map((p) => ALLOC_SCRIPTS.gc.run(this.redis, ...p.list, this.mode, count)));
    const n = (i: number): number => sum(r.map((x) => Number(x[i])));
    return { removed: n(0), returned: n(1), healed: n(2), unbound: n(3), repaired: n(4) };
  }

  // ── lifecycle ───────────────────────────────────────────────────────────────────────────────

  /** Closes the client when the allocator owns it (graceful; idempotent; the same promise to every caller). */
  close(): Promise<void> {
    if (this.closing === null) {
      this._status = 'closing';
      this.closing = (async () => {
        // resolves once the connection is gone, not just when QUIT is answered
        if (this.owned) await closeClient(this.redis);
        this._status = 'closed';
      })();
    }
    return this.closing;
  }

  /** Drops the owned client's connection at once. */
  destroy(): void {
    if (this.owned) this.redis.disconnect();
    this._status = 'closed';
    if (this.closing === null) this.closing = Promise.resolve();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * `again` (the call that asked, made again), once the pool's other allocators are known to say
   * the same number of shards (see ShardCount): rejects with LC_ALLOC_SHARDS_MISMATCH when they do
   * not, and as the call `what` would when Redis cannot be reached. The check and the call are one
   * call under way, which close() lets end first.
   */
  private checked<T>(what: string, again: () => Promise<T>): Promise<T> {
    return trackCall(
      this.redis,
      reaching(what, this.redis, this.shardCount.check()).then(() => {
        // Made before close(): it goes on even if close() was called meanwhile (see open()).
        this.resumed++;
        try {
          return again();
        } finally {
          this.resumed--;
        }
      }),
    );
  }

  private open(): void {
    if (this._status !== 'open' && this.resumed === 0)
      throw new CollectorError('LC_ALLOC_CLOSED', `allocator of pool ${JSON.stringify(this.pool)} is closed`);
  }
}

printable(Allocator, (a) => ({
  redis: redisAddress(a.redis),
  prefix: a.prefix,
  pool: a.pool,
  shards: a.shards,
  owner: a.owner,
  status: a.status,
}));

function sum(values: readonly number[]): number {
  let total = 0;
  for (const v of values) total += Number(v);
  return total;
}
