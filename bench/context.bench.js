// Issue 2 benchmarks, each side by side with its baseline in the same run:
//  1. cost of one context change vs JSON.stringify of the same message
//  2. publish throughput vs a plain amqplib confirm-channel publish loop with the same bodies (and batch mode)
//  3. change-to-consumer latency p50/p99 at 5,000 changes/s (consumer in another process)
//  4. memory during a 30 s broker outage at full speed
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import amqp from 'amqplib';
import { Context, Handler } from '@contexture/context';
import { AMQP_URL, best, percentile, report, round, uniqueName } from './support.js';

if (process.argv[2] === '--consumer') {
  await latencyConsumer(process.argv[3], Number(process.argv[4]));
  process.exit(0);
}

const OUTAGE_SECONDS = Number(process.env.BENCH_OUTAGE_SECONDS ?? 30);

await changeCost();
await publishThroughput();
await latency();
await outageMemory();

async function changeCost() {
  const N = 200_000;
  const id = randomUUID();
  const hid = randomUUID();
  const baseline = await best(5, () => {
    for (let i = 0; i < N; i++) {
      const t = Date.now() / 1000;
      JSON.stringify({
        obj_id: id,
        obj: { n: i },
        seq: i,
        handler_id: hid,
        time_in: t,
        time_out: t,
        qtime: 0,
        qlen: 0,
      });
    }
  });
  // The change as the program pays it (synchronous), then with the publish-time encoding and the
  // write (to /dev/null) that the background flush adds.
  let sync = Infinity;
  let total = Infinity;
  for (let r = 0; r < 5; r++) {
    const handler = new Handler({ url: 'jsonl:/dev/null', bufferSize: N + 10, flushInterval: 60_000, logger: null });
    const ctx = new Context({ name: 'bench.change', handler });
    const t0 = performance.now();
    for (let i = 0; i < N; i++) ctx.n = i;
    sync = Math.min(sync, performance.now() - t0);
    await handler.flush();
    total = Math.min(total, performance.now() - t0);
    await handler.close();
  }
  report({
    bench: 'context.change_cost',
    changes: N,
    json_stringify_ns: round((baseline * 1e6) / N, 0),
    change_ns: round((sync * 1e6) / N, 0),
    change_plus_publish_encoding_ns: round((total * 1e6) / N, 0),
    ratio_change_vs_stringify: round(sync / baseline),
    ratio_with_encoding_vs_stringify: round(total / baseline),
    goal: 'ratio_change_vs_stringify <= 2',
    goal_met: sync / baseline <= 2,
  });
}

async function publishThroughput() {
  const N = 100_000;
  const exchange = uniqueName('bench-pub');
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createConfirmChannel();
  await ch.assertExchange(exchange, 'topic', { durable: true });
  // A queue bound to the exchange, so the broker does the routing work of a real deployment.
  const q = await ch.assertQueue('', {
    exclusive: true,
    arguments: { 'x-max-length': 1000, 'x-overflow': 'drop-head' },
  });
  await ch.bindQueue(q.queue, exchange, '#');

  // The plain publisher builds the same body per message (JSON.stringify + Buffer.from), as any
  // real publisher must; `plain_prebuilt` publishes buffers made before the clock starts.
  const id = randomUUID();
  const hid = randomUUID();
  const headers = { hostname: os.hostname() };
  const props = (i) => ({
    contentType: 'application/json',
    messageId: `${id}:${i + 1}`,
    timestamp: Math.floor(Date.now() / 1000),
    appId: 'contexture',
    headers,
  });
  const bodyOf = (i) => {
    const t = Date.now() / 1000;
    return Buffer.from(
      JSON.stringify({
        obj_id: id,
        obj: { n: i },
        seq: i + 1,
        handler_id: hid,
        time_in: t,
        time_out: t,
        qtime: 0.001,
        qlen: 10,
      }),
    );
  };
  const plain = (prebuilt) => async () => {
    const bodies = prebuilt ? Array.from({ length: N }, (_, i) => bodyOf(i)) : null;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const ok = ch.publish(exchange, 'bench.publish', prebuilt ? bodies[i] : bodyOf(i), props(i));
      if (!ok) await new Promise((r) => ch.once('drain', r));
    }
    await ch.waitForConfirms();
    return performance.now() - t0;
  };
  const ours = (batch) => async () => {
    const handler = new Handler({ url: AMQP_URL, exchange, bufferSize: N + 10, batch, logger: null });
    const warm = new Context({ name: 'bench.publish', handler, transient: true });
    void warm;
    await handler.flush();
    const t0 = performance.now();
    const ctx = new Context({ name: 'bench.publish', handler });
    for (let i = 0; i < N; i++) {
      ctx.n = i;
      if (i % 2000 === 1999) await new Promise((r) => setImmediate(r));
    }
    await handler.flush();
    const ms = performance.now() - t0;
    await handler.close();
    return ms;
  };
  const results = { plain: [], prebuilt: [], single: [], batch: [] };
  for (let round_ = 0; round_ < 5; round_++) {
    results.plain.push(await plain(false)());
    results.single.push(await ours(false)());
    results.prebuilt.push(await plain(true)());
    results.batch.push(await ours(true)());
  }
  await ch.deleteExchange(exchange);
  await conn.close();
  const rate = (ms) => Math.round((N / Math.min(...ms)) * 1000);
  report({
    bench: 'context.publish_throughput',
    messages: N,
    plain_amqplib_msgs_per_s: rate(results.plain),
    plain_amqplib_prebuilt_bodies_msgs_per_s: rate(results.prebuilt),
    handler_msgs_per_s: rate(results.single),
    handler_batch_msgs_per_s: rate(results.batch),
    ratio_handler_vs_plain: round(rate(results.single) / rate(results.plain)),
    ratio_batch_vs_plain: round(rate(results.batch) / rate(results.plain)),
    ratio_handler_vs_plain_prebuilt: round(rate(results.single) / rate(results.prebuilt)),
    goal: 'ratio_handler_vs_plain >= 0.9, ratio_batch_vs_plain >= 5',
    goal_met: rate(results.single) / rate(results.plain) >= 0.9 && rate(results.batch) / rate(results.plain) >= 5,
  });
}

async function latency() {
  const RATE = 5000;
  const SECONDS = 10;
  const N = RATE * SECONDS;
  const exchange = uniqueName('bench-lat');
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createChannel();
  await ch.assertExchange(exchange, 'topic', { durable: true });
  const child = spawn(process.execPath, [new URL(import.meta.url).pathname, '--consumer', exchange, String(N)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await new Promise((resolve) => {
    const check = () => (out.includes('ready') ? resolve() : setTimeout(check, 20));
    check();
  });
  const handler = new Handler({ url: AMQP_URL, exchange, logger: null });
  new Context({ name: 'bench.latency', handler, transient: true });
  await handler.flush();
  const ctx = new Context({ name: 'bench.latency', handler });
  const start = performance.now();
  let sent = 0;
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(N, Math.floor(((performance.now() - start) / 1000) * RATE));
      while (sent < due) ctx.n = sent++;
      if (sent >= N) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  const achieved = Math.round(N / ((performance.now() - start) / 1000));
  await new Promise((resolve) => child.on('close', resolve));
  await handler.close();
  await ch.deleteExchange(exchange);
  await conn.close();
  const summary = JSON.parse(out.slice(out.indexOf('{')));
  report({
    bench: 'context.latency',
    target_changes_per_s: RATE,
    achieved_changes_per_s: achieved,
    ...summary,
    goal: 'p99_ms <= 50',
    goal_met: summary.p99_ms <= 50,
  });
}

async function latencyConsumer(exchange, n) {
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createChannel();
  const q = await ch.assertQueue('', { exclusive: true });
  await ch.bindQueue(q.queue, exchange, '#');
  const lat = [];
  let done;
  const finished = new Promise((r) => (done = r));
  await ch.consume(
    q.queue,
    (msg) => {
      const now = Date.now() / 1000;
      const body = JSON.parse(msg.content.toString());
      if (body.status !== undefined) return;
      lat.push((now - body.time_in) * 1000);
      if (lat.length >= n) done();
    },
    { noAck: true },
  );
  process.stdout.write('ready\n');
  await finished;
  lat.sort((a, b) => a - b);
  process.stdout.write(
    `${JSON.stringify({
      received: lat.length,
      p50_ms: round(percentile(lat, 50)),
      p99_ms: round(percentile(lat, 99)),
      max_ms: round(lat.at(-1)),
    })}\n`,
  );
  await conn.close();
}

async function outageMemory() {
  const handler = new Handler({
    url: 'amqp://guest:guest@127.0.0.1:1/%2F',
    logger: null,
    reconnect: { initialDelay: 100, maxDelay: 1000 },
  });
  const samples = [];
  let produced = 0;
  const start = performance.now();
  let ctx = new Context({ name: 'bench.outage', handler });
  const sample = () => {
    globalThis.gc?.();
    const m = process.memoryUsage();
    samples.push({
      t: Math.round((performance.now() - start) / 1000),
      heap_mb: round(m.heapUsed / 1048576, 1),
      rss_mb: round(m.rss / 1048576, 1),
    });
  };
  sample();
  let nextSample = 1000;
  while (performance.now() - start < OUTAGE_SECONDS * 1000) {
    for (let i = 0; i < 10_000; i++) {
      if (produced % 100 === 0) {
        ctx.finish();
        ctx = new Context({ name: 'bench.outage', handler, context: { started: produced } });
      } else ctx.n = produced;
      produced++;
    }
    if (performance.now() - start >= nextSample) {
      sample();
      nextSample += 1000;
    }
    await new Promise((r) => setImmediate(r));
  }
  sample();
  const s = handler.stats();
  handler.destroy();
  const at = (sec) => samples.find((x) => x.t >= sec) ?? samples.at(-1);
  report({
    bench: 'context.outage_memory',
    seconds: OUTAGE_SECONDS,
    changes: produced,
    changes_per_s: Math.round(produced / OUTAGE_SECONDS),
    messages: s.enqueued,
    buffer_size: handler.options.bufferSize,
    queued_at_end: s.queued,
    dropped: s.dropped,
    heap_mb_at_2s: at(2).heap_mb,
    heap_mb_at_10s: at(10).heap_mb,
    heap_mb_at_end: samples.at(-1).heap_mb,
    heap_mb_max: Math.max(...samples.map((x) => x.heap_mb)),
    rss_mb_max: Math.max(...samples.map((x) => x.rss_mb)),
    // Bounded: what the heap holds after 10 s (the buffer full) it still holds at the end, within
    // a quarter and a megabyte of collector slack.
    goal: 'heap bounded by the buffer, not growing with time: heap_mb_at_end <= 1.25 * heap_mb_at_10s + 1',
    goal_met: samples.at(-1).heap_mb <= 1.25 * at(10).heap_mb + 1,
  });
}
