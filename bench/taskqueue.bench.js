// Issue 21: TaskQueue against BullMQ on the same Redis, in the same run.
//
// What: submit → result round trips of an echo task (the worker returns the params it got), with 1
// and with 8 workers, for small params ({ n }) and for 10 KB params (so 10 KB each way). Per case
// and per side: tasks/s, and the p50 / p99 of the time from the submit call until the submitter has
// the result in hand.
//
// Load: a closed loop of IN_FLIGHT submitters (4 per worker): each submits, waits for the result,
// submits again, for SECONDS seconds; the latencies are those of every task of the measured rounds.
//
// Workers: each in a child process, 4 per process at most (1 worker: one process; 8: two), each
// worker taking one task at a time: for ours a TaskQueue with `listen(['echo'], { concurrency: 1 })`,
// for BullMQ a `Worker` with `concurrency: 1`. Both sides' workers of a case are started before it
// and stay up through it (an idle worker of either side waits on Redis and costs next to nothing).
//
// Submit and result path, each side's fastest fair one:
// - ours: `query({ name: 'echo', params, policy: 'remote', once: true })`: the task is queued by one
//   script call and its outcome comes back on the caller's own pub/sub channel; `once` drops the
//   kept outcome once received.
// - BullMQ: `queue.add('echo', params)` with `removeOnComplete` / `removeOnFail` (nothing kept, as
//   `once`), and one `QueueEvents` (one XREAD BLOCK on the queue's event stream) whose `completed`
//   and `failed` events settle the waiting submit through a map by job id. That is what
//   `job.waitUntilFinished(queueEvents)` does, without a listener per job (which makes the event
//   emitter scan every waiting job on each event).
// Both keep at-least-once delivery with their defaults: a visibility timeout / lock of 30 s renewed
// while a task runs, a dead worker's task run again by another.
//
// Alternation: per case, a warm-up of each side, then ROUNDS rounds of SECONDS seconds per side, the
// side that goes first alternating round by round (ours first in even rounds), so that drift of the
// shared machine hits both alike. Figures are over all rounds of a side; `ratio` = our tasks/s over
// BullMQ's; the spread is the lowest and highest ratio of a round.
//
// Redis's CPU time per task (INFO cpu around each round: the whole server, other clients included)
// is given beside, for each side.
//
// Goal (per case): ratio >= 1.0 and p99_ms <= peer_p99_ms.
//
// Names: everything lives under one unique prefix (ours: `prefix`; BullMQ: its `prefix` option),
// removed at the end (SCAN + UNLINK, never FLUSH).
import { spawn } from 'node:child_process';
import os from 'node:os';
import { createInterface } from 'node:readline';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { TaskQueue } from '@contexture/collector/tasks';
import { REDIS_URL, percentile, removeKeys, report, round, uniqueName } from './support.js';

const SELF = new URL(import.meta.url).pathname;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP_SECONDS = 1;
const PER_PROCESS = 4;
const PAYLOADS = { small: null, '10KB': 'x'.repeat(10 * 1024) };

/** BullMQ's connection options from the Redis URL (it makes and duplicates its own clients). */
function bullConnection() {
  const u = new URL(REDIS_URL);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    maxRetriesPerRequest: null,
  };
}

// ---- child roles -------------------------------------------------------------------------------
const [, , role, ...args] = process.argv;
if (role === '--ours') {
  const [prefix, namespace, count] = args;
  const stop = new AbortController();
  const queues = Array.from(
    { length: Number(count) },
    () => new TaskQueue({ redis: REDIS_URL, prefix, namespace, handler: { echo: (t) => t.params } }),
  );
  const running = queues.map((q) => q.listen(['echo'], { concurrency: 1, signal: stop.signal }));
  // listen() has subscribed once listeners() counts it (the parent waits for all of them).
  while ((await queues[0].listeners('echo')) < Number(count)) await new Promise((r) => setTimeout(r, 10));
  process.stdout.write('ready\n');
  process.stdin.on('end', async () => {
    stop.abort();
    await Promise.all(running);
    await Promise.all(queues.map((q) => q.close()));
    process.exit(0);
  });
  process.stdin.resume();
} else if (role === '--bullmq') {
  const [prefix, name, count] = args;
  const workers = Array.from(
    { length: Number(count) },
    () => new Worker(name, async (job) => job.data, { connection: bullConnection(), prefix, concurrency: 1 }),
  );
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  process.stdout.write('ready\n');
  process.stdin.on('end', async () => {
    await Promise.all(workers.map((w) => w.close()));
    process.exit(0);
  });
  process.stdin.resume();
} else {
  await main();
}

function child(argv) {
  const c = spawn(process.execPath, [...process.execArgv, SELF, ...argv], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: c.stdout })[Symbol.asyncIterator]();
  const exited = new Promise((resolve) => c.on('exit', resolve));
  return { c, next: async () => (await lines.next()).value, exited };
}

/** Starts `workers` workers of one side, PER_PROCESS per child process at most. */
async function startWorkers(roleFlag, a, b, workers) {
  const kids = [];
  for (let left = workers; left > 0; left -= PER_PROCESS) {
    kids.push(child([roleFlag, a, b, String(Math.min(PER_PROCESS, left))]));
  }
  for (const k of kids) {
    if ((await k.next()) !== 'ready') throw new Error(`${roleFlag} workers did not start`);
  }
  return {
    async stop() {
      for (const k of kids) k.c.stdin.end();
      await Promise.all(kids.map((k) => k.exited));
    },
  };
}

/** Redis's CPU time so far (s), user + system: the whole server, other clients included. */
async function redisCpu(redis) {
  const info = await redis.info('cpu');
  return Number(/used_cpu_user:([\d.]+)/.exec(info)[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)[1]);
}

/** `inFlight` submitters in a closed loop for `seconds`; returns { done, ms, lat, cpu }. */
async function closedLoop(inFlight, seconds, once, redis) {
  const lat = [];
  const cpu0 = await redisCpu(redis);
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        await once();
        lat.push(performance.now() - s);
      }
    }),
  );
  const ms = performance.now() - t0;
  return { done: lat.length, ms, lat, cpu: (await redisCpu(redis)) - cpu0 };
}

/** Our submitter side. */
async function oursSide(prefix, namespace) {
  const caller = new TaskQueue({ redis: REDIS_URL, prefix, namespace });
  return {
    submit: (params) => caller.query({ name: 'echo', params, policy: 'remote', once: true }),
    listeners: () => caller.listeners('echo'),
    close: () => caller.close(),
  };
}

/** BullMQ's submitter side: a Queue to add to and one QueueEvents to hear outcomes from. */
async function bullSide(prefix, name) {
  const opts = { connection: bullConnection(), prefix };
  const queue = new Queue(name, {
    ...opts,
    defaultJobOptions: { removeOnComplete: true, removeOnFail: true },
  });
  const events = new QueueEvents(name, opts);
  const waiting = new Map();
  // An outcome heard before add() resolved (its reply and the event arrive on different connections).
  const early = new Map();
  const settle = (jobId, outcome) => {
    const w = waiting.get(jobId);
    if (w === undefined) early.set(jobId, outcome);
    else {
      waiting.delete(jobId);
      w(outcome);
    }
  };
  events.on('completed', ({ jobId, returnvalue }) => settle(jobId, { ok: true, value: returnvalue }));
  events.on('failed', ({ jobId, failedReason }) => settle(jobId, { ok: false, value: failedReason }));
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
  return {
    async submit(params) {
      const job = await queue.add('echo', params);
      let outcome = early.get(job.id);
      if (outcome === undefined) outcome = await new Promise((resolve) => waiting.set(job.id, resolve));
      else early.delete(job.id);
      if (!outcome.ok) throw new Error(`job ${job.id} failed: ${outcome.value}`);
      return outcome.value;
    },
    async close() {
      await events.close();
      await queue.close();
    },
  };
}

function summary(runs) {
  const lat = runs.flatMap((r) => r.lat).sort((a, b) => a - b);
  const done = runs.reduce((s, r) => s + r.done, 0);
  const ms = runs.reduce((s, r) => s + r.ms, 0);
  const cpu = runs.reduce((s, r) => s + r.cpu, 0);
  return {
    tasks_per_s: round((done * 1000) / ms, 0),
    p50_ms: round(percentile(lat, 50), 3),
    p99_ms: round(percentile(lat, 99), 3),
    max_ms: round(lat[lat.length - 1], 3),
    redis_cpu_us_per_task: round((cpu * 1e6) / done, 1),
    tasks: done,
  };
}

async function runCase(workers, payload) {
  const prefix = `${uniqueName('bench-tq')}:`;
  const namespace = 'bench';
  const bullPrefix = `${prefix}bull`;
  const bullName = 'echo';
  const inFlight = 4 * workers;
  const big = PAYLOADS[payload];
  let seq = 0;
  const params = () => (big === null ? { n: seq++ } : { n: seq++, data: big });
  const check = (sent, got) => {
    if (got?.n !== sent.n) throw new Error(`echo returned ${JSON.stringify(got)?.slice(0, 80)} for n=${sent.n}`);
  };
  const load0 = os.loadavg()[0];
  const oursWorkers = await startWorkers('--ours', prefix, namespace, workers);
  const bullWorkers = await startWorkers('--bullmq', bullPrefix, bullName, workers);
  const sides = { ours: await oursSide(prefix, namespace), bullmq: await bullSide(bullPrefix, bullName) };
  // Every one of our workers has said it is alive (a child only knows of its own).
  while ((await sides.ours.listeners()) < workers) await new Promise((r) => setTimeout(r, 10));
  const info = new Redis(REDIS_URL);
  const loop = (side, seconds) =>
    closedLoop(
      inFlight,
      seconds,
      async () => {
        const p = params();
        check(p, await sides[side].submit(p));
      },
      info,
    );
  try {
    await loop('ours', WARMUP_SECONDS);
    await loop('bullmq', WARMUP_SECONDS);
    const runs = { ours: [], bullmq: [] };
    const ratios = [];
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? ['ours', 'bullmq'] : ['bullmq', 'ours'];
      for (const side of order) runs[side].push(await loop(side, SECONDS));
      const rate = (x) => x.done / x.ms;
      ratios.push(rate(runs.ours[r]) / rate(runs.bullmq[r]));
    }
    const ours = summary(runs.ours);
    const peer = summary(runs.bullmq);
    const ratio = ours.tasks_per_s / peer.tasks_per_s;
    report({
      bench: `tasks.vs_bullmq_${workers}_workers_${payload}`,
      workers,
      payload,
      in_flight: inFlight,
      rounds: ROUNDS,
      seconds_per_round: SECONDS,
      ...ours,
      peer: 'bullmq',
      peer_tasks_per_s: peer.tasks_per_s,
      peer_p50_ms: peer.p50_ms,
      peer_p99_ms: peer.p99_ms,
      peer_max_ms: peer.max_ms,
      peer_redis_cpu_us_per_task: peer.redis_cpu_us_per_task,
      peer_tasks: peer.tasks,
      ratio: round(ratio),
      ratio_lowest_round: round(Math.min(...ratios)),
      ratio_highest_round: round(Math.max(...ratios)),
      load_before: round(load0),
      load_after: round(os.loadavg()[0]),
      goal: 'ratio >= 1.0 and p99_ms <= peer_p99_ms',
      goal_met: ratio >= 1 && ours.p99_ms <= peer.p99_ms,
    });
  } finally {
    await sides.ours.close();
    await sides.bullmq.close();
    await oursWorkers.stop();
    await bullWorkers.stop();
    info.disconnect();
    await removeKeys(prefix);
  }
}

async function main() {
  const only = process.env.BENCH_CASES?.split(',');
  for (const workers of [1, 8]) {
    for (const payload of Object.keys(PAYLOADS)) {
      if (only === undefined || only.includes(`${workers}/${payload}`)) await runCase(workers, payload);
    }
  }
}
