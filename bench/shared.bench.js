// Issue 6 benchmarks, each against a plain-Redis baseline in the same run:
//  1. SharedContext change propagation between two processes: a write in this process until the
//     other process's local copy has it (p50 / p99), against a bare PUBLISH → SUBSCRIBE between
//     the same two processes
//  2. task round trips (query → a listener runs it → the result back by notification) with 8
//     workers in two other processes, against a bare list queue (RPUSH → BLPOP → PUBLISH reply)
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { SharedContext, TaskQueue } from '@contexture/collector';
import { REDIS_URL, percentile, removeKeys, report, round, uniqueName } from './support.js';

const SELF = new URL(import.meta.url).pathname;
const now = () => performance.timeOrigin + performance.now();
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 2000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);

// ---- child roles -------------------------------------------------------------------------------
const [, , role, ...args] = process.argv;
if (role === '--shared-reader') {
  const [prefix, key, n] = args;
  const shared = await SharedContext.open(key, { redis: REDIS_URL, prefix });
  const lat = [];
  // A copy that resynchronised after a gap folds several writes into one change: the last write ends it.
  shared.on('change', (ctx) => {
    const sent = ctx.t?.sent;
    if (typeof sent === 'number') lat.push(now() - sent);
    if (ctx.t?.i === Number(n) - 1) {
      process.stdout.write(`${JSON.stringify(lat)}\n`);
      void shared.close().then(() => process.exit(0));
    }
  });
  process.stdout.write('ready\n');
  // A SharedContext does not keep the process alive by itself: this one lives until the last
  // write has come (it exits then).
  setInterval(() => {}, 60_000);
} else if (role === '--pubsub-reader') {
  const [channel, n] = args;
  const sub = new Redis(REDIS_URL);
  const lat = [];
  sub.on('message', (_c, text) => {
    lat.push(now() - Number(text));
    if (lat.length === Number(n)) {
      process.stdout.write(`${JSON.stringify(lat)}\n`);
      process.exit(0);
    }
  });
  await sub.subscribe(channel);
  process.stdout.write('ready\n');
} else if (role === '--task-workers') {
  const [prefix, namespace, count] = args;
  const stop = new AbortController();
  const queues = Array.from(
    { length: Number(count) },
    () => new TaskQueue({ redis: REDIS_URL, prefix, namespace, handler: { echo: (t) => t.params } }),
  );
  const running = queues.map((q) => q.listen(['echo'], { concurrency: 1, signal: stop.signal }));
  process.stdout.write('ready\n');
  process.stdin.on('end', async () => {
    stop.abort();
    await Promise.all(running);
    await Promise.all(queues.map((q) => q.close()));
    process.exit(0);
  });
  process.stdin.resume();
} else if (role === '--list-workers') {
  const [queue, count] = args;
  const pub = new Redis(REDIS_URL);
  for (let i = 0; i < Number(count); i++) {
    const r = new Redis(REDIS_URL);
    void (async () => {
      for (;;) {
        const got = await r.blpop(queue, 0);
        const job = JSON.parse(got[1]);
        await pub.publish(job.reply, JSON.stringify({ id: job.id, result: job.params }));
      }
    })();
  }
  process.stdout.write('ready\n');
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
} else {
  await main();
}

function child(argv) {
  const c = spawn(process.execPath, [SELF, ...argv], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: c.stdout })[Symbol.asyncIterator]();
  const exited = new Promise((resolve) => c.on('exit', resolve));
  return { c, next: async () => (await lines.next()).value, exited };
}

function stats(lat) {
  const s = [...lat].sort((a, b) => a - b);
  return {
    p50_ms: round(percentile(s, 50), 3),
    p99_ms: round(percentile(s, 99), 3),
    max_ms: round(s[s.length - 1], 3),
  };
}

/** Writes at a steady pace (every `everyMs`), `n` times. */
async function paced(n, everyMs, write) {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const due = t0 + i * everyMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await write(i);
  }
}

async function propagation() {
  const prefix = `${uniqueName('bench-shared')}:`;
  const key = 'room';
  try {
    // Baseline: bare pub/sub between the same two processes.
    const channel = `${prefix}chan`;
    const pubsubReader = child(['--pubsub-reader', channel, String(SAMPLES)]);
    await pubsubReader.next();
    const pub = new Redis(REDIS_URL);
    await paced(SAMPLES, 2, () => pub.publish(channel, String(now())));
    const base = stats(JSON.parse(await pubsubReader.next()));
    pub.disconnect();

    const reader = child(['--shared-reader', prefix, key, String(SAMPLES)]);
    await reader.next();
    const writer = await SharedContext.open(key, { redis: REDIS_URL, prefix });
    await paced(SAMPLES, 2, (i) => writer.update('t', { i, sent: now() }));
    const seen = JSON.parse(await reader.next());
    const got = { ...stats(seen), received: seen.length };
    await writer.close();
    report({
      bench: 'shared.propagation_two_processes',
      samples: SAMPLES,
      writes_per_s: 500,
      ...got,
      baseline_pubsub: base,
      goal: 'p99_ms <= 10',
      goal_met: got.p99_ms <= 10,
    });
  } finally {
    await removeKeys(prefix);
  }
}

/** Keeps `inFlight` round trips going for SECONDS seconds; returns round trips per second. */
async function closedLoop(inFlight, once) {
  let done = 0;
  const end = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        await once();
        done++;
      }
    }),
  );
  return (done * 1000) / (performance.now() - t0);
}

async function taskRoundTrips() {
  const prefix = `${uniqueName('bench-tasks')}:`;
  const namespace = 'bench';
  const IN_FLIGHT = 32;
  try {
    // Baseline: a bare list queue with the same 8 workers in two processes, replies by PUBLISH.
    const queue = `${prefix}list`;
    const listWorkers = [child(['--list-workers', queue, '4']), child(['--list-workers', queue, '4'])];
    for (const w of listWorkers) await w.next();
    const redis = new Redis(REDIS_URL);
    const sub = new Redis(REDIS_URL);
    const reply = `${prefix}reply`;
    const waiting = new Map();
    sub.on('message', (_c, text) => {
      const m = JSON.parse(text);
      waiting.get(m.id)?.(m.result);
      waiting.delete(m.id);
    });
    await sub.subscribe(reply);
    let seq = 0;
    const bare = () =>
      new Promise((resolve) => {
        const id = String(seq++);
        waiting.set(id, resolve);
        void redis.rpush(queue, JSON.stringify({ id, reply, params: { n: id } }));
      });
    await closedLoop(IN_FLIGHT, bare); // warm-up
    const baseline = await closedLoop(IN_FLIGHT, bare);
    for (const w of listWorkers) w.c.stdin.end();
    redis.disconnect();
    sub.disconnect();

    const workers = [
      child(['--task-workers', prefix, namespace, '4']),
      child(['--task-workers', prefix, namespace, '4']),
    ];
    for (const w of workers) await w.next();
    const caller = new TaskQueue({ redis: REDIS_URL, prefix, namespace });
    const q = () => caller.query({ name: 'echo', params: { n: 1 }, policy: 'remote', once: true });
    await closedLoop(IN_FLIGHT, q); // warm-up
    const rate = await closedLoop(IN_FLIGHT, q);
    for (const w of workers) w.c.stdin.end();
    await Promise.all(workers.map((w) => w.exited));
    await caller.close();
    report({
      bench: 'tasks.round_trip_8_workers',
      in_flight: IN_FLIGHT,
      tasks_per_s: round(rate, 0),
      baseline_bare_list_queue_per_s: round(baseline, 0),
      ratio: round(rate / baseline),
    });
  } finally {
    await removeKeys(prefix);
  }
}

async function main() {
  await propagation();
  await taskRoundTrips();
}
