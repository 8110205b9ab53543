// Issue 17, collector ingest on a quorum queue with 1, 2 and 3 collectors: on the 3-node RabbitMQ
// cluster of test/cluster/rabbitmq-cluster.sh when it answers (RABBITMQ_CLUSTER_URLS, else
// 127.0.0.1:5681-5683), else on the single broker; each line says which (`target`). Each collector
// starts on another node of the list. The queue is filled first, then the collectors drain it; a
// line per count gives messages/s, the cost per message against one collector on the single broker
// (the reference, measured in the same run), what was lost (contexts not complete in Redis: must
// be 0) and the load average (two shared cores: the point is the cost, not the scaling). Bounded:
// BENCH_CLUSTER_MESSAGES messages (20,000) and BENCH_CLUSTER_TIMEOUT_S (90) per drain.
import net from 'node:net';
import os from 'node:os';
import amqp from 'amqplib';
import { Collector } from '@contexture/collector/daemon';
import { RedisContextStore } from '@contexture/collector/store';
import { AMQP_URL, REDIS_URL, removeKeys, report, round, uniqueName } from './support.js';

const N = Number(process.env.BENCH_CLUSTER_MESSAGES ?? 20_000);
const CONTEXTS = 500;
const PER = Math.ceil(N / CONTEXTS);
const TIMEOUT_MS = Number(process.env.BENCH_CLUSTER_TIMEOUT_S ?? 90) * 1000;
const CLUSTER_URLS = (
  process.env.RABBITMQ_CLUSTER_URLS ?? [5681, 5682, 5683].map((p) => `amqp://guest:guest@127.0.0.1:${p}/%2F`).join(',')
)
  .split(',')
  .map((u) => u.trim())
  .filter(Boolean);

/** True when the broker at `url` answers the AMQP header. */
function answers(url) {
  return new Promise((resolve) => {
    const u = new URL(url);
    const socket = net.connect({ host: u.hostname, port: Number(u.port || 5672) });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('connect', () => socket.write(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1')));
    socket.once('data', (chunk) => done(chunk[0] === 1));
    socket.once('error', () => done(false));
  });
}

function message(prefix, c, seq, t) {
  const m = {
    obj_id: `${prefix}-${c}`,
    obj: { n: seq, [`f${seq % 7}`]: seq * 3 },
    seq,
    time_in: t,
    handler_id: 'bench',
  };
  if (seq === 0) m.status = 'born';
  if (seq === PER - 1) Object.assign(m, { status: 'finished', obj: {}, elapsed: 1 });
  return Buffer.from(JSON.stringify(m));
}

/** Declares the quorum queue as the collector would (so it adopts it without a word) and fills it. */
async function fill(urls, exchange, queue, prefix) {
  const conn = await amqp.connect(urls[0]);
  const ch = await conn.createConfirmChannel();
  await ch.assertExchange(exchange, 'topic', { durable: true });
  await ch.assertQueue(`${queue}.dead`, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await ch.assertQueue(queue, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-delivery-limit': 20,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': `${queue}.dead`,
    },
  });
  const t = Date.now() / 1000;
  // Contexts round-robin: each context's next message comes CONTEXTS messages later.
  for (let seq = 0; seq < PER; seq++) {
    for (let c = 0; c < CONTEXTS; c++) {
      if (!ch.sendToQueue(queue, message(prefix, c, seq, t), { contentType: 'application/json' }))
        await new Promise((r) => ch.once('drain', r));
    }
  }
  await ch.waitForConfirms();
  await conn.close();
}

/** k collectors, each starting on another node, drain the queue; resolves with ms, or null on timeout. */
async function drain(urls, k, exchange, queue, prefix) {
  const stores = [];
  const collectors = [];
  for (let i = 0; i < k; i++) {
    const store = new RedisContextStore({ redis: REDIS_URL, prefix });
    const turn = [...urls.slice(i % urls.length), ...urls.slice(0, i % urls.length)];
    stores.push(store);
    collectors.push(new Collector({ store, url: turn, exchange, queue, logger: null, prefetch: 2000 }));
  }
  const t0 = performance.now();
  await Promise.all(collectors.map((c) => c.start()));
  const total = PER * CONTEXTS;
  const ok = await new Promise((resolve) => {
    const deadline = t0 + TIMEOUT_MS;
    const check = () => {
      const acked = collectors.reduce((n, c) => n + c.stats().acked, 0);
      if (acked >= total) resolve(true);
      else if (performance.now() > deadline) resolve(false);
      else setTimeout(check, 5);
    };
    check();
  });
  const ms = performance.now() - t0;
  await Promise.all(collectors.map((c) => c.close()));
  // Nothing lost: every context finished, with its last field.
  let lost = 0;
  for (let c = 0; c < CONTEXTS; c++) {
    const s = await stores[0].get(`${prefix}-${c}`);
    if (s === null || s.status !== 'finished' || s.context.n !== PER - 2) lost++;
  }
  await Promise.all(stores.map((s) => s.close()));
  return { ms: ok ? ms : null, lost };
}

async function run(urls, target, k, reference) {
  const exchange = uniqueName('bench-cl-x');
  const queue = uniqueName('bench-cl-q');
  const prefix = `${uniqueName('bench-cl')}:`;
  await fill(urls, exchange, queue, prefix);
  const { ms, lost } = await drain(urls, k, exchange, queue, prefix);
  const conn = await amqp.connect(urls[0]);
  const ch = await conn.createChannel();
  await ch.deleteQueue(queue);
  await ch.deleteQueue(`${queue}.dead`);
  await ch.deleteExchange(exchange);
  await conn.close();
  await removeKeys(prefix);
  const total = PER * CONTEXTS;
  const usPerMsg = ms === null ? null : (ms * 1000) / total;
  report({
    bench: 'collector.cluster_ingest',
    // What tells the lines apart in bench/RESULTS.md (bench/results.js keys rows by `scenario`).
    scenario: `${target}, ${k} collector${k === 1 ? '' : 's'}`,
    target,
    nodes: urls.length,
    queue_type: 'quorum',
    collectors: k,
    messages: total,
    contexts: CONTEXTS,
    collector_msgs_per_s: ms === null ? null : Math.round((total / ms) * 1000),
    us_per_msg: usPerMsg === null ? null : round(usPerMsg, 1),
    cost_vs_single_node_1_collector: usPerMsg === null || reference === null ? null : round(usPerMsg / reference, 2),
    lost_contexts: lost,
    timed_out: ms === null,
    loadavg_1m: round(os.loadavg()[0]),
    goal: 'lost_contexts = 0 and cost_vs_single_node_1_collector <= 1.5',
    goal_met: lost === 0 && usPerMsg !== null && reference !== null && usPerMsg / reference <= 1.5,
  });
  return usPerMsg;
}

const clusterUp = CLUSTER_URLS.length > 1 && (await Promise.all(CLUSTER_URLS.map(answers))).every(Boolean);
const single = [AMQP_URL];
// The reference: one collector on the single broker's quorum queue.
const reference = await run(single, 'single-broker', 1, null);
const urls = clusterUp ? CLUSTER_URLS : single;
const target = clusterUp ? `rabbitmq-cluster-${CLUSTER_URLS.length}-nodes` : 'single-broker (cluster down)';
for (const k of [1, 2, 3]) await run(urls, target, k, reference);
