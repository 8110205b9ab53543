// Issue 5, locks: acquire + release with RedisLock against node-redlock on the same Redis and the
// same ioredis client, in one run: sequentially, and with 50 concurrent clients (each on its own
// lock, then all on one lock).
//
// Fairness: both libraries take and give back a lock with one script call each (the commands sent
// are counted and reported per operation: every command of every ioredis connection of this
// process, so the subscriber connection on which our waiters hear that a lock is free counts too);
// both wait a uniform 0–9 ms between attempts on a held lock (ours: retryDelay 0 + jitter 0..9;
// redlock: 5 ± 5, rounded down); both run a warm-up first. On one lock, ours waits for the release's
// notification with that pause as its bound, its waiters of one process queue behind the first
// (only the first asks Redis), and a release of that process sends the first's attempt right behind
// it (at most 8 times in a row); redlock polls.
// Sequentially, the two alternate operation by operation (ours then redlock, then redlock then
// ours), so drift of the shared machine hits both alike; the spread is that of the ratio over
// blocks of BLOCK consecutive pairs, and the ratio of the median operations is given beside the
// ratio of the totals. Redis's CPU time cannot be told apart operation by operation: it is measured
// in alternating runs of SEQ_CPU operations. The concurrent scenarios alternate whole rounds (which
// library goes first alternates too). Each scenario reports the ratio of the totals (redlock time /
// our time: > 1 means we are faster), the lowest and highest ratio of a round or block, and CPU time
// per operation of this process and of Redis (INFO cpu: the whole server, other clients included).
import { Redis } from 'ioredis';
import Redlock from 'redlock';
import { RedisLock } from '@contexture/collector/locks';
import { REDIS_URL, removeKeys, report, round, uniqueName } from './support.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
// sequential: operations of each library, alternating one by one, in blocks of BLOCK pairs
const SEQ = Number(process.env.BENCH_SEQ_OPS ?? 20_000);
const BLOCK = 500;
const SEQ_CPU = 500;
const CLIENTS = 50;
const PER_CLIENT = 20;
const TTL = 10_000;
const prefix = `${uniqueName('bench-lock')}:`;

// Counted on every connection (the lock's subscriber is one of its own).
let sent = 0;
const sendCommand = Redis.prototype.sendCommand;
Redis.prototype.sendCommand = function (command, stream) {
  sent++;
  return sendCommand.call(this, command, stream);
};
const redis = new Redis(REDIS_URL);
const ours = new RedisLock({ redis, prefix, ttl: TTL, retryDelay: 0, jitter: 9, maxRetries: 1_000_000 });
const redlock = new Redlock([redis], { retryCount: 1_000_000, retryDelay: 5, retryJitter: 5 });

const take = {
  ours: async (name) => (await ours.acquire(name)).release(),
  redlock: async (name) => (await redlock.acquire([`${prefix}rl:${name}`], TTL)).release(),
};

const scenarios = {
  '50_clients_own_locks': {
    ops: CLIENTS * PER_CLIENT,
    rounds: ROUNDS,
    run: (lib) => Promise.all(Array.from({ length: CLIENTS }, (_, c) => loop(lib, `c${c}`, PER_CLIENT))),
  },
  '50_clients_one_lock': {
    ops: CLIENTS * PER_CLIENT,
    rounds: ROUNDS,
    run: (lib) => Promise.all(Array.from({ length: CLIENTS }, () => loop(lib, 'one', PER_CLIENT))),
  },
};

async function loop(lib, name, n) {
  for (let i = 0; i < n; i++) await take[lib](name);
}

/** Redis's CPU time (s) so far: the whole server, so other clients of it count too. */
async function redisCpu() {
  const info = await redis.info('cpu');
  return Number(/used_cpu_user:([\d.]+)/.exec(info)[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)[1]);
}

/** ms, commands sent, and CPU µs of this process and of Redis, of one run of a scenario by one library. */
async function measure(scenario, lib) {
  const s0 = sent;
  const r0 = await redisCpu();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await scenario.run(lib);
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const commands = sent - s0;
  return { ms, commands, cpu: c.user + c.system, redisCpu: ((await redisCpu()) - r0) * 1e6 };
}

const rate = (n, ms) => Math.round((n / ms) * 1000);
/** The q-quantile (0..1) of xs, interpolated. */
const quantile = (xs, q) => {
  const sorted = Float64Array.from(xs).sort();
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  return sorted[lo] + (sorted[Math.min(lo + 1, sorted.length - 1)] - sorted[lo]) * (at - lo);
};
const median = (xs) => quantile(xs, 0.5);

/** Sequential acquire + release, the libraries alternating operation by operation. */
async function sequential() {
  const libs = ['ours', 'redlock'];
  for (let i = 0; i < 500; i++) for (const lib of libs) await take[lib]('seq');
  const total = {
    ours: { ms: 0, commands: 0, cpu: 0, redisCpu: 0 },
    redlock: { ms: 0, commands: 0, cpu: 0, redisCpu: 0 },
  };
  const each = { ours: new Float64Array(SEQ), redlock: new Float64Array(SEQ) };
  const blocks = [];
  let block = { ours: 0, redlock: 0 };
  for (let i = 0; i < SEQ; i++) {
    for (const lib of i % 2 === 0 ? libs : [libs[1], libs[0]]) {
      const s0 = sent;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await take[lib]('seq');
      const ms = performance.now() - t0;
      const c = process.cpuUsage(c0);
      each[lib][i] = ms;
      block[lib] += ms;
      total[lib].ms += ms;
      total[lib].commands += sent - s0;
      total[lib].cpu += c.user + c.system;
    }
    if ((i + 1) % BLOCK === 0) {
      blocks.push(block.redlock / block.ours);
      block = { ours: 0, redlock: 0 };
    }
  }
  const cpuRuns = { ops: SEQ_CPU, run: (lib) => loop(lib, 'seq', SEQ_CPU) };
  let cpuOps = 0;
  for (let r = 0; r < 8; r++) {
    for (const lib of r % 2 === 0 ? libs : [libs[1], libs[0]])
      total[lib].redisCpu += (await measure(cpuRuns, lib)).redisCpu;
    cpuOps += SEQ_CPU;
  }
  report({
    bench: 'lock.acquire_release',
    scenario: 'sequential',
    ops: SEQ,
    alternation: 'operation by operation',
    ours_ops_per_s: rate(SEQ, total.ours.ms),
    redlock_ops_per_s: rate(SEQ, total.redlock.ms),
    ratio: round(total.redlock.ms / total.ours.ms, 3),
    ratio_of_medians: round(median(each.redlock) / median(each.ours), 3),
    blocks: blocks.length,
    block_ops: BLOCK,
    ratio_lowest_block: round(Math.min(...blocks), 3),
    ratio_blocks_quartiles: [
      round(quantile(blocks, 0.25), 3),
      round(median(blocks), 3),
      round(quantile(blocks, 0.75), 3),
    ],
    ratio_highest_block: round(Math.max(...blocks), 3),
    ours_us_median: round(median(each.ours) * 1000, 1),
    redlock_us_median: round(median(each.redlock) * 1000, 1),
    ...costs(total, SEQ, cpuOps),
    goal: 'ratio >= 1.0',
    goal_met: total.redlock.ms / total.ours.ms >= 1.0,
  });
}

/** Commands and CPU per operation of each library: `ops` for the client's, `redisOps` for Redis's. */
function costs(total, ops, redisOps) {
  const out = {};
  for (const lib of ['ours', 'redlock']) out[`${lib}_commands_per_op`] = round(total[lib].commands / ops);
  for (const lib of ['ours', 'redlock']) out[`${lib}_client_cpu_us_per_op`] = round(total[lib].cpu / ops, 1);
  for (const lib of ['ours', 'redlock']) out[`${lib}_redis_cpu_us_per_op`] = round(total[lib].redisCpu / redisOps, 1);
  return out;
}

await sequential();
for (const [name, scenario] of Object.entries(scenarios)) {
  await measure(scenario, 'ours');
  await measure(scenario, 'redlock');
  const total = {
    ours: { ms: 0, commands: 0, cpu: 0, redisCpu: 0 },
    redlock: { ms: 0, commands: 0, cpu: 0, redisCpu: 0 },
  };
  const ratios = [];
  for (let r = 0; r < scenario.rounds; r++) {
    const got = {};
    for (const lib of r % 2 === 0 ? ['ours', 'redlock'] : ['redlock', 'ours']) got[lib] = await measure(scenario, lib);
    for (const lib of ['ours', 'redlock']) for (const k of Object.keys(total[lib])) total[lib][k] += got[lib][k];
    ratios.push(got.redlock.ms / got.ours.ms);
  }
  const ops = scenario.ops * scenario.rounds;
  report({
    bench: 'lock.acquire_release',
    scenario: name,
    ops_per_round: scenario.ops,
    rounds: scenario.rounds,
    ours_ops_per_s: rate(ops, total.ours.ms),
    redlock_ops_per_s: rate(ops, total.redlock.ms),
    ratio: round(total.redlock.ms / total.ours.ms),
    ratio_lowest_round: round(Math.min(...ratios)),
    ratio_highest_round: round(Math.max(...ratios)),
    ...costs(total, ops, ops),
    goal: 'ratio >= 1.0',
    goal_met: total.redlock.ms / total.ours.ms >= 1.0,
  });
}
await removeKeys(prefix);
await ours.close();
redis.disconnect();
