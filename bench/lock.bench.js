// Issue 5, locks: acquire + release with RedisLock against node-redlock on the same Redis and the
// same ioredis client, in one run: sequentially, and with 50 concurrent clients (each on its own
// lock, then all on one lock).
//
// Fairness: both libraries take and give back a lock with one script call each (the commands sent
// are counted and reported per operation); both wait a uniform 0–9 ms between attempts on a held
// lock (ours: retryDelay 0 + jitter 0..9; redlock: 5 ± 5, rounded down); both run a warm-up first;
// then the rounds alternate which library goes first, so drift of the shared machine hits both
// alike. Each scenario reports the ratio of the totals (redlock time / our time: > 1 means we are
// faster), the lowest and highest per-round ratio, and CPU time per operation of this process and
// of Redis (INFO cpu: the whole server, other clients included).
import { Redis } from 'ioredis';
import Redlock from 'redlock';
import { RedisLock } from '@contexture/collector';
import { REDIS_URL, removeKeys, report, round, uniqueName } from './support.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
// the sequential runs are short and many, so that both libraries meet the same moments of the
// shared machine
const SEQ = 200;
const SEQ_ROUNDS = ROUNDS * 4;
const CLIENTS = 50;
const PER_CLIENT = 20;
const TTL = 10_000;
const prefix = `${uniqueName('bench-lock')}:`;

const redis = new Redis(REDIS_URL);
let sent = 0;
const sendCommand = redis.sendCommand.bind(redis);
redis.sendCommand = (command, stream) => {
  sent++;
  return sendCommand(command, stream);
};
const ours = new RedisLock({ redis, prefix, ttl: TTL, retryDelay: 0, jitter: 9, maxRetries: 1_000_000 });
const redlock = new Redlock([redis], { retryCount: 1_000_000, retryDelay: 5, retryJitter: 5 });

const take = {
  ours: async (name) => (await ours.acquire(name)).release(),
  redlock: async (name) => (await redlock.acquire([`${prefix}rl:${name}`], TTL)).release(),
};

const scenarios = {
  sequential: { ops: SEQ, rounds: SEQ_ROUNDS, run: (lib) => loop(lib, 'seq', SEQ) },
  '50_clients_own_locks': { ops: CLIENTS * PER_CLIENT, rounds: ROUNDS, run: (lib) => Promise.all(Array.from({ length: CLIENTS }, (_, c) => loop(lib, `c${c}`, PER_CLIENT))) },
  '50_clients_one_lock': { ops: CLIENTS * PER_CLIENT, rounds: ROUNDS, run: (lib) => Promise.all(Array.from({ length: CLIENTS }, () => loop(lib, 'one', PER_CLIENT))) },
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
for (const [name, scenario] of Object.entries(scenarios)) {
  await measure(scenario, 'ours');
  await measure(scenario, 'redlock');
  const total = { ours: { ms: 0, commands: 0, cpu: 0, redisCpu: 0 }, redlock: { ms: 0, commands: 0, cpu: 0, redisCpu: 0 } };
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
    ours_commands_per_op: round(total.ours.commands / ops),
    redlock_commands_per_op: round(total.redlock.commands / ops),
    ours_client_cpu_us_per_op: round(total.ours.cpu / ops, 1),
    redlock_client_cpu_us_per_op: round(total.redlock.cpu / ops, 1),
    ours_redis_cpu_us_per_op: round(total.ours.redisCpu / ops, 1),
    redlock_redis_cpu_us_per_op: round(total.redlock.redisCpu / ops, 1),
    goal: name === '50_clients_one_lock' ? 'none (contention: both poll a held lock)' : 'ratio >= 1.0',
  });
}
await removeKeys(prefix);
redis.disconnect();
