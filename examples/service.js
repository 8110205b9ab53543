// An example service under load: every simulated request runs in its own Context, whose changes
// are published by the process's handler. By default the handler writes JSON lines to standard
// output (no broker needed); set CONTEXTURE_URL=amqp://… to publish to RabbitMQ instead.
//
//   node examples/service.js                 # JSON lines on stdout
//   REQUESTS=20000 CONCURRENCY=200 node examples/service.js > /dev/null
//   STEP_MS=1000 node examples/service.js    # requests that take seconds (to watch them live)
import { setMaxListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { Context, configure } from '@contexture/context';

const REQUESTS = Number(process.env.REQUESTS ?? 2000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 50);
/** Extra time (ms, at random up to this) between the steps of a request. */
const STEP_MS = Number(process.env.STEP_MS ?? 0);

const handler = configure({ url: process.env.CONTEXTURE_URL ?? 'jsonl:-', wait: true, bufferSize: 100_000 });

const paths = ['/users', '/users/42', '/orders', '/orders/7/items', '/search?q=socks', '/health'];
// Stopping (Ctrl-C, docker stop) aborts the requests in flight at their next step.
const stopping = new AbortController();
setMaxListeners(0, stopping.signal); // one listener per request in flight
const sleep = (ms) => delay(ms + Math.random() * STEP_MS, undefined, { signal: stopping.signal });

class NotFound extends Error {
  name = 'NotFound';
}

/** One request: each assignment below is one message on the bus. */
const handle = Context.wrap(
  async (n) => {
    const ctx = Context.current();
    ctx.update({ request: n, method: n % 5 === 0 ? 'POST' : 'GET', path: paths[n % paths.length], user: `u${n % 97}` });
    await sleep(Math.random() * 4);
    ctx.db_ms = Math.round(Math.random() * 300) / 100;
    if (n % 53 === 0) {
      ctx.status_code = 404;
      throw new NotFound(`no ${ctx.path}`);
    }
    await sleep(Math.random() * 2);
    ctx.status_code = 200;
    ctx.bytes = 200 + ((n * 7919) % 5000);
    ctx.log.info('{method} {path} -> {status_code} ({bytes} bytes)');
    return ctx.bytes;
  },
  { name: 'example.web.request', headers: { service: 'example' } },
);

const started = performance.now();
let next = 0;
let failed = 0;
// Stopped (Ctrl-C, docker stop): no new requests, those in flight end at their next step (each
// context records the abort as its error), then what is buffered is published before the process
// ends. A context written after handler.close() is dropped, and the handler says so on stderr.
for (const signal of ['SIGINT', 'SIGTERM'])
  process.once(signal, () => {
    next = REQUESTS;
    stopping.abort();
  });
await Promise.all(
  Array.from({ length: CONCURRENCY }, async () => {
    while (next < REQUESTS) {
      const n = next++;
      await handle(n).catch(() => failed++);
    }
  }),
);
if (stopping.signal.aborted) {
  await handler.close();
  process.exit(0);
}
const seconds = (performance.now() - started) / 1000;
await handler.flush(10_000);
const s = handler.stats();
process.stderr.write(
  `example: ${REQUESTS} requests (${failed} failed) in ${seconds.toFixed(2)} s, ${Math.round(REQUESTS / seconds)} requests/s; ` +
    `${s.published} messages published, ${s.dropped} dropped\n`,
);
