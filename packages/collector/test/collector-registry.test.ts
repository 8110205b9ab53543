import { expect } from 'chai';
import amqp from 'amqplib';
import { Context, Handler } from '@contexture/context';
import { HEARTBEAT_RKEY } from '@contexture/context/protocol';
import { amqpUrl, Cleanup, redisUrl, waitUntil } from '@contexture/test-support';
import { RedisContextStore, Registry } from '@contexture/collector';
import { Collector } from '@contexture/collector/daemon';
import { publishRaw } from './support/bus.js';

describe('collector: the registry of live handlers and collectors, kept from heartbeats (real RabbitMQ and Redis)', function () {
  this.timeout(60_000);
  let cleanup: Cleanup;
  let exchange: string;
  let queue: string;
  let prefix: string;
  let store: RedisContextStore;
  let registry: Registry;

  beforeEach(() => {
    cleanup = new Cleanup();
    ({ exchange, queue, prefix } = cleanup.collectorNames('reg'));
    store = new RedisContextStore({ redis: redisUrl(), prefix });
    cleanup.defer(() => store.close());
    registry = new Registry({
      redis: store.redis,
      prefix,
      namespace: 'handlers',
      heartbeatTimeout: 800,
      expireAfter: 2_000,
    });
  });
  afterEach(() => cleanup.run());

  const collector = async (heartbeatInterval = 200) => {
    // Bound to app.# only: the collector binds the heartbeat key itself.
    const c = new Collector({
      store,
      registry,
      heartbeatInterval,
      url: amqpUrl(),
      exchange,
      queue,
      bindings: ['app.#'],
      logger: null,
    });
    cleanup.defer(() => c.close());
    await c.start();
    return c;
  };
  const handler = () => {
    const h = new Handler({ url: amqpUrl(), exchange, heartbeatInterval: 200, logger: null });
    cleanup.defer(() => h.close());
    return h;
  };

  it('handlers and the collector appear with their stats; data still reaches the store; a closing handler leaves at once', async () => {
    const c = await collector();
    const h1 = handler();
    const h2 = handler();
    const ctx = new Context({ name: 'app.jobs', handler: h1 });
    ctx.step = 'one';
    new Context({ name: 'app.other', handler: h2 }).x = 1;
    await waitUntil(
      async () => (await registry.list()).length === 3,
      'two handlers and the collector in the registry',
      10_000,
    );
    const list = await registry.list();
    const byId = new Map(list.map((e) => [e.id, e]));
    expect(byId.get(c.id)).to.include({ kind: 'collector', name: queue, pid: process.pid, healthy: true });
    expect(byId.get(c.id)!.metrics).to.include.keys(
      'deliveries',
      'applied',
      'acked',
      'in_flight',
      'rate',
      'reconnects',
    );
    for (const h of [h1, h2]) {
      const e = byId.get(h.id)!;
      expect(e).to.include({ kind: 'handler', pid: process.pid, healthy: true });
      expect(e.metrics).to.include.keys('queued', 'dropped', 'published', 'published_per_s', 'reconnects');
    }
    await waitUntil(
      async () => (await registry.get(h1.id))!.metrics.published === 2,
      'h1 reports its 2 published messages',
      10_000,
    );
    await waitUntil(async () => (await store.get(Context.idOf(ctx))) !== null, 'the context in the store', 10_000);
    expect((await store.get(Context.idOf(ctx)))!.context).to.deep.equal({ step: 'one' });
    expect(c.stats().heartbeats.received).to.be.greaterThan(0);
    expect(c.stats().deadLettered).to.equal(0, 'heartbeats are not malformed context messages');
    await h2.close();
    await waitUntil(async () => (await registry.get(h2.id)) === null, 'the closed handler to leave', 5_000);
    expect((await registry.get(h1.id))!.healthy).to.equal(true);
  });

  it('a handler that stops sending heartbeats (crashed) turns unhealthy, then goes; a closed collector leaves', async () => {
    const c = await collector();
    const h = handler();
    new Context({ name: 'app.crash', handler: h }).x = 1;
    await waitUntil(async () => (await registry.get(h.id))?.healthy === true, 'the handler in the registry', 10_000);
    h.destroy(); // no last heartbeat: as if the process died
    await waitUntil(async () => (await registry.get(h.id))?.healthy === false, 'the handler to turn unhealthy', 10_000);
    expect((await registry.list({ healthyOnly: true })).map((e) => e.id)).to.deep.equal([c.id]);
    await waitUntil(async () => (await registry.get(h.id)) === null, 'the handler to go', 10_000);
    // The collector takes it out of the registry's index too (every 10 of its heartbeats), which
    // a /metrics scrape reads whole: nothing stays there of a process that died.
    const indexed = async () => {
      const ids: string[] = [];
      for (const key of await store.redis.keys(`${prefix}registry:*:index`))
        ids.push(...(await store.redis.zrange(key, 0, -1)));
      return ids;
    };
    await waitUntil(async () => !(await indexed()).includes(h.id), 'the handler out of the index', 15_000);
    expect(await indexed()).to.deep.equal([c.id]);
    expect((await registry.list()).map((e) => e.id)).to.deep.equal([c.id]);
    await c.close();
    expect(await registry.get(c.id)).to.equal(null);
  });

  it('bodies on the heartbeat key that are not heartbeats are counted, never dead-lettered or applied', async () => {
    const c = await collector(0);
    await publishRaw(exchange, [
      { body: 'not json', rkey: HEARTBEAT_RKEY },
      { body: '{"type":"heartbeat","id":"x"}', rkey: HEARTBEAT_RKEY, contentType: 'application/json' },
      {
        body: '{"type":"heartbeat","id":"ok","kind":"handler","time":1,"stats":{"queued":1}}',
        rkey: HEARTBEAT_RKEY,
        contentType: 'application/json',
      },
      {
        body: '{"obj_id":"after","obj":{"a":1},"seq":0,"status":"born"}',
        rkey: 'app.after',
        contentType: 'application/json',
      },
    ]);
    await waitUntil(async () => (await store.get('after')) !== null, 'the data message after them', 10_000);
    await waitUntil(
      () => c.stats().heartbeats.received + c.stats().heartbeats.invalid === 3,
      'the three heartbeat bodies',
      10_000,
    );
    expect(c.stats().heartbeats).to.include({ invalid: 2, received: 1 });
    expect(c.stats().deadLettered).to.equal(0);
    expect((await registry.get('ok'))!.metrics).to.deep.equal({ queued: 1 });
    const conn = await amqp.connect(amqpUrl());
    cleanup.defer(() => conn.close());
    const ch = await conn.createChannel();
    expect((await ch.checkQueue(`${queue}.dead`)).messageCount).to.equal(0);
  });
});
