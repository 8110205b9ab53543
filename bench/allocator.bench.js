// Issue 5 benchmarks of the allocator (exclusive pools on the local Redis):
//  1. malloc + free with 50 concurrent clients on one pool (goal >= 10,000 ops/s; op = malloc + free),
//     in ROUNDS rounds alternating with a floor: two script calls per op that do nothing, with the
//     same keys and arguments (what any design with one script call each for malloc and free costs
//     on this machine at this moment). Also Redis's CPU time per op (INFO cpu, the whole server).
//  2. the cost of malloc at pool size 5,000 against size 10 (goal <= 1.5x): sequential latency of
//     one client, and with 8 concurrent clients (fewer than the small pool's 10), each at both sizes,
//     in many short runs that alternate the sizes
import { Allocator } from '@contexture/collector/allocator';
import { Redis } from 'ioredis';
import { REDIS_URL, removeKeys, report, round, uniqueName } from './support.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const COST_ROUNDS = 4 * ROUNDS;

async function pool(redis, prefix, size) {
  const a = new Allocator({ redis, prefix, pool: `p${size}` });
  const keys = Array.from({ length: size }, (_, i) => `resource-${i}`);
  for (let i = 0; i < keys.length; i += 1000) await a.extend(keys.slice(i, i + 1000));
  return a;
}

async function redisCpuSeconds(redis) {
  const info = await redis.info('cpu');
  return Number(/used_cpu_user:([\d.]+)/.exec(info)[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)[1]);
}

/**
 * The floor: an allocator look-alike whose malloc and free are scripts that do nothing, called the
 * way the allocator calls its scripts (EVALSHA, with the same keys and arguments).
 */
async function floor(redis, a) {
  const mallocSha = await redis.script('LOAD', "return {'resource-0', 1, 0}");
  const freeSha = await redis.script('LOAD', 'return {1}');
  const keys = Object.values(a.redisKeys);
  const evalsha = async (sha, ...args) => redis.evalsha(sha, keys.length, ...keys, ...args);
  const allocation = { free: () => evalsha(freeSha, a.owner, 'resource-0', 1) };
  return {
    malloc: async ({ timeout }) => {
      await evalsha(mallocSha, 'x', a.owner, timeout, 8);
      return allocation;
    },
  };
}

/** `clients` loops of malloc + free for a warm-up then a measured time; ops/s and malloc latency. */
async function run(a, clients, warmMs = 1000, ms = SECONDS * 1000) {
  let stop = performance.now() + warmMs;
  let ops = 0;
  let mallocMs = 0;
  let empty = 0;
  const loop = async () => {
    while (performance.now() < stop) {
      const t0 = performance.now();
      const x = await a.malloc({ timeout: 30_000 });
      mallocMs += performance.now() - t0;
      if (x === null) {
        empty++;
        continue;
      }
      await x.free();
      ops++;
    }
  };
  await Promise.all(Array.from({ length: clients }, loop));
  const warmOps = ops;
  ops = 0;
  mallocMs = 0;
  empty = 0;
  const t0 = performance.now();
  stop = t0 + ms;
  await Promise.all(Array.from({ length: clients }, loop));
  const elapsed = performance.now() - t0;
  return {
    opsPerSec: (ops * 1000) / elapsed,
    mallocUs: (mallocMs * 1000) / (ops + empty),
    calls: ops + empty,
    empty,
    allOps: warmOps + ops,
  };
}

const prefix = `${uniqueName('bench-alloc')}:`;
const redis = new Redis(REDIS_URL);
try {
  const p100 = await pool(redis, prefix, 100);
  const bare = await floor(redis, p100);
  const rounds = { ours: [], floor: [] };
  let cpu = 0;
  for (let r = 0; r < ROUNDS; r++) {
    for (const which of r % 2 === 0 ? ['ours', 'floor'] : ['floor', 'ours']) {
      const c0 = await redisCpuSeconds(redis);
      const got = await run(which === 'ours' ? p100 : bare, 50);
      if (which === 'ours') cpu += ((await redisCpuSeconds(redis)) - c0) / got.allOps;
      rounds[which].push(got);
    }
  }
  const ops = (xs) => xs.map((x) => x.opsPerSec);
  report({
    bench: 'allocator',
    scenario: 'malloc_free_50_clients',
    pool_size: 100,
    rounds: ROUNDS,
    ops_per_sec_best: round(Math.max(...ops(rounds.ours)), 0),
    ops_per_sec_lowest: round(Math.min(...ops(rounds.ours)), 0),
    floor_ops_per_sec_best: round(Math.max(...ops(rounds.floor)), 0),
    floor_ops_per_sec_lowest: round(Math.min(...ops(rounds.floor)), 0),
    redis_cpu_us_per_op: round((cpu / ROUNDS) * 1e6, 1),
    goal_ops_per_sec: 10_000,
    goal: 'ops_per_sec_best >= 10000',
    goal_met: Math.max(...ops(rounds.ours)) >= 10_000,
    empty: rounds.ours.reduce((n, x) => n + x.empty, 0),
  });

  const small = await pool(redis, prefix, 10);
  const large = await pool(redis, prefix, 5000);
  for (const clients of [1, 8]) {
    // many short runs alternating the sizes (and which goes first), so drift of the machine hits
    // both alike; the ratio is of the mean malloc latencies over all runs
    const sum = { 10: { us: 0, n: 0, ops: 0, s: 0 }, 5000: { us: 0, n: 0, ops: 0, s: 0 } };
    const ratios = [];
    for (let r = 0; r < COST_ROUNDS; r++) {
      const got = {};
      for (const [size, a] of r % 2 === 0
        ? [
            [10, small],
            [5000, large],
          ]
        : [
            [5000, large],
            [10, small],
          ]) {
        got[size] = await run(a, clients, 200, 800);
        const x = sum[size];
        x.us += got[size].mallocUs * got[size].calls;
        x.n += got[size].calls;
        x.ops += got[size].opsPerSec * 0.8;
        x.s += 0.8;
      }
      ratios.push(got[5000].mallocUs / got[10].mallocUs);
    }
    const mean = (size) => sum[size].us / sum[size].n;
    report({
      bench: 'allocator',
      scenario: clients === 1 ? 'malloc_cost_sequential' : 'malloc_cost_8_clients',
      clients,
      rounds: COST_ROUNDS,
      malloc_us_size_10: round(mean(10), 1),
      malloc_us_size_5000: round(mean(5000), 1),
      ops_per_sec_size_10: round(sum[10].ops / sum[10].s, 0),
      ops_per_sec_size_5000: round(sum[5000].ops / sum[5000].s, 0),
      ratio: round(mean(5000) / mean(10), 2),
      ratio_lowest_round: round(Math.min(...ratios), 2),
      ratio_highest_round: round(Math.max(...ratios), 2),
      goal_ratio_at_most: 1.5,
      goal: 'ratio <= 1.5',
      goal_met: mean(5000) / mean(10) <= 1.5,
    });
  }
} finally {
  await removeKeys(prefix);
  redis.disconnect();
}
