import http from 'node:http';
import { context, createTraceState, ROOT_CONTEXT, type Span, trace, TraceFlags } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { isTracingSuppressed } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { expect } from 'chai';
import express from 'express';
import Fastify from 'fastify';
import { Context, Handler } from '@contexture/context';
import { contexture } from '@contexture/context/express';
import contexturePlugin from '@contexture/context/fastify';
import { amqpUrl, Cleanup, type Received, TestConsumer, uniqueName } from '@contexture/test-support';
import { untraced } from '../src/trace-context.js';
import { abortedRequest, deferred, listen, objects } from './web-support.js';

/** The `traceparent` of a sampled span. */
function traceparent(span: Span): string {
  const sc = span.spanContext();
  return `00-${sc.traceId}-${sc.spanId}-01`;
}

describe('Trace context: a Context made in an OpenTelemetry span carries it (real SDK, real broker)', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const contextManager = new AsyncLocalStorageContextManager();
  const tracer = provider.getTracer('contexture-test');
  let cleanup: Cleanup;
  let handler: Handler;
  let consumer: TestConsumer;

  before(() => {
    expect(context.setGlobalContextManager(contextManager.enable()), 'no other context manager registered').to.equal(
      true,
    );
    trace.setGlobalTracerProvider(provider);
  });
  after(async () => {
    trace.disable();
    context.disable();
    await provider.shutdown();
  });

  beforeEach(async () => {
    exporter.reset();
    cleanup = new Cleanup();
    const exchange = cleanup.exchange(uniqueName('trace-x'));
    consumer = await TestConsumer.start({ exchange });
    handler = new Handler({ url: amqpUrl(), exchange, flushInterval: 1, logger: null });
    cleanup.defer(() => consumer.close());
    cleanup.defer(() => handler.close());
  });
  afterEach(() => cleanup.run());

  /** The messages of `ctx` that reached the broker, once there are `n`. */
  async function messagesOf(ctx: Context, n: number): Promise<Received[]> {
    const id = Context.idOf(ctx);
    await consumer.waitFor(n, 15_000);
    return consumer.received.filter((r) => r.json?.obj_id === id);
  }

  it('fields trace_id and span_id with born, the traceparent header on every message', async () => {
    let span!: Span;
    const ctx = tracer.startActiveSpan('work', (s) => {
      span = s;
      const c = new Context({ name: 'traced.work', handler, context: { job: 1 } });
      s.end();
      return c;
    });
    ctx.step = 'two';
    ctx.finish();
    const got = await messagesOf(ctx, 3);
    expect(got.map((r) => r.json.status)).to.deep.equal(['born', undefined, 'finished']);
    const { traceId, spanId } = span.spanContext();
    expect(got[0]!.json.obj).to.deep.equal({ job: 1, trace_id: traceId, span_id: spanId });
    expect(ctx.trace_id).to.equal(traceId);
    for (const r of got) {
      expect(r.properties.headers?.traceparent).to.equal(traceparent(span));
      expect(r.properties.headers).to.not.have.property('tracestate');
      expect(r.properties.headers?.hostname, 'the handler’s headers stay').to.be.a('string');
    }
  });

  it('the span current down an async chain; tracestate when the span has one', async () => {
    const remote = trace.wrapSpanContext({
      traceId: 'a'.repeat(32),
      spanId: 'b'.repeat(16),
      traceFlags: TraceFlags.NONE,
      traceState: createTraceState('vendor=x1,other=y2'),
      isRemote: true,
    });
    const ctx = await context.with(trace.setSpan(ROOT_CONTEXT, remote), async () => {
      await new Promise((r) => setImmediate(r));
      return new Context({ name: 'traced.remote', handler });
    });
    ctx.finish();
    const got = await messagesOf(ctx, 2);
    expect(got[0]!.json.obj).to.deep.equal({ trace_id: 'a'.repeat(32), span_id: 'b'.repeat(16) });
    for (const r of got) {
      expect(r.properties.headers?.traceparent).to.equal(`00-${'a'.repeat(32)}-${'b'.repeat(16)}-00`);
      expect(r.properties.headers?.tracestate).to.equal('vendor=x1,other=y2');
    }
  });

  it('nothing without an active span, with trace: false, and the context’s own values win', async () => {
    const plain = new Context({ name: 'traced.none', handler });
    plain.finish();
    const [off, own] = tracer.startActiveSpan('work', (s) => {
      const made = [
        new Context({ name: 'traced.off', handler, trace: false }),
        new Context({
          name: 'traced.own',
          handler,
          context: { trace_id: 'mine' },
          headers: { traceparent: 'theirs' },
        }),
      ] as const;
      s.end();
      return made;
    });
    off.finish();
    own.finish();
    await consumer.waitFor(6, 15_000);
    for (const c of [plain, off]) {
      const got = consumer.received.filter((r) => r.json?.obj_id === Context.idOf(c));
      expect(got[0]!.json.obj).to.deep.equal({});
      for (const r of got) expect(r.properties.headers).to.not.have.property('traceparent');
    }
    const got = consumer.received.filter((r) => r.json?.obj_id === Context.idOf(own));
    expect(got[0]!.json.obj.trace_id).to.equal('mine');
    expect(got[0]!.json.obj.span_id).to.match(/^[0-9a-f]{16}$/);
    expect(got[0]!.properties.headers?.traceparent).to.equal('theirs');
  });

  it('Context.wrap takes the span active at the call', async () => {
    const work = Context.wrap(async () => Context.current()!, { name: 'traced.wrap', handler });
    let span!: Span;
    const ctx = await tracer.startActiveSpan('call', async (s) => {
      span = s;
      const c = await work();
      s.end();
      return c;
    });
    const got = await messagesOf(ctx, 2);
    expect(got[0]!.json.obj).to.deep.equal({
      trace_id: span.spanContext().traceId,
      span_id: span.spanContext().spanId,
    });
  });

  it('untraced(): what the handler publishes runs with tracing suppressed, outside any span', () => {
    tracer.startActiveSpan('outer', (s) => {
      untraced(() => {
        expect(isTracingSuppressed(context.active())).to.equal(true);
        expect(trace.getActiveSpan()).to.equal(undefined);
        const inner = tracer.startSpan('inner');
        expect(inner.isRecording(), 'the SDK makes no span there').to.equal(false);
        inner.end();
      });
      s.end();
    });
    expect(exporter.getFinishedSpans().map((s) => s.name)).to.deep.equal(['outer']);
  });

  /** A server whose requests each run in a span, as the OpenTelemetry http instrumentation does. */
  async function tracedServer(listener: http.RequestListener): Promise<{ url: string; spans: Map<string, Span> }> {
    const spans = new Map<string, Span>();
    const server = http.createServer((req, res) => {
      tracer.startActiveSpan(`GET ${req.url}`, (span) => {
        spans.set(req.url!, span);
        res.once('finish', () => span.end());
        listener(req, res);
      });
    });
    const url = await listen(server);
    cleanup.defer(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    return { url, spans };
  }

  it('Express: each request’s context carries the span it arrived in', async () => {
    const app = express();
    app.use(contexture({ handler }));
    app.get('/users/:id', async (req, res) => {
      await new Promise((r) => setTimeout(r, 1));
      Context.current()!.user = req.params.id;
      res.send('ok');
    });
    const { url, spans } = await tracedServer(app);
    // A 404's context is made only when its response finishes: still in the request's span.
    const paths = ['/users/1', '/users/2', '/users/3', '/nowhere'];
    await Promise.all(paths.map((p) => fetch(url + p).then((r) => r.text())));
    const objs = await objects(consumer, 4);
    expect(objs.map((o) => o.object.url).sort()).to.deep.equal([...paths].sort());
    for (const o of objs) {
      const span = spans.get(o.object.url as string)!;
      expect(o.object.trace_id).to.equal(span.spanContext().traceId);
      expect(o.object.span_id).to.equal(span.spanContext().spanId);
      expect(o.headers?.traceparent).to.equal(traceparent(span));
    }
    const ids = new Set(objs.map((o) => o.object.trace_id));
    expect(ids.size, 'one trace per request').to.equal(4);
  });

  it('Express: a context made only when the connection closes still carries the request’s span', async () => {
    const started = deferred();
    const app = express();
    app.use(contexture({ handler }));
    // Before any route: nothing asks for the context, so it is made when the client leaves, in
    // the socket's close event, outside the span.
    app.use(() => started.resolve());
    const { url, spans } = await tracedServer(app);
    await abortedRequest(`${url}/hang`, started.promise);
    const [o] = await objects(consumer, 1);
    expect(o!.object.aborted).to.equal(true);
    expect(o!.object.trace_id).to.equal(spans.get('/hang')!.spanContext().traceId);
    expect(o!.headers?.traceparent).to.equal(traceparent(spans.get('/hang')!));
  });

  it('Fastify: each request’s context carries the span it arrived in', async () => {
    const app = Fastify();
    await app.register(contexturePlugin, { handler });
    app.get('/items/:id', async () => 'ok');
    await app.ready();
    const { url, spans } = await tracedServer((req, res) => app.routing(req, res));
    cleanup.defer(() => app.close());
    await Promise.all(['/items/1', '/items/2'].map((p) => fetch(url + p).then((r) => r.text())));
    const objs = await objects(consumer, 2);
    for (const o of objs) {
      const span = spans.get(o.object.url as string)!;
      expect(o.object.trace_id).to.equal(span.spanContext().traceId);
      expect(o.headers?.traceparent).to.equal(traceparent(span));
    }
  });
});
