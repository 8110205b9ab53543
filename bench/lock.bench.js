// Issue 5, locks: acquire + release with RedisLock against node-redlock on the same Redis, in one
// run: sequentially, and with 50 concurrent clients (each on its own lock, then all on one lock).
import { Redis } from 'ioredis';
import Redlock from 'redlock';
import { RedisLock } from '@contexture/collector';
import { REDIS_URL, removeKeys, report, round, uniqueName } from './support.js';

const SEQ = 3000;
const CLIENTS = 50;
const PER_CLIENT = 100;
const TTL = 10_000;
const prefix = `${uniqueName('bench-lock')}:`;

const redis = new Redis(REDIS_URL);
const ours = new RedisLock({ redis, prefix, retryDelay: 5, jitter: 5, maxRetries: 1_000_000 });
const redlock = new Redlock([redis], { retryCount: 1_000_000, retryDelay: 5, retryJitter: 5, automaticExtensionThreshold: 500 });

async function time(fn) {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const oursSeq = () =>
  time(async () => {
    for (let i = 0; i < SEQ; i++) await (await ours.acquire('seq')).release();
  });
const redlockSeq = () =>
  time(async () => {
    for (let i = 0; i < SEQ; i++) await (await redlock.acquire([`${prefix}rl-seq`], TTL)).release();
  });
const oursConcurrent = (oneLock) =>
  time(() =>
    Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => {
        for (let i = 0; i < PER_CLIENT; i++) await (await ours.acquire(oneLock ? 'one' : `c${c}`, { ttl: TTL })).release();
      }),
    ),
  );
const redlockConcurrent = (oneLock) =>
  time(() =>
    Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => {
        for (let i = 0; i < PER_CLIENT; i++) await (await redlock.acquire([`${prefix}rl-${oneLock ? 'one' : `c${c}`}`], TTL)).release();
      }),
    ),
  );

const best = { oursSeq: Infinity, redlockSeq: Infinity, oursMany: Infinity, redlockMany: Infinity, oursOne: Infinity, redlockOne: Infinity };
for (let r = 0; r < 3; r++) {
  best.oursSeq = Math.min(best.oursSeq, await oursSeq());
  best.redlockSeq = Math.min(best.redlockSeq, await redlockSeq());
  best.oursMany = Math.min(best.oursMany, await oursConcurrent(false));
  best.redlockMany = Math.min(best.redlockMany, await redlockConcurrent(false));
  best.oursOne = Math.min(best.oursOne, await oursConcurrent(true));
  best.redlockOne = Math.min(best.redlockOne, await redlockConcurrent(true));
}
const rate = (n, ms) => Math.round((n / ms) * 1000);
const total = CLIENTS * PER_CLIENT;
report({
  bench: 'lock.acquire_release',
  sequential_ops: SEQ,
  ours_sequential_ops_per_s: rate(SEQ, best.oursSeq),
  redlock_sequential_ops_per_s: rate(SEQ, best.redlockSeq),
  ratio_sequential: round(best.redlockSeq / best.oursSeq),
  clients: CLIENTS,
  ours_50_clients_own_locks_ops_per_s: rate(total, best.oursMany),
  redlock_50_clients_own_locks_ops_per_s: rate(total, best.redlockMany),
  ratio_50_clients_own_locks: round(best.redlockMany / best.oursMany),
  ours_50_clients_one_lock_ops_per_s: rate(total, best.oursOne),
  redlock_50_clients_one_lock_ops_per_s: rate(total, best.redlockOne),
  ratio_50_clients_one_lock: round(best.redlockOne / best.oursOne),
  goal: 'ratio >= 1.0, sequential and 50 clients',
});
await removeKeys(prefix);
redis.disconnect();
