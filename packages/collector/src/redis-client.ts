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

/** Fails the commands a client still holds (ioredis' own `flushQueue`, public in its JavaScript). */
function failQueued(client: Redis): void {
  const queued = client as unknown as { flushQueue?: (err: Error) => void };
  if (typeof queued.flushQueue !== 'function') throw new Error('ioredis no longer has flushQueue(): closeClient() needs another way to fail queued commands');
  queued.flushQueue(new Error('Connection is closed.'));
}

/**
 * Closes a client of our own. Connected or connecting: QUIT, so that what was sent before is
 * answered first. Between two reconnect attempts (a connection already failed): a disconnect at
 * once, and the commands still waiting fail now, or each would keep the process alive until its
 * command timeout (no attempt will come to fail them, and ioredis never says 'end' then). Either
 * way, after 2 s the client is cut and what it holds fails.
 */
export async function closeClient(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (client.status === 'reconnecting' || client.status === 'close' || client.status === 'wait') {
    client.disconnect();
    if ((client.status as string) !== 'end') failQueued(client);
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  let onEnd: (() => void) | undefined;
  await new Promise<void>((resolve) => {
    onEnd = resolve;
    client.once('end', onEnd);
    // Not unref'd: the program waits for this, and nothing else may be keeping it alive.
    timer = setTimeout(() => {
      client.disconnect();
      if (client.status !== 'end') failQueued(client);
      resolve();
    }, 2000);
    client.quit().catch(() => {
      client.disconnect();
      if (client.status === 'reconnecting' || client.status === 'close') {
        failQueued(client);
        resolve();
      }
    });
  });
  clearTimeout(timer);
  client.off('end', onEnd!);
}
