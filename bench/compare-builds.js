// Compares two builds of @contexture/collector on one of Chord's scenarios, in one process, in
// alternating blocks: the machine's drift (which moves a run by 10-40% here) touches both alike.
// A change of a few per cent shows only this way.
//
//   node bench/compare-builds.js <before> [after] [single|multi] [memory|redis]
//
// <before> / [after]: a checkout's root whose packages/collector is built (`npm ci && npm run build`
// in a `git worktree add ../before <commit>`); [after] defaults to this checkout. Env: ROUNDS
// (default 20) rounds of one block each, BLOCK ms per block (default 600; 1500 suits `multi`).
// Prints the rate of each build over all its blocks, their ratio, and the lowest, median and highest
// ratio of the two blocks of a round.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chordMulti, chordSingle } from './chord-scenarios.js';
import { REDIS_URL, removeKeys, round, uniqueName } from './support.js';

const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [beforeRoot, afterRoot = here, scenario = 'single', backend = 'memory'] = process.argv.slice(2);
if (beforeRoot === undefined || !['single', 'multi'].includes(scenario) || !['memory', 'redis'].includes(backend)) {
  process.stderr.write('usage: node bench/compare-builds.js <before> [after] [single|multi] [memory|redis]\n');
  process.exit(2);
}
const ROUNDS = Number(process.env.ROUNDS ?? 20);
const BLOCK = Number(process.env.BLOCK ?? 600);

const load = (root) => import(pathToFileURL(path.resolve(root, 'packages/collector/dist/src/index.js')).href);
const builds = await Promise.all([load(beforeRoot), load(afterRoot)]);
const prefixes = builds.map(() => `${uniqueName('bench-compare')}:`);
const stores = builds.map((m, i) =>
  backend === 'redis' ? new m.RedisContextStore({ redis: REDIS_URL, prefix: prefixes[i] }) : new m.MemoryContextStore(),
);
const ops = stores.map((store) => (scenario === 'single' ? chordSingle : chordMulti)(store));

/** Runs `op` for BLOCK ms: [ops done, ms taken]. */
async function block(op) {
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < BLOCK) {
    await op();
    n++;
  }
  return [n, performance.now() - t0];
}

try {
  for (const op of ops) await block(op); // warm-up
  const totals = [
    [0, 0],
    [0, 0],
  ];
  const ratios = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Each round runs both, the first one in turn.
    const order = r % 2 === 0 ? [0, 1] : [1, 0];
    const got = [];
    for (const i of order) got[i] = await block(ops[i]);
    got.forEach(([n, ms], i) => {
      totals[i][0] += n;
      totals[i][1] += ms;
    });
    ratios.push(got[1][0] / got[1][1] / (got[0][0] / got[0][1]));
  }
  const rate = ([n, ms]) => (n * 1000) / ms;
  ratios.sort((a, b) => a - b);
  process.stdout.write(
    `${JSON.stringify({
      bench: `collector.compare.${scenario}_${backend}`,
      before: beforeRoot,
      after: afterRoot,
      rounds: ROUNDS,
      block_ms: BLOCK,
      before_ops_per_s: round(rate(totals[0])),
      after_ops_per_s: round(rate(totals[1])),
      after_vs_before: round(rate(totals[1]) / rate(totals[0]), 3),
      round_ratio_min_median_max: [ratios[0], ratios[ratios.length >> 1], ratios.at(-1)].map((x) => round(x, 2)),
    })}\n`,
  );
} finally {
  for (const s of stores) await s.close();
  for (const p of prefixes) await removeKeys(p);
}
