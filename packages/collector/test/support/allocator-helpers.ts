import { waitUntil } from '@contexture/test-support';
import type { Cluster, Redis } from 'ioredis';

/** The Redis server's clock (ms): the clock every expiry of the allocator is measured on. */
export async function redisNow(redis: Redis | Cluster): Promise<number> {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

/** Waits until the Redis server's clock has passed `ms` (waiting, not asserting a duration). */
export async function untilRedisTime(redis: Redis | Cluster, ms: number): Promise<void> {
  await waitUntil(async () => (await redisNow(redis)) > ms, `Redis time past ${ms}`, 30_000, 5);
}

/** A small seeded PRNG (mulberry32) so a failing random sequence can be replayed from its seed. */
export { rng as prng } from './streams.js';
