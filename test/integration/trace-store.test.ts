import { context, type Span, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { expect } from 'chai';
import { Context, Handler } from '@contexture/context';
import { Collector } from '@contexture/collector/daemon';
import { RedisContextStore } from '@contexture/collector/store';
import { amqpUrl, Cleanup, redisUrl, uniqueName, waitUntil } from '@contexture/test-support';

describe('trace context end to end: Context in a span → RabbitMQ → collector → Redis', function () {
  this.timeout(60_000);
  const provider = new TracerProvider({
    spanProcessors: [new SimpleSpanProcessor({ exporter: new InMemorySpanExporter() })],
  });
  const tracer = provider.getTracer('contexture-integration');
  let cleanup: Cleanup;

  before(() => {
    expect(context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())).to.equal(true);
    trace.setGlobalTracerProvider(provider);
  });
  after(async () => {
    trace.disable();
    context.disable();
    await provider.shutdown();
  });
  beforeEach(() => {
    cleanup = new Cleanup();
  });
  afterEach(() => cleanup.run());

  it('the store holds trace_id and span_id with the fields, and the traceparent header', async () => {
    const exchange = cleanup.exchange(uniqueName('trace-int-x'));
    const queue = cleanup.queue(uniqueName('trace-int-q'));
    cleanup.queue(`${queue}.dead`);
    const prefix = `${uniqueName('trace-int')}:`;
    cleanup.redisKeys(`${prefix}*`);
    const store = new RedisContextStore({ redis: redisUrl(), prefix });
    cleanup.defer(() => store.close());
    const collector = new Collector({ store, url: amqpUrl(), exchange, queue, logger: null });
    cleanup.defer(() => collector.close());
    await collector.start();
    const handler = new Handler({ url: amqpUrl(), exchange, logger: null });
    cleanup.defer(() => handler.close());

    const traced: Array<{ id: string; span: Span; i: number }> = [];
    for (let i = 0; i < 5; i++) {
      await tracer.startActiveSpan(`job ${i}`, async (span) => {
        const ctx = new Context({ name: 'int.traced', handler, context: { i } });
        await new Promise((r) => setImmediate(r));
        ctx.step = 'done';
        ctx.finish();
        span.end();
        traced.push({ id: Context.idOf(ctx), span, i });
      });
    }
    const plain = new Context({ name: 'int.plain', handler, context: { i: -1 } });
    plain.finish();
    expect(await handler.flush(20_000)).to.equal(true);
    const last = Context.idOf(plain);
    await waitUntil(async () => (await store.get(last))?.status === 'finished', 'the last context in Redis', 30_000);
    await waitUntil(
      async () => (await Promise.all(traced.map((t) => store.get(t.id)))).every((g) => g?.status === 'finished'),
      'every traced context in Redis',
      30_000,
    );

    for (const { id, span, i } of traced) {
      const got = await store.get(id);
      const { traceId, spanId } = span.spanContext();
      expect(got?.context).to.deep.equal({ i, trace_id: traceId, span_id: spanId, step: 'done' });
      expect(got?.headers?.traceparent).to.equal(`00-${traceId}-${spanId}-01`);
    }
    expect(new Set(traced.map((t) => t.span.spanContext().traceId)).size, 'a trace each').to.equal(5);
    const got = await store.get(last);
    expect(got?.context).to.deep.equal({ i: -1 });
    expect(got?.headers).to.not.have.property('traceparent');
  });
});
