import { expect } from 'chai';
import { Context, Handler } from '@contexture/context';
import { amqpUrl, Cleanup, FaultProxy, TestConsumer, uniqueName, waitUntil } from '@contexture/test-support';

function proxiedUrl(port: number): string {
  const u = new URL(amqpUrl());
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString();
}

async function brokerProxy(cleanup: Cleanup): Promise<FaultProxy> {
  const u = new URL(amqpUrl());
  const proxy = new FaultProxy(u.hostname, Number(u.port || 5672));
  await proxy.listen();
  cleanup.defer(() => proxy.close());
  return proxy;
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

  it('reconnect.factor and jitter: the delays between attempts follow them (the reconnecting event)', async () => {
    const proxy = await brokerProxy(cleanup);
    proxy.cut();
    const exact: number[] = [];
    const exactAt: number[] = [];
    const a = new Handler({
      url: proxiedUrl(proxy.port),
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
      url: proxiedUrl(proxy.port),
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
});
