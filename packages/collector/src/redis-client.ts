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
 * Closes a client of our own: QUIT when it is connected (what was sent is answered first), else
 * a disconnect at once (a QUIT would wait for a connection that may never come). Then waits for
 * the socket to end, at most 2 s: a client between two reconnect attempts has no socket, and
 * ioredis then never says 'end' (its retry timer is gone, nothing is left running).
 */
export async function closeClient(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  let timer: NodeJS.Timeout | undefined;
  const ended = new Promise<void>((resolve) => {
    client.once('end', resolve);
    // Not unref'd: the program waits for this, and nothing else may be keeping it alive.
    timer = setTimeout(() => {
      client.disconnect();
      resolve();
    }, 2000);
  });
  if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
  else client.disconnect();
  if (client.status === 'reconnecting' || client.status === 'close') {
    // No attempt will come to fail the commands still waiting for a connection: fail them now, or
    // each keeps the process alive until its command timeout.
    const queued = client as unknown as { flushQueue?: (err: Error) => void };
    queued.flushQueue?.(new Error('Connection is closed.'));
    clearTimeout(timer);
    return;
  }
  await ended;
  clearTimeout(timer);
}
