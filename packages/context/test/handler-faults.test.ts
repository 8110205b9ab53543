import { expect } from 'chai';
import { Context, ContextError, Handler, type HandlerStats } from '@contexture/context';
import {
  amqpUrl,
  Cleanup,
  TestConsumer,
  uniqueName,
  waitUntil,
  brokerProxy,
  proxiedAmqpUrl,
} from '@contexture/test-support';

const balanced = (s: HandlerStats) => s.enqueued === s.published + s.dropped + s.queued + s.inFlight;

describe('Handler faults: a mismatched exchange, confirms lost in an outage, a silent broker', function () {
  this.timeout(60_000);
  let cleanup: Cleanup;

  beforeEach(() => {
    cleanup = new Cleanup();
  });
  afterEach(() => cleanup.run());

  for (const type of ['direct', 'headers'] as const)
    it(`an exchange that exists as ${type}: one warning, lastError, an error event (LC_HANDLER_EXCHANGE_MISMATCH), every message counted as dropped`, async () => {
      const exchange = cleanup.exchange(uniqueName(`hf-${type}`));
      const witness = await TestConsumer.start({ exchange, type, bindingKey: 'mismatch', bindingArgs: {} });
      cleanup.defer(() => witness.close());
      const warnings: string[] = [];
      const errors: unknown[] = [];
      const handler = new Handler({
        url: amqpUrl(),
        exchange,
        flushInterval: 1,
        logger: { warn: (m: string) => warnings.push(m) },
        reconnect: { initialDelay: 10, maxDelay: 50 },
      });
      cleanup.defer(() => handler.close());
      handler.on('error', (err: unknown) => errors.push(err));
      const ctx = new Context({ name: 'mismatch', handler });
      for (let i = 0; i < 9; i++) ctx.i = i;
      await waitUntil(() => errors.length > 0, 'the error event');
      const err = errors[0] as ContextError;
      expect(err).to.be.instanceOf(ContextError);
      expect(err.code).to.equal('LC_HANDLER_EXCHANGE_MISMATCH');
      expect(err.message).to.contain(`received 'topic' but current is '${type}'`);
      expect(handler.stats().lastError).to.equal(err.message);
      // Later messages are counted too, and nothing is retried or said again.
      for (let i = 0; i < 5; i++) new Context({ name: 'mismatch', handler, transient: true });
      await handler.close();
      const s = handler.stats();
      expect(s).to.include({ status: 'closed', enqueued: 15, published: 0, dropped: 15, queued: 0, inFlight: 0 });
      expect(balanced(s)).to.equal(true);
      expect(errors).to.have.length(1);
      expect(warnings, warnings.join('\n')).to.have.length(1);
      expect(warnings[0]).to.match(
        new RegExp(`^contexture: stopped publishing: exchange '${exchange}' exists with other arguments`),
      );
      expect(witness.received).to.have.length(0);
    });

  it('confirms lost with the connection: a requeued message dropped from a full buffer counts as droppedUnconfirmed, and the accounting is exact', async () => {
    const exchange = cleanup.exchange(uniqueName('hf-unconf'));
    const consumer = await TestConsumer.start({ exchange });
    cleanup.defer(() => consumer.close());
    const proxy = await brokerProxy(cleanup);
    const warnings: string[] = [];
    const drops: Array<[number, number]> = [];
    const handler = new Handler({
      url: proxiedAmqpUrl(proxy.port),
      exchange,
      bufferSize: 10,
      maxInFlight: 30,
      flushInterval: 1,
      heartbeatInterval: 0,
      reconnect: { initialDelay: 20, maxDelay: 200 },
      logger: { warn: (m: string) => warnings.push(m) },
    });
    cleanup.defer(() => handler.close());
    handler.on('drop', (n: number, unconfirmed: number) => drops.push([n, unconfirmed]));
    let produced = 0;
    const ctx = new Context({ name: 'unconfirmed', handler });
    produced++;
    expect(await handler.flush(10_000)).to.equal(true);
    // The broker gets what is sent but its confirms are held: 30 messages reach the queue and stay
    // in flight; the next 10 wait in the (full) buffer behind the in-flight limit.
    proxy.mute();
    for (let i = 0; i < 40; i++, produced++) {
      ctx.i = i;
      // In tens, each sent before the next is made: the buffer holds ten.
      if (i % 10 === 9 && i < 30) await waitUntil(() => handler.stats().queued === 0, `message ${i} sent`);
    }
    await consumer.waitFor(31);
    await waitUntil(() => handler.stats().inFlight === 30 && handler.stats().queued === 10, '30 in flight, 10 queued');
    // The connection dies with the confirms: the 30 go back to the front of the full buffer and,
    // being the oldest, are dropped, though the broker has them.
    proxy.cut();
    await waitUntil(() => handler.stats().status === 'disconnected', 'the loss noticed');
    expect(handler.stats()).to.include({ dropped: 30, droppedUnconfirmed: 30, queued: 10, inFlight: 0 });
    // Five more while disconnected push out five never sent: certainly lost.
    for (let i = 0; i < 5; i++, produced++) ctx.j = i;
    expect(handler.stats()).to.include({ dropped: 35, droppedUnconfirmed: 30, queued: 10 });
    expect(balanced(handler.stats())).to.equal(true);
    proxy.restore();
    expect(await handler.flush(10_000)).to.equal(true);
    const s = handler.stats();
    expect(balanced(s)).to.equal(true);
    expect(s).to.include({ enqueued: produced, dropped: 35, droppedUnconfirmed: 30, queued: 0, inFlight: 0 });
    const distinct = new Set<number>();
    await waitUntil(() => {
      for (const r of consumer.received) distinct.add(r.json.seq);
      return distinct.size >= s.published + s.droppedUnconfirmed;
    }, 'every published message and the unconfirmed ones that arrived');
    const received = distinct.size;
    const certain = s.dropped - s.droppedUnconfirmed;
    expect(received + certain).to.be.at.most(produced);
    expect(produced).to.be.at.most(received + s.dropped);
    expect(produced).to.be.at.most(received + s.dropped + s.droppedUnconfirmed);
    // Here every unconfirmed one had arrived: the certain drops are the whole loss.
    expect(received + certain).to.equal(produced);
    expect(drops.reduce((a, [n]) => a + n, 0)).to.equal(35);
    expect(drops.reduce((a, [, u]) => a + u, 0)).to.equal(30);
    expect(warnings.filter((w) => w.includes('dropped during the outage'))).to.have.length(1);
    expect(warnings.find((w) => w.includes('dropped during the outage'))).to.match(
      /35 message\(s\) dropped during the outage \(30 of them sent and never confirmed: they may have been delivered\)$/,
    );
  });

  it('a broker that goes silent (connection stalled, default heartbeat) is taken as lost in about 10 s, with the reason', async () => {
    const exchange = cleanup.exchange(uniqueName('hf-silent'));
    const proxy = await brokerProxy(cleanup);
    const warnings: string[] = [];
    const handler = new Handler({
      url: proxiedAmqpUrl(proxy.port),
      exchange,
      flushInterval: 1,
      heartbeatInterval: 0,
      reconnect: { initialDelay: 20, maxDelay: 200 },
      logger: { warn: (m: string) => warnings.push(m) },
    });
    cleanup.defer(() => handler.destroy());
    const lost = new Promise<number>((resolve) => handler.once('disconnect', () => resolve(performance.now())));
    const ctx = new Context({ name: 'silent', handler });
    expect(await handler.flush(10_000)).to.equal(true);
    const t0 = performance.now();
    proxy.stall();
    ctx.i = 1;
    // Generous: nearly twice the documented 10 s (amqplib's own check alone takes 20 to 30 s).
    const bound = new Promise<null>((resolve) => setTimeout(() => resolve(null), 18_000).unref());
    const at = await Promise.race([lost, bound]);
    expect(at, 'the silent broker noticed within 18 s').to.not.equal(null);
    console.log(`      (silent broker noticed after ${(((at as number) - t0) / 1000).toFixed(1)} s)`);
    expect(handler.stats().lastError).to.match(/heartbeat timeout/i);
    expect(warnings.join('\n')).to.match(/cannot publish .*heartbeat timeout/i);
    expect(handler.stats()).to.include({ inFlight: 0, queued: 1, dropped: 0 });
  });
  it('a message larger than the broker takes (max_message_size): dropped and said once (LC_MESSAGE_TOO_LARGE), never counted as maybe delivered, and the messages after it go on', async function () {
    this.timeout(180_000);
    const exchange = cleanup.exchange(uniqueName('hf-large'));
    const consumer = await TestConsumer.start({ exchange, bindingKey: 'after' });
    cleanup.defer(() => consumer.close());
    const records: Array<Record<string, unknown>> = [];
    const handler = new Handler({
      url: amqpUrl(),
      exchange,
      flushInterval: 1,
      heartbeatInterval: 0,
      reconnect: { initialDelay: 10, maxDelay: 50 },
      logger: {
        info: () => {},
        error: () => {},
        warn: (fields: Record<string, unknown>, msg: string) => records.push({ ...fields, msg }),
      },
    });
    cleanup.defer(() => handler.close());
    // Just over RabbitMQ's default max_message_size (128 MiB): the broker closes the channel for it.
    const big = new Context({ name: 'big', handler });
    big.blob = 'x'.repeat(128 * 1024 * 1024 + 1024);
    const after = new Context({ name: 'after', handler });
    after.n = 1;
    expect(await handler.flush(60_000), JSON.stringify(handler.stats())).to.equal(true);
    await consumer.waitFor(2);
    expect(consumer.received.map((m) => m.json.obj.n)).to.deep.equal([undefined, 1]);
    let s = handler.stats();
    expect(s).to.include({ dropped: 1, droppedUnconfirmed: 0, queued: 0, inFlight: 0 });
    expect(balanced(s)).to.equal(true);
    const said = () => records.filter((r) => r.code === 'LC_MESSAGE_TOO_LARGE');
    expect(said()).to.have.length(1);
    expect(said()[0]).to.include({ dropped: 1, maxMessageSize: 128 * 1024 * 1024 });
    // The limit is known now: a later message that large is dropped before it is sent, without a
    // channel closed for it, and the messages after it go on.
    const reconnects = s.reconnects;
    big.blob = 'y'.repeat(128 * 1024 * 1024 + 1024);
    after.n = 2;
    expect(await handler.flush(60_000)).to.equal(true);
    await consumer.waitFor(3);
    expect(consumer.received.map((m) => m.json.obj.n)).to.deep.equal([undefined, 1, 2]);
    s = handler.stats();
    expect(s).to.include({ dropped: 2, droppedUnconfirmed: 0, reconnects });
    expect(said(), 'said once').to.have.length(1);
    await handler.close();
    expect(records.filter((r) => r.code === 'LC_HANDLER_CLOSE_UNPUBLISHED')).to.have.length(0);
    expect(handler.stats()).to.include({ dropped: 2, droppedUnconfirmed: 0 });
  });
});
