import { partTag, slotOf } from '../internal/cluster.js';

/**
 * The Redis keys of one pool, or of one shard of a sharded pool (T = `<prefix>alloc:{<tag>}`,
 * the tag being the pool name for shard 0 and `<pool>\u001f<n>` for shard n); the hash tag puts
 * them all in one Redis Cluster slot, so each script touches one slot. See lib.lua for what each
 * holds.
 */
export interface PoolKeys {
  /** Hash: resource key → priority; the pool's membership. */
  resources: string;
  /** Sorted set: resource key → expiry (ms), for resources added with a timeout. */
  resourceExpiry: string;
  /** Sorted set: free resource key → -priority · 2³² + round-robin sequence. */
  free: string;
  /** Hash: held resource key → `<fence>:<owner>`. */
  held: string;
  /** Sorted set: held resource key → hold expiry (ms). */
  holdExpiry: string;
  /** Sorted set: unhealthy resource key → end of the unhealthy period (ms). */
  unhealthy: string;
  /** Hash: binding name → resource key. */
  bindings: string;
  /** Sorted set: binding name → binding expiry (ms). */
  bindingExpiry: string;
  /** Sorted set (scores 0): `<resource key>\0<binding name>`. */
  bindingIndex: string;
  /** Hash: `seq`, `fence`, and the gc cursors `c:<structure>`. */
  meta: string;
}

/** One shard of a pool: its keys, and the same in the order every allocator script takes them. */
export interface PoolShard {
  readonly n: number;
  readonly keys: PoolKeys;
  readonly list: readonly string[];
}

/** The shards of a pool; with one shard, the layout of an unsharded pool. */
export function poolShards(prefix: string, pool: string, count: number): PoolShard[] {
  return Array.from({ length: count }, (_, n) => ({ n, ...poolKeys(prefix, partTag(pool, n)) }));
}

/**
 * The shard that holds a resource: its Redis Cluster hash slot modulo the shard count, so a
 * `{tag}` inside resource keys keeps the keys sharing it in one shard.
 */
export function shardIndex(key: string, count: number): number {
  return count === 1 ? 0 : slotOf(key) % count;
}

/** Splits keys by shard (index → keys, in their order); shards without keys are left out. */
export function byShard(keys: readonly string[], count: number): Map<number, string[]> {
  const groups = new Map<number, string[]>();
  for (const key of keys) {
    const n = shardIndex(key, count);
    const group = groups.get(n);
    if (group === undefined) groups.set(n, [key]);
    else group.push(key);
  }
  return groups;
}

/** The keys of one pool shard (`tag`: the hash tag, see partTag()). */
export function poolKeys(prefix: string, tag: string): { keys: PoolKeys; list: string[] } {
  const t = `${prefix}alloc:{${tag}}:`;
  const keys: PoolKeys = {
    resources: `${t}res`,
    resourceExpiry: `${t}rexp`,
    free: `${t}free`,
    held: `${t}held`,
    holdExpiry: `${t}hexp`,
    unhealthy: `${t}sick`,
    bindings: `${t}bind`,
    bindingExpiry: `${t}bexp`,
    bindingIndex: `${t}bidx`,
    meta: `${t}meta`,
  };
  const list = [
    keys.resources,
    keys.resourceExpiry,
    keys.free,
    keys.held,
    keys.holdExpiry,
    keys.unhealthy,
    keys.bindings,
    keys.bindingExpiry,
    keys.bindingIndex,
    keys.meta,
  ];
  return { keys: Object.freeze(keys), list };
}
