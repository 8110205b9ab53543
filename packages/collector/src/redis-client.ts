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
