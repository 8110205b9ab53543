import type { Cluster, Redis } from 'ioredis';
import type { PoolKeys } from '../../src/allocator/pool-keys.js';

/** A pool as its Redis keys hold it, read in one transaction. */
export interface PoolSnapshot {
  resources: Map<string, string>;
  resourceExpiry: Map<string, number>;
  free: Map<string, number>;
  held: Map<string, string>;
  holdExpiry: Map<string, number>;
  unhealthy: Map<string, number>;
  bindings: Map<string, string>;
  bindingExpiry: Map<string, number>;
  bindingIndex: string[];
  meta: Record<string, string>;
}

function zmap(flat: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < flat.length; i += 2) m.set(flat[i]!, Number(flat[i + 1]));
  return m;
}

export async function snapshot(redis: Redis | Cluster, k: PoolKeys): Promise<PoolSnapshot> {
  const r = await redis
    .multi()
    .hgetall(k.resources)
    .zrange(k.resourceExpiry, 0, -1, 'WITHSCORES')
    .zrange(k.free, 0, -1, 'WITHSCORES')
    .hgetall(k.held)
    .zrange(k.holdExpiry, 0, -1, 'WITHSCORES')
    .zrange(k.unhealthy, 0, -1, 'WITHSCORES')
    .hgetall(k.bindings)
    .zrange(k.bindingExpiry, 0, -1, 'WITHSCORES')
    .zrange(k.bindingIndex, 0, -1)
    .hgetall(k.meta)
    .exec();
  const v = (i: number): any => {
    const [err, value] = r![i]!;
    if (err) throw err;
    return value;
  };
  return {
    resources: new Map(Object.entries(v(0) as Record<string, string>)),
    resourceExpiry: zmap(v(1)),
    free: zmap(v(2)),
    held: new Map(Object.entries(v(3) as Record<string, string>)),
    holdExpiry: zmap(v(4)),
    unhealthy: zmap(v(5)),
    bindings: new Map(Object.entries(v(6) as Record<string, string>)),
    bindingExpiry: zmap(v(7)),
    bindingIndex: v(8),
    meta: v(9),
  };
}

/**
 * Checks the rules of a pool straight from its Redis keys and returns the violations (empty when
 * the pool is consistent): the free set and the holds agree both ways (nothing free is held, every
 * resource not held and not unhealthy is free), every resource is free, held or unhealthy, every
 * entry of every structure is a resource of the pool, every binding points into the pool and its
 * index agrees, holds parse and their fences are below the pool's fence counter, shared pools hold
 * nothing, free scores follow the priorities.
 */
export async function invariants(redis: Redis | Cluster, keys: PoolKeys, shared = false): Promise<string[]> {
  const s = await snapshot(redis, keys);
  const bad: string[] = [];
  const fence = Number(s.meta.fence ?? 0);
  for (const [key, prio] of s.resources) {
    if (!/^-?\d+$/.test(prio)) bad.push(`resource ${key} has priority ${prio}`);
    const free = s.free.has(key);
    const held = s.held.has(key);
    const sick = s.unhealthy.has(key);
    if (free && held) bad.push(`${key} is both free and held`);
    if (free && sick) bad.push(`${key} is both free and unhealthy`);
    if (!free && !held && !sick) bad.push(`${key} is neither free, held nor unhealthy`);
    if (free) {
      // score = -p * 2^32 + seq with 1 <= seq < 2^32
      const p = -Math.floor((s.free.get(key)! - 1) / 2 ** 32);
      if (p !== Number(prio)) bad.push(`${key} is free at priority ${p}, has ${prio}`);
    }
  }
  const inPool = (what: string, m: Iterable<string>) => {
    for (const key of m) if (!s.resources.has(key)) bad.push(`${what} entry ${key} is not in the pool`);
  };
  inPool('free', s.free.keys());
  inPool('held', s.held.keys());
  inPool('resource expiry', s.resourceExpiry.keys());
  inPool('unhealthy', s.unhealthy.keys());
  if (shared && s.held.size > 0) bad.push(`a shared pool holds ${[...s.held.keys()].join(', ')}`);
  for (const [key, value] of s.held) {
    const m = /^(\d+):(.+)$/.exec(value);
    if (m === null) bad.push(`hold of ${key} is ${value}`);
    else if (Number(m[1]) > fence || Number(m[1]) < 1) bad.push(`hold of ${key} has fence ${m[1]}, counter ${fence}`);
    if (!s.holdExpiry.has(key)) bad.push(`hold of ${key} has no expiry`);
  }
  for (const key of s.holdExpiry.keys()) if (!s.held.has(key)) bad.push(`hold expiry of ${key} without a hold`);
  const index = new Set(s.bindingIndex);
  for (const [name, key] of s.bindings) {
    if (!s.resources.has(key)) bad.push(`binding ${name} points at ${key}, not in the pool`);
    if (!s.bindingExpiry.has(name)) bad.push(`binding ${name} has no expiry`);
    if (!index.has(`${key}\0${name}`)) bad.push(`binding ${name} -> ${key} is not indexed`);
  }
  for (const name of s.bindingExpiry.keys())
    if (!s.bindings.has(name)) bad.push(`binding expiry of ${name} without a binding`);
  for (const member of s.bindingIndex) {
    const [key, name] = member.split('\0');
    if (s.bindings.get(name!) !== key) bad.push(`binding index entry ${JSON.stringify(member)} without its binding`);
  }
  return bad;
}
