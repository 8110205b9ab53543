import { Cluster, Redis } from 'ioredis';
import { isClient, isCluster, type RedisClient } from './cluster.js';
import { CollectorError } from './errors.js';
import { unrefWhenIdle } from './keep-alive.js';

export type { RedisClient } from './cluster.js';

/** What a `redis` option takes, as the errors say it. */
const KINDS =
  'redis must be an ioredis client or Cluster, a redis:// or rediss:// URL, a socket path, or a list of cluster node URLs';

/** Settings of the clients we make: a command fails after one reconnect attempt, or after 10 s. */
const OWN = { maxRetriesPerRequest: 1, commandTimeout: 10_000 } as const;

/**
 * What a command of a client of ours fails with when its connection closed after it was sent and
 * before its reply came (a message unreachable() counts as no connection).
 */
const UNANSWERED = 'Connection is closed before the reply came: the command may have run';

/**
 * Fails the commands a client of ours sent and got no reply to when its connection closes, instead
 * of letting ioredis send them again on the next connection (`autoResendUnfulfilledCommands`): a
 * command that has run, its reply lost with the connection, would run twice, and the scripts are
 * not idempotent (a lock taken twice answers as if another call held it, a second allocation is
 * made, a release or a free says false after doing it). The caller hears that Redis may have run
 * it, as of any other call Redis did not answer. Done on 'close', which ioredis emits on the next
 * tick, before it connects again: its command queue still holds the unanswered commands then. The
 * commands not sent yet (its offline queue) go on the next connection, as before. Left at ioredis'
 * defaults in the client's subscribers (made from its options, not its listeners): a subscription
 * sent again is harmless.
 */
function failUnanswered(client: Redis): void {
  const queued = client as unknown as {
    flushQueue?: (err: Error, options: { offlineQueue: boolean; commandQueue: boolean }) => void;
  };
  if (typeof queued.flushQueue !== 'function')
    throw new Error('ioredis no longer has flushQueue(): a lost reply would have its command sent again');
  client.on('close', () => queued.flushQueue!(new Error(UNANSWERED), { offlineQueue: false, commandQueue: true }));
}

/**
 * A client of ours whose URL names a database Redis refuses to SELECT (past its `databases`
 * setting, or any but 0 on a node of a cluster) would run every command in database 0: ioredis
 * only says so on its 'error' event, and goes on. Such a client is cut instead, before the
 * commands waiting for it are sent (the SELECT is answered before the ready check that lets them
 * go), and each of its commands, then and later, fails saying why (as a connection that closed,
 * what the callers report as Redis unavailable).
 */
function refuseFailedSelect(client: Redis): void {
  client.on('error', (err: Error) => {
    const command = (err as { command?: { name?: unknown } } | null)?.command;
    if (typeof command?.name !== 'string' || command.name.toLowerCase() !== 'select') return;
    const why = new Error(
      `Connection is closed: Redis refused to select database ${String(client.options.db)} (${err.message})`,
    );
    const held = client as unknown as {
      sendCommand(command: { reject(err: Error): void; promise: Promise<unknown> }): Promise<unknown>;
      flushQueue(err: Error, options: { offlineQueue: boolean; commandQueue: boolean }): void;
    };
    held.sendCommand = (c) => {
      c.reject(why);
      return c.promise;
    };
    held.flushQueue(why, { offlineQueue: true, commandQueue: true });
    client.disconnect();
  });
}

/**
 * The client a store, lock or allocator works with: an ioredis client or Cluster given by the
 * caller (left as it is, and never closed by us; told by its shape, so a second copy of ioredis
 * works too), or one made from a `redis://` / `rediss://` URL (or a Unix socket path), or a Cluster
 * made from a list of its nodes' URLs (or `host:port`s). A client of our own fails a command after
 * one reconnect attempt instead of holding it in an unbounded offline queue: callers retry with
 * their own backoff, and nothing piles up in memory while Redis is down. Its connection errors go
 * to `onError` (they are retried, not thrown). Anything else gives the reason it is refused (which
 * never repeats the URL: it may hold a password).
 */
export function resolveRedis(
  redis: unknown,
  onError: (message: string) => void,
): { redis: RedisClient; owned: boolean } | string {
  let client: RedisClient;
  if (typeof redis === 'string') {
    // A socket path, or a URL (`//host` would be one, without its scheme).
    if (!/^\/(?!\/)/.test(redis)) {
      if (!/^rediss?:\/\//i.test(redis)) return KINDS;
      try {
        new URL(redis);
      } catch {
        return 'redis: the URL does not parse';
      }
    }
    let made: Redis;
    try {
      made = new Redis(redis, OWN);
    } catch {
      // ioredis' own reading of it failed (a bad %-escape in the password, say): its error holds the URL.
      return 'redis: the URL does not parse';
    }
    failUnanswered(made);
    refuseFailedSelect(made);
    client = made;
  } else if (Array.isArray(redis)) {
    const nodes = clusterNodes(redis);
    if (typeof nodes === 'string') return nodes;
    const cluster = new Cluster(nodes.nodes, { redisOptions: { ...OWN, ...nodes.auth } });
    // Why the last node failed: a single Redis server answers the slots query with "cluster
    // support disabled", which is the options' mistake, not Redis being away.
    let nodeError: string | null = null;
    cluster.on('node error', (err: Error) => {
      nodeError = err?.message ?? null;
    });
    // As a client of our own to one Redis: what waits for a cluster none of whose nodes answers
    // fails once a connection attempt has failed, instead of waiting for the cluster's next try.
    cluster.on('reconnecting', () => {
      const standalone = nodeError !== null && NOT_A_CLUSTER.test(nodeError);
      (cluster as unknown as { flushQueue(err: Error): void }).flushQueue(
        new Error(standalone ? nodeError! : 'None of startup nodes is available'),
      );
    });
    client = cluster;
  } else if (isClient(redis)) {
    return { redis, owned: false };
  } else {
    return KINDS;
  }
  client.on('error', (err: Error) => {
    scrubAuth(err);
    onError(err.message);
  });
  // Ours, it must not keep a one-shot script alive once its calls are answered.
  return { redis: unrefWhenIdle(client), owned: true };
}

/**
 * The startup nodes of a cluster given as `redis://[user:password@]host:port` URLs or `host:port`
 * (the login and TLS of the first URL apply to every node), or why they are refused.
 */
export function clusterNodes(
  list: readonly unknown[],
): { nodes: Array<{ host: string; port: number }>; auth: Record<string, unknown> } | string {
  if (list.length === 0) return 'redis: a cluster needs at least one node';
  const nodes: Array<{ host: string; port: number }> = [];
  let auth: Record<string, unknown> = {};
  for (const [i, item] of list.entries()) {
    if (typeof item !== 'string') return `redis: cluster node ${i + 1} is not a string`;
    // Another scheme (http://…) is no node of a Redis Cluster; without one, host:port.
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(item) && !/^rediss?:\/\//i.test(item))
      return `redis: cluster node ${i + 1} is neither a redis:// or rediss:// URL nor host:port`;
    const text = /^rediss?:\/\//i.test(item) ? item : `redis://${item}`;
    let u: URL;
    try {
      u = new URL(text);
    } catch {
      return `redis: cluster node ${i + 1} does not parse`;
    }
    if (!/^rediss?:$/i.test(u.protocol) || u.hostname === '') return `redis: cluster node ${i + 1} does not parse`;
    const port = u.port === '' ? 6379 : Number(u.port);
    nodes.push({ host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port });
    if (i === 0) {
      auth = {
        ...(u.username === '' ? {} : { username: decodeURIComponent(u.username) }),
        ...(u.password === '' ? {} : { password: decodeURIComponent(u.password) }),
        ...(u.protocol.toLowerCase() === 'rediss:' ? { tls: {} } : {}),
      };
    }
  }
  return { nodes, auth };
}

/**
 * Takes the arguments out of the AUTH (or HELLO) command ioredis attaches to the error of a failed
 * login (`err.command.args`: the user and the password), which fails every command waiting on the
 * client with that same error object. Our clients do it on their 'error' event, which comes before
 * any caller sees the error; wrapped errors do it to their cause.
 */
export function scrubAuth(err: unknown): void {
  const command = (err as { command?: { name?: unknown; args?: unknown } } | null | undefined)?.command;
  if (
    command !== undefined &&
    command !== null &&
    typeof command.name === 'string' &&
    /^(auth|hello)$/i.test(command.name) &&
    Array.isArray(command.args)
  ) {
    command.args = command.args.map(() => '(hidden)');
  }
}

/**
 * Where a client's Redis is, as errors say it: host:port (an IPv6 host in brackets), the socket
 * path, or for a Sentinel client its sentinels and the master's name (its host and port are
 * ioredis' defaults then, not where it connects).
 */
export function redisAddress(redis: RedisClient): string {
  // ioredis' defaults where a host or port is not given.
  const at = (h: string | undefined, p: number | undefined, fallback: number): string => {
    const hh = h || 'localhost';
    return `${hh.includes(':') ? `[${hh}]` : hh}:${p || fallback}`;
  };
  if (isCluster(redis)) {
    const seeds = (redis as unknown as { startupNodes?: unknown[] }).startupNodes ?? [];
    const names = seeds.map((n) => {
      if (typeof n === 'number') return at(undefined, n, 6379);
      if (typeof n === 'string')
        return /^\d+$/.test(n) ? at(undefined, Number(n), 6379) : n.replace(/^\w+:\/\/([^@/]*@)?/, '');
      const o = n as { host?: string; port?: number };
      return at(o.host, o.port, 6379);
    });
    return `${names.join(', ')} (cluster)`;
  }
  const { host, port, path, sentinels, name } = redis.options;
  if (Array.isArray(sentinels) && sentinels.length > 0) {
    return `${sentinels.map((s) => at(s.host, s.port, 26379)).join(', ')} (Sentinel${name ? `, master '${name}'` : ''})`;
  }
  if (path) return path;
  return at(host, port, 6379);
}

/** Redis refusing for now (memory, loading, a replica, a busy script, cluster state): worth retrying. */
export const REFUSED = /\b(OOM|LOADING|READONLY|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|MISCONF|NOREPLICAS)\b/;

/**
 * What ioredis and Node say of a connection that failed, was refused a login (Redis 6 and later:
 * WRONGPASS; Redis 5: "ERR invalid password") or timed out, and what an ioredis Cluster says when
 * none of its nodes answers or its slots cannot be read.
 */
const NO_CONNECTION =
  /Connection is closed|Command timed out|Stream isn't writeable|None of startup nodes is available|Cluster isn't ready|Failed to refresh slots cache|Too many Cluster redirections|\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE|NOAUTH|WRONGPASS)\b|^ERR invalid password/;

/**
 * Why a call failed when Redis could not be reached or refused it for now, as errors say it (where
 * Redis is, and the client's reason); null for any other failure (a command's or a script's own).
 */
export function unreachable(err: unknown, at: string): string | null {
  // ioredis fails what it holds for a client without a connection with a note on its own retry option.
  if ((err as Error | null)?.name === 'MaxRetriesPerRequestError') return `no connection to Redis at ${at}`;
  const message = (err as Error | null)?.message ?? String(err);
  // A Cluster that kept being sent back to a slot's master (MOVED) it could not reach: say which.
  const lost = LOST_MASTER.exec(message);
  if (lost !== null)
    return `Redis at ${at} failed: slot ${lost[1]} is served by ${lost[2]}, which did not answer (${message})`;
  return NO_CONNECTION.test(message) || REFUSED.test(message) ? `Redis at ${at} failed: ${message}` : null;
}

/**
 * What an ioredis Cluster says when it gave up on a command whose last redirection sent it to a
 * slot's master (a master that is down: the other masters keep redirecting there until it is back
 * or replaced).
 */
const LOST_MASTER = /^Too many Cluster redirections\. Last error: (?:ReplyError: )?(?:MOVED|ASK) (\d+) (\S+)/;

/** What Redis Cluster answers a client that sent a key to the wrong node, or keys of several slots. */
export const CLUSTER_MISMATCH =
  /^(MOVED|ASK|CROSSSLOT)\b|Script attempted to access a non local key in a cluster node|cluster support disabled/;

/** What a single Redis server (not a node of a cluster) answers a cluster client. */
const NOT_A_CLUSTER = /cluster support disabled/;

/**
 * The error of a call Redis Cluster refused because of where its keys are (see CLUSTER_MISMATCH),
 * as a CollectorError LC_REDIS_CLUSTER_MISMATCH saying what to change; null for any other.
 */
export function clusterMismatch(what: string, err: unknown, redis: RedisClient): CollectorError | null {
  return mismatchAt(what, err, redisAddress(redis), isCluster(redis));
}

/** clusterMismatch() for a client known by its address and whether it is a cluster's. */
export function mismatchAt(what: string, err: unknown, at: string, cluster: boolean): CollectorError | null {
  const message = (err as Error | null)?.message ?? '';
  if (!CLUSTER_MISMATCH.test(message)) return null;
  if (NOT_A_CLUSTER.test(message))
    return new CollectorError(
      'LC_REDIS_CLUSTER_MISMATCH',
      `${what}: Redis at ${at} is a single server, not a node of a Redis Cluster (${message}): give its URL, not a list of cluster nodes`,
      { cause: err },
    );
  const fix = cluster
    ? 'the keys of one call are in several slots'
    : 'this client talks to one node of a Redis Cluster: give an ioredis Cluster, or the URLs of its nodes';
  return new CollectorError(
    'LC_REDIS_CLUSTER_MISMATCH',
    `${what}: Redis at ${at} answered ${message.split(' ')[0]}: ${fix}`,
    {
      cause: err,
    },
  );
}

/**
 * A failed call of `what` on `redis`: a CollectorError LC_REDIS_CLUSTER_MISMATCH when Redis Cluster
 * refused it for where its keys are (see clusterMismatch()); a CollectorError LC_REDIS_UNAVAILABLE saying where Redis is and why
 * when Redis could not be reached or refused for now (see unreachable()), else the error as it is;
 * AUTH arguments taken out either way.
 */
export function unavailable(what: string, err: unknown, redis: RedisClient): unknown {
  scrubAuth(err);
  if (err instanceof CollectorError) return err;
  const mismatch = clusterMismatch(what, err, redis);
  if (mismatch !== null) return mismatch;
  const why = unreachable(err, redisAddress(redis));
  return why === null ? err : new CollectorError('LC_REDIS_UNAVAILABLE', `${what}: ${why}`, { cause: err });
}

/** `call` on `redis`, a failure made what unavailable() makes of it, saying `what`. */
export async function reaching<T>(what: string, redis: RedisClient, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    throw unavailable(what, err, redis);
  }
}

/**
 * The replies of a pipeline or transaction run on `redis` (see reaching()); the first command that
 * failed fails the whole (ioredis gives each command's error among the replies).
 */
export async function replies(
  what: string,
  redis: RedisClient,
  run: Promise<Array<[Error | null, unknown]> | null>,
): Promise<unknown[]> {
  const got = (await reaching(what, redis, run)) ?? [];
  for (const [err] of got) if (err !== null) throw unavailable(what, err, redis);
  return got.map(([, value]) => value);
}

/**
 * Disconnects at once and fails the commands the client still holds (ioredis' own `flushQueue`,
 * public in its JavaScript): a client without a socket never says 'end' and never fails them.
 */
function cut(client: RedisClient): void {
  client.disconnect();
  if ((client.status as string) === 'end') return;
  if (isCluster(client)) {
    // A Cluster holds commands in its offline queue and, while it connects, pipelines and
    // transactions in callbacks it calls once ready (ioredis' own `invokeReadyDelayedCallbacks`).
    const held = client as unknown as {
      flushQueue?: (err: Error) => void;
      invokeReadyDelayedCallbacks?: (err: Error) => void;
    };
    held.flushQueue?.(new Error('Connection is closed.'));
    held.invokeReadyDelayedCallbacks?.(new Error('Connection is closed.'));
    return;
  }
  const queued = client as unknown as { flushQueue?: (err: Error) => void };
  if (typeof queued.flushQueue !== 'function')
    throw new Error('ioredis no longer has flushQueue(): closeClient() needs another way to fail queued commands');
  queued.flushQueue(new Error('Connection is closed.'));
}

/** True when the client has no socket and waits to try again (a connection already failed). */
function between(client: RedisClient): boolean {
  return client.status === 'reconnecting' || client.status === 'close' || client.status === 'wait';
}

/** Per client, the calls under way that may send a second command (see trackCall()). */
const underWay = new WeakMap<RedisClient, Set<Promise<unknown>>>();

/**
 * Notes `call` as under way on `client` until it settles, and returns it: closeClient() lets such
 * calls end before its QUIT. For calls that may need a second command after the first is
 * answered: a script run by EVALSHA is sent again as EVAL when the server answers NOSCRIPT (a new
 * or restarted server, SCRIPT FLUSH), and that EVAL must not come after the QUIT.
 */
export function trackCall<T>(client: RedisClient, call: Promise<T>): Promise<T> {
  let calls = underWay.get(client);
  if (calls === undefined) {
    calls = new Set();
    underWay.set(client, calls);
  }
  const set = calls;
  set.add(call);
  const done = (): void => {
    set.delete(call);
  };
  call.then(done, done);
  return call;
}

/**
 * Closes a client of our own. Connected or connecting: the calls under way (see trackCall()) end
 * first, then QUIT, so that what was sent before is answered first. Between two reconnect attempts
 * (a connection already failed): cut at once, and the commands still waiting fail now, or each
 * would keep the process alive until its command timeout. Either way, after 2 s the client is cut.
 */
export async function closeClient(client: RedisClient): Promise<void> {
  if (client.status === 'end') return;
  if (between(client)) return cut(client);
  const deadline = Date.now() + 2000;
  const calls = underWay.get(client);
  if (calls !== undefined && calls.size > 0) {
    let wait: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...calls]), new Promise((resolve) => (wait = setTimeout(resolve, 2000)))]);
    clearTimeout(wait);
    if ((client.status as string) === 'end') return;
    if (between(client)) return cut(client);
  }
  if (isCluster(client) && (client.status === 'connecting' || client.status === 'connect')) {
    // A QUIT while a Cluster still connects aborts the connection, and what waits for it to be
    // ready would wait for good: it is let to connect (and send what it holds) first.
    await connected(client, deadline);
    if ((client.status as string) === 'end') return;
    if (between(client)) return cut(client);
  }
  let timer: NodeJS.Timeout | undefined;
  let onEnd: (() => void) | undefined;
  await new Promise<void>((resolve) => {
    onEnd = resolve;
    client.once('end', onEnd);
    // Not unref'd: the program waits for this, and nothing else may be keeping it alive.
    timer = setTimeout(
      () => {
        cut(client);
        resolve();
      },
      Math.max(0, deadline - Date.now()),
    );
    client.quit().catch(() => {
      // The connection attempt failed under the QUIT: nothing more will come.
      if (between(client)) {
        cut(client);
        resolve();
      } else {
        client.disconnect();
      }
    });
  });
  clearTimeout(timer);
  client.off('end', onEnd!);
}

/** Until the Cluster is ready, or its connection attempt ended, or `deadline` (ms) has come. */
async function connected(client: RedisClient, deadline: number): Promise<void> {
  const events = ['ready', 'close', 'end'] as const;
  let timer: NodeJS.Timeout | undefined;
  let done: (() => void) | undefined;
  await new Promise<void>((resolve) => {
    done = resolve;
    for (const e of events) client.once(e, done);
    // Not unref'd: closeClient()'s caller waits for this.
    timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
  });
  clearTimeout(timer);
  for (const e of events) client.off(e, done!);
}
