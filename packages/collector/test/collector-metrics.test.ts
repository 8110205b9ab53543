/**
 * The collector daemon's metrics server, scraped during real runs of the program (real broker, real
 * Redis): /metrics counts what a Handler sent, /healthz follows the links to Redis and RabbitMQ as
 * they are cut and come back, and a port in use ends the program in one line.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { Context, Handler } from '@contexture/context';
import {
  amqpUrl,
  brokerProxy,
  Cleanup,
  freePort,
  parsePrometheusText,
  proxiedAmqpUrl,
  redisUrl,
  type Sample,
  sampleValue,
  TempRedis,
  waitUntil,
} from '@contexture/test-support';
import { createProgram, type HealthReport } from '@contexture/collector/daemon';
import { publishRaw } from './support/bus.js';

const BIN = fileURLToPath(new URL('../src/bin/contexture-collector.js', import.meta.url));

interface RunningCli {
  /** The metrics server's base URL. */
  base: string;
  stderr(): string;
  stop(): Promise<void>;
}

/** GET of `url`: status, content type and body. */
async function get(url: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

describe('collector metrics server: /metrics and /healthz of a running collector', function () {
  this.timeout(90_000);
  let cleanup: Cleanup;
  let exchange: string;
  let queue: string;
  let prefix: string;

  beforeEach(() => {
    cleanup = new Cleanup();
    ({ exchange, queue, prefix } = cleanup.collectorNames('met'));
  });
  afterEach(() => cleanup.run());

  /** Runs the program in this process with a metrics server on a free port; resolves once it consumes. */
  const run = async (opts: { url?: string; redis?: string; args?: string[] } = {}): Promise<RunningCli> => {
    let err = '';
    const stderr = new Writable({
      write(chunk, _encoding, callback) {
        err += String(chunk);
        callback();
      },
    });
    let signal!: (s: string) => void;
    const stopSignal = new Promise<string>((r) => (signal = r));
    let ended = false;
    const port = await freePort();
    const program = createProgram({ stderr, stdout: stderr, stopSignal });
    const done = program
      .parseAsync([
        'node',
        'contexture-collector',
        '--url',
        opts.url ?? amqpUrl(),
        '--redis',
        opts.redis ?? redisUrl(),
        '-e',
        exchange,
        '-q',
        queue,
        '--prefix',
        prefix,
        '--metrics-port',
        String(port),
        ...(opts.args ?? []),
      ])
      .finally(() => (ended = true));
    const stop = async () => {
      signal('SIGTERM');
      await done;
    };
    cleanup.defer(() => stop().catch(() => {}));
    await waitUntil(() => /consuming /.test(err) || ended, 'the collector to consume', 30_000);
    if (ended) await done;
    expect(err).to.include(`serving http://127.0.0.1:${port}/metrics and /healthz`);
    return { base: `http://127.0.0.1:${port}`, stderr: () => err, stop };
  };

  const scrape = async (base: string): Promise<Sample[]> => {
    const res = await get(`${base}/metrics`);
    expect(res.status, res.body).to.equal(200);
    expect(res.type).to.match(/^text\/plain; version=0\.0\.4/);
    return parsePrometheusText(res.body);
  };

  /** A reader of the samples of /metrics, once `ready` holds of them (scraped again until then). */
  const scrapeUntil = async (
    base: string,
    ready: (v: (name: string, labels?: Record<string, string>) => number | undefined) => boolean,
    what: string,
  ) => {
    let samples: Sample[] = [];
    const v = (name: string, labels?: Record<string, string>) => sampleValue(samples, name, labels);
    await waitUntil(
      async () => {
        samples = await scrape(base);
        return ready(v);
      },
      what,
      30_000,
    );
    return v;
  };

  const health = async (base: string): Promise<{ status: number; report: HealthReport; body: string }> => {
    const res = await get(`${base}/healthz`);
    expect(res.type).to.equal('application/json');
    return { status: res.status, report: JSON.parse(res.body) as HealthReport, body: res.body };
  };

  it('counts what a Handler sent: received, applied and acked equal the messages published', async () => {
    const cli = await run();
    const handler = new Handler({ url: amqpUrl(), exchange, heartbeatInterval: 0 });
    cleanup.defer(() => handler.close());
    for (let i = 0; i < 20; i++) {
      const ctx = new Context({ name: 'metrics.test', handler, context: { i } });
      ctx.step = 'one';
      ctx.step = 'two';
      ctx.finish();
    }
    await handler.close();
    const sent = handler.stats().published;
    expect(sent, 'born, two updates and finished per context').to.equal(80);
    // A malformed body goes to the dead-letter queue, counted by its reason.
    await publishRaw(exchange, [{ body: 'not json at all', rkey: 'metrics.test' }]);

    let samples: Sample[] = [];
    await waitUntil(
      async () => {
        samples = await scrape(cli.base);
        return (
          sampleValue(samples, 'contexture_collector_deliveries_acked_total') === sent + 1 &&
          sampleValue(samples, 'contexture_collector_in_flight') === 0
        );
      },
      'the collector to acknowledge every delivery',
      30_000,
    );
    const v = (name: string, labels?: Record<string, string>) => sampleValue(samples, name, labels);
    expect(v('contexture_collector_deliveries_total')).to.equal(sent + 1);
    expect(v('contexture_collector_messages_received_total')).to.equal(sent + 1);
    expect(v('contexture_collector_messages_applied_total')).to.equal(sent);
    expect(v('contexture_collector_dead_lettered_total')).to.equal(1);
    expect(v('contexture_collector_dead_lettered_messages_total', { reason: 'not JSON' })).to.equal(1);
    expect(v('contexture_collector_store_errors_total')).to.equal(0);
    expect(v('contexture_collector_reconnects_total')).to.equal(0);
    expect(v('contexture_collector_queue_depth')).to.equal(0);
    expect(v('contexture_collector_lag_seconds')).to.be.a('number').and.at.least(0);
    // Every applied message went through a store call that succeeded, and every delivery through a batch.
    const calls = samples.filter((s) => s.name === 'contexture_collector_store_call_duration_seconds_count');
    expect(calls.map((s) => s.labels)).to.deep.include({ method: 'applyMany', outcome: 'ok' });
    expect(v('contexture_collector_store_call_duration_seconds_count', { method: 'applyMany', outcome: 'ok' }))
      .to.be.at.least(1)
      .and.at.most(sent);
    expect(v('contexture_collector_batch_size_sum')).to.be.at.least(sent + 1);
    expect(v('contexture_collector_batch_size_bucket', { le: '+Inf' })).to.equal(
      v('contexture_collector_batch_size_count'),
    );
    // The registry of live entries holds this collector (from its own heartbeat).
    expect(v('contexture_registry_entries', { kind: 'collector', health: 'healthy' })).to.be.at.least(1);
    expect(v('contexture_collector_up', { link: 'rabbitmq' })).to.equal(1);
    expect(v('contexture_collector_up', { link: 'redis' })).to.equal(1);
    expect(samples.some((s) => s.name === 'process_resident_memory_bytes')).to.equal(true);

    const h = await health(cli.base);
    expect(h.status, h.body).to.equal(200);
    expect(h.report.status).to.equal('ok');
    expect(h.report.rabbitmq).to.include({ up: true });
    expect(h.report.redis).to.include({ up: true });
    expect(h.body).to.not.include('guest');

    const missing = await get(`${cli.base}/nothing`);
    expect(missing.status).to.equal(404);
    const post = await fetch(`${cli.base}/metrics`, { method: 'POST' });
    expect(post.status).to.equal(405);
    await cli.stop();
    expect(cli.stderr()).to.include(`stopped after applying ${sent} messages (1 dead-lettered)`);
  });

  it('--max-depth and --max-bytes: deeper or larger messages are dead-lettered by reason, the others applied', async () => {
    const cli = await run({ args: ['--max-depth', '4', '--max-bytes', '300'] });
    const deep = { a: { b: { c: { d: { e: 1 } } } } };
    await publishRaw(exchange, [
      { body: JSON.stringify({ obj_id: 'limits-ok', obj: { a: { b: 1 } }, status: 'transient', seq: 0 }) },
      { body: JSON.stringify({ obj_id: 'limits-deep', obj: deep, status: 'transient', seq: 0 }) },
      { body: JSON.stringify({ obj_id: 'limits-large', obj: { s: 'x'.repeat(400) }, status: 'transient', seq: 0 }) },
    ]);
    const v = await scrapeUntil(
      cli.base,
      (m) => m('contexture_collector_deliveries_acked_total') === 3,
      'the collector to acknowledge the three',
    );
    expect(v('contexture_collector_messages_applied_total')).to.equal(1);
    expect(v('contexture_collector_dead_lettered_messages_total', { reason: 'too deep' })).to.equal(1);
    expect(v('contexture_collector_dead_lettered_messages_total', { reason: 'too large' })).to.equal(1);
    await cli.stop();
  });

  it('redelivered deliveries: counted apart, their messages received again and applied once', async () => {
    // A first run declares the queue and its binding; stopped, the queue keeps what comes next.
    const first = await run();
    await first.stop();
    const bodies = Array.from({ length: 5 }, (_, i) => ({
      body: JSON.stringify({ obj_id: `redelivered-${i}`, obj: { i }, status: 'transient', seq: 0 }),
      rkey: 'metrics.redelivered',
    }));
    await publishRaw(exchange, bodies);
    // A consumer that takes them and goes away without acknowledging: the broker requeues them,
    // marked as redelivered.
    const conn = await amqp.connect(amqpUrl());
    const ch = await conn.createChannel();
    // The five, and the first run's own heartbeat (a reserved routing key, never counted as data).
    const { messageCount } = await ch.checkQueue(queue);
    expect(messageCount).to.be.at.least(5);
    let taken = 0;
    await ch.consume(queue, () => void taken++, { noAck: false });
    await waitUntil(() => taken === messageCount, 'the messages taken', 10_000);
    await conn.close();

    const cli = await run();
    const v = await scrapeUntil(
      cli.base,
      (m) => m('contexture_collector_messages_applied_total') === 5,
      'the collector to apply the five',
    );
    expect(v('contexture_collector_deliveries_total')).to.equal(5);
    expect(v('contexture_collector_deliveries_redelivered_total')).to.equal(5);
    expect(v('contexture_collector_messages_received_total')).to.equal(5);
    expect(v('contexture_collector_messages_applied_total')).to.equal(5);
    await cli.stop();
  });

  it('/healthz: 503 naming Redis, since when, while Redis is down; 200 again once it is back', async () => {
    const redis = new TempRedis();
    await redis.start();
    cleanup.defer(() => redis.destroy());
    const cli = await run({ redis: redis.url, args: ['--no-registry'] });
    const up = await health(cli.base);
    expect(up.status, up.body).to.equal(200);

    const cutAt = Date.now();
    await redis.kill();
    let down!: Awaited<ReturnType<typeof health>>;
    await waitUntil(
      async () => {
        down = await health(cli.base);
        return down.status === 503;
      },
      '/healthz to answer 503',
      30_000,
      200,
    );
    expect(down.report.status).to.equal('unavailable');
    expect(down.report.redis.up).to.equal(false);
    expect(down.report.redis.at).to.equal(`127.0.0.1:${redis.port}`);
    expect(down.report.redis.reason).to.be.a('string').and.not.equal('');
    expect(Date.parse(down.report.redis.since)).to.be.at.least(cutAt - 1000);
    expect(down.report.rabbitmq.up, 'the broker link is not the one down').to.equal(true);
    expect(down.body).to.not.include('guest');
    // /metrics still answers, and says which link is down.
    const samples = await scrape(cli.base);
    expect(sampleValue(samples, 'contexture_collector_up', { link: 'redis' })).to.equal(0);
    expect(sampleValue(samples, 'contexture_collector_up', { link: 'rabbitmq' })).to.equal(1);

    await redis.start();
    await waitUntil(async () => (await health(cli.base)).status === 200, '/healthz to answer 200 again', 30_000, 200);
    const back = await health(cli.base);
    expect(back.report.redis.up).to.equal(true);
    expect(back.report.redis.reason).to.equal(undefined);
  });

  it('/healthz: 503 naming RabbitMQ while the broker link is cut; 200 and a reconnect counted once it is back', async () => {
    const proxy = await brokerProxy(cleanup);
    const cli = await run({ url: proxiedAmqpUrl(proxy.port), args: ['--no-registry'] });
    expect((await health(cli.base)).status).to.equal(200);

    proxy.cut();
    let down!: Awaited<ReturnType<typeof health>>;
    await waitUntil(
      async () => {
        down = await health(cli.base);
        return down.status === 503;
      },
      '/healthz to answer 503',
      30_000,
      200,
    );
    expect(down.report.rabbitmq.up).to.equal(false);
    expect(down.report.rabbitmq.at).to.equal(`127.0.0.1:${proxy.port}`);
    expect(down.report.rabbitmq.reason).to.be.a('string').and.not.equal('');
    expect(down.report.redis.up).to.equal(true);
    expect(down.body).to.not.include('guest');

    proxy.restore();
    await waitUntil(async () => (await health(cli.base)).status === 200, '/healthz to answer 200 again', 30_000, 200);
    const samples = await scrape(cli.base);
    expect(sampleValue(samples, 'contexture_collector_reconnects_total')).to.be.at.least(1);
    expect(sampleValue(samples, 'contexture_collector_up', { link: 'rabbitmq' })).to.equal(1);
  });

  it('a metrics port in use: one line saying so, exit 69, no stack trace, nothing declared', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    cleanup.defer(() => new Promise((resolve) => taken.close(resolve)));
    const port = (taken.address() as net.AddressInfo).port;
    const child = spawn(
      process.execPath,
      [BIN, '--url', amqpUrl(), '--redis', redisUrl(), '-e', exchange, '-q', queue, '--prefix', prefix],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, CONTEXTURE_COLLECTOR_METRICS_PORT: String(port) },
      },
    );
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, err).to.equal(69);
    expect(err).to.equal(
      `contexture-collector: cannot serve metrics on 127.0.0.1:${port}: the address is already in use\n`,
    );
    const conn = await amqp.connect(amqpUrl());
    try {
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      const exists = await ch.checkQueue(queue).then(
        () => true,
        () => false,
      );
      expect(exists, 'the queue was not declared').to.equal(false);
    } finally {
      await conn.close().catch(() => {});
    }
    const cli = createProgram({ stderr: new Writable({ write: (_c, _e, cb) => cb() }) });
    await cli.parseAsync(['node', 'contexture-collector', '--metrics-port', '65536']).then(
      () => expect.fail('a port out of range must be refused'),
      (e: { code?: string }) => expect(e.code).to.equal('commander.invalidArgument'),
    );
  });
});
