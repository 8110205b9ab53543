/**
 * The two kinds of Redis every Redis-backed class is tested on: the single Redis (REDIS_URL) and
 * the 3-master Redis Cluster (REDIS_CLUSTER_NODES, started by test/cluster/redis-cluster.sh). A
 * test file runs its describe() once per backend:
 *
 *   for (const backend of BACKENDS) describe(`RedisLock (${backend.name})`, () => { … });
 */
import { type Cleanup, clusterClient, redisClusterNodes, redisUrl } from '@contexture/test-support';
import { type Cluster, Redis } from 'ioredis';
import { masters, slotOf } from '../../src/internal/cluster.js';

export interface Backend {
  /** 'single Redis' or 'Redis Cluster'. */
  readonly name: string;
  readonly cluster: boolean;
  /** A new client (the caller closes it). */
  client(): Redis | Cluster;
  /** What a `redis` option takes to make a client of its own: a URL, or the cluster's node URLs. */
  option(): string | string[];
  /** For a child process: the environment that names this backend (see client-from-env.ts, which the fixtures use). */
  env(): Record<string, string>;
  /** Deletes the keys matching `pattern` at the end of the test. */
  removeKeys(cleanup: Cleanup, pattern: string): void;
}

export const SINGLE: Backend = {
  name: 'single Redis',
  cluster: false,
  client: () => new Redis(redisUrl()),
  option: () => redisUrl(),
  env: () => ({ REDIS: redisUrl(), REDIS_CLUSTER: '' }),
  removeKeys: (cleanup, pattern) => {
    cleanup.redisKeys(pattern);
  },
};

export const CLUSTER: Backend = {
  name: 'Redis Cluster',
  cluster: true,
  client: () => clusterClient(),
  option: () => redisClusterNodes().map((n) => `redis://${n}`),
  env: () => ({ REDIS_CLUSTER: redisClusterNodes().join(',') }),
  removeKeys: (cleanup, pattern) => {
    cleanup.clusterKeys(pattern);
  },
};

export const BACKENDS: readonly Backend[] = [SINGLE, CLUSTER];

/**
 * Every key matching `pattern` (SCAN MATCH), on every master of a cluster (KEYS or one SCAN would
 * reach one node only), sorted.
 */
export async function keysMatching(redis: Redis | Cluster, pattern: string): Promise<string[]> {
  const found: string[] = [];
  if (redis.status !== 'ready') await redis.ping();
  for (const node of masters(redis)) found.push(...(await keysOn(node, pattern)));
  return found.sort();
}

/** The keys matching `pattern` on one node (a single Redis, or one master of a cluster), sorted. */
export async function keysOn(node: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found.sort();
}

/** The master (`host:port`) that serves `key`'s slot, as the cluster client knows it (it must be connected). */
export function masterOf(cluster: Cluster, key: string): string {
  const owner = (cluster as unknown as { slots: Array<string[] | undefined> }).slots[slotOf(key)]?.[0];
  if (owner === undefined) throw new Error(`the cluster client knows no master of ${key}'s slot`);
  return owner;
}

/** `host:port` of a node of a cluster. */
export function nodeAddress(node: Redis): string {
  return `${node.options.host}:${node.options.port}`;
}
