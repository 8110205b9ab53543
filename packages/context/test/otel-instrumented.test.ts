import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SpanKind } from '@opentelemetry/api';
import { expect } from 'chai';
import { amqpUrl, Cleanup, TestConsumer, uniqueName } from '@contexture/test-support';

const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));

interface SpanLine {
  name: string;
  kind: SpanKind;
  traceId: string;
  spanId: string;
  rkey?: string;
}

describe('OpenTelemetry instrumentations of http and amqplib (a spawned traced program, real broker)', function () {
  this.timeout(60_000);
  let cleanup: Cleanup;

  beforeEach(() => {
    cleanup = new Cleanup();
  });
  afterEach(() => cleanup.run());

  /** Runs a fixture publishing to `exchange` to its end: its exit code and output. */
  async function run(
    args: string[],
    exchange: string,
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const child = spawn(process.execPath, args, {
      cwd: fixtures,
      env: { ...process.env, URL: amqpUrl(), EXCHANGE: exchange },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    return { code, stdout, stderr };
  }

  it('without @opentelemetry/api: contexts and the middleware work as ever, with no trace fields', async () => {
    const exchange = cleanup.exchange(uniqueName('otel-none-x'));
    const consumer = await TestConsumer.start({ exchange });
    cleanup.defer(() => consumer.close());
    const { code, stdout, stderr } = await run(['--require', './hide-otel-api.cjs', 'no-otel-api.mjs'], exchange);
    expect(stderr).to.equal('');
    expect(code).to.equal(0);
    expect(JSON.parse(stdout), 'the program could not load the API').to.deep.equal({ found: false });
    await consumer.waitFor(6, 15_000);
    expect(consumer.received.map((r) => r.routingKey)).to.have.members([
      'plain.work',
      'plain.work',
      'plain.wrap',
      'plain.wrap',
      'http.GET./x',
      'http.GET./x',
    ]);
    for (const r of consumer.received) {
      expect(r.json.obj).to.not.have.any.keys('trace_id', 'span_id');
      expect(r.properties.headers).to.not.have.property('traceparent');
    }
  });

  it('the handler publishes no spans of its own; contexts carry the http server span', async () => {
    const exchange = cleanup.exchange(uniqueName('otel-inst-x'));
    const consumer = await TestConsumer.start({ exchange });
    cleanup.defer(() => consumer.close());
    const { code, stdout, stderr } = await run(['otel-instrumented.mjs'], exchange);
    expect(stderr).to.equal('');
    expect(code).to.equal(0);
    const spans = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as SpanLine);

    // The control: a plain amqplib publish is traced, so the instrumentation is in place.
    const producers = spans.filter((s) => s.kind === SpanKind.PRODUCER);
    expect(producers.map((s) => s.rkey)).to.deep.equal(['direct.control']);
    const servers = spans.filter((s) => s.kind === SpanKind.SERVER);
    expect(servers).to.have.length(2);
    expect(spans).to.have.length(3);

    // 2 requests × (born, user, finished) + 2 jobs × (born, step, finished) + the control.
    await consumer.waitFor(13, 15_000);
    expect(consumer.received).to.have.length(13);
    const control = consumer.received.find((r) => r.routingKey === 'direct.control')!;
    expect(control.properties.headers?.traceparent, 'the instrumentation injects where it traces').to.equal(
      `00-${producers[0]!.traceId}-${producers[0]!.spanId}-01`,
    );
    expect(consumer.reserved.length, 'heartbeats went out, untraced too').to.be.at.least(3);

    const ours = consumer.received.filter((r) => r !== control);
    const traces = new Set<string>();
    for (const r of ours) {
      const born = ours.find((m) => m.json.obj_id === r.json.obj_id && m.json.status === 'born')!;
      const server = servers.find((s) => s.traceId === born.json.obj.trace_id);
      expect(server, `${r.routingKey}: the trace of one of the requests`).to.not.equal(undefined);
      expect(born.json.obj.span_id).to.equal(server!.spanId);
      expect(r.properties.headers?.traceparent, 'the context’s, not a publish span’s').to.equal(
        `00-${server!.traceId}-${server!.spanId}-01`,
      );
      const user = born.json.obj.user ?? String(born.json.obj.url).split('/').pop();
      traces.add(`${user} ${server!.traceId}`);
    }
    // Each request and the job it made in one trace, its own.
    expect(traces.size).to.equal(2);
    expect(new Set([...traces].map((t) => t.split(' ')[1])).size).to.equal(2);
  });
});
