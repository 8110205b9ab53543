import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Context, Handler } from '@contexture/context';
import { HEARTBEAT_RKEY, isReservedRkey, parseHeartbeat, type Heartbeat } from '@contexture/context/protocol';
import { amqpUrl, Cleanup, TestConsumer, uniqueName, waitUntil } from '@contexture/test-support';

describe('Handler heartbeats (real RabbitMQ)', function () {
  this.timeout(20_000);
  let cleanup: Cleanup;
  let exchange: string;

  beforeEach(() => {
    cleanup = new Cleanup();
    exchange = cleanup.exchange(uniqueName('hb-x'));
  });
  afterEach(() => cleanup.run());

  const beats = (c: TestConsumer): Heartbeat[] => c.reserved.map((r) => parseHeartbeat(r.body)!);

  it('a connected handler publishes its stats every interval on contexture.heartbeat, and a last one when it closes', async () => {
    const consumer = await TestConsumer.start({ exchange, bindingKey: HEARTBEAT_RKEY });
    cleanup.defer(() => consumer.close());
    const handler = new Handler({ url: amqpUrl(), exchange, heartbeatInterval: 200, logger: null });
    const ctx = new Context({ name: 'app.jobs', handler });
    for (let i = 0; i < 5; i++) ctx.n = i;
    await handler.flush(5_000);
    await waitUntil(() => consumer.reserved.length >= 3, 'three heartbeats', 5_000);
    const first = consumer.reserved[0]!;
    expect(first.routingKey).to.equal(HEARTBEAT_RKEY);
    expect(first.properties).to.include({
      type: 'heartbeat',
      contentType: 'application/json',
      appId: 'contexture',
      expiration: '600',
    });
    const hs = beats(consumer);
    for (const h of hs) {
      expect(h).to.include({
        type: 'heartbeat',
        id: handler.id,
        kind: 'handler',
        host: os.hostname(),
        pid: process.pid,
        state: 'running',
        interval: 200,
      });
      expect(h.stats).to.have.all.keys(
        'queued',
        'in_flight',
        'enqueued',
        'published',
        'dropped',
        'published_per_s',
        'reconnects',
        'blocked',
      );
    }
    const last = hs.at(-1)!;
    expect(last.stats).to.include({ enqueued: 6, published: 6, dropped: 0, queued: 0, reconnects: 0 });
    expect(hs.map((h) => h.time)).to.deep.equal([...hs.map((h) => h.time)].sort((a, b) => a - b));
    expect(handler.stats().heartbeats).to.be.at.least(3);
    expect(Context.idOf(ctx)).to.be.a('string'); // held to here: no finish from the garbage collector
    // The data messages went on their own routing key, untouched by the heartbeats.
    await handler.close();
    await waitUntil(() => beats(consumer).some((h) => h.state === 'stopped'), 'the last heartbeat', 5_000);
    expect(beats(consumer).at(-1)!.state).to.equal('stopped');
    const n = beats(consumer).filter((h) => h.id === handler.id).length;
    // Time for several of its heartbeats goes by, as another handler's three heartbeats show.
    const control = new Handler({ url: amqpUrl(), exchange, heartbeatInterval: 200, logger: null });
    cleanup.defer(() => control.close());
    new Context({ name: 'app.control', handler: control }); // it connects with its first message
    await waitUntil(
      () => beats(consumer).filter((h) => h.id === control.id).length >= 3,
      "another handler's three heartbeats",
      10_000,
    );
    expect(beats(consumer).filter((h) => h.id === handler.id).length).to.equal(n, 'no heartbeat after close');
  });

  it('heartbeats on a "#" binding are told apart from data by their reserved routing key', async () => {
    const consumer = await TestConsumer.start({ exchange });
    cleanup.defer(() => consumer.close());
    const handler = new Handler({ url: amqpUrl(), exchange, heartbeatInterval: 100, logger: null });
    cleanup.defer(() => handler.close());
    const ctx = new Context({ name: 'app.one', handler });
    ctx.x = 1;
    await consumer.waitFor(2);
    await waitUntil(() => consumer.reserved.length >= 2, 'heartbeats on the # binding', 5_000);
    // The context is still referenced (no finish from the garbage collector): exactly its two messages.
    expect(consumer.received.map((r) => r.routingKey)).to.deep.equal(['app.one', 'app.one']);
    expect(Context.idOf(ctx)).to.be.a('string');
    expect(consumer.reserved.every((r) => isReservedRkey(r.routingKey))).to.equal(true);
  });

  it('heartbeatInterval 0 sends none; a JSON-lines transport never carries them', async () => {
    const consumer = await TestConsumer.start({ exchange, bindingKey: '#' });
    cleanup.defer(() => consumer.close());
    const quiet = new Handler({ url: amqpUrl(), exchange, heartbeatInterval: 0, logger: null });
    const q = new Context({ name: 'app.quiet', handler: quiet });
    q.x = 1;
    await quiet.flush(5_000);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hb-'));
    cleanup.defer(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'out.jsonl');
    const jsonl = new Handler({ url: `jsonl:${file}`, heartbeatInterval: 100, logger: null });
    const f = new Context({ name: 'app.file', handler: jsonl });
    f.x = 1;
    await jsonl.flush(5_000);
    // Meanwhile a handler with heartbeats every 100 ms, like the JSON-lines one, sends three: time
    // enough for either of the other two to have sent some.
    const control = new Handler({ url: amqpUrl(), exchange, heartbeatInterval: 100, logger: null });
    cleanup.defer(() => control.close());
    new Context({ name: 'app.control', handler: control }); // it connects with its first message
    await waitUntil(() => consumer.reserved.length >= 3, "another handler's three heartbeats", 10_000);
    await quiet.close();
    await jsonl.close();
    expect(beats(consumer).every((h) => h.id === control.id)).to.equal(true, 'only the other handler sent heartbeats');
    expect(consumer.received.filter((r) => r.routingKey === 'app.quiet')).to.have.length(2);
    expect(Context.idOf(q)).to.be.a('string');
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    expect(lines.map((l) => JSON.parse(l).rkey)).to.deep.equal(['app.file', 'app.file']);
    expect(jsonl.stats().heartbeats).to.equal(0);
    expect(Context.idOf(f)).to.be.a('string');
  });

  it('parseHeartbeat reads untrusted bodies: garbage is null, stats keep finite numbers, keys stay data', () => {
    for (const bad of [
      '',
      'nope',
      '[]',
      '{"type":"heartbeat"}',
      '{"type":"other","id":"a","kind":"handler","time":1}',
      '{"type":"heartbeat","id":"a","kind":"handler","time":"x"}',
      'x'.repeat(70_000),
    ]) {
      expect(parseHeartbeat(bad), bad.slice(0, 40)).to.equal(null);
    }
    const h = parseHeartbeat(
      '{"type":"heartbeat","id":"a","kind":"handler","time":5,"pid":-3,"state":"weird","stats":{"queued":2,"bad":"1","inf":1e999,"__proto__":7},"extra":{"__proto__":{"polluted":true}}}',
    )!;
    expect(h).to.include({
      id: 'a',
      kind: 'handler',
      time: 5,
      pid: 0,
      state: 'running',
      started_at: 5,
      name: '',
      host: '',
    });
    expect(Object.keys(h.stats).sort()).to.deep.equal(['__proto__', 'queued']);
    expect(h).to.not.have.property('extra');
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    expect(isReservedRkey('contexture.heartbeat')).to.equal(true);
    expect(isReservedRkey('app.contexture')).to.equal(false);
    expect(isReservedRkey(undefined)).to.equal(false);
  });

  it('a Context cannot take a reserved routing key: its data would be read as heartbeats and skipped', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'hb-reserved-'));
    const handler = new Handler({ url: `jsonl:${path.join(dir, 'out.jsonl')}`, heartbeatInterval: 0, logger: null });
    try {
      for (const options of [
        { name: 'contexture.heartbeat' },
        { name: 'app.ok', routingKey: 'contexture.mine' },
        { routingKey: 'contexture.x', headers: { a: 1 } },
      ]) {
        expect(() => new Context({ ...options, handler }), JSON.stringify(options))
          .to.throw(/routing key "contexture\.[a-z]+" is reserved/)
          .with.property('code', 'LC_CONTEXT_INVALID_OPTION');
      }
      // A name that only holds the word is fine.
      expect(Context.idOf(new Context({ name: 'app.contexture', handler }))).to.be.a('string');
      expect(handler.stats().enqueued).to.equal(1);
    } finally {
      await handler.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a bad heartbeatInterval is a clear configuration error', () => {
    expect(() => new Handler({ heartbeatInterval: 5 })).to.throw(
      /heartbeatInterval must be an integer from 100 to 2147483647/,
    );
    expect(() => new Handler({ heartbeatInterval: -1 })).to.throw(/heartbeatInterval/);
  });
});
