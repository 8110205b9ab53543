import { metrics } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  MetricReader,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { expect } from 'chai';
import { Context, ContextError, Handler } from '@contexture/context';
import { registerHandlerMetrics } from '@contexture/context/otel';
import { amqpUrl, Cleanup, freePort, TestConsumer, uniqueName } from '@contexture/test-support';

/** A reader the test collects from when it wants (what an exporter's periodic reader does on its timer). */
class PullReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

/** The contexture metrics a collection gives, by name. */
async function read(reader: PullReader): Promise<Map<string, MetricData>> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).to.deep.equal([]);
  const out = new Map<string, MetricData>();
  for (const scope of resourceMetrics.scopeMetrics)
    for (const m of scope.metrics) if (m.descriptor.name.startsWith('contexture.')) out.set(m.descriptor.name, m);
  return out;
}

/** The value of a metric's one data point (the test fails if it has another number of them). */
function value(got: Map<string, MetricData>, name: string): number {
  const m = got.get(name);
  expect(m, name).to.not.equal(undefined);
  expect(m!.dataPoints, name).to.have.length(1);
  return m!.dataPoints[0]!.value as number;
}

describe('registerHandlerMetrics: a Handler’s counters as OpenTelemetry metrics (real SDK, real broker)', () => {
  let cleanup: Cleanup;
  let reader: PullReader;
  let provider: MeterProvider;

  beforeEach(() => {
    cleanup = new Cleanup();
    reader = new PullReader();
    provider = new MeterProvider({ readers: [reader] });
    cleanup.defer(() => provider.shutdown());
  });
  afterEach(() => cleanup.run());

  it('published, enqueued and the levels after publishing to the broker; names, units, kinds', async () => {
    const exchange = cleanup.exchange(uniqueName('otel-metrics-x'));
    const consumer = await TestConsumer.start({ exchange });
    cleanup.defer(() => consumer.close());
    const handler = new Handler({ url: amqpUrl(), exchange, flushInterval: 1, logger: null });
    cleanup.defer(() => handler.close());
    registerHandlerMetrics(handler, { meter: provider.getMeter('test'), attributes: { service: 'orders' } });

    for (let i = 0; i < 10; i++) {
      const ctx = new Context({ name: 'metrics.job', handler, context: { i } });
      ctx.step = 1;
      ctx.finish();
    }
    expect(await handler.flush(15_000)).to.equal(true);
    await consumer.waitFor(30, 15_000);
    const got = await read(reader);
    expect(value(got, 'contexture.handler.enqueued')).to.equal(30);
    expect(value(got, 'contexture.handler.published')).to.equal(30);
    expect(value(got, 'contexture.handler.dropped')).to.equal(0);
    expect(value(got, 'contexture.handler.dropped_unconfirmed')).to.equal(0);
    expect(value(got, 'contexture.handler.queued')).to.equal(0);
    expect(value(got, 'contexture.handler.in_flight')).to.equal(0);
    expect(value(got, 'contexture.handler.reconnects')).to.equal(0);
    expect(value(got, 'contexture.handler.heartbeats')).to.equal(handler.stats().heartbeats);
    expect(value(got, 'contexture.handler.connected')).to.equal(1);
    expect(value(got, 'contexture.handler.blocked')).to.equal(0);

    const published = got.get('contexture.handler.published')!;
    expect(published.dataPointType).to.equal(DataPointType.SUM);
    expect((published as { isMonotonic?: boolean }).isMonotonic).to.equal(true);
    expect(published.aggregationTemporality).to.equal(AggregationTemporality.CUMULATIVE);
    expect(published.descriptor.unit).to.equal('{message}');
    expect(published.dataPoints[0]!.attributes).to.deep.equal({ service: 'orders' });
    const queued = got.get('contexture.handler.queued')!;
    expect(queued.dataPointType).to.equal(DataPointType.SUM);
    expect((queued as { isMonotonic?: boolean }).isMonotonic).to.equal(false);
    expect(got.get('contexture.handler.connected')!.dataPointType).to.equal(DataPointType.GAUGE);
    expect(got.get('contexture.handler.reconnects')!.descriptor.unit).to.equal('{reconnect}');
    expect(got.size).to.equal(10);

    // Each collection reads the counters anew.
    new Context({ name: 'metrics.job', handler }).finish();
    expect(await handler.flush(15_000)).to.equal(true);
    expect(value(await read(reader), 'contexture.handler.published')).to.equal(32);
  });

  it('the global meter by default: drops and a full buffer while the broker is unreachable; unregister stops', async () => {
    metrics.setGlobalMeterProvider(provider);
    cleanup.defer(() => metrics.disable());
    const port = await freePort();
    const handler = new Handler({
      url: `amqp://guest:guest@127.0.0.1:${port}/%2F`,
      exchange: uniqueName('otel-metrics-none'),
      bufferSize: 5,
      logger: null,
    });
    cleanup.defer(() => handler.destroy());
    const reporting = registerHandlerMetrics(handler);
    const ctx = new Context({ name: 'metrics.lost', handler });
    for (let i = 0; i < 6; i++) ctx.i = i;
    ctx.finish();
    const got = await read(reader);
    expect(value(got, 'contexture.handler.enqueued')).to.equal(8);
    expect(value(got, 'contexture.handler.dropped')).to.equal(3);
    expect(value(got, 'contexture.handler.queued')).to.equal(5);
    expect(value(got, 'contexture.handler.published')).to.equal(0);
    expect(value(got, 'contexture.handler.connected')).to.equal(0);
    expect(got.get('contexture.handler.enqueued')!.dataPoints[0]!.attributes).to.deep.equal({});

    reporting.unregister();
    reporting.unregister();
    new Context({ name: 'metrics.lost', handler }).finish();
    expect(handler.stats().enqueued).to.equal(10);
    // The callback no longer runs: the SDK keeps the last cumulative value, not the handler's 10.
    expect(value(await read(reader), 'contexture.handler.enqueued')).to.equal(8);
  });

  it('a wrong argument: a ContextError, no crash', () => {
    const handler = new Handler({ url: amqpUrl(), logger: null });
    cleanup.defer(() => handler.close());
    const meter = provider.getMeter('test');
    for (const call of [
      () => registerHandlerMetrics({} as Handler, { meter }),
      () => registerHandlerMetrics(handler, { meter: {} as never }),
      () => registerHandlerMetrics(handler, null as never),
    ]) {
      expect(call).to.throw(ContextError).with.property('code', 'LC_HANDLER_INVALID_OPTION');
    }
  });
});
