// Issue 19: the cost of the web middleware. Requests per second of a minimal Express 5 and Fastify 5
// app (one GET route with a parameter, a small JSON reply), each without the middleware and with it
// publishing every request's context to the real broker (with the default bornAfter, a request that
// ends within 10 ms is one transient message; a slower one is born, then finished with its last
// fields: messages_published says how many went), one message per AMQP message (mode per-message,
// the default) and packed in batch mode (mode batch), side by side in one run. Each app runs in its
// own process; this process is the load: CONCURRENCY keep-alive connections on loopback, each
// sending its next request when the last is answered, for SECONDS a round. The apps take turns round by round, so the machine's
// drift touches them alike; each figure is the best round. Goal: ratio (with / without) >= 0.9.
// The server's CPU time per request is reported too (cpu_ratio = without / with, the same sense):
// on a machine shared with the broker and other work it moves less than requests/s. BENCH_WEB_URL
// publishes elsewhere (jsonl:/dev/null: the middleware's own cost, no broker); BENCH_WEB_MODES
// picks the modes (per-message,batch).
// A third app of each framework, `als`, has no middleware but one AsyncLocalStorage run() per
// request: what keeps Context.current() the request's context down its awaits. On Node 20 an
// AsyncLocalStorage in use makes Node call a hook at every promise and async resource the process
// creates, which a minimal app feels; als_only_ratio is that share, ratio_to_als_only the rest.
import { AsyncLocalStorage } from 'node:async_hooks';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { AMQP_URL, jsonLines, report, round, uniqueName } from './support.js';

const SECONDS = Number(process.env.BENCH_WEB_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_WEB_ROUNDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_WEB_CONCURRENCY ?? 32);
const FRAMEWORKS = (process.env.BENCH_WEB_FRAMEWORKS ?? 'express,fastify').split(',');
const MODES = (process.env.BENCH_WEB_MODES ?? 'per-message,batch').split(',');

if (process.argv[2] === '--serve') await serve(process.argv[3], process.argv[4], process.argv[5]);
else await main();

/** One app: prints its port, and its handler's stats once its standard input ends. */
async function serve(framework, variant, exchange) {
  const { Handler } = await import('@contexture/context');
  const url = process.env.BENCH_WEB_URL ?? AMQP_URL;
  const publishes = variant === 'per-message' || variant === 'batch';
  const handler = publishes ? new Handler({ url, exchange, logger: null, batch: variant === 'batch' }) : null;
  // `als`: no middleware, only what makes Context.current() work, one AsyncLocalStorage run per request.
  const als = variant === 'als' ? new AsyncLocalStorage() : null;
  let port;
  if (framework === 'express') {
    const { default: express } = await import('express');
    const { contexture } = await import('@contexture/context/express');
    const app = express();
    if (handler !== null) app.use(contexture({ handler }));
    if (als !== null) app.use((req, _res, next) => als.run(req, next));
    app.get('/users/:id', (req, res) => {
      res.json({ id: req.params.id });
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    port = server.address().port;
  } else {
    const { default: Fastify } = await import('fastify');
    const { default: contexturePlugin } = await import('@contexture/context/fastify');
    const app = Fastify();
    if (handler !== null) await app.register(contexturePlugin, { handler });
    if (als !== null) app.addHook('onRequest', (req, _reply, next) => als.run(req, next));
    app.get('/users/:id', async (req) => ({ id: req.params.id }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = app.server.address().port;
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  // Each line in asks for the CPU time used so far (µs, user + system).
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    for (let i = 0; i < chunk.split('\n').length - 1; i++) {
      const u = process.cpuUsage();
      process.stdout.write(`${JSON.stringify({ cpu: u.user + u.system })}\n`);
    }
  });
  process.stdin.on('end', async () => {
    let stats = null;
    if (handler !== null) {
      await handler.flush(10_000);
      const s = handler.stats();
      stats = { published: s.published, dropped: s.dropped };
      await handler.close();
    }
    process.stdout.write(`${JSON.stringify({ stats })}\n`, () => process.exit(0));
  });
}

function start(framework, variant, exchange) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', framework, variant, exchange], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const next = jsonLines(child.stdout);
  const cpu = async () => {
    child.stdin.write('cpu\n');
    return (await next()).cpu;
  };
  return { framework, variant, child, next, cpu };
}

/** CONCURRENCY loops of one request after another on keep-alive connections, for `seconds`. */
async function load(port, seconds) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const deadline = performance.now() + seconds * 1000;
  let done = 0;
  let failed = 0;
  let n = 0;
  const one = () =>
    new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: `/users/${n++ % 1000}`, agent }, (res) => {
        if (res.statusCode === 200) done++;
        else failed++;
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', () => {
        failed++;
        resolve();
      });
    });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < deadline) await one();
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  agent.destroy();
  return { rps: done / elapsed, requests: done, failed };
}

async function main() {
  const exchange = uniqueName('bench-web');
  const apps = [];
  for (const framework of FRAMEWORKS)
    for (const variant of ['plain', 'als', ...MODES]) apps.push(start(framework, variant, exchange));
  const ports = new Map();
  for (const a of apps) ports.set(a, (await a.next()).port);
  for (const a of apps) await load(ports.get(a), 1); // warm-up
  const best = new Map(apps.map((a) => [a, 0]));
  const cpuPerRequest = new Map(apps.map((a) => [a, Infinity]));
  let failed = 0;
  for (let r = 0; r < ROUNDS; r++) {
    for (const a of apps) {
      const cpu0 = await a.cpu();
      const { rps, requests, failed: f } = await load(ports.get(a), SECONDS);
      const cpu = (await a.cpu()) - cpu0;
      best.set(a, Math.max(best.get(a), rps));
      cpuPerRequest.set(a, Math.min(cpuPerRequest.get(a), cpu / requests));
      failed += f;
    }
  }
  const stats = new Map();
  for (const a of apps) {
    a.child.stdin.end();
    stats.set(a, (await a.next()).stats);
  }
  for (const framework of FRAMEWORKS)
    for (const mode of MODES) {
      const plain = apps.find((a) => a.framework === framework && a.variant === 'plain');
      const withCtx = apps.find((a) => a.framework === framework && a.variant === mode);
      const alsOnly = apps.find((a) => a.framework === framework && a.variant === 'als');
      const ratio = best.get(withCtx) / best.get(plain);
      report({
        bench: 'web.requests_per_second',
        scenario: framework,
        mode,
        seconds_per_round: SECONDS,
        rounds: ROUNDS,
        concurrency: CONCURRENCY,
        plain_rps: round(best.get(plain), 0),
        contexture_rps: round(best.get(withCtx), 0),
        ratio: round(ratio),
        // The share of Node's AsyncLocalStorage in it: the app with one run() per request and nothing else.
        als_only_rps: round(best.get(alsOnly), 0),
        als_only_ratio: round(best.get(alsOnly) / best.get(plain)),
        // The middleware against that app: its cost beyond making the context current.
        ratio_to_als_only: round(best.get(withCtx) / best.get(alsOnly)),
        // The server's CPU time per request (best round): steadier than requests/s on a busy machine.
        plain_cpu_us_per_request: round(cpuPerRequest.get(plain), 0),
        contexture_cpu_us_per_request: round(cpuPerRequest.get(withCtx), 0),
        cpu_ratio: round(cpuPerRequest.get(plain) / cpuPerRequest.get(withCtx)),
        messages_published: stats.get(withCtx)?.published,
        messages_dropped: stats.get(withCtx)?.dropped,
        failed_requests: failed,
        goal: 'ratio >= 0.9',
        goal_met: ratio >= 0.9,
      });
    }
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createChannel();
  await ch.deleteExchange(exchange);
  await conn.close();
}
