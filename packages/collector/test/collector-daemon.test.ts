import { expect } from 'chai';
import net from 'node:net';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { Context, Handler } from '@contexture/context';
import type { MessageMeta, WireMessage } from '@contexture/context/protocol';
import {
  amqpUrl,
  Cleanup,
  FaultProxy,
  freePort,
  redisUrl,
  TempRedis,
  uniqueName,
  waitUntil,
} from '@contexture/test-support';
import { CollectorError, RedisContextStore } from '@contexture/collector';
import { Collector, type CollectorOptions } from '@contexture/collector/daemon';
import { expectedObjects, makeStream, publishMessages, publishRaw } from './support/bus.js';
import { rng, shuffledWithDuplicates } from './support/streams.js';
import { startBin } from './bin-support.js';

async function queueDepth(queue: string): Promise<number> {
  const conn = await amqp.connect(amqpUrl());
  try {
    const ch = await conn.createChannel();
    return (await ch.checkQueue(queue)).messageCount;
  } finally {
    await conn.close();
  }
}

/** Every expected object is in the store with the same fields and status. */
async function storeMatches(store: RedisContextStore, messages: WireMessage[]): Promise<string[]> {
  const problems: string[] = [];
  for (const [id, obj] of expectedObjects(messages)) {
    const got = await store.get(id);
    if (got === null) problems.push(`${id}: missing`);
    else if (JSON.stringify(sortKeys(got.context)) !== JSON.stringify(sortKeys(obj.object)))
      problems.push(`${id}: ${JSON.stringify(got.context)} ≠ ${JSON.stringify(obj.object)}`);
    else if (got.status !== obj.status) problems.push(`${id}: status ${got.status} ≠ ${obj.status}`);
  }
  return problems;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(
    Object.keys(v)
      .sort()
      .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
  );
}

describe('collector daemon: RabbitMQ → Redis, at least once', function () {
  this.timeout(120_000);
  let cleanup: Cleanup;
  let exchange: string;
  let queue: string;
  let prefix: string;
  let store: RedisContextStore;

  beforeEach(() => {
    cleanup = new Cleanup();
    ({ exchange, queue, prefix } = cleanup.collectorNames('col'));
    store = new RedisContextStore({ redis: redisUrl(), prefix });
    cleanup.defer(() => store.close());
  });
  afterEach(() => cleanup.run());

  /** Declares the test's queue, bound to everything on its exchange, and publishes `bodies` into it before any collector runs. */
  const queueUp = async (bodies: Array<{ body: string }>): Promise<void> => {
    const conn = await amqp.connect(amqpUrl());
    try {
      const ch = await conn.createChannel();
      await ch.assertExchange(exchange, 'topic', { durable: true });
      await ch.assertQueue(queue, { durable: true });
      await ch.bindQueue(queue, exchange, '#');
    } finally {
      await conn.close();
    }
    await publishRaw(exchange, bodies);
  };

  const inProcess = (overrides: Partial<ConstructorParameters<typeof Collector>[0]> = {}) => {
    const c = new Collector({ store, url: amqpUrl(), exchange, queue, logger: null, ...overrides });
    cleanup.defer(() => c.close());
    return c;
  };

  it('applies what Context publishes and acknowledges only after the store has it', async () => {
    const collector = inProcess();
    await collector.start();
    const handler = new Handler({ url: amqpUrl(), exchange, logger: null });
    cleanup.defer(() => handler.close());
    const ctx = new Context({ name: 'web.handle', handler, context: { url: '/a' }, headers: { tenant: 'acme' } });
    ctx.status_code = 200;
    ctx.update({ a: 1, b: { c: 2 } });
    delete ctx.a;
    ctx.finish();
    await handler.flush();
    const id = Context.idOf(ctx);
    await waitUntil(async () => (await store.get(id))?.status === 'finished', 'the finished context in Redis');
    const got = (await store.get(id))!;
    expect(got.context).to.deep.equal({ url: '/a', status_code: 200, b: { c: 2 } });
    expect(got.rkey).to.equal('web.handle');
    expect(got.headers).to.include({ tenant: 'acme' });
    await waitUntil(() => collector.stats().acked === 5, 'five acks');
    expect(collector.stats()).to.include({ deliveries: 5, applied: 5, acked: 5, deadLettered: 0 });
    expect(await queueDepth(queue)).to.equal(0);
  });

  it('a stream shuffled and duplicated on purpose gives the same get() as the ordered one', async () => {
    const ordered = makeStream(uniqueName('s'), 20, 30, 7);
    const collector = inProcess();
    await collector.start();
    await publishMessages(exchange, shuffledWithDuplicates(ordered, 11));
    await waitUntil(
      async () => (await queueDepth(queue)) === 0 && collector.stats().inFlight === 0,
      'the queue to drain',
    );
    expect(await storeMatches(store, ordered)).to.deep.equal([]);
  });

  it('applies deliveries in batches (one applyMany per batch), acks every one, and isolates a message the store refuses', async () => {
    const ordered = makeStream(uniqueName('batch'), 20, 30, 23);
    const messages = shuffledWithDuplicates(ordered, 29);
    const calls: number[] = [];
    // The real store, its applyMany calls counted on the way.
    const counting = {
      apply: (m: WireMessage, meta?: Parameters<RedisContextStore['apply']>[1]) => store.apply(m, meta),
      applyMany: (items: Parameters<RedisContextStore['applyMany']>[0]) => {
        calls.push(items.length);
        return store.applyMany(items);
      },
    };
    const bodies = messages.map((m) => ({ body: JSON.stringify(m) }));
    // A message the store refuses: a field name that is not well-formed Unicode (a lone surrogate).
    const refused = '{"obj_id":"refused","obj":{"ok":1,"\\ud800":2},"seq":0}';
    bodies.splice(100, 0, { body: refused });
    // The queue holds everything before the collector starts, so deliveries come faster than single applies.
    await queueUp(bodies);
    const collector = inProcess({ store: counting, prefetch: 500, batchSize: 100 });
    await collector.start();
    await waitUntil(() => collector.stats().acked === bodies.length, 'every delivery acked');
    expect(await storeMatches(store, ordered)).to.deep.equal([]);
    expect(await store.get('refused')).to.equal(null);
    expect(calls.reduce((a, b) => a + b, 0)).to.be.at.least(bodies.length);
    expect(calls.length, `batches ${calls}`).to.be.below(bodies.length / 2);
    expect(Math.max(...calls)).to.be.at.most(100);
    expect(collector.stats()).to.deep.include({
      deadLettered: 1,
      applied: bodies.length - 1,
      malformed: { 'store refused': 1 },
    });
    expect(await queueDepth(queue)).to.equal(0);
    // The dead letter is the message as it came, with why and where it was going.
    const conn = await amqp.connect(amqpUrl());
    cleanup.defer(() => conn.close());
    const ch = await conn.createChannel();
    const dead = await ch.get(`${queue}.dead`, { noAck: true });
    expect(dead).to.not.equal(false);
    if (dead === false) return;
    expect(dead.content.toString()).to.equal(refused);
    expect(dead.properties.headers).to.deep.include({
      'x-contexture-error': 'store refused',
      'x-contexture-exchange': exchange,
    });
    expect(await ch.get(`${queue}.dead`, { noAck: true })).to.equal(false, 'one dead letter');
  });

  it('a malformed message whose headers amqplib cannot send again is dead-lettered all the same (headers as text), with its properties; the traffic after it goes on', async () => {
    // A nested table with a "!" key: amqplib decodes it as plain data but takes "!" as its type
    // mark when encoding it again, and refuses the type "zzz".
    const bang = { meta: { '!': 'object', value: { '!': 'zzz', value: 1 } } };
    const before = makeStream(uniqueName('before'), 3, 2, 5);
    const after = makeStream(uniqueName('after'), 3, 2, 6);
    await queueUp(before.map((m) => ({ body: JSON.stringify(m) })));
    const conn = await amqp.connect(amqpUrl());
    cleanup.defer(() => conn.close());
    const pub = await conn.createConfirmChannel();
    for (let i = 0; i < 3; i++)
      pub.publish(exchange, 'adv.bang', Buffer.from(`not json ${i}`), {
        headers: bang,
        contentType: 'application/json',
        contentEncoding: 'identity',
        type: 'odd',
        appId: 'fuzzer',
        timestamp: 1_700_000_000,
      });
    await pub.waitForConfirms();
    await publishRaw(
      exchange,
      after.map((m) => ({ body: JSON.stringify(m) })),
    );
    const collector = inProcess({ prefetch: 50, batchSize: 10 });
    await collector.start();
    const total = before.length + 3 + after.length;
    await waitUntil(() => collector.stats().acked === total, 'every delivery acked', 20_000);
    expect(await storeMatches(store, [...before, ...after])).to.deep.equal([]);
    expect(collector.stats()).to.deep.include({ deadLettered: 3, malformed: { 'not JSON': 3 } });
    expect(await queueDepth(queue)).to.equal(0);
    const ch = await conn.createChannel();
    for (let i = 0; i < 3; i++) {
      const dead = await ch.get(`${queue}.dead`, { noAck: true });
      expect(dead).to.not.equal(false);
      if (dead === false) return;
      expect(dead.content.toString()).to.equal(`not json ${i}`);
      expect(dead.properties).to.include({
        contentEncoding: 'identity',
        type: 'odd',
        appId: 'fuzzer',
        timestamp: 1_700_000_000,
      });
      expect(dead.properties.headers).to.deep.include({
        'x-contexture-error': 'not JSON',
        'x-contexture-rkey': 'adv.bang',
        'x-contexture-exchange': exchange,
      });
      expect(JSON.parse(dead.properties.headers!['x-contexture-headers'] as string)).to.deep.equal({
        meta: { '!': 'zzz', value: 1 },
      });
    }
  });

  it('a body or batch line whose bytes are not UTF-8 is dead-lettered as such, never stored with U+FFFD: ids that differ stay apart', async () => {
    // `utf\xff` and `utf\xfe` decoded with U+FFFD would both be `utf\ufffd`: one context.
    const body = (id: Buffer, v: number): Buffer =>
      Buffer.concat([Buffer.from('{"obj_id":"'), id, Buffer.from(`","obj":{"v":${v}},"status":"transient","seq":0}`)]);
    const ok = (id: string, v: number) =>
      Buffer.from(JSON.stringify({ obj_id: id, obj: { v }, status: 'transient', seq: 0 }));
    const cafe = uniqueName('café');
    const [first, last] = [uniqueName('batch-a'), uniqueName('batch-b')];
    const batch = Buffer.concat([
      ok(first, 1),
      Buffer.from('\n'),
      body(Buffer.from([0x62, 0xc3]), 2),
      Buffer.from('\n'),
      ok(last, 3),
    ]);
    const collector = inProcess();
    await collector.start();
    await publishRaw(exchange, [
      { body: body(Buffer.from([0x75, 0x74, 0x66, 0xff]), 1) },
      { body: body(Buffer.from([0x75, 0x74, 0x66, 0xfe]), 2) },
      { body: ok(cafe, 4) },
      { body: batch, contentType: 'application/x-ndjson' },
    ]);
    await waitUntil(() => collector.stats().acked === 4, 'every delivery acked', 20_000);
    expect(collector.stats()).to.deep.include({ deadLettered: 3, malformed: { 'not UTF-8': 3 } });
    expect((await store.get(cafe))?.context).to.deep.equal({ v: 4 });
    expect((await store.get(first))?.context).to.deep.equal({ v: 1 });
    expect((await store.get(last))?.context).to.deep.equal({ v: 3 });
    expect(await store.get('utf\ufffd')).to.equal(null);
    const conn = await amqp.connect(amqpUrl());
    cleanup.defer(() => conn.close());
    const ch = await conn.createChannel();
    const reasons: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const dead = await ch.get(`${queue}.dead`, { noAck: true });
      if (dead !== false) reasons.push(dead.properties.headers?.['x-contexture-error']);
    }
    expect(reasons).to.deep.equal(['not UTF-8', 'not UTF-8', 'not UTF-8']);
  });

  it('stores AMQP header values as plain JSON: bytes as text, timestamps as seconds, a __proto__ table as a key', async () => {
    const collector = inProcess();
    await collector.start();
    const id = uniqueName('headers');
    const headers = JSON.parse('{"__proto__":{"x":1}}');
    Object.assign(headers, {
      hostname: 'h',
      text: Buffer.from('something'),
      at: { '!': 'timestamp', value: 1_700_000_000 },
      price: { '!': 'decimal', value: { places: 1, digits: 25 } },
    });
    await publishRaw(exchange, [
      { body: JSON.stringify({ obj_id: id, obj: { v: 1 }, status: 'transient', seq: 0 }), headers },
    ]);
    await waitUntil(async () => (await store.get(id)) !== null, 'the message applied');
    const stored = (await store.get(id))!.headers as Record<string, unknown>;
    expect(JSON.stringify(stored)).to.equal(
      '{"__proto__":{"x":1},"at":1700000000,"hostname":"h","price":2.5,"text":"something"}',
    );
  });

  it('a message on which the store keeps throwing a JavaScript error is dead-lettered as store error after 5 tries; the rest of its batch is applied', async () => {
    const poison = uniqueName('poison');
    const fine = makeStream(uniqueName('fine'), 4, 2, 7);
    const tries: string[] = [];
    // A store whose code fails on one message, as a RangeError from deep inside it would.
    const faulty = {
      apply: async (m: WireMessage, meta?: MessageMeta) => {
        if (m.obj_id === poison) {
          tries.push(m.obj_id);
          throw new RangeError('Maximum call stack size exceeded');
        }
        await store.apply(m, meta);
      },
      applyMany: async (items: Array<{ message: WireMessage; meta?: MessageMeta }>) => {
        if (items.some((it) => it.message.obj_id === poison)) throw new RangeError('Maximum call stack size exceeded');
        await store.applyMany(items);
      },
    };
    const collector = inProcess({ store: faulty, retry: { initialDelay: 10, maxDelay: 50 } });
    await collector.start();
    await publishRaw(exchange, [
      ...fine.slice(0, 3).map((m) => ({ body: JSON.stringify(m) })),
      { body: JSON.stringify({ obj_id: poison, obj: { v: 1 }, status: 'transient', seq: 0 }) },
      ...fine.slice(3).map((m) => ({ body: JSON.stringify(m) })),
    ]);
    await waitUntil(() => collector.stats().acked === fine.length + 1, 'every delivery acked', 20_000);
    expect(tries).to.have.length(5);
    expect(await storeMatches(store, fine)).to.deep.equal([]);
    expect(await store.get(poison)).to.equal(null);
    expect(collector.stats()).to.deep.include({ deadLettered: 1, malformed: { 'store error': 1 } });
    const conn = await amqp.connect(amqpUrl());
    cleanup.defer(() => conn.close());
    const dead = await (await conn.createChannel()).get(`${queue}.dead`, { noAck: true });
    expect(dead === false ? null : dead.properties.headers?.['x-contexture-error']).to.equal('store error');
  });

  it('a message whose context the store cannot read (foreign data under the prefix) is dead-lettered and counted; the rest of its batch is applied', async () => {
    const redis = new Redis(redisUrl());
    cleanup.defer(() => redis.quit());
    await redis.set(`${prefix}ctx:{foreign}`, 'not a hash');
    const ordered = makeStream(uniqueName('mended'), 5, 10, 31);
    const bodies = ordered.map((m) => ({ body: JSON.stringify(m) }));
    bodies.splice(7, 0, { body: JSON.stringify({ obj_id: 'foreign', obj: { a: 1 }, status: 'born', seq: 0 }) });
    await queueUp(bodies);
    const warnings: string[] = [];
    const collector = inProcess({ batchSize: 100, logger: { info: () => {}, warn: (m: string) => warnings.push(m) } });
    await collector.start();
    await waitUntil(() => collector.stats().acked === bodies.length, 'every delivery acked');
    expect(await storeMatches(store, ordered)).to.deep.equal([]);
    expect(collector.stats()).to.deep.include({
      deadLettered: 1,
      applied: bodies.length - 1,
      malformed: { 'store corrupt': 1 },
    });
    expect(await queueDepth(`${queue}.dead`)).to.equal(1);
    expect(warnings.join('\n')).to.match(
      /apply to "foreign": one of its keys holds another type .*; its message goes to the dead-letter queue/,
    );
    // The foreign key is left as it was.
    expect(await redis.get(`${prefix}ctx:{foreign}`)).to.equal('not a hash');
  });

  it('refuses an option it does not know (a misspelt one is not ignored)', () => {
    let err: unknown;
    try {
      new Collector({ store, url: amqpUrl(), queue, logger: null, bindngs: ['a.#'] } as unknown as CollectorOptions);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(CollectorError);
    expect(err).to.include({ code: 'LC_DAEMON_INVALID_OPTION', message: 'Collector: unknown option "bindngs"' });
    // Every option it documents is taken.
    const c = new Collector({
      store,
      url: amqpUrl(),
      exchange,
      exchangeType: 'topic',
      queue,
      queueType: 'classic',
      bindings: ['a.#'],
      bindingArgs: {},
      prefetch: 10,
      batchSize: 5,
      deadLetterQueue: `${queue}.dl`,
      maxBytes: 1000,
      maxDepth: 8,
      retry: { initialDelay: 10, maxDelay: 100, factor: 3, jitter: 0.5 },
      shutdownTimeout: 1000,
      logger: null,
      registry: null,
      heartbeatInterval: 0,
    });
    cleanup.defer(() => c.close());
    expect(c.stats().status).to.equal('idle');
    expect(c.options.retry).to.deep.equal({ initialDelay: 10, maxDelay: 100, factor: 3, jitter: 0.5 });
  });

  it('refuses a bad option with a CollectorError LC_DAEMON_INVALID_OPTION, its message saying which', () => {
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ store: {} }, 'Collector: options.store must have an apply(message, meta) method'],
      [{ prefetch: 0 }, 'Collector: prefetch must be a positive integer, got 0'],
      // AMQP's prefetch count is 16 bits, as the program's --prefetch says.
      [{ prefetch: 70_000 }, 'Collector: prefetch must be at most 65535, got 70000'],
      [{ url: 'http://u:pw@h' }, 'Collector: url is not a URL of amqp:// or amqps://'],
      [{ url: 'amqp://h,http://h' }, 'Collector: url entry 2 of 2 is not a URL of amqp:// or amqps://'],
      [{ bindings: [] }, 'Collector: bindings must name at least one routing key'],
      [{ queue: '' }, 'Collector: queue must be a non-empty string'],
      [{ deadLetterQueue: '' }, 'Collector: deadLetterQueue must be a non-empty string'],
      [{ heartbeatInterval: 50 }, 'Collector: heartbeatInterval must be an integer >= 100 (ms), or 0 for none, got 50'],
      [{ registry: {} }, 'Collector: registry must have beat(entry, metrics) and unregister(id) methods (a Registry)'],
      [{ retry: { factor: 0.5 } }, 'Collector: retry.factor must be a number >= 1, got 0.5'],
      [{ retry: { jitter: 2 } }, 'Collector: retry.jitter must be a number from 0 to 1, got 2'],
      [{ retry: { initialDelay: -1 } }, 'Collector: retry.initialDelay must be a number of ms >= 0, got -1'],
    ];
    for (const [options, message] of bad) {
      let err: unknown;
      try {
        new Collector({ store, logger: null, ...options } as unknown as CollectorOptions);
      } catch (e) {
        err = e;
      }
      expect(err, message).to.be.instanceOf(CollectorError);
      expect(err).to.include({ code: 'LC_DAEMON_INVALID_OPTION', message });
    }
    // Unset retry fields keep their defaults.
    const c = new Collector({ store, logger: null, retry: { initialDelay: 10, maxDelay: undefined } });
    cleanup.defer(() => c.close());
    expect(c.options.retry).to.deep.equal({ initialDelay: 10, maxDelay: 5000, factor: 2, jitter: 0.2 });
  });

  it('works with a store that has apply() only', async () => {
    const ordered = makeStream(uniqueName('one'), 5, 10, 31);
    const collector = inProcess({ store: { apply: (m, meta) => store.apply(m, meta) } });
    await collector.start();
    await publishMessages(exchange, ordered);
    await waitUntil(() => collector.stats().acked === ordered.length, 'every delivery acked');
    expect(await storeMatches(store, ordered)).to.deep.equal([]);
  });

  it('three collectors on one queue give the same final state as one', async () => {
    const ordered = makeStream(uniqueName('three'), 30, 40, 3);
    const messages = shuffledWithDuplicates(ordered, 5);
    // Three collectors, each with its own Redis client, as three processes would have.
    const stores = [0, 1, 2].map(() => new RedisContextStore({ redis: redisUrl(), prefix }));
    for (const s of stores) cleanup.defer(() => s.close());
    const collectors = stores.map((s) => inProcess({ store: s }));
    await Promise.all(collectors.map((c) => c.start()));
    await publishMessages(exchange, messages);
    await waitUntil(
      async () => (await queueDepth(queue)) === 0 && collectors.every((c) => c.stats().inFlight === 0),
      'the queue to drain',
    );
    const shares = collectors.map((c) => c.stats().deliveries);
    expect(shares.reduce((a, b) => a + b, 0)).to.be.at.least(messages.length);
    expect(shares.filter((n) => n > 0).length, `shares ${shares}`).to.be.at.least(2);
    expect(await storeMatches(store, ordered)).to.deep.equal([]);
  });

  it('a collector killed with SIGKILL mid-stream and started again loses nothing', async () => {
    const ordered = makeStream(uniqueName('kill'), 50, 60, 9); // 3,000 messages
    const args = [
      '--url',
      amqpUrl(),
      '--redis',
      redisUrl(),
      '--exchange',
      exchange,
      '--queue',
      queue,
      '--prefix',
      prefix,
      '--prefetch',
      '200',
    ];
    const first = startBin(args);
    await waitUntil(() => /consuming/.test(first.stderr()), 'the first collector to consume', 20_000);
    const publishing = publishMessages(exchange, ordered);
    await waitUntil(async () => (await store.get(ordered[0]!.obj_id)) !== null, 'some messages applied');
    first.child.kill('SIGKILL');
    expect((await first.ended).signal).to.equal('SIGKILL');
    await publishing;
    const second = startBin(args);
    cleanup.defer(async () => {
      second.child.kill('SIGTERM');
      await second.ended;
    });
    await waitUntil(async () => (await queueDepth(queue)) === 0, 'the queue to drain', 60_000);
    await waitUntil(
      async () => (await storeMatches(store, ordered)).length === 0,
      'every object in Redis',
      30_000,
    ).catch(() => {});
    expect(await storeMatches(store, ordered)).to.deep.equal([]);
  });

  it('Redis restarted under load loses nothing (no ack until Redis has it)', async () => {
    const redis = new TempRedis();
    await redis.start();
    cleanup.defer(() => redis.destroy());
    const own = new RedisContextStore({ redis: redis.url, prefix });
    cleanup.defer(() => own.close());
    const ordered = makeStream(uniqueName('redis'), 40, 50, 13); // 2,000 messages
    const args = [
      '--url',
      amqpUrl(),
      '--redis',
      redis.url,
      '--exchange',
      exchange,
      '--queue',
      queue,
      '--prefix',
      prefix,
      '--prefetch',
      '100',
    ];
    const bin = startBin(args);
    cleanup.defer(async () => {
      bin.child.kill('SIGTERM');
      await bin.ended;
    });
    await waitUntil(() => /consuming/.test(bin.stderr()), 'the collector to consume', 20_000);
    const publishing = publishMessages(exchange, ordered);
    await waitUntil(async () => (await own.get(ordered[0]!.obj_id)) !== null, 'some messages applied');
    await redis.stop();
    await publishing;
    // Redis stays down until the collector has failed to apply and is retrying (the outage is seen).
    await waitUntil(() => /the store failed/.test(bin.stderr()), 'the collector to find the store down', 30_000);
    await redis.start();
    await waitUntil(async () => (await queueDepth(queue)) === 0, 'the queue to drain', 60_000);
    await waitUntil(async () => (await storeMatches(own, ordered)).length === 0, 'every object in Redis', 30_000).catch(
      () => {},
    );
    expect(await storeMatches(own, ordered)).to.deep.equal([]);
    expect(bin.stderr()).to.match(/the store failed/);
    expect(bin.stderr()).to.match(/the store answers again/);
    expect(bin.child.exitCode).to.equal(null);
  });

  it('Redis unreachable behind a cut proxy: nothing is acknowledged, then everything is applied', async () => {
    const u = new URL(redisUrl());
    const proxy = new FaultProxy(u.hostname, Number(u.port || 6379));
    const port = await proxy.listen();
    cleanup.defer(() => proxy.close());
    const viaProxy = new RedisContextStore({ redis: `redis://127.0.0.1:${port}`, prefix });
    cleanup.defer(() => viaProxy.close());
    const collector = new Collector({
      store: viaProxy,
      url: amqpUrl(),
      exchange,
      queue,
      logger: null,
      retry: { initialDelay: 20, maxDelay: 200 },
    });
    cleanup.defer(() => collector.close());
    await collector.start();
    proxy.cut();
    const ordered = makeStream(uniqueName('cut'), 10, 20, 17);
    await publishMessages(exchange, ordered);
    await waitUntil(() => collector.stats().storeErrors > 5, 'store errors');
    expect(collector.stats().acked).to.equal(0);
    proxy.restore();
    await waitUntil(() => collector.stats().acked === ordered.length, 'every delivery acked', 30_000);
    expect(await storeMatches(store, ordered)).to.deep.equal([]);
  });

  it('a fuzzed batch of malformed messages is dead-lettered and counted; valid traffic and the process are intact', async () => {
    const collector = inProcess();
    await collector.start();
    const ordered = makeStream(uniqueName('fuzz'), 10, 10, 21);
    const deep = `{"obj_id":"deep","obj":${'{"a":'.repeat(500)}1${'}'.repeat(500)}}`;
    const junk: Array<{ body: string | Buffer; contentType?: string }> = [
      { body: 'not json at all' },
      { body: '' },
      { body: '[1,2,3]' },
      { body: '{"obj":{}}' },
      { body: '{"obj_id":"x","obj":[]}' },
      { body: '{"obj_id":"x","seq":"one"}' },
      { body: '{"obj_id":"x","status":"zombie"}' },
      { body: '{"obj_id":"x","time_in":"noon"}' },
      { body: deep },
      { body: Buffer.alloc(2 * 1024 * 1024, 0x20) },
      { body: Buffer.from([0xff, 0xfe, 0x00, 0x7b]) },
      {
        body: '{"obj_id":"ok-in-batch","obj":{"v":1},"status":"transient","seq":0}\nnot json\n',
        contentType: 'application/x-ndjson',
      },
    ];
    const rnd = rng(99);
    for (let i = 0; i < 40; i++) {
      // Mutations of real messages under ids of their own: one that stays valid JSON must not touch the checked contexts.
      const s = JSON.stringify({ ...ordered[i % ordered.length]!, obj_id: `junk-${i}` });
      const cut = Math.floor(rnd() * s.length);
      junk.push({ body: s.slice(0, cut) + String.fromCharCode(Math.floor(rnd() * 128)) + s.slice(cut + 1) });
    }
    const polluting = [
      '{"obj_id":"proto","obj":{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}}},"status":"transient","seq":0}',
      '{"obj_id":"proto2","__proto__":{"polluted":3},"obj":{"a":1},"status":"transient","seq":0}',
    ];
    const bodies = [
      ...junk.map((j) => ({ body: j.body, contentType: j.contentType })),
      ...polluting.map((p) => ({ body: p })),
      ...ordered.map((m) => ({ body: JSON.stringify(m) })),
    ];
    await publishRaw(exchange, bodies);
    await waitUntil(
      async () => (await queueDepth(queue)) === 0 && collector.stats().inFlight === 0,
      'the queue to drain',
    );
    const s = collector.stats();
    const malformed = Object.values(s.malformed).reduce((a, b) => a + b, 0);
    expect(s.deadLettered).to.be.at.least(12);
    expect(malformed).to.be.at.least(12);
    expect(s.acked).to.equal(bodies.length);
    expect(await queueDepth(`${queue}.dead`)).to.equal(s.deadLettered);
    expect(await storeMatches(store, ordered)).to.deep.equal([]);
    expect((await store.get('ok-in-batch'))?.context).to.deep.equal({ v: 1 });
    const proto = (await store.get('proto'))!;
    expect(Object.hasOwn(proto.context, '__proto__')).to.equal(true);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    expect((await store.get('proto2'))?.context).to.deep.equal({ a: 1 });
  });

  it('a message without obj_id and obj (the Python handler announcing itself) is acknowledged and counted as a note, not dead-lettered', async () => {
    const collector = inProcess();
    await collector.start();
    const ordered = makeStream(uniqueName('py'), 3, 4, 5);
    // What the Python contexture's handler (1.3) publishes of itself, as its json.dumps writes it.
    const python = { rkey: 'default', contentType: 'text/plain', headers: { hostname: 'box-1' } };
    const bodies = [
      {
        ...python,
        body: '{"host": "box-1", "pid": 4242, "argv": ["worker.py"], "tid": 140230, "contexture": "1.3.0", "time_out": 1700000000.52, "time_in": 1700000000.5, "qtime": 0.02, "qlen": 0, "handler_id": "76bb5a4e-34b7-43a0-8ffc-19e448d33ea0"}',
      },
      ...ordered.map((m) => ({ body: JSON.stringify(m) })),
      {
        ...python,
        body: '{"stopping": true, "time_out": 1700000009.01, "time_in": 1700000009.0, "qtime": 0.01, "qlen": 0, "handler_id": "76bb5a4e-34b7-43a0-8ffc-19e448d33ea0"}',
      },
    ];
    await publishRaw(exchange, bodies);
    await waitUntil(
      async () => (await queueDepth(queue)) === 0 && collector.stats().acked === bodies.length,
      'every delivery acknowledged',
    );
    const s = collector.stats();
    expect(s).to.include({ notes: 2, deadLettered: 0, applied: ordered.length, acked: bodies.length });
    expect(s.malformed).to.deep.equal({});
    expect(await queueDepth(`${queue}.dead`)).to.equal(0);
    expect(await storeMatches(store, ordered)).to.deep.equal([]);
  });

  it('a quorum queue bound with routing keys collects those keys only', async () => {
    const qq = cleanup.queue(uniqueName('col-qq'));
    cleanup.queue(`${qq}.dead`);
    const collector = new Collector({
      store,
      url: amqpUrl(),
      exchange,
      queue: qq,
      queueType: 'quorum',
      bindings: ['web.*', 'jobs.#'],
      logger: null,
    });
    cleanup.defer(() => collector.close());
    await collector.start();
    // Declaring it again as a classic queue is refused: it is a quorum queue.
    const conn = await amqp.connect(amqpUrl());
    cleanup.defer(() => conn.close().catch(() => {}));
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    let refused: unknown = null;
    await ch.assertQueue(qq, { durable: true }).catch((err) => (refused = err));
    expect(String(refused)).to.match(/PRECONDITION_FAILED - inequivalent arg 'x-/);
    const t = (id: string): WireMessage => ({ obj_id: id, obj: { id }, status: 'transient', seq: 0 });
    const ids = {
      web: uniqueName('web'),
      jobs: uniqueName('jobs'),
      other: uniqueName('other'),
      last: uniqueName('last'),
    };
    await publishRaw(exchange, [
      { body: JSON.stringify(t(ids.web)), rkey: 'web.handle' },
      { body: JSON.stringify(t(ids.jobs)), rkey: 'jobs.import.daily' },
      { body: JSON.stringify(t(ids.other)), rkey: 'other.thing' },
      { body: JSON.stringify(t(ids.last)), rkey: 'web.last' },
    ]);
    await waitUntil(async () => (await store.get(ids.last)) !== null, 'the last message');
    await waitUntil(() => collector.stats().applied === 3, 'three applied');
    expect((await store.get(ids.web))?.rkey).to.equal('web.handle');
    expect((await store.get(ids.jobs))?.rkey).to.equal('jobs.import.daily');
    expect(await store.get(ids.other)).to.equal(null);
  });

  it('SIGTERM: stops consuming, finishes what is in flight, exits 0; what it did not take stays queued', async () => {
    const ordered = makeStream(uniqueName('term'), 20, 25, 23);
    await publishMessages(exchange, []); // declares the exchange
    const args = [
      '--url',
      amqpUrl(),
      '--redis',
      redisUrl(),
      '--exchange',
      exchange,
      '--queue',
      queue,
      '--prefix',
      prefix,
      '--stats',
      '1',
    ];
    const bin = startBin(args);
    await waitUntil(() => /consuming/.test(bin.stderr()), 'the collector to consume', 20_000);
    await publishMessages(exchange, ordered);
    await waitUntil(() => /msg\/s, applied \d+/.test(bin.stderr()), 'a stats line', 20_000);
    bin.child.kill('SIGTERM');
    const exit = await bin.ended;
    expect(exit.code, bin.stderr()).to.equal(0);
    expect(bin.stderr()).to.match(/SIGTERM: stopping/);
    const applied = Number(/stopped after applying (\d+) messages/.exec(bin.stderr())?.[1]);
    expect(applied).to.be.at.least(1);
    const left = await queueDepth(queue);
    expect(applied + left).to.be.at.least(ordered.length);
    // A new collector picks up the rest: nothing was lost.
    const collector = inProcess();
    await collector.start();
    await waitUntil(
      async () => (await queueDepth(queue)) === 0 && collector.stats().inFlight === 0,
      'the queue to drain',
    );
    expect(await storeMatches(store, ordered)).to.deep.equal([]);
  });

  it('Redis unreachable: the CLI says so once, naming host:port; SIGTERM exits 0 after --shutdown-timeout and leaves the messages queued', async () => {
    const port = await freePort();
    const ordered = makeStream(uniqueName('down'), 3, 2, 5);
    await publishMessages(exchange, []); // declares the exchange
    const bin = startBin([
      '--url',
      amqpUrl(),
      '--redis',
      `redis://:s3cret@127.0.0.1:${port}`,
      '--exchange',
      exchange,
      '--queue',
      queue,
      '--prefix',
      prefix,
      '--no-registry',
      '--shutdown-timeout',
      '300',
    ]);
    await waitUntil(() => /consuming/.test(bin.stderr()), 'the collector to consume', 20_000);
    await publishMessages(exchange, ordered);
    await waitUntil(
      () => /the store failed \(no connection to Redis\)/.test(bin.stderr()),
      'the store failure',
      20_000,
    );
    const t0 = Date.now();
    bin.child.kill('SIGTERM');
    const exit = await bin.ended;
    expect(exit.code, bin.stderr()).to.equal(0);
    // The shutdown timeout, then at most the 2 s given to a connection attempt under way.
    expect(Date.now() - t0, bin.stderr()).to.be.below(6_000);
    const err = bin.stderr();
    expect(
      err.match(new RegExp(`Redis at 127\\.0\\.0\\.1:${port} is unreachable \\(connect ECONNREFUSED`, 'g')),
      err,
    ).to.have.length(1);
    expect(err).to.match(/^contexture-collector: the store failed/m);
    expect(err).to.match(/stopped after applying 0 messages/);
    expect(err).to.not.contain('s3cret');
    expect(err).to.not.match(/maxRetriesPerRequest/);
    expect(await queueDepth(queue)).to.equal(ordered.length);
  });

  it('a second SIGTERM while the first waits for messages in flight exits 130 at once, saying so; --version prints the version', async () => {
    const port = await freePort();
    const ordered = makeStream(uniqueName('twice'), 2, 2, 5);
    await publishMessages(exchange, []); // declares the exchange
    const bin = startBin([
      '--url',
      amqpUrl(),
      '--redis',
      `redis://127.0.0.1:${port}`,
      '--exchange',
      exchange,
      '--queue',
      queue,
      '--prefix',
      prefix,
      '--no-registry',
      '--shutdown-timeout',
      '60000',
    ]);
    await waitUntil(() => /consuming/.test(bin.stderr()), 'the collector to consume', 20_000);
    await publishMessages(exchange, ordered);
    await waitUntil(() => /the store failed/.test(bin.stderr()), 'the store failure', 20_000);
    bin.child.kill('SIGTERM');
    await waitUntil(() => /SIGTERM: stopping/.test(bin.stderr()), 'the first signal taken');
    const t0 = Date.now();
    bin.child.kill('SIGTERM');
    const exit = await bin.ended;
    expect(exit.code, bin.stderr()).to.equal(130);
    expect(Date.now() - t0).to.be.below(10_000);
    expect(bin.stderr()).to.match(/SIGTERM again: exiting now; messages not acknowledged stay queued/);
    await waitUntil(async () => (await queueDepth(queue)) === ordered.length, 'every message back in the queue');
    const v = startBin(['--version']);
    expect((await v.ended).code).to.equal(0);
  });

  it('bad arguments (numbers, URLs) give usage and exit 2 without the password; an unreachable broker exits 69 naming host:port without the password', async () => {
    const bad = startBin(['--prefetch', 'zero']);
    expect((await bad.ended).code).to.equal(2);
    expect(bad.stderr()).to.match(/prefetch/);
    for (const args of [
      ['--queue', ''],
      ['-e', ''],
      ['--dead-letter-queue', ''],
    ]) {
      const empty = startBin(args);
      expect((await empty.ended).code, args.join(' ')).to.equal(2);
      expect(empty.stderr()).to.match(/must not be empty/);
    }
    for (const [args, said] of [
      [['--stats', 'abc'], /--stats.*seconds ≥ 0\.1/],
      [['--stats', '0.001'], /--stats.*seconds ≥ 0\.1/],
      [['--redis', 'notaurl'], /--redis is not a URL/],
      [['--redis', 'http://user:s3cret@127.0.0.1:6379'], /--redis is not a URL of redis: or rediss:/],
      [['--url', 'localhost:5672'], /--url is not a URL of amqp: or amqps:/],
      [['--url', 'guest:s3cret@127.0.0.1'], /--url is not a URL of amqp: or amqps:/],
      [['--url', 'amqp//guest:s3cret@127.0.0.1'], /--url is not a URL/],
    ] as const) {
      const wrong = startBin([...args, '--prefix', prefix]);
      expect((await wrong.ended).code, args.join(' ')).to.equal(2);
      expect(wrong.stderr()).to.match(said);
      expect(wrong.stderr()).to.not.match(/s3cret|guest/);
    }
    const fromEnv = startBin(['--prefix', prefix], { CONTEXTURE_REDIS_URL: 'user:s3cret@127.0.0.1' });
    expect((await fromEnv.ended).code).to.equal(2);
    expect(fromEnv.stderr()).to.match(/--redis is not a URL of redis: or rediss: \(from CONTEXTURE_REDIS_URL\)/);
    expect(fromEnv.stderr()).to.not.match(/s3cret|user/);
    const usage = startBin(['--prefetch', '0']);
    expect((await usage.ended).code).to.equal(2);
    expect(usage.stderr()).to.match(/contexture-collector --help lists the options/);
    const down = startBin(['--url', 'amqp://user:s3cret@127.0.0.1:1/%2F', '--redis', redisUrl(), '--prefix', prefix]);
    const exit = await down.ended;
    expect(exit.code, down.stderr()).to.equal(69);
    expect(down.stderr()).to.contain('127.0.0.1:1');
    expect(down.stderr()).to.not.contain('s3cret');
    const refused = startBin([
      '--url',
      amqpUrl().replace(/\/\/[^@]*@/, '//guest:wr0ngpass@'),
      '--redis',
      redisUrl(),
      '--prefix',
      prefix,
      '--queue',
      queue,
    ]);
    expect((await refused.ended).code, refused.stderr()).to.equal(77);
    expect(refused.stderr()).to.match(/refused the login/);
    expect(refused.stderr()).to.not.contain('wr0ngpass');
    // A vhost that does not exist is refused too (77), not "unreachable".
    const vhost = new URL(amqpUrl());
    vhost.pathname = `/${uniqueName('no-vhost')}`;
    const noVhost = startBin(['--url', vhost.toString(), '--redis', redisUrl(), '--prefix', prefix, '--queue', queue]);
    expect((await noVhost.ended).code, noVhost.stderr()).to.equal(77);
    expect(noVhost.stderr()).to.match(/refused the login or the vhost/);
    // Values the options refuse, whoever checks them, are usage errors in one line (2), not a stack
    // trace and a process that stays up.
    for (const [args, said] of [
      [['--heartbeat-interval', '50'], /heartbeatInterval/],
      [['--prefetch', '70000'], /--prefetch.*at most 65535/],
      [['--redis', 'redis://u:x%ZZ@127.0.0.1/'], /redis: the URL does not parse/],
    ] as const) {
      const wrong = startBin([...args, '--prefix', prefix, '--queue', queue]);
      expect((await wrong.ended).code, `${args.join(' ')}: ${wrong.stderr()}`).to.equal(2);
      expect(wrong.stderr()).to.match(said);
      expect(wrong.stderr()).to.not.match(/\n\s+at /, 'no stack trace');
    }
  });

  it('a broker that takes the connection and says nothing: the collector gives up at start (69) instead of waiting for ever', async function () {
    this.timeout(60_000);
    // A server that takes connections and never says a word (a broker hung, or a wrong port).
    const taken = new Set<net.Socket>();
    const silentServer = net.createServer((socket) => {
      taken.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silentServer.listen(0, '127.0.0.1', resolve));
    cleanup.defer(async () => {
      for (const socket of taken) socket.destroy();
      await new Promise((resolve) => silentServer.close(resolve));
    });
    const through = new URL(amqpUrl());
    through.hostname = '127.0.0.1';
    through.port = String((silentServer.address() as net.AddressInfo).port);
    const t0 = Date.now();
    const silent = startBin(['--url', through.toString(), '--redis', redisUrl(), '--prefix', prefix, '--queue', queue]);
    expect((await silent.ended).code, silent.stderr()).to.equal(69);
    expect(Date.now() - t0).to.be.below(30_000, 'the handshake timeout, not never');
  });
});
