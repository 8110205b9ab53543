import { expect } from 'chai';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { amqpUrl, Cleanup, FaultProxy, redisUrl, uniqueName, waitUntil } from '@contexture/test-support';
import { CollectorError, RedisContextStore } from '@contexture/collector';
import { Collector } from '@contexture/collector/daemon';
import { publishMessages } from './support/bus.js';
import { startBin } from './bin-support.js';

type LogRecord = Record<string, unknown>;

/** A pino logger writing JSON lines into memory, and the records read back. */
function memoryPino(): { logger: pino.Logger; records: () => LogRecord[]; text: () => string } {
  let text = '';
  const sink = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  return {
    logger: pino(sink),
    records: () => parseLines(text),
    text: () => text,
  };
}

function parseLines(text: string): LogRecord[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as LogRecord);
}

describe('collector logging: a pino-style logger, and --log-format json', function () {
  this.timeout(60_000);
  let cleanup: Cleanup;
  let exchange: string;
  let queue: string;
  let prefix: string;

  beforeEach(() => {
    cleanup = new Cleanup();
    ({ exchange, queue, prefix } = cleanup.collectorNames('clog'));
  });
  afterEach(() => cleanup.run());

  it('Collector: a lost connection is a warn record LC_BROKER_LOST, the recovery an info record LC_BROKER_RECONNECTED', async () => {
    const store = new RedisContextStore({ redis: redisUrl(), prefix });
    cleanup.defer(() => store.close());
    const u = new URL(amqpUrl());
    const proxy = new FaultProxy(u.hostname, Number(u.port || 5672));
    const port = await proxy.listen();
    cleanup.defer(() => proxy.close());
    u.hostname = '127.0.0.1';
    u.port = String(port);
    const log = memoryPino();
    const collector = new Collector({
      store,
      url: u.toString(),
      exchange,
      queue,
      heartbeatInterval: 0,
      retry: { initialDelay: 20, maxDelay: 200 },
      logger: log.logger.child({ lib: 'contexture-collector' }),
    });
    cleanup.defer(() => collector.close());
    await collector.start();
    proxy.cut();
    await waitUntil(() => collector.status === 'disconnected', 'the collector to notice the cut');
    proxy.restore();
    await waitUntil(() => log.records().some((r) => r.code === 'LC_BROKER_RECONNECTED'), 'the recovery record');
    const lost = log.records().find((r) => r.code === 'LC_BROKER_LOST');
    const back = log.records().find((r) => r.code === 'LC_BROKER_RECONNECTED');
    expect(lost, log.text()).to.include({ level: 40, lib: 'contexture-collector', url: `127.0.0.1:${port}`, nodes: 1 });
    expect(lost!.lastError).to.be.a('string');
    expect(lost!.msg).to.match(
      /^lost 127\.0\.0\.1:\d+ \(.*\); unacknowledged messages will be redelivered; reconnecting$/,
    );
    expect(back).to.include({ level: 30, url: `127.0.0.1:${port}` });
    expect(back!.msg).to.equal(`consuming from 127.0.0.1:${port} again`);
    expect(log.text()).to.not.contain(`:${u.password}@`);
  });

  it('Collector: a logger of another shape is refused with LC_DAEMON_INVALID_OPTION', () => {
    const store = new RedisContextStore({ redis: redisUrl(), prefix });
    cleanup.defer(() => store.close());
    for (const logger of [{}, { info: () => {} }, 'stderr', 42]) {
      const err = (() => {
        try {
          new Collector({ store, logger: logger as never });
          return null;
        } catch (e) {
          return e;
        }
      })();
      expect(err).to.be.instanceOf(CollectorError);
      expect((err as CollectorError).code).to.equal('LC_DAEMON_INVALID_OPTION');
      expect((err as CollectorError).message).to.match(/logger must be a pino-style logger/);
    }
  });

  it('the program with CONTEXTURE_COLLECTOR_LOG_FORMAT=json: every stderr line is a JSON record (time, level, msg, fields)', async () => {
    const bin = startBin(
      [
        '--url',
        amqpUrl(),
        '--redis',
        redisUrl(),
        '-e',
        exchange,
        '-q',
        queue,
        '--prefix',
        prefix,
        '--no-registry',
        '--stats',
        '0.2',
      ],
      { CONTEXTURE_COLLECTOR_LOG_FORMAT: 'json' },
    );
    cleanup.defer(async () => {
      bin.child.kill('SIGTERM');
      await bin.exited;
    });
    await waitUntil(() => /"LC_DAEMON_CONSUMING"/.test(bin.stderr()), 'the consuming record', 20_000);
    const id = uniqueName('clog-obj');
    await publishMessages(exchange, [
      { obj_id: id, obj: { a: 1 }, status: 'born', seq: 0, time_in: Date.now() / 1000 },
      { obj_id: id, obj: { b: 2 }, status: 'finished', elapsed: 0.1, seq: 1, time_in: Date.now() / 1000 },
    ]);
    await waitUntil(
      () => parseLines(bin.stderr()).some((r) => r.code === 'LC_DAEMON_STATS' && (r.applied as number) >= 2),
      'a stats record counting both messages',
      20_000,
    );
    bin.child.kill('SIGTERM');
    expect(await bin.exited, bin.stderr()).to.equal(0);
    const records = parseLines(bin.stderr());
    for (const r of records) {
      expect(r.name).to.equal('contexture-collector');
      expect(r.level).to.be.oneOf(['info', 'warn', 'error']);
      expect(Number.isNaN(Date.parse(r.time as string)), String(r.time)).to.equal(false);
      expect(r.msg).to.be.a('string').and.not.equal('');
      expect(r.code)
        .to.be.a('string')
        .and.match(/^LC_[A-Z_]+$/);
    }
    const consuming = records.find((r) => r.code === 'LC_DAEMON_CONSUMING')!;
    expect(consuming).to.include({ level: 'info', queue, prefix, queueType: 'quorum' });
    expect(consuming.url).to.match(/^127\.0\.0\.1:\d+$/);
    expect(consuming.msg).to.match(new RegExp(`^consuming ${queue} \\(quorum queue\\) from `));
    const stats = records.find((r) => r.code === 'LC_DAEMON_STATS' && (r.applied as number) >= 2)!;
    expect(stats).to.include({ level: 'info', status: 'consuming', deadLettered: 0, storeErrors: 0 });
    expect(stats.msg).to.match(/ msg\/s, applied \d+, in flight /);
    expect(records.find((r) => r.code === 'LC_DAEMON_STOPPING')).to.include({ signal: 'SIGTERM', level: 'info' });
    const stopped = records.at(-1)!;
    expect(stopped).to.include({ code: 'LC_DAEMON_STOPPED', applied: 2, deadLettered: 0 });
    expect(stopped.msg).to.equal('stopped after applying 2 messages (0 dead-lettered)');
  });

  it('--log-format json: a refused login is one error record with its code and exit status, and no password', async () => {
    const u = new URL(amqpUrl());
    u.password = 'wrong-pw-6f1c';
    const bin = startBin([
      '--log-format',
      'json',
      '--url',
      u.toString(),
      '--redis',
      redisUrl(),
      '-e',
      exchange,
      '-q',
      queue,
      '--prefix',
      prefix,
      '--no-registry',
    ]);
    const code = await bin.exited;
    const err = bin.stderr();
    expect(code, err).to.equal(77);
    expect(err).to.not.contain('wrong-pw-6f1c');
    const records = parseLines(err);
    expect(records, err).to.have.length(1);
    expect(records[0]).to.include({ level: 'error', code: 'LC_BROKER_REFUSED', exitStatus: 77 });
    expect(records[0]!.url).to.match(/^127\.0\.0\.1:\d+$/);
    expect((records[0]!.err as LogRecord).message).to.be.a('string');
    // The fields as the program gave them, not reshaped as an Error by pino's serializer.
    expect(records[0]!.err).to.not.have.any.keys('type', 'stack');
    expect(records[0]!.msg).to.match(/^the broker refused the login or the vhost at 127\.0\.0\.1:\d+: /);
  });

  it('--log-format of another value: a usage error (exit 2) naming the choices; text stays the default', async () => {
    const bad = startBin(['--log-format', 'xml']);
    expect(await bad.exited).to.equal(2);
    expect(bad.stderr()).to.match(/--log-format <format>.*'xml' is invalid\. Allowed choices are text, json/);
    const u = new URL(amqpUrl());
    u.password = 'wrong-pw-6f1c';
    const text = startBin(['--url', u.toString(), '--redis', redisUrl(), '-e', exchange, '-q', queue, '--no-registry']);
    expect(await text.exited).to.equal(77);
    expect(text.stderr()).to.match(
      /^contexture-collector: the broker refused the login or the vhost at 127\.0\.0\.1:\d+: /,
    );
    expect(text.stderr()).to.not.contain('wrong-pw-6f1c');
  });
});
