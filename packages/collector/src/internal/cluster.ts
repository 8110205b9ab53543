/**
 * What differs on a Redis Cluster: which slot a key is in, which master serves it, how to walk
 * every master, and how to make a subscriber. Every part of the package works with either kind of
 * client (`RedisClient`); the code asks here where the two differ.
 */
import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { isUnrefWhenIdle, unrefWhenIdle } from './keep-alive.js';

/** A single Redis (or a Sentinel-managed one) or a Redis Cluster, as ioredis makes them. */
export type RedisClient = Redis | Cluster;

/**
 * True for an ioredis `Cluster`, told by its shape, not `instanceof`: a client made by a second
 * copy of ioredis (another package's) works too.
 */
export function isCluster(redis: unknown): redis is Cluster {
  return (redis as { isCluster?: unknown } | null)?.isCluster === true;
}

/** True for something that can stand for a client: an ioredis `Redis` or `Cluster`, of any copy. */
export function isClient(redis: unknown): redis is RedisClient {
  if (typeof redis !== 'object' || redis === null) return false;
  const r = redis as Record<string, unknown>;
  return (
    typeof r.sendCommand === 'function' &&
    typeof r.duplicate === 'function' &&
    typeof r.pipeline === 'function' &&
    typeof r.evalsha === 'function' &&
    typeof r.options === 'object' &&
    r.options !== null
  );
}

/**
 * The hash tag of part `n` of a namespace spread over several slots (a registry's or a task
 * queue's `shards`): the namespace itself for part 0 (the layout of one part), then the namespace,
 * a unit separator (U+001F) and the part's number. Namespaces cannot hold control characters, so no
 * namespace's own tag is another's part.
 */
export function partTag(namespace: string, n: number): string {
  return n === 0 ? namespace : `${namespace}\u001f${n}`;
}

/** The hash slot of a key (what Redis Cluster computes: CRC16 of the hash tag or the whole key). */
export function slotOf(key: string): number {
  return calculateSlot(key);
}

/**
 * Groups `items` by the master that serves their key's slot (on a single Redis: one group, in
 * order). Within a group the items keep their order. A slot the client does not know a master for
 * yet (the slots are still loading) is a group of its own: the call then goes by its key.
 */
export function byMaster<T>(redis: RedisClient, items: readonly T[], keyOf: (item: T) => string): readonly T[][] {
  if (!isCluster(redis)) return items.length === 0 ? [] : [items as T[]];
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const owner = ownerOf(redis, key) ?? `slot ${slotOf(key)}`;
    let group = groups.get(owner);
    if (group === undefined) {
      group = [];
      groups.set(owner, group);
    }
    group.push(item);
  }
  return [...groups.values()];
}

/**
 * The client of the master `owner` (`host:port`, as the cluster's slot table names it), or
 * undefined when the cluster has no connection to it now.
 */
export function masterClient(redis: Cluster, owner: string): Redis | undefined {
  return redis.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner);
}

/** The master (`host:port`) that serves `key`'s slot, as the cluster client knows it now. */
export function ownerOf(redis: Cluster, key: string): string | undefined {
  return (redis as unknown as { slots?: Array<string[] | undefined> }).slots?.[slotOf(key)]?.[0];
}

/**
 * Groups `items` by their key's slot: what one script call may touch on a cluster (on a single
 * Redis: the items themselves, as one group).
 */
export function bySlot<T>(redis: RedisClient, items: readonly T[], keyOf: (item: T) => string): readonly T[][] {
  if (!isCluster(redis)) return items.length === 0 ? [] : [items as T[]];
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const slot = slotOf(keyOf(item));
    let group = groups.get(slot);
    if (group === undefined) {
      group = [];
      groups.set(slot, group);
    }
    group.push(item);
  }
  return [...groups.values()];
}

/**
 * The clients a walk over every key goes through: the masters of a cluster, in a stable order (by
 * address), or the client itself.
 */
export function masters(redis: RedisClient): Redis[] {
  if (!isCluster(redis)) return [redis];
  return redis
    .nodes('master')
    .slice()
    .sort((a, b) => nodeName(a).localeCompare(nodeName(b)));
}

function nodeName(node: Redis): string {
  return `${node.options.host}:${node.options.port}`;
}

/**
 * A connection for subscribing, with the settings `overrides` (ioredis `RedisOptions`; on a
 * cluster they apply to its connection to each node, and `enableOfflineQueue` to the cluster).
 * With `sharded`, a cluster's duplicate sends sharded subscriptions (SSUBSCRIBE) to the master that
 * owns each channel's slot.
 */
export function subscriberOf(redis: RedisClient, overrides: Partial<RedisOptions> = {}, sharded = false): RedisClient {
  let sub: RedisClient;
  if (!isCluster(redis)) sub = redis.duplicate(overrides);
  else {
    const { enableOfflineQueue, ...perNode } = overrides;
    sub = redis.duplicate([], {
      ...(sharded ? { shardedSubscribers: true } : {}),
      ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
      redisOptions: { ...redis.options.redisOptions, ...perNode },
    });
  }
  // The subscriber of a client of ours lets the process go as its client does.
  return isUnrefWhenIdle(redis) ? unrefWhenIdle(sub) : sub;
}

/**
 * The masters a walk over every key goes through, in a stable order (by `host:port`): the
 * cluster's, once its client is connected and knows them, or the client itself. Throws when a
 * master the cluster's slot table names has no connection (it is down): a walk without it would
 * leave its keys out without a word.
 */
export async function walkable(redis: RedisClient): Promise<Array<{ name: string; node: Redis }>> {
  if (!isCluster(redis)) return [{ name: '', node: redis }];
  // Until the client is ready it knows no master: a command waits for it (or fails).
  if (redis.status !== 'ready') await redis.ping();
  const nodes = masters(redis).map((node) => ({ name: nodeName(node), node }));
  const known = new Set(nodes.map((n) => n.name));
  const slots = (redis as unknown as { slots?: Array<string[] | undefined> }).slots ?? [];
  for (const owners of slots) {
    const owner = owners?.[0];
    if (owner !== undefined && !known.has(owner)) throw new Error(`Redis Cluster master ${owner} is not connected`);
  }
  if (nodes.length === 0) throw new Error('the Redis Cluster client knows no master');
  return nodes;
}

/**
 * Where a walk over several masters stands, read from its cursor: which master (by index in
 * `nodes`) and the SCAN cursor on it. A single Redis's cursor is SCAN's own, as before; on a
 * cluster it is `<host:port>/<SCAN cursor>`, and '0' starts at the first master. Null when the
 * master a cursor names is gone, or it is no cursor of ours (a walk cannot go on where it was).
 */
export function readCursor(
  redis: RedisClient,
  nodes: ReadonlyArray<{ name: string }>,
  cursor: string,
): { node: number; scan: string } | null {
  if (!isCluster(redis) || cursor === '0') return { node: 0, scan: cursor };
  const m = /^(.+)\/(\d+)$/.exec(cursor);
  const node = m === null ? -1 : nodes.findIndex((n) => n.name === m[1]);
  return m === null || node === -1 ? null : { node, scan: m[2]! };
}

/** The cursor after a SCAN step on `nodes[node]` that answered `next` ('0': that master is done). */
export function nextCursor(
  redis: RedisClient,
  nodes: ReadonlyArray<{ name: string }>,
  node: number,
  next: string,
): string {
  if (!isCluster(redis)) return next;
  if (next !== '0') return `${nodes[node]!.name}/${next}`;
  const after = nodes[node + 1];
  return after === undefined ? '0' : `${after.name}/0`;
}

/**
 * What a `redis` option takes: an ioredis client or Cluster (the caller's: never closed by us), a
 * `redis://` / `rediss://` URL or a Unix socket path (a client of our own), or the URLs (or
 * `host:port`s) of a Redis Cluster's nodes (a Cluster of our own).
 */
export type RedisOption = RedisClient | string | readonly string[];
