// Issue 4 benchmarks of the context store, Redis and memory side by side in one run:
//  1. the published Chord scenarios: 50 participants each doing update + sync on one context
//     (one op = the batch of 50, after Chord's set of the context), and the same over 100 contexts
//     (one op = set + update + sync on each of 100 contexts); ops/s against Chord's figures
//  2. raw apply() throughput into Redis with N calls in flight (what the collector daemon needs)
import { MemoryContextStore, RedisContextStore } from '@contexture/collector';
import { REDIS_URL, removeKeys, report, round, uniqueName } from './support.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const CHORD = {
  single: { redis: 92.89, memory: 230.61 },
  multi: { redis: 1.57, memory: 4.69 },
};
const GOAL = { redis: 10, memory: 100 };

let unique = 0;

/** Runs `op` repeatedly for a warm-up second then SECONDS seconds; returns ops/s. */
async function opsPerSecond(op) {
  const warm = performance.now() + 1000;
  while (performance.now() < warm) await op();
  let ops = 0;
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  while (performance.now() < end) {
    await op();
    ops++;
  }
  return (ops * 1000) / (performance.now() - t0);
}

/** Chord's single-context scenario: set the context, then 50 participants update and sync at once. */
function singleContext(store) {
  const id = 'group:123';
  const seen = new Array(50).fill(null);
  return async () => {
    await store.set(id, { status: 'active' });
    await Promise.all(
      seen.map(async (_, i) => {
        await store.update(id, { [`participant_${i}`]: `status_${++unique}` });
        const r = await store.sync(id, seen[i]);
        seen[i] = r.version;
      }),
    );
  };
}

/** Chord's 100-context scenario: each of 100 contexts set, then updated and synced, all at once. */
function multiContext(store) {
  const seen = new Array(100).fill(null);
  return async () => {
    await Promise.all(
      seen.map(async (_, i) => {
        const id = `group:${i}`;
        await store.set(id, { status: 'active' });
        await store.update(id, { status: `inactive_${++unique}` });
        const r = await store.sync(id, seen[i]);
        seen[i] = r.version;
      }),
    );
  };
}

async function chordScenarios() {
  for (const [scenario, make] of [
    ['single_context_50_participants', singleContext],
    ['multiple_contexts_100', multiContext],
  ]) {
    const key = scenario.startsWith('single') ? 'single' : 'multi';
    const prefix = uniqueName('bench-store') + ':';
    const redisStore = new RedisContextStore({ redis: REDIS_URL, prefix });
    const memoryStore = new MemoryContextStore();
    try {
      const redis = await opsPerSecond(make(redisStore));
      const memory = await opsPerSecond(make(memoryStore));
      report({
        bench: `collector.chord.${scenario}`,
        redis_ops_per_s: round(redis),
        memory_ops_per_s: round(memory),
        chord_redis_ops_per_s: CHORD[key].redis,
        chord_ets_ops_per_s: CHORD[key].memory,
        ratio_redis_vs_chord: round(redis / CHORD[key].redis),
        ratio_memory_vs_chord_ets: round(memory / CHORD[key].memory),
        goal: `redis >= ${GOAL.redis}x, memory >= ${GOAL.memory}x`,
        redis_goal_met: redis / CHORD[key].redis >= GOAL.redis,
        memory_goal_met: memory / CHORD[key].memory >= GOAL.memory,
      });
    } finally {
      await redisStore.close();
      await memoryStore.close();
      await removeKeys(prefix);
    }
  }
}

/** apply() of N messages over `contexts` contexts with `inFlight` calls outstanding at any time. */
async function applyThroughput(store, inFlight, n = 100_000, contexts = 2000) {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const seq = Math.floor(i / contexts);
      const now = Date.now() / 1000;
      const m = { obj_id: `req-${i % contexts}`, obj: { n: i, user: 'ann', path: '/api/items' }, seq, handler_id: 'h', time_in: now, time_out: now, qtime: 0, qlen: 1 };
      if (seq === 0) m.status = 'born';
      await store.apply(m, { rkey: 'app.request', headers: { hostname: 'bench' } });
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  return (n * 1000) / (performance.now() - t0);
}

async function applyScenarios() {
  for (const inFlight of [1, 100, 500, 1000]) {
    const prefix = uniqueName('bench-apply') + ':';
    const store = new RedisContextStore({ redis: REDIS_URL, prefix });
    try {
      const n = inFlight === 1 ? 10_000 : 100_000;
      await applyThroughput(store, inFlight, 5_000); // warm-up
      await removeKeys(prefix);
      const rate = await applyThroughput(store, inFlight, n);
      report({ bench: 'collector.store.apply_redis', in_flight: inFlight, messages: n, messages_per_s: round(rate, 0), goal: 'messages_per_s >= 20000 (collector ingest)' });
    } finally {
      await store.close();
      await removeKeys(prefix);
    }
  }
  const memory = new MemoryContextStore();
  const rate = await applyThroughput(memory, 100, 100_000);
  report({ bench: 'collector.store.apply_memory', in_flight: 100, messages: 100_000, messages_per_s: round(rate, 0) });
  await memory.close();
}

await chordScenarios();
await applyScenarios();
