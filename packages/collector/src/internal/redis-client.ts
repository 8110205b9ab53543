import { Redis } from 'ioredis';
import { CollectorError } from './errors.js';

/**
 * The client a store, lock or allocator works with: an ioredis client given by the caller (left
 * as it is, and never closed by us), or one made from a `redis://` / `rediss://` URL (or a Unix
 * socket path). A client of our own fails a command after one reconnect attempt instead of holding
 * it in an unbounded offline queue: callers retry with their own backoff, and nothing piles up in
 * memory while Redis is down. Its connection errors go to `onError` (they are retried, not thrown).
 * Anything else gives the reason it is refused (which never repeats the URL: it may hold a password).
 */
export function resolveRedis(
  redis: unknown,
  onError: (message: string) => void,
): { redis: Redis; owned: boolean } | string {
  if (typeof redis === 'string') {
    // A socket path, or a URL (`//host` would be one, without its scheme).
    if (!/^\/(?!\/)/.test(redis)) {
      if (!/^rediss?:\/\//i.test(redis))
        return 'redis must be an ioredis client, a redis:// or rediss:// URL, or a socket path';
      try {
        new URL(redis);
      } catch {
        return 'redis: the URL does not parse';
      }
    }
    let client: Redis;
    try {
      client = new Redis(redis, { maxRetriesPerRequest: 1, commandTimeout: 10_000 });
    } catch {
      // ioredis' own reading of it failed (a bad %-escape in the password, say): its error holds the URL.
      return 'redis: the URL does not parse';
    }
    client.on('error', (err: Error) => {
      scrubAuth(err);
      onError(err.message);
    });
    return { redis: client, owned: true };
  }
  if (redis instanceof Redis) return { redis, owned: false };
  return 'redis must be an ioredis client, a redis:// or rediss:// URL, or a socket path';
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
export function redisAddress(redis: Redis): string {
  const { host, port, path, sentinels, name } = redis.options;
  // ioredis' defaults where a host or port is not given.
  const at = (h: string | undefined, p: number | undefined, fallback: number): string => {
    const hh = h || 'localhost';
    return `${hh.includes(':') ? `[${hh}]` : hh}:${p || fallback}`;
  };
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
 * WRONGPASS; Redis 5: "ERR invalid password") or timed out.
 */
const NO_CONNECTION =
  /Connection is closed|Command timed out|Stream isn't writeable|\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE|NOAUTH|WRONGPASS)\b|^ERR invalid password/;

/**
 * Why a call failed when Redis could not be reached or refused it for now, as errors say it (where
 * Redis is, and the client's reason); null for any other failure (a command's or a script's own).
 */
export function unreachable(err: unknown, at: string): string | null {
  // ioredis fails what it holds for a client without a connection with a note on its own retry option.
  if ((err as Error | null)?.name === 'MaxRetriesPerRequestError') return `no connection to Redis at ${at}`;
  const message = (err as Error | null)?.message ?? String(err);
  return NO_CONNECTION.test(message) || REFUSED.test(message) ? `Redis at ${at} failed: ${message}` : null;
}

/**
 * A failed call of `what` on `redis`: a CollectorError LC_REDIS_UNAVAILABLE saying where Redis is and why
 * when Redis could not be reached or refused for now (see unreachable()), else the error as it is;
 * AUTH arguments taken out either way.
 */
export function unavailable(what: string, err: unknown, redis: Redis): unknown {
  scrubAuth(err);
  if (err instanceof CollectorError) return err;
  const why = unreachable(err, redisAddress(redis));
  return why === null ? err : new CollectorError('LC_REDIS_UNAVAILABLE', `${what}: ${why}`, { cause: err });
}

/** `call` on `redis`, a failure made what unavailable() makes of it, saying `what`. */
export async function reaching<T>(what: string, redis: Redis, call: Promise<T>): Promise<T> {
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
  redis: Redis,
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
function cut(client: Redis): void {
  client.disconnect();
  if ((client.status as string) === 'end') return;
  const queued = client as unknown as { flushQueue?: (err: Error) => void };
  if (typeof queued.flushQueue !== 'function')
    throw new Error('ioredis no longer has flushQueue(): closeClient() needs another way to fail queued commands');
  queued.flushQueue(new Error('Connection is closed.'));
}

/** True when the client has no socket and waits to try again (a connection already failed). */
function between(client: Redis): boolean {
  return client.status === 'reconnecting' || client.status === 'close' || client.status === 'wait';
}

/** Per client, the calls under way that may send a second command (see trackCall()). */
const underWay = new WeakMap<Redis, Set<Promise<unknown>>>();

/**
 * Notes `call` as under way on `client` until it settles, and returns it: closeClient() lets such
 * calls end before its QUIT. For calls that may need a second command after the first is
 * answered: a script run by EVALSHA is sent again as EVAL when the server answers NOSCRIPT (a new
 * or restarted server, SCRIPT FLUSH), and that EVAL must not come after the QUIT.
 */
export function trackCall<T>(client: Redis, call: Promise<T>): Promise<T> {
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
export async function closeClient(client: Redis): Promise<void> {
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
