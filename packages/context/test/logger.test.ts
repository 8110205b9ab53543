import { expect } from 'chai';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import winston from 'winston';
import { Context, ContextError, Handler } from '@contexture/context';
import { toLogger } from '@contexture/context/internal';
import {
  amqpUrl,
  brokerProxy,
  Cleanup,
  freePort,
  proxiedAmqpUrl,
  TestConsumer,
  uniqueName,
  waitUntil,
} from '@contexture/test-support';

/** A pino logger writing JSON lines into memory, and the records read back. */
function memoryPino(): { logger: pino.Logger; records: Array<Record<string, unknown>>; text: () => string } {
  let text = '';
  const sink = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  const logger = pino({ level: 'debug' }, sink);
  return {
    logger,
    get records() {
      return text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    text: () => text,
  };
}

const quick = { initialDelay: 20, maxDelay: 200 };

describe('Handler logger: a pino-style logger gets fields and a message', function () {
  this.timeout(30_000);
  let cleanup: Cleanup;

  beforeEach(() => {
    cleanup = new Cleanup();
  });
  afterEach(() => cleanup.run());

  it('a broker that cannot be reached: one warn record with code LC_BROKER_UNREACHABLE, host:port, no password', async () => {
    const port = await freePort();
    const log = memoryPino();
    const handler = new Handler({
      url: `amqp://app:s3cret-pw@127.0.0.1:${port}/%2F`,
      exchange: uniqueName('log-x'),
      heartbeatInterval: 0,
      closeTimeout: 100,
      reconnect: quick,
      logger: log.logger,
    });
    cleanup.defer(() => handler.close());
    new Context({ name: 'log.unreachable', handler, transient: true });
    await waitUntil(() => log.records.length > 0, 'a log record');
    const [r] = log.records;
    expect(r).to.include({
      level: 40,
      code: 'LC_BROKER_UNREACHABLE',
      url: `127.0.0.1:${port}`,
      bufferSize: 5000,
      overflow: 'drop-oldest',
      nodes: 1,
    });
    expect(r!.msg).to.match(new RegExp(`^cannot publish to 127\\.0\\.0\\.1:${port} \\(.*ECONNREFUSED`));
    expect(r!.lastError)
      .to.be.a('string')
      .and.match(/ECONNREFUSED/);
    await handler.close();
    // close() says what it dropped: the one message, with a code and the count.
    const closed = log.records.find((x) => x.code === 'LC_HANDLER_CLOSE_UNPUBLISHED');
    expect(closed, log.text()).to.include({ level: 40, dropped: 1, droppedUnconfirmed: 0 });
    expect(closed!.msg).to.equal('closed with 1 message(s) unpublished; counted as dropped');
    expect(log.text()).to.not.contain('s3cret-pw');
    // Reconnecting again and again is one outage: said once.
    expect(log.records.filter((x) => x.code === 'LC_BROKER_UNREACHABLE')).to.have.length(1);
  });

  it('a connection lost and regained: LC_BROKER_LOST then LC_BROKER_RECONNECTED with the outage counts', async () => {
    const exchange = cleanup.exchange(uniqueName('log-x'));
    const consumer = await TestConsumer.start({ exchange });
    cleanup.defer(() => consumer.close());
    const proxy = await brokerProxy(cleanup);
    const log = memoryPino();
    const handler = new Handler({
      url: proxiedAmqpUrl(proxy.port),
      exchange,
      flushInterval: 1,
      heartbeatInterval: 0,
      reconnect: quick,
      logger: log.logger.child({ lib: 'contexture' }),
    });
    cleanup.defer(() => handler.close());
    new Context({ name: 'log.lost', handler, transient: true });
    await consumer.waitFor(1);
    proxy.cut();
    await waitUntil(() => handler.stats().status === 'disconnected', 'the handler to notice the cut');
    proxy.restore();
    await waitUntil(() => log.records.some((x) => x.code === 'LC_BROKER_RECONNECTED'), 'the recovery record');
    const lost = log.records.find((x) => x.code === 'LC_BROKER_LOST');
    const back = log.records.find((x) => x.code === 'LC_BROKER_RECONNECTED');
    expect(lost, log.text()).to.include({ level: 40, lib: 'contexture', url: `127.0.0.1:${proxy.port}` });
    expect(lost!.msg).to.match(/^cannot publish to 127\.0\.0\.1:\d+ /);
    expect(back).to.include({ level: 40, lib: 'contexture', url: `127.0.0.1:${proxy.port}`, dropped: 0 });
    expect(back!.outageSeconds).to.be.a('number').and.at.least(0);
    expect(back!.msg).to.match(/^publishing to 127\.0\.0\.1:\d+ again after [\d.]+ s; 0 message\(s\) dropped/);
  });

  it('an exchange of another type: the stop record carries the error code and the error name and message', async () => {
    const exchange = cleanup.exchange(uniqueName('log-direct'));
    const witness = await TestConsumer.start({ exchange, type: 'direct', bindingKey: 'x', bindingArgs: {} });
    cleanup.defer(() => witness.close());
    const log = memoryPino();
    const handler = new Handler({ url: amqpUrl(), exchange, heartbeatInterval: 0, logger: log.logger });
    cleanup.defer(() => handler.close());
    handler.on('error', () => {});
    new Context({ name: 'log.mismatch', handler, transient: true });
    await waitUntil(() => log.records.length > 0, 'a log record');
    const [r] = log.records;
    expect(r).to.include({ level: 40, code: 'LC_HANDLER_EXCHANGE_MISMATCH', unpublished: 1 });
    const err = r!.err as Record<string, unknown>;
    expect(err.name).to.be.a('string');
    expect(err.message).to.match(/received 'topic' but current is 'direct'/);
    expect(r!.msg).to.match(new RegExp(`^stopped publishing: exchange '${exchange}' exists with other arguments`));
  });

  it('messages dropped on a full buffer while connected: LC_BUFFER_OVERFLOW at once, then at most every 10 s', async () => {
    const log = memoryPino();
    const handler = new Handler({
      url: amqpUrl(),
      exchange: cleanup.exchange(uniqueName('log-ovf')),
      bufferSize: 10,
      logger: log.logger,
    });
    cleanup.defer(() => handler.close());
    new Context({ name: 'log.overflow', handler, transient: true });
    expect(await handler.flush(10_000)).to.equal(true);
    expect(handler.status).to.equal('connected');
    // A burst in one turn: far more than the buffer holds before the publisher runs.
    const ctx = new Context({ name: 'log.overflow', handler });
    for (let i = 0; i < 1000; i++) ctx.i = i;
    ctx.finish();
    await handler.flush(10_000);
    const records = log.records.filter((r) => r.code === 'LC_BUFFER_OVERFLOW');
    expect(records, log.text()).to.have.length(1);
    expect(records[0]).to.include({ level: 40, dropped: 1, bufferSize: 10, overflow: 'drop-oldest' });
    expect(records[0]!.msg).to.match(/^1 message\(s\) dropped: the buffer of 10 was full/);
    expect(handler.stats().dropped).to.be.greaterThan(900);
  });

  it('every drop is said: the rest of a burst at close, before the first connection, an outage that ends with close, a message after close', async () => {
    /** The drops the log says, by code. */
    const said = (log: ReturnType<typeof memoryPino>, code: string) =>
      log.records.filter((r) => r.code === code).reduce((n, r) => n + (r.dropped as number), 0);
    const burst = (handler: Handler) => {
      const ctx = new Context({ name: 'log.drops', handler });
      for (let i = 0; i < 1000; i++) ctx.i = i;
      ctx.finish();
    };
    // Connected: the first drop at once, the rest of the burst when the handler closes.
    const connected = memoryPino();
    const a = new Handler({
      url: amqpUrl(),
      exchange: cleanup.exchange(uniqueName('log-drop')),
      bufferSize: 10,
      logger: connected.logger,
    });
    new Context({ name: 'log.drops', handler: a, transient: true });
    expect(await a.flush(10_000)).to.equal(true);
    burst(a);
    await a.close();
    expect(said(connected, 'LC_BUFFER_OVERFLOW'), connected.text()).to.equal(a.stats().dropped);
    expect(a.stats().dropped).to.be.greaterThan(900);
    // A message after close: dropped, said once.
    new Context({ name: 'log.drops', handler: a, transient: true });
    new Context({ name: 'log.drops', handler: a, transient: true });
    expect(connected.records.filter((r) => r.code === 'LC_HANDLER_CLOSED')).to.have.length(1);
    // Before the first connection (the broker stalls the handshake): no outage yet, the drops are said.
    const stalled = await brokerProxy(cleanup);
    stalled.stall();
    const early = memoryPino();
    const b = new Handler({
      url: proxiedAmqpUrl(stalled.port),
      bufferSize: 10,
      heartbeatInterval: 0,
      closeTimeout: 500,
      logger: early.logger,
    });
    burst(b);
    expect(b.status).to.not.equal('connected');
    await b.close();
    expect(said(early, 'LC_BUFFER_OVERFLOW') + said(early, 'LC_HANDLER_CLOSE_UNPUBLISHED'), early.text()).to.equal(
      b.stats().dropped,
    );
    // An outage that ends with close(): its drops are said, not only those close() itself drops.
    const proxy = await brokerProxy(cleanup);
    const down = memoryPino();
    const c = new Handler({
      url: proxiedAmqpUrl(proxy.port),
      exchange: cleanup.exchange(uniqueName('log-drop')),
      bufferSize: 10,
      heartbeatInterval: 0,
      closeTimeout: 500,
      reconnect: quick,
      logger: down.logger,
    });
    new Context({ name: 'log.drops', handler: c, transient: true });
    expect(await c.flush(10_000)).to.equal(true);
    proxy.cut();
    await waitUntil(() => c.stats().status !== 'connected', 'the handler to notice the cut');
    burst(c);
    await c.close();
    const outage = down.records.find((r) => r.code === 'LC_BROKER_OUTAGE_DROPPED');
    expect(outage, down.text()).to.include({ level: 40 });
    expect(outage!.msg).to.match(/^\d+ message\(s\) dropped during the outage/);
    expect(said(down, 'LC_BROKER_OUTAGE_DROPPED') + said(down, 'LC_HANDLER_CLOSE_UNPUBLISHED'), down.text()).to.equal(
      c.stats().dropped,
    );
  });

  it('a logger with warn(message) only still gets one "contexture: " line; a logger of another shape is refused', async () => {
    const port = await freePort();
    const lines: string[] = [];
    const handler = new Handler({
      url: `amqp://app:s3cret-pw@127.0.0.1:${port}/%2F`,
      heartbeatInterval: 0,
      reconnect: quick,
      logger: { warn: (m: string) => lines.push(m) },
    });
    cleanup.defer(() => handler.close());
    new Context({ name: 'log.legacy', handler, transient: true });
    await waitUntil(() => lines.length > 0, 'a warning');
    expect(lines[0]).to.match(new RegExp(`^contexture: cannot publish to 127\\.0\\.0\\.1:${port} \\(`));
    expect(lines.join('\n')).to.not.contain('s3cret-pw');
    for (const logger of [{}, { info: () => {} }, 'stderr', 42]) {
      const err = (() => {
        try {
          new Handler({ logger: logger as never });
          return null;
        } catch (e) {
          return e;
        }
      })();
      expect(err).to.be.instanceOf(ContextError);
      expect((err as ContextError).code).to.equal('LC_CONFIG_INVALID');
      expect((err as ContextError).message).to.match(/logger must be a pino-style logger/);
    }
  });

  it('a winston logger gets the message as its message and the fields beside it, at its own level names', async () => {
    /** A winston logger writing JSON lines into memory, with `levels` (winston's npm levels by default). */
    const memoryWinston = (levels?: winston.config.AbstractConfigSetLevels) => {
      let text = '';
      const stream = new Writable({
        write(chunk, _enc, done) {
          text += String(chunk);
          done();
        },
      });
      const logger = winston.createLogger({
        level: 'debug',
        ...(levels === undefined ? {} : { levels }),
        format: winston.format.json(),
        transports: [new winston.transports.Stream({ stream })],
      });
      const records = () =>
        text
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as Record<string, unknown>);
      return { logger, records };
    };

    const port = await freePort();
    const log = memoryWinston();
    const handler = new Handler({
      url: `amqp://app:s3cret-pw@127.0.0.1:${port}/%2F`,
      exchange: uniqueName('log-w'),
      heartbeatInterval: 0,
      closeTimeout: 100,
      reconnect: quick,
      logger: log.logger,
    });
    cleanup.defer(() => handler.close());
    new Context({ name: 'log.winston', handler, transient: true });
    await waitUntil(() => log.records().length > 0, 'a log record');
    const [r] = log.records();
    expect(r).to.include({ level: 'warn', code: 'LC_BROKER_UNREACHABLE', url: `127.0.0.1:${port}`, nodes: 1 });
    expect(r!.message).to.match(new RegExp(`^cannot publish to 127\\.0\\.0\\.1:${port} \\(.*ECONNREFUSED`));
    expect(JSON.stringify(log.records())).to.not.contain('s3cret-pw');

    // A child logger is one too; a message that looks like a format keeps its fields.
    const child = memoryWinston();
    toLogger(child.logger.child({ lib: 'contexture' })).info({ code: 'LC_TEST', n: 3 }, 'at 50%d of %s');
    expect(child.records()).to.deep.equal([
      { lib: 'contexture', code: 'LC_TEST', n: 3, level: 'info', message: 'at 50%d of %s' },
    ]);

    // syslog's levels have `warning`, not `warn` (nor a warn() method): taken all the same.
    const syslog = memoryWinston(winston.config.syslog.levels);
    const h2 = new Handler({ logger: syslog.logger, url: 'jsonl:/dev/null' });
    cleanup.defer(() => h2.close());
    const l = toLogger(syslog.logger);
    l.warn({ code: 'LC_A' }, 'warned');
    l.error({ code: 'LC_B' }, 'failed');
    l.info({ code: 'LC_C' }, 'said');
    expect(syslog.records().map((x) => [x.level, x.code, x.message])).to.deep.equal([
      ['warning', 'LC_A', 'warned'],
      ['error', 'LC_B', 'failed'],
      ['info', 'LC_C', 'said'],
    ]);
  });
});
