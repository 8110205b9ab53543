/**
 * How a child process of a test (test/fixtures/*.mjs, support/allocator-client.ts) finds the Redis
 * its parent tests: `REDIS_CLUSTER` (comma-separated `host:port`s of a Redis Cluster's nodes) or
 * `REDIS` (a URL). The parent sets them with `Backend.env()` (see backends.ts).
 */
import { Cluster, Redis } from 'ioredis';

/** The cluster's nodes as `host:port`, or null when the environment names a single Redis. */
function clusterNodes(env: NodeJS.ProcessEnv): string[] | null {
  const list = env.REDIS_CLUSTER;
  if (list === undefined || list.trim() === '') return null;
  return list
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
}

/** A new ioredis client (a `Cluster` on a cluster) for the Redis the environment names; the caller closes it. */
export function clientFromEnv(env: NodeJS.ProcessEnv = process.env): Redis | Cluster {
  const nodes = clusterNodes(env);
  if (nodes !== null) {
    return new Cluster(
      nodes.map((n) => {
        const at = n.lastIndexOf(':');
        return { host: n.slice(0, at), port: Number(n.slice(at + 1)) };
      }),
    );
  }
  if (env.REDIS === undefined) throw new Error('neither REDIS nor REDIS_CLUSTER is set');
  return new Redis(env.REDIS);
}

/** What a `redis` option takes for the Redis the environment names: its URL, or the cluster's node URLs. */
export function redisOptionFromEnv(env: NodeJS.ProcessEnv = process.env): string | string[] {
  const nodes = clusterNodes(env);
  if (nodes !== null) return nodes.map((n) => `redis://${n}`);
  if (env.REDIS === undefined) throw new Error('neither REDIS nor REDIS_CLUSTER is set');
  return env.REDIS;
}
