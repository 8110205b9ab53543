import { expect } from 'chai';
import { Context, Handler, resolveOptions } from '@contexture/context';
import {
  amqpUrl,
  Cleanup,
  TestConsumer,
  uniqueName,
  waitUntil,
  brokerProxy,
  proxiedAmqpUrl,
} from '@contexture/test-support';

/** Handler options as `CONTEXTURE_*` variables give them (and nothing from a config file). */
function fromEnv(explicit: Record<string, unknown>, env: Record<string, string>) {
  return resolveOptions(explicit, { CONTEXTURE_CONFIG: '', ...env }, '/nonexistent');
}

describe('Handler options, each shown taking effect (real RabbitMQ, the fault proxy)', function () {
  this.timeout(30_000);
  let cleanup: Cleanup;
  let exchange: string;
  let consumer: TestConsumer;

  beforeEach(async () => {
    cleanup = new Cleanup();
    exchange = cleanup.exchange(uniqueName('hopt-x'));
    consumer = await TestConsumer.start({ exchange });
    cleanup.defer(() => consumer.close());
  });
  afterEach(() => cleanup.run());

  for (const via of ['the option', 'CONTEXTURE_MAX_IN_FLIGHT'])
    it(`maxInFlight (${via}): with the broker silent, exactly that many are sent and the rest wait in the buffer`, async () => {
      const proxy = await brokerProxy(cleanup);
      const base = { url: proxiedAmqpUrl(proxy.port), exchange, flushInterval: 1, heartbeatInterval: 0, logger: null };
      const handler = new Handler(
        via === 'the option' ? { ...base, maxInFlight: 7 } : fromEnv(base, { CONTEXTURE_MAX_IN_FLIGHT: '7' }),
      );
      cleanup.defer(() => handler.close());
      const ctx = new Context({ name: 'inflight', handler });
      expect(await handler.flush(10_000)).to.equal(true);
      proxy.stall();
      for (let i = 0; i < 20; i++) ctx.i = i;
      await waitUntil(() => handler.stats().inFlight === 7, '7 in flight');
      expect(handler.stats()).to.include({ inFlight: 7, queued: 13, published: 1 });
      proxy.restore();
      expect(await handler.flush(10_000)).to.equal(true);
      expect(handler.stats()).to.include({ enqueued: 21, published: 21, dropped: 0 });
      await consumer.waitFor(21);
    });

  for (const via of ['the option', 'CONTEXTURE_CONNECT_TIMEOUT'])
    it(`connectTimeout (${via}): a broker that accepts the socket and never answers is given up on after it`, async () => {
      const proxy = await brokerProxy(cleanup);
      proxy.stall(); // the TCP connection opens; the AMQP handshake never gets an answer
      const base = {
        url: proxiedAmqpUrl(proxy.port),
        exchange,
        heartbeatInterval: 0,
        logger: null,
        reconnect: { initialDelay: 10, maxDelay: 20 },
      };
      const handler = new Handler(
        via === 'the option' ? { ...base, connectTimeout: 200 } : fromEnv(base, { CONTEXTURE_CONNECT_TIMEOUT: '200' }),
      );
      cleanup.defer(() => handler.destroy());
      new Context({ name: 'timeout', handler });
      // The default (5 s) would still be waiting: well within it, two attempts have timed out.
      await waitUntil(() => proxy.accepted >= 3, 'three connection attempts', 4_000);
      expect(handler.stats().lastError).to.match(/ETIMEDOUT/);
      expect(handler.stats()).to.include({ status: handler.status, published: 0, queued: 1 });
    });

  it('reconnect.factor and jitter: the delays between attempts follow them (the reconnecting event)', async () => {
    const proxy = await brokerProxy(cleanup);
    proxy.cut();
    const exact: number[] = [];
    const exactAt: number[] = [];
    const a = new Handler({
      url: proxiedAmqpUrl(proxy.port),
      exchange,
      logger: null,
      reconnect: { initialDelay: 10, maxDelay: 300, factor: 3, jitter: 0 },
    });
    cleanup.defer(() => a.destroy());
    const attempts: number[] = [];
    a.on('reconnecting', (delay: number, attempt: number) => {
      exact.push(delay);
      exactAt.push(performance.now());
      attempts.push(attempt);
    });
    const accepts: number[] = [];
    const counted = setInterval(() => {
      while (accepts.length < proxy.accepted) accepts.push(performance.now());
    }, 1);
    cleanup.defer(() => clearInterval(counted));
    new Context({ name: 'backoff', handler: a });
    await waitUntil(() => exact.length >= 6, 'six reconnect delays');
    a.destroy();
    // 10 × 3^(n-1), capped at maxDelay: no jitter, exactly.
    expect(exact.slice(0, 6)).to.deep.equal([10, 30, 90, 270, 300, 300]);
    expect(attempts.slice(0, 6)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    // Each attempt came no sooner than its delay after the failure that scheduled it.
    for (let i = 0; i < 4; i++) expect(accepts[i + 1]! - exactAt[i]!).to.be.at.least(exact[i]! - 2);
    clearInterval(counted);

    const spread: number[] = [];
    const b = new Handler({
      url: proxiedAmqpUrl(proxy.port),
      exchange,
      logger: null,
      reconnect: { initialDelay: 40, maxDelay: 10_000, factor: 1, jitter: 0.5 },
    });
    cleanup.defer(() => b.destroy());
    b.on('reconnecting', (delay: number) => spread.push(delay));
    new Context({ name: 'backoff', handler: b });
    await waitUntil(() => spread.length >= 8, 'eight reconnect delays');
    b.destroy();
    // factor 1: every base delay is 40; jitter 0.5 spreads them over 20–60, not all the same.
    for (const d of spread) expect(d).to.be.within(20, 60);
    expect(new Set(spread).size).to.be.above(1);
  });

  for (const via of ['the option', 'CONTEXTURE_PERSISTENT'])
    for (const batch of [false, true])
      it(`persistent (${via}${batch ? ', batch' : ''}): messages read back from a queue have delivery mode 2`, async () => {
        const base = { url: amqpUrl(), exchange, flushInterval: 1, logger: null, batch };
        const handler = new Handler(
          via === 'the option' ? { ...base, persistent: true } : fromEnv(base, { CONTEXTURE_PERSISTENT: 'yes' }),
        );
        cleanup.defer(() => handler.close());
        const ctx = new Context({ name: 'durable', handler });
        ctx.i = 1;
        expect(await handler.flush(10_000)).to.equal(true);
        await waitUntil(() => handler.stats().published === 2 && consumer.received.length > 0, 'the messages');
        for (const r of consumer.received) expect(r.properties.deliveryMode).to.equal(2);
      });

  it('persistent: false (the default) sends transient messages', async () => {
    const handler = new Handler({ url: amqpUrl(), exchange, flushInterval: 1, logger: null });
    cleanup.defer(() => handler.close());
    new Context({ name: 'transient', handler });
    expect(await handler.flush(10_000)).to.equal(true);
    await consumer.waitFor(1);
    expect(consumer.received[0]!.properties.deliveryMode ?? 1).to.equal(1);
  });
});
