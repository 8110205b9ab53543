import { Redis } from 'ioredis';

/**
 * The client a store, lock or allocator works with: an ioredis client given by the caller (left
 * as it is, and never closed by us), or one made from a URL. A client of our own fails a command
 * after one reconnect attempt instead of holding it in an unbounded offline queue: callers retry
 * with their own backoff, and nothing piles up in memory while Redis is down. Its connection
 * errors go to `onError` (they are retried, not thrown). Returns null for anything else.
 */
export function resolveRedis(redis: unknown, onError: (message: string) => void): { redis: Redis; owned: boolean } | null {
  if (typeof redis === 'string') {
    const client = new Redis(redis, { maxRetriesPerRequest: 1, commandTimeout: 10_000 });
    client.on('error', (err: Error) => onError(err.message));
    return { redis: client, owned: true };
  }
  if (redis instanceof Redis) return { redis, owned: false };
  return null;
}

/**
 * Disconnects at once and fails the commands the client still holds (ioredis' own `flushQueue`,
 * public in its JavaScript): a client without a socket never says 'end' and never fails them.
 */
function cut(client: Redis): void {
  client.disconnect();
  if ((client.status as string) === 'end') return;
  const queued = client as unknown as { flushQueue?: (err: Error) => void };
  if (typeof queued.flushQueue !== 'function') throw new Error('ioredis no longer has flushQueue(): closeClient() needs another way to fail queued commands');
  queued.flushQueue(new Error('Connection is closed.'));
}

/** True when the client has no socket and waits to try again (a connection already failed). */
function between(client: Redis): boolean {
  return client.status === 'reconnecting' || client.status === 'close' || client.status === 'wait';
}

/**
 * Closes a client of our own. Connected or connecting: QUIT, so that what was sent before is
 * answered first. Between two reconnect attempts (a connection already failed): cut at once, and
 * the commands still waiting fail now, or each would keep the process alive until its command
 * timeout. Either way, after 2 s the client is cut.
 */
export async function closeClient(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (between(client)) return cut(client);
  let timer: NodeJS.Timeout | undefined;
  let onEnd: (() => void) | undefined;
  await new Promise<void>((resolve) => {
    onEnd = resolve;
    client.once('end', onEnd);
    // Not unref'd: the program waits for this, and nothing else may be keeping it alive.
    timer = setTimeout(() => {
      cut(client);
      resolve();
    }, 2000);
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
