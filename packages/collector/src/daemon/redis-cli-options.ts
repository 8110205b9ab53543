/**
 * What the programs of this package share about Redis: the options that say where it is (`-R`,
 * `--redis-cluster`, `--prefix`), their checks, and the exit statuses.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { hostPort } from '@contexture/context/internal';

/** Exit statuses, as sysexits(3) has them. */
export const EXIT = Object.freeze({
  OK: 0,
  USAGE: 2,
  DATA_ERR: 65,
  NO_INPUT: 66,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  IO_ERR: 74,
  NO_PERM: 77,
  CONFIG: 78,
});

export function nonEmpty(value: string): string {
  if (value.length === 0) throw new InvalidArgumentError('must not be empty');
  return value;
}

/**
 * Why `url` is not a URL of one of `protocols`, or undefined when it is. The URL itself is not
 * repeated (it may hold a password).
 */
export function badUrl(url: string, protocols: readonly string[]): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `is not a URL (expected ${protocols.map((p) => `${p}//host:port`).join(' or ')})`;
  }
  // The scheme is not repeated either: in `user:secret@host` the URL parser takes `user:` for it.
  if (!protocols.includes(u.protocol)) return `is not a URL of ${protocols.join(' or ')}`;
  if (u.hostname === '') return 'names no host';
  return undefined;
}

/** Why a list of cluster nodes (host:port or redis:// URLs) is refused, saying which node; undefined when fine. */
function badNodes(nodes: readonly string[]): string | undefined {
  for (const [i, node] of nodes.entries()) {
    const why = badUrl(/^[a-z][a-z0-9+.-]*:\/\//i.test(node) ? node : `redis://${node}`, ['redis:', 'rediss:']);
    if (why !== undefined) return `node ${i + 1} ${why}`;
  }
  return undefined;
}

/** Adds `-R, --redis`, `--redis-cluster` and `--prefix` (each also read from its environment variable). */
export function addRedisOptions(program: Command): Command {
  return program
    .addOption(
      new Option('-R, --redis <url>', 'Redis URL').env('CONTEXTURE_REDIS_URL').default('redis://127.0.0.1:6379'),
    )
    .addOption(
      new Option(
        '--redis-cluster <nodes>',
        'a Redis Cluster instead: its nodes, comma-separated (host:port or redis:// URLs; the first URL gives the login)',
      )
        .env('CONTEXTURE_REDIS_CLUSTER')
        .conflicts('redis'),
    )
    .addOption(
      new Option('--prefix <prefix>', 'Redis key prefix').env('CONTEXTURE_REDIS_PREFIX').default('contexture:'),
    );
}

/** Where Redis is, from the options of {@link addRedisOptions}; or which option is refused, and why. */
export type RedisTarget =
  | {
      ok: true;
      /** What a store's `redis` option takes: the URL, or the cluster's nodes. */
      redis: string | string[];
      /** Where, as messages say it (no login): `host:port`, or the nodes then `(cluster)`. */
      at: string;
    }
  | { ok: false; option: string; env?: string; why: string };

/** Checks the options of {@link addRedisOptions} (`opts`: the program's parsed options). */
export function redisTarget(program: Command, opts: { redis: string; redisCluster?: string }): RedisTarget {
  const fromEnv = (key: string, variable: string) =>
    program.getOptionValueSource(key) === 'env' ? { env: variable } : {};
  const why = badUrl(opts.redis, ['redis:', 'rediss:']);
  if (why !== undefined) return { ok: false, option: '--redis', ...fromEnv('redis', 'CONTEXTURE_REDIS_URL'), why };
  if (typeof opts.redisCluster === 'string') {
    const nodes = opts.redisCluster
      .split(',')
      .map((n) => n.trim())
      .filter((n) => n !== '');
    const bad = nodes.length === 0 ? 'names no node' : badNodes(nodes);
    if (bad !== undefined)
      return { ok: false, option: '--redis-cluster', ...fromEnv('redisCluster', 'CONTEXTURE_REDIS_CLUSTER'), why: bad };
    const at = nodes.map((n) => hostPort(/^rediss?:\/\//i.test(n) ? n : `redis://${n}`, 6379)).join(', ');
    return { ok: true, redis: nodes, at: `${at} (cluster)` };
  }
  return { ok: true, redis: opts.redis, at: hostPort(opts.redis, 6379) };
}
