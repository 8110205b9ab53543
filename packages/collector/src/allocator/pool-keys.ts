/**
 * The Redis keys of one pool (T = `<prefix>alloc:{<pool>}`); the `{<pool>}` hash tag puts them
 * all in one Redis Cluster slot, so each script touches one slot. See lib.lua for what each
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

/** The keys of a pool, and the same in the order every alloc-*.lua script takes them. */
export function poolKeys(prefix: string, pool: string): { keys: PoolKeys; list: string[] } {
  const t = `${prefix}alloc:{${pool}}:`;
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
