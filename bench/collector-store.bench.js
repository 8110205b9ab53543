// Issue 4 benchmarks of the context store, Redis and memory side by side in one run:
//  1. the published Chord scenarios, as Chord's bench/chord_benchmark.exs ran them for the figures
//     in its README (the version with one input, "Data"): a group chat's context (50 participants
//     with six fields each, metadata, 20 messages of history) is set, then 50 concurrent tasks each
//     update a participant's status (a third), its typing flag (a third) or sync from version 1 (a
//     third); over 100 contexts: the 100 contexts set one after another, then 10 such tasks per
//     context, 1000 at once. One op = one such batch; ops/s against Chord's figures.
//     Also this project's earlier, lighter reading of them (BENCH_STORE_SCENARIOS=…,simple): a
//     context of one field, 50 participants each doing update + sync; 100 contexts each set +
//     update + sync. Kept to compare with the figures measured before.
//  2. raw apply() throughput into Redis with N calls in flight (what the collector daemon needs)
import { MemoryContextStore, RedisContextStore } from '@contexture/collector/store';
import { chordMulti, chordSingle, groupContext } from './chord-scenarios.js';
import { REDIS_URL, removeKeys, report, round, uniqueName } from './support.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const SCENARIOS = (process.env.BENCH_STORE_SCENARIOS ?? 'chord,apply').split(',');
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

/** The earlier, lighter reading of the single-context scenario: a one-field context, 50 × (update + sync). */
function simpleSingle(store) {
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

/** The earlier, lighter reading of the 100-context scenario: each of 100 contexts set, updated and synced, all at once. */
function simpleMulti(store) {
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

/**
 * What one op of Chord's scenarios makes before any store sees it: the group contexts it sets (one,
 * or 100), built as Chord's benchmark builds them. Its rate is the most any store could reach.
 */
const INPUT_ONLY = {
  single: () => async () => groupContext('group:123'),
  multi: () => async () => {
    for (let c = 1; c <= 100; c++) groupContext(`group:${c}`);
  },
};

async function chordScenarios(runs) {
  for (const [scenario, key, make] of runs) {
    const prefix = `${uniqueName('bench-store')}:`;
    const redisStore = new RedisContextStore({ redis: REDIS_URL, prefix });
    const memoryStore = new MemoryContextStore();
    try {
      const redis = await opsPerSecond(make(redisStore));
      const memory = await opsPerSecond(make(memoryStore));
      const inputOnly = scenario.startsWith('simple') ? null : await opsPerSecond(INPUT_ONLY[key]());
      report({
        bench: `collector.chord.${scenario}`,
        redis_ops_per_s: round(redis),
        memory_ops_per_s: round(memory),
        ...(inputOnly === null
          ? {}
          : {
              input_only_ops_per_s: round(inputOnly),
              input_only_vs_chord_ets: round(inputOnly / CHORD[key].memory),
              note: "input_only: building the op's contexts alone, no store: the most any store can reach",
            }),
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
      const m = {
        obj_id: `req-${i % contexts}`,
        obj: { n: i, user: 'ann', path: '/api/items' },
        seq,
        handler_id: 'h',
        time_in: now,
        time_out: now,
        qtime: 0,
        qlen: 1,
      };
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
    const prefix = `${uniqueName('bench-apply')}:`;
    const store = new RedisContextStore({ redis: REDIS_URL, prefix });
    try {
      const n = inFlight === 1 ? 10_000 : 100_000;
      await applyThroughput(store, inFlight, 5_000); // warm-up
      await removeKeys(prefix);
      const rate = await applyThroughput(store, inFlight, n);
      report({
        bench: 'collector.store.apply_redis',
        in_flight: inFlight,
        messages: n,
        messages_per_s: round(rate, 0),
        goal: 'messages_per_s >= 20000 (collector ingest)',
      });
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

if (SCENARIOS.includes('chord')) {
  await chordScenarios([
    ['single_context_50_participants', 'single', chordSingle],
    ['multiple_contexts_100', 'multi', chordMulti],
  ]);
}
if (SCENARIOS.includes('simple')) {
  await chordScenarios([
    ['simple_single_context_50_update_sync', 'single', simpleSingle],
    ['simple_multiple_contexts_100_set_update_sync', 'multi', simpleMulti],
  ]);
}
if (SCENARIOS.includes('apply')) await applyScenarios();
