/**
 * `@contexture/context/prometheus`: a real Handler publishing to the real broker, its counters read
 * back from a prom-client registry in the Prometheus text format and checked against what a plain
 * consumer received.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { Context, ContextError, Handler } from '@contexture/context';
import { handlerMetrics } from '@contexture/context/prometheus';
import {
  amqpUrl,
  Cleanup,
  parsePrometheusText,
  sampleValue,
  TestConsumer,
  uniqueName,
  waitUntil,
} from '@contexture/test-support';

const run = promisify(execFile);
const packageDir = new URL('../../', import.meta.url);

/** Whether a fresh process that imports `specifier` has loaded prom-client. */
async function loadsPromClient(specifier: string): Promise<boolean> {
  const script = `
    import { createRequire } from 'node:module';
    await import(${JSON.stringify(specifier)});
    const require = createRequire(import.meta.url);
    process.stdout.write(String(Object.keys(require.cache).some((f) => /node_modules[\\\\/]prom-client[\\\\/]/.test(f))));
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: packageDir,
    timeout: 20_000,
  });
  return stdout === 'true';
}

describe('handlerMetrics (@contexture/context/prometheus, real RabbitMQ)', function () {
  this.timeout(30_000);
  let cleanup: Cleanup;
  let exchange: string;

  beforeEach(() => {
    cleanup = new Cleanup();
    exchange = cleanup.exchange(uniqueName('prom-x'));
  });
  afterEach(() => cleanup.run());

  it("a Handler's counters, read at each scrape, match what reached the broker", async () => {
    const consumer = await TestConsumer.start({ exchange });
    cleanup.defer(() => consumer.close());
    const handler = new Handler({ url: amqpUrl(), exchange, heartbeatInterval: 0, logger: null });
    cleanup.defer(() => handler.close());
    const registry = new Registry();
    const metrics = handlerMetrics(handler, { registry, labels: { service: 'orders' } });
    const scrape = async () => parsePrometheusText(await registry.metrics());
    const v = (samples: ReturnType<typeof parsePrometheusText>, name: string) =>
      sampleValue(samples, `contexture_handler_${name}`, { service: 'orders' });

    const before = await scrape();
    expect(v(before, 'messages_published_total')).to.equal(0);
    expect(v(before, 'messages_enqueued_total')).to.equal(0);

    for (let i = 0; i < 10; i++) {
      const ctx = new Context({ name: 'orders.placed', handler, context: { i } });
      ctx.paid = true;
      ctx.finish();
    }
    expect(await handler.flush(10_000)).to.equal(true);
    await consumer.waitFor(30);
    const after = await scrape();
    expect(consumer.received).to.have.length(30);
    expect(v(after, 'messages_enqueued_total')).to.equal(30);
    expect(v(after, 'messages_published_total')).to.equal(30);
    expect(v(after, 'messages_dropped_total')).to.equal(0);
    expect(v(after, 'messages_dropped_unconfirmed_total')).to.equal(0);
    expect(v(after, 'messages_queued')).to.equal(0);
    expect(v(after, 'messages_in_flight')).to.equal(0);
    expect(v(after, 'connected')).to.equal(1);
    expect(v(after, 'blocked')).to.equal(0);
    expect(v(after, 'reconnects_total')).to.equal(0);
    const text = await registry.metrics();
    expect(text).to.include('# TYPE contexture_handler_messages_published_total counter');
    expect(text).to.include('# TYPE contexture_handler_messages_queued gauge');

    await handler.close();
    await waitUntil(async () => v(await scrape(), 'connected') === 0, 'the closed handler to show as not connected');

    metrics.unregister();
    expect(await registry.metrics()).to.not.include('contexture_handler_');
  });

  it('a second handler in one registry needs its own prefix; bad options are a ContextError', async () => {
    const registry = new Registry();
    const a = new Handler({ url: amqpUrl(), exchange, heartbeatInterval: 0, logger: null });
    const b = new Handler({ url: amqpUrl(), exchange, heartbeatInterval: 0, logger: null });
    cleanup.defer(() => a.close());
    cleanup.defer(() => b.close());
    handlerMetrics(a, { registry });
    const refused = (f: () => unknown, message: RegExp) => {
      try {
        f();
      } catch (err) {
        expect(err).to.be.instanceOf(ContextError);
        expect((err as ContextError).code).to.equal('LC_METRICS_INVALID_OPTION');
        expect((err as Error).message).to.match(message);
        return;
      }
      expect.fail(`expected a ContextError matching ${message}`);
    };
    refused(() => handlerMetrics(b, { registry }), /contexture_handler_\w+ is already registered/);
    refused(() => handlerMetrics(b, { registry, prefix: 'bad-prefix' }), /prefix must start/);
    refused(() => handlerMetrics(b, { registry, labels: { 'bad-label': 'x' } }), /not a label name/);
    refused(() => handlerMetrics({} as Handler, { registry }), /stats\(\)/);
    handlerMetrics(b, { registry, prefix: 'second_handler_' });
    const samples = parsePrometheusText(await registry.metrics());
    expect(sampleValue(samples, 'contexture_handler_messages_published_total')).to.equal(0);
    expect(sampleValue(samples, 'second_handler_messages_published_total')).to.equal(0);
  });

  it('prom-client is loaded by /prometheus only, never by the core', async () => {
    expect(await loadsPromClient('@contexture/context')).to.equal(false);
    expect(await loadsPromClient('@contexture/context/protocol')).to.equal(false);
    expect(await loadsPromClient('@contexture/context/prometheus')).to.equal(true);
  });
});
