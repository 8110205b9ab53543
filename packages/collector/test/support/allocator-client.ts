// A client process of the allocator stress test: allocates from one exclusive pool in a loop,
// holds each resource for a while, frees it, and records every hold in a Redis list as JSON
// {owner, key, fence, start, end, ok} (start: after malloc answered; end: before free was sent;
// Date.now(), one clock for every process on the machine; ok: free() confirmed the hold was live
// until then). It stops when the key <prefix>stop exists, or when it is killed.
// argv: prefix pool owner holdTimeoutMs minWorkMs maxWorkMs shards; the environment names the Redis
// (REDIS, a URL, or REDIS_CLUSTER, the cluster's host:port list: see client-from-env.ts).
import { Allocator } from '../../src/allocator/allocator.js';
import { clientFromEnv } from './client-from-env.js';

const [prefix, pool, owner, timeout, minWork, maxWork, shards] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string,
  string,
];
const redis = clientFromEnv();
const allocator = new Allocator({ redis, prefix, pool, owner, shards: Number(shards) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let n = 0;
for (;;) {
  if (n++ % 20 === 0 && (await redis.exists(`${prefix}stop`)) === 1) break;
  const a = await allocator.malloc({ timeout: Number(timeout) });
  if (a === null) {
    await sleep(1);
    continue;
  }
  const start = Date.now();
  const lo = Number(minWork);
  await sleep(lo + Math.floor(Math.random() * (Number(maxWork) - lo + 1)));
  const end = Date.now();
  const ok = await a.free();
  await redis.rpush(`${prefix}records`, JSON.stringify({ owner, key: a.key, fence: a.fence, start, end, ok }));
}
await allocator.close();
await redis.quit();
