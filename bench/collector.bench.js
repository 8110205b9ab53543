// Issue 4, collector ingest: messages/s from RabbitMQ into Redis through the Collector, side by side
// with a plain amqplib consume loop (parse + ack) draining an identical queue in the same run.
// Two streams of the same messages: 'interleaved' sends the 1000 contexts round-robin (each
// context's next message comes 1000 messages later: the worst case for per-context batching);
// 'bursts' has BURST contexts live at a time, round-robin among them, as concurrent requests
// publish (a request's messages come close together).
import os from 'node:os';
import amqp from 'amqplib';
import { Collector } from '@contexture/collector/daemon';
import { RedisContextStore } from '@contexture/collector/store';
import { AMQP_URL, REDIS_URL, removeKeys, report, round, uniqueName } from './support.js';

const N = Number(process.env.BENCH_INGEST_MESSAGES ?? 100_000);
const CONTEXTS = 1000;
const BURST = Number(process.env.BENCH_INGEST_BURST ?? 20);
const SCENARIOS = (process.env.BENCH_INGEST_SCENARIOS ?? 'interleaved,bursts').split(',');

function message(prefix, c, seq, per, t) {
  const m = {
    obj_id: `${prefix}-${c}`,
    obj: seq === 0 ? { n: 0, path: '/users/42' } : { n: seq, [`f${seq % 7}`]: seq * 3 },
    seq,
    time_in: t,
    handler_id: 'bench',
  };
  if (seq === 0) m.status = 'born';
  if (seq === per - 1) {
    m.status = 'finished';
    m.obj = {};
    m.elapsed = 1;
  }
  return Buffer.from(JSON.stringify(m));
}

/** The N messages of CONTEXTS contexts; `live` contexts at a time, round-robin among them. */
function stream(prefix, live) {
  const bodies = [];
  const t = Date.now() / 1000;
  const per = Math.ceil(N / CONTEXTS);
  for (let first = 0; first < CONTEXTS; first += live) {
    for (let seq = 0; seq < per; seq++) {
      for (let c = first; c < Math.min(CONTEXTS, first + live) && bodies.length < N; c++)
        bodies.push(message(prefix, c, seq, per, t));
    }
  }
  return bodies;
}

async function fill(ch, exchange, queue, bodies) {
  await ch.assertQueue(queue, { durable: true });
  await ch.bindQueue(queue, exchange, '#');
  for (const b of bodies) {
    if (!ch.publish(exchange, 'bench.ingest', b, { contentType: 'application/json' }))
      await new Promise((r) => ch.once('drain', r));
  }
  await ch.waitForConfirms();
  await ch.unbindQueue(queue, exchange, '#');
}

async function plainDrain(queue) {
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createChannel();
  await ch.prefetch(1000);
  let n = 0;
  const t0 = performance.now();
  await new Promise((resolve) => {
    ch.consume(queue, (msg) => {
      JSON.parse(msg.content.toString('utf8'));
      ch.ack(msg);
      if (++n === N) resolve();
    });
  });
  const ms = performance.now() - t0;
  await conn.close();
  return ms;
}

async function collectorDrain(exchange, queue, prefix) {
  const store = new RedisContextStore({ redis: REDIS_URL, prefix });
  const collector = new Collector({ store, url: AMQP_URL, exchange, queue, logger: null, prefetch: 2000 });
  const t0 = performance.now();
  await collector.start();
  await new Promise((resolve) => {
    const check = () => (collector.stats().acked >= N ? resolve() : setTimeout(check, 5));
    check();
  });
  const ms = performance.now() - t0;
  await collector.close();
  await store.clear?.();
  await store.close();
  return ms;
}

async function scenario(name, live) {
  const rounds = [];
  for (let r = 0; r < 2; r++) {
    const prefix = `${uniqueName('bench-ingest')}:`;
    const bodies = stream(prefix, live);
    const q1 = uniqueName('bench-plain');
    const q2 = uniqueName('bench-collector');
    await fill(ch, exchange, q1, bodies);
    await fill(ch, exchange, q2, bodies);
    const plain = await plainDrain(q1);
    const ours = await collectorDrain(exchange, q2, prefix);
    rounds.push({ plain, ours });
    await ch.deleteQueue(q1);
    await ch.deleteQueue(q2);
    await ch.deleteQueue(`${q2}.dead`);
    await removeKeys(prefix);
  }
  const plain = Math.min(...rounds.map((r) => r.plain));
  const ours = Math.min(...rounds.map((r) => r.ours));
  const rate = Math.round((N / ours) * 1000);
  const ratio = round(plain / ours);
  report({
    bench: 'collector.ingest',
    scenario: name,
    messages: N,
    contexts: CONTEXTS,
    contexts_live_at_once: live,
    plain_amqplib_consume_msgs_per_s: Math.round((N / plain) * 1000),
    collector_msgs_per_s: rate,
    ratio_collector_vs_plain: ratio,
    goal: 'collector_msgs_per_s >= 20000 and ratio >= 0.5',
    goal_met: rate >= 20000 && ratio >= 0.5,
    load_avg_1min: round(os.loadavg()[0]),
  });
}

const exchange = uniqueName('bench-ingest');
const conn = await amqp.connect(AMQP_URL);
const ch = await conn.createConfirmChannel();
await ch.assertExchange(exchange, 'topic', { durable: true });
if (SCENARIOS.includes('interleaved')) await scenario('interleaved', CONTEXTS);
if (SCENARIOS.includes('bursts')) await scenario('bursts', BURST);
await ch.deleteExchange(exchange);
await conn.close();
