// Issue 19: the web middleware's cost counted in instructions, the counterpart of web.bench.js's
// requests per second. Each app of web.bench.js (a minimal Express 5 or Fastify 5 app, without
// the middleware, or with it publishing to the real broker one AMQP message per context message
// or in batch mode) runs under valgrind's callgrind twice, serving SMALL and then LARGE requests
// (8 keep-alive connections on loopback); the difference of the two totals over LARGE - SMALL is
// the app's user-space instructions per request, start-up and JIT warm-up left out. It does not
// count the kernel (the system calls of sending) nor the broker's work, which web.bench.js's
// requests/s include. Nor is it free of the machine: the handler's timers (flushInterval) run on
// the clock, and under callgrind's slowdown each flush carries far fewer messages than at full
// speed, so what is paid once per flush (a publish, its confirm, a timer) is counted more often
// per request than a server running at full speed pays it, the more so the busier the machine.
// cost_ratio = plain / with the middleware (the same sense as web.bench.js's ratio; goal >= 0.9).
// Needs valgrind (Debian's valgrind package); without it the bench says so and reports nothing.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { AMQP_URL, jsonLines, report, round, uniqueName } from './support.js';

const SMALL = Number(process.env.BENCH_WEB_COST_SMALL ?? 1500);
const LARGE = Number(process.env.BENCH_WEB_COST_LARGE ?? 3500);
const FRAMEWORKS = (process.env.BENCH_WEB_FRAMEWORKS ?? 'express,fastify').split(',');
const MODES = (process.env.BENCH_WEB_MODES ?? 'per-message,batch').split(',');
const WEB_BENCH = fileURLToPath(new URL('./web.bench.js', import.meta.url));

try {
  execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
} catch {
  process.stderr.write('web-cost.bench.js: valgrind is not installed (apt-get install valgrind); nothing measured\n');
  process.exit(0);
}

/** `total` requests on 8 keep-alive connections, one after another on each. */
async function requests(port, total) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  let sent = 0;
  let failed = 0;
  const one = () =>
    new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: `/users/${sent++ % 1000}`, agent }, (res) => {
        if (res.statusCode !== 200) failed++;
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', () => {
        failed++;
        resolve();
      });
    });
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (sent < total) await one();
    }),
  );
  agent.destroy();
  return failed;
}

/** Instructions of one app's process serving `n` requests (start-up included), and its handler's stats. */
async function instructions(framework, variant, exchange, n) {
  const out = path.join(os.tmpdir(), `${uniqueName('web-cost')}.callgrind`);
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      `--callgrind-out-file=${out}`,
      process.execPath,
      WEB_BENCH,
      '--serve',
      framework,
      variant,
      exchange,
    ],
    { stdio: ['pipe', 'pipe', 'ignore'] },
  );
  const next = jsonLines(child.stdout);
  const { port } = await next();
  const failed = await requests(port, n);
  child.stdin.end();
  const { stats } = await next();
  await new Promise((r) => child.once('exit', r));
  const text = fs.readFileSync(out, 'utf8');
  fs.rmSync(out, { force: true });
  const total = /^(?:summary|totals): (\d+)/m.exec(text);
  if (total === null) throw new Error(`no instruction total in callgrind's output for ${framework} ${variant}`);
  return { instructions: Number(total[1]), failed, stats };
}

const exchange = uniqueName('bench-web-cost');
const perRequest = new Map();
let failed = 0;
const published = new Map();
for (const framework of FRAMEWORKS) {
  for (const variant of ['plain', ...MODES]) {
    const small = await instructions(framework, variant, exchange, SMALL);
    const large = await instructions(framework, variant, exchange, LARGE);
    failed += small.failed + large.failed;
    perRequest.set(`${framework} ${variant}`, (large.instructions - small.instructions) / (LARGE - SMALL));
    published.set(`${framework} ${variant}`, large.stats);
  }
  for (const mode of MODES) {
    const plain = perRequest.get(`${framework} plain`);
    const withCtx = perRequest.get(`${framework} ${mode}`);
    const ratio = plain / withCtx;
    report({
      bench: 'web.instructions_per_request',
      scenario: framework,
      mode,
      requests: `${SMALL} and ${LARGE}`,
      plain_instructions: Math.round(plain),
      contexture_instructions: Math.round(withCtx),
      added_instructions: Math.round(withCtx - plain),
      cost_ratio: round(ratio),
      messages_published: published.get(`${framework} ${mode}`)?.published,
      messages_dropped: published.get(`${framework} ${mode}`)?.dropped,
      failed_requests: failed,
      goal: 'cost_ratio >= 0.9',
      goal_met: ratio >= 0.9,
    });
  }
}
const conn = await amqp.connect(AMQP_URL);
const ch = await conn.createChannel();
await ch.deleteExchange(exchange);
await conn.close();
