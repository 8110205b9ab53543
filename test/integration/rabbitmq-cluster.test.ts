import { expect } from 'chai';
import amqp from 'amqplib';
import { Context, Handler, type HandlerStats } from '@contexture/context';
import { Collector } from '@contexture/collector/daemon';
import { RedisContextStore } from '@contexture/collector/store';
import {
  amqpUrl,
  Cleanup,
  RABBITMQ_CLUSTER_NODES,
  rabbitClusterCtl,
  rabbitClusterNode,
  rabbitClusterUrls,
  redisUrl,
  uniqueName,
  waitUntil,
} from '@contexture/test-support';

/** Contexts of the workload, and changes (messages) each: born, FIELDS fields, finished. */
const CONTEXTS = 400;
const FIELDS = 48;
const PRODUCED = CONTEXTS * (FIELDS + 2);

/** One change of the workload: context `c`'s field `f` (a field of its own, so every change shows in the end state). */
const fieldValue = (c: number, f: number) => ({ c, f, v: `${c}:${f}`.repeat(1 + (f % 3)) });

/**
 * Publishes the workload through `handler`, about `perTick` changes every 5 ms, calling `at(n)`
 * after each tick with the number produced so far (it may pause production by returning a promise).
 * Resolves with the contexts' ids in workload order.
 */
async function produce(
  handler: Handler,
  perTick: number,
  at: (produced: number) => Promise<void> | undefined = () => undefined,
): Promise<string[]> {
  const contexts: Context[] = [];
  for (let c = 0; c < CONTEXTS; c++) contexts.push(new Context({ name: `cluster.c${c}`, handler }));
  let produced = CONTEXTS;
  const ids = contexts.map((ctx) => Context.idOf(ctx));
  // Field f of every context, then field f + 1: contexts progress together, as live ones do.
  for (let f = 0; f <= FIELDS; f++) {
    for (let c = 0; c < CONTEXTS; c++) {
      const ctx = contexts[c]! as unknown as Record<string, unknown> & { finish(): void };
      if (f < FIELDS) ctx[`f${f}`] = fieldValue(c, f);
      else ctx.finish();
      produced++;
      if (produced % perTick === 0) {
        const pause = at(produced);
        if (pause !== undefined) await pause;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }
  return ids;
}

/** The contexts' final state (fields and status) in the store, in workload order. */
async function finalState(store: RedisContextStore, ids: string[]): Promise<Array<unknown>> {
  return Promise.all(
    ids.map(async (id) => {
      const s = await store.get(id);
      return s === null ? null : { context: s.context, status: s.status };
    }),
  );
}

/** Declares nothing: deletes the test's exchange and queues on whichever node of `urls` answers. */
async function deleteOn(urls: string[], exchange: string, queues: string[]): Promise<void> {
  for (const url of urls) {
    try {
      const conn = await amqp.connect(url);
      try {
        const ch = await conn.createChannel();
        for (const q of queues) await ch.deleteQueue(q);
        await ch.deleteExchange(exchange);
        return;
      } finally {
        await conn.close().catch(() => {});
      }
    } catch {
      /* the next node */
    }
  }
}

const balanced = (s: HandlerStats) => s.published + s.dropped === s.enqueued;

describe('a 3-node RabbitMQ cluster: failover of the Handler and two collectors on a quorum queue', function () {
  // Node stops and starts take seconds each on two shared cores.
  this.timeout(240_000);
  const urls = rabbitClusterUrls();
  let cleanup: Cleanup;

  beforeEach(() => {
    cleanup = new Cleanup();
  });
  afterEach(async () => {
    // Whatever happened, every node runs again for the next test.
    for (const node of RABBITMQ_CLUSTER_NODES) await rabbitClusterCtl(node, 'start_app').catch(() => {});
    await cleanup.run();
  });

  it('20,000 changes while the node of each client is stopped: all reach Redis, same state as one node, 0 dropped', async () => {
    const started = Date.now();
    const prefixOne = `${uniqueName('rmq-one')}:`;
    const prefixCluster = `${uniqueName('rmq-cl')}:`;
    cleanup.redisKeys(`${prefixOne}*`);
    cleanup.redisKeys(`${prefixCluster}*`);
    const storeOne = new RedisContextStore({ redis: redisUrl(), prefix: prefixOne });
    const storeCluster = new RedisContextStore({ redis: redisUrl(), prefix: prefixCluster });
    cleanup.defer(() => storeOne.close());
    cleanup.defer(() => storeCluster.close());

    // The reference: the same workload through the single broker, one collector.
    const exOne = cleanup.exchange(uniqueName('rmq-one-x'));
    const qOne = cleanup.queue(uniqueName('rmq-one-q'));
    cleanup.queue(`${qOne}.dead`);
    const one = new Collector({ store: storeOne, url: amqpUrl(), exchange: exOne, queue: qOne, logger: null });
    cleanup.defer(() => one.close());
    await one.start();
    const hOne = new Handler({ url: amqpUrl(), exchange: exOne, bufferSize: PRODUCED, logger: null });
    cleanup.defer(() => hOne.close());
    const idsOne = await produce(hOne, 400);
    expect(await hOne.flush(60_000)).to.equal(true);
    await waitUntil(() => one.stats().applied >= PRODUCED, 'the reference run applied', 60_000);

    // The cluster: the handler on node 1, collector A on node 1, collector B on node 2 (the lists
    // start there), every one with all three nodes.
    const exchange = uniqueName('rmq-cl-x');
    const queue = uniqueName('rmq-cl-q');
    cleanup.defer(() => deleteOn(urls, exchange, [queue, `${queue}.dead`]));
    const logs: string[] = [];
    const logger = (who: string) => ({
      info: (m: string) => logs.push(`${who}: ${m}`),
      warn: (m: string) => logs.push(`${who}: ${m}`),
    });
    const retry = { initialDelay: 50, maxDelay: 1000 };
    const a = new Collector({ store: storeCluster, url: urls, exchange, queue, logger: logger('A'), retry });
    const b = new Collector({
      store: storeCluster,
      url: [urls[1]!, urls[2]!, urls[0]!],
      exchange,
      queue,
      logger: logger('B'),
      retry,
    });
    cleanup.defer(() => a.close());
    cleanup.defer(() => b.close());
    await a.start();
    await b.start();
    expect(a.queueType).to.equal('quorum');
    const handler = new Handler({
      url: urls.join(','),
      exchange,
      bufferSize: PRODUCED,
      reconnect: retry,
      logger: { warn: (m: string) => logs.push(`H: ${m}`) },
    });
    cleanup.defer(() => handler.close());
    // Connected before the stream starts, so "the node it is connected to" is known.
    new Context({ name: 'cluster.first', handler }).finish();
    expect(await handler.flush(30_000)).to.equal(true);
    const hNode = rabbitClusterNode(urls[0]!);
    const bNode = rabbitClusterNode(urls[1]!);
    expect(a.where).to.equal(new URL(urls[0]!).host);
    expect(b.where).to.equal(new URL(urls[1]!).host);

    // Outage 1: the node of the handler and collector A, stopped at a quarter of the stream;
    // outage 2: the node of collector B (and by then of the handler and A too) at three quarters.
    // Until the handler has seen its node go, production slows down but goes on (changes are in
    // flight when the node stops); at half the stream it waits for the first node to be back.
    let disconnects = 0;
    handler.on('disconnect', () => disconnects++);
    let outage: Promise<void> | null = null;
    const outages: string[] = [];
    const cycle = async (node: string) => {
      outages.push(node);
      const seen = disconnects;
      await rabbitClusterCtl(node, 'stop_app');
      await waitUntil(
        () =>
          disconnects > seen && handler.status === 'connected' && a.status === 'consuming' && b.status === 'consuming',
        `the handler and both collectors on the nodes left after ${node} stopped`,
        60_000,
      );
      await rabbitClusterCtl(node, 'start_app');
      await rabbitClusterCtl(node, 'await_startup');
    };
    const slow = () => new Promise<void>((r) => setTimeout(r, 20));
    let phase = 0;
    let seenAt = 0;
    const ids = await produce(handler, 20, (n) => {
      if (phase === 0 && n >= PRODUCED / 4) {
        seenAt = disconnects;
        outage = cycle(hNode);
        phase = 1;
      }
      if (phase === 1 || phase === 4) {
        if (disconnects === seenAt) return slow();
        phase++;
      }
      if (phase === 2 && n >= PRODUCED / 2) {
        phase = 3;
        return outage!;
      }
      if (phase === 3 && n >= (PRODUCED * 3) / 4) {
        seenAt = disconnects;
        outage = cycle(bNode);
        phase = 4;
        return slow();
      }
      return undefined;
    });
    await outage;
    expect(outages).to.deep.equal([hNode, bNode]);
    expect(await handler.flush(60_000)).to.equal(true);
    const s = handler.stats();
    expect(s.enqueued).to.equal(PRODUCED + 2);
    expect(s.published + s.dropped).to.equal(s.enqueued);
    expect(balanced(s)).to.equal(true);
    expect(s.dropped, 'dropped with an outage shorter than the buffer').to.equal(0);
    expect(s.reconnects).to.be.at.least(2);

    // Every change reaches Redis: the final state of every context equals the single-node run's.
    const want = await finalState(storeOne, idsOne);
    await waitUntil(
      async () => JSON.stringify(await finalState(storeCluster, ids)) === JSON.stringify(want),
      'the cluster run to reach the reference state',
      90_000,
    );
    expect(await finalState(storeCluster, ids)).to.deep.equal(want);
    expect(want.every((w) => w !== null && (w as { status: string }).status === 'finished')).to.equal(true);
    expect(a.stats().reconnects + b.stats().reconnects).to.be.at.least(2);

    // The warnings say which node was lost and which took over, by host:port only.
    const host = (url: string) => new URL(url).host;
    expect(logs.some((l) => l.startsWith(`H: contexture: cannot publish to ${host(urls[0]!)} (`))).to.equal(
      true,
      logs.join('\n'),
    );
    expect(logs.some((l) => /^H: contexture: publishing to \S+ \(took over from \S+\) again after/.test(l))).to.equal(
      true,
      logs.join('\n'),
    );
    expect(logs.some((l) => l.startsWith(`A: lost ${host(urls[0]!)} (`))).to.equal(true, logs.join('\n'));
    expect(logs.some((l) => l.startsWith(`B: lost ${host(urls[1]!)} (`))).to.equal(true, logs.join('\n'));
    expect(logs.some((l) => /^B: consuming from \S+ \(took over from /.test(l))).to.equal(true, logs.join('\n'));
    for (const l of logs) expect(l).to.not.match(/:guest@/);
    process.stderr.write(`      (cluster failover test: ${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  });
});
