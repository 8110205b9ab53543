import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { amqpUrl, Cleanup, FaultProxy, redisUrl, uniqueName, waitUntil } from '@contexture/test-support';
import { CollectorError, RedisContextStore } from '@contexture/collector';
import { Collector } from '@contexture/collector/daemon';
import { startBin } from './bin-support.js';

const execFileAsync = promisify(execFile);

/** The lines a run wrote on stderr. */
const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '');

/** Whether the broker has a queue of that name. */
async function queueExists(name: string): Promise<boolean> {
  const conn = await amqp.connect(amqpUrl());
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    return await ch.checkQueue(name).then(
      () => true,
      () => false,
    );
  } finally {
    await conn.close().catch(() => {});
  }
}

describe('collector daemon: what the broker refuses at start, and a stop while connecting', function () {
  this.timeout(60_000);
  let cleanup: Cleanup;
  let exchange: string;
  let queue: string;
  let prefix: string;

  beforeEach(() => {
    cleanup = new Cleanup();
    ({ exchange, queue, prefix } = cleanup.collectorNames('cols'));
  });
  afterEach(() => cleanup.run());

  it('an exchange that exists with another type (-e amq.direct): one line naming it, exit 78, nothing declared', async () => {
    const run = startBin([
      '--url',
      amqpUrl(),
      '--redis',
      redisUrl(),
      '-e',
      'amq.direct',
      '-q',
      queue,
      '--prefix',
      prefix,
    ]);
    const code = await run.exited;
    const err = run.stderr();
    expect(code, err).to.equal(78);
    expect(lines(err), err).to.have.length(1);
    expect(err).to.match(
      /^contexture-collector: exchange "amq\.direct" on 127\.0\.0\.1:\d+ exists with another type or durability than the collector declares \(durable topic\): .*current is 'direct'/,
    );
    expect(err).to.not.match(/\n\s+at |guest:guest/);
    expect(await queueExists(queue)).to.equal(false);
  });

  it('a name the broker reserves (-q amq.…): one line, exit 78, not "refused the login"', async () => {
    const reserved = `amq.${uniqueName('cols')}`;
    const run = startBin([
      '--url',
      amqpUrl(),
      '--redis',
      redisUrl(),
      '-e',
      exchange,
      '-q',
      reserved,
      '--prefix',
      prefix,
    ]);
    const code = await run.exited;
    const err = run.stderr();
    expect(code, err).to.equal(78);
    expect(lines(err), err).to.have.length(1);
    expect(err).to.match(/^contexture-collector: the broker at 127\.0\.0\.1:\d+ refused the set-up: .*reserved prefix/);
    expect(err).to.not.match(/login|\n\s+at /);
  });

  it('a user the vhost does not let declare: one line saying access was refused, exit 77, no password', async () => {
    const user = uniqueName('cols-user');
    const password = 'p4ss-w0rd';
    await execFileAsync('rabbitmqctl', ['-q', 'add_user', user, password], { timeout: 60_000 });
    cleanup.defer(() => execFileAsync('rabbitmqctl', ['-q', 'delete_user', user], { timeout: 60_000 }));
    // May read and write, may not configure (declare) anything.
    await execFileAsync('rabbitmqctl', ['-q', 'set_permissions', '-p', '/', user, '^$', '.*', '.*'], {
      timeout: 60_000,
    });
    const url = new URL(amqpUrl());
    url.username = user;
    url.password = password;
    const run = startBin([
      '--url',
      url.toString(),
      '--redis',
      redisUrl(),
      '-e',
      exchange,
      '-q',
      queue,
      '--prefix',
      prefix,
    ]);
    const code = await run.exited;
    const err = run.stderr();
    expect(code, err).to.equal(77);
    expect(lines(err), err).to.have.length(1);
    expect(err).to.match(/^contexture-collector: the broker at 127\.0\.0\.1:\d+ refused access: access to exchange/);
    expect(err).to.not.contain(password);
  });

  it('Collector.start() rejects a refused set-up at once with a CollectorError, without trying again', async () => {
    const store = new RedisContextStore({ redis: redisUrl(), prefix });
    cleanup.defer(() => store.close());
    const warned: string[] = [];
    const collector = new Collector({
      store,
      url: amqpUrl(),
      exchange: 'amq.direct',
      queue,
      logger: { info: () => {}, warn: (l: string) => warned.push(l) },
      // Tries again would take minutes: the test would time out rather than see a second error.
      retry: { initialDelay: 60_000, maxDelay: 60_000 },
    });
    cleanup.defer(() => collector.close());
    const err = await collector.start().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(CollectorError);
    expect((err as CollectorError).code).to.equal('LC_BROKER_EXCHANGE_MISMATCH');
    expect(collector.status).to.equal('idle');
  });

  it('a broker that goes silent is taken as lost in about 10 s (the watchdog, not amqplib alone), and consumed from again after', async () => {
    const broker = new URL(amqpUrl());
    const proxy = new FaultProxy(broker.hostname, Number(broker.port || 5672));
    const port = await proxy.listen();
    cleanup.defer(() => proxy.close());
    broker.hostname = '127.0.0.1';
    broker.port = String(port);
    const store = new RedisContextStore({ redis: redisUrl(), prefix });
    cleanup.defer(() => store.close());
    const warnings: string[] = [];
    const collector = new Collector({
      store,
      url: broker.toString(),
      exchange,
      queue,
      heartbeatInterval: 0,
      retry: { initialDelay: 50, maxDelay: 200 },
      logger: { info: () => {}, warn: (m: string) => warnings.push(m) },
    });
    cleanup.defer(() => collector.close());
    await collector.start();
    const lost = new Promise<string>((resolve) => collector.once('disconnect', (why: string) => resolve(why)));
    const t0 = performance.now();
    proxy.stall();
    // Generous: nearly twice the 10 s; amqplib's own check at a 10 s heartbeat took 20 to 30 s.
    const bound = new Promise<null>((resolve) => setTimeout(() => resolve(null), 18_000).unref());
    const why = await Promise.race([lost, bound]);
    expect(why, 'the silent broker noticed within 18 s').to.not.equal(null);
    console.log(`      (silent broker noticed after ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    expect(why).to.match(/heartbeat timeout/i);
    expect(warnings.join('\n')).to.match(/lost 127\.0\.0\.1:\d+ \(Heartbeat timeout/);
    proxy.restore();
    await waitUntil(
      () => collector.status === 'consuming' && collector.stats().reconnects >= 1,
      'the collector back',
      30_000,
    );
  });

  it('SIGTERM while the first connect waits on a broker that does not answer: says it stops, exits 0, before the handshake times out', async () => {
    const broker = new URL(amqpUrl());
    const proxy = new FaultProxy(broker.hostname, Number(broker.port || 5672));
    const port = await proxy.listen();
    cleanup.defer(() => proxy.close());
    proxy.stall();
    broker.hostname = '127.0.0.1';
    broker.port = String(port);
    const run = startBin([
      '--url',
      broker.toString(),
      '--redis',
      redisUrl(),
      '-e',
      exchange,
      '-q',
      queue,
      '--prefix',
      prefix,
    ]);
    // The connection is taken (and says nothing): the collector is in its handshake.
    await waitUntil(() => proxy.accepted >= 1, 'the collector to connect to the stalled proxy');
    const t0 = performance.now();
    run.child.kill('SIGTERM');
    const code = await run.exited;
    const took = performance.now() - t0;
    const err = run.stderr();
    expect(code, err).to.equal(0);
    const said = lines(err);
    expect(said[0], err).to.match(
      /^contexture-collector: SIGTERM: stopping; the broker at 127\.0\.0\.1:\d+ has not answered yet, nothing consumed$/,
    );
    expect(said[1], err).to.equal('contexture-collector: stopped after applying 0 messages (0 dead-lettered)');
    expect(err).to.not.match(/cannot reach/);
    // Generous, and still well short of the 10 s handshake timeout the old code waited out.
    expect(took, err).to.be.below(7_000);
  });

  it('Collector.close() during start(): start() rejects with LC_DAEMON_CLOSED; a connection that completes later declares nothing', async () => {
    const store = new RedisContextStore({ redis: redisUrl(), prefix });
    cleanup.defer(() => store.close());
    const broker = new URL(amqpUrl());
    const proxy = new FaultProxy(broker.hostname, Number(broker.port || 5672));
    const port = await proxy.listen();
    cleanup.defer(() => proxy.close());
    proxy.stall();
    broker.hostname = '127.0.0.1';
    broker.port = String(port);
    const collector = new Collector({ store, url: broker.toString(), exchange, queue, logger: null });
    const started = collector.start().then(
      () => null,
      (e: unknown) => e,
    );
    await waitUntil(() => proxy.accepted >= 1, 'the collector to connect to the stalled proxy');
    await collector.close();
    const err = await started;
    expect(err).to.be.instanceOf(CollectorError);
    expect((err as CollectorError).code).to.equal('LC_DAEMON_CLOSED');
    expect(collector.status).to.equal('closed');
    // The broker answers after all: the late connection declares nothing and is closed.
    proxy.restore();
    await waitUntil(() => proxy.connections === 0, 'the late connection to be closed');
    expect(await queueExists(queue)).to.equal(false);
    expect(collector.status).to.equal('closed');
  });
});
