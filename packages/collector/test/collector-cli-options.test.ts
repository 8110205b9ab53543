/**
 * The collector CLI's options, each shown to take effect through the real collector: the queue and
 * exchange as the broker has them (read back with a redeclare the broker refuses or accepts), the
 * keys and TTLs as Redis has them.
 */
import { expect } from 'chai';
import { Writable } from 'node:stream';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { amqpUrl, Cleanup, redisUrl, TempRedis, uniqueName, waitUntil } from '@contexture/test-support';
import { RedisContextStore } from '@contexture/collector';
import { createProgram } from '@contexture/collector/daemon';
import { keysMatching } from './support/backends.js';
import { publishRaw } from './support/bus.js';

interface RunningCli {
  stderr(): string;
  /** Stops it as SIGTERM would, and waits for the program to end. */
  stop(): Promise<void>;
}

describe('collector CLI: options take effect', function () {
  this.timeout(60_000);
  let cleanup: Cleanup;
  let exchange: string;
  let queue: string;
  let prefix: string;
  let redis: Redis;

  beforeEach(() => {
    cleanup = new Cleanup();
    ({ exchange, queue, prefix } = cleanup.collectorNames('cli'));
    redis = new Redis(redisUrl());
    cleanup.defer(() => redis.quit());
  });
  afterEach(() => cleanup.run());

  /** Runs the program in this process with `args` (after the connection options) until stop(); resolves once it consumes. */
  const run = async (args: string[], redisAt = redisUrl()): Promise<RunningCli> => {
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
    const program = createProgram({ stderr, stdout: stderr, stopSignal });
    const done = program
      .parseAsync(['node', 'contexture-collector', '--url', amqpUrl(), '--redis', redisAt, '--prefix', prefix, ...args])
      .finally(() => (ended = true));
    const stop = async () => {
      signal('SIGTERM');
      await done;
    };
    cleanup.defer(() => stop().catch(() => {}));
    await waitUntil(() => /consuming /.test(err) || ended, 'the collector to consume', 30_000);
    if (ended) await done; // a usage error or a refused start rejects here, with its message
    return { stderr: () => err, stop };
  };

  /** What the broker says to a declare of `queue` with `args` (null when it accepts it). */
  const redeclare = async (args: Record<string, unknown>): Promise<string | null> => {
    const conn = await amqp.connect(amqpUrl());
    try {
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      return await ch.assertQueue(queue, { durable: true, arguments: args }).then(
        () => null,
        (e: unknown) => String((e as Error).message),
      );
    } finally {
      await conn.close().catch(() => {});
    }
  };

  it('--exchange-type headers declares a headers exchange, and what is published to it is applied', async () => {
    const cli = await run(['-e', exchange, '--exchange-type', 'headers', '-q', queue, '--no-registry']);
    const conn = await amqp.connect(amqpUrl());
    cleanup.defer(() => conn.close());
    const ch = await conn.createConfirmChannel();
    ch.on('error', () => {});
    // A redeclare as headers is accepted (a topic one would be refused: 'inequivalent arg type').
    await ch.assertExchange(exchange, 'headers', { durable: true });
    ch.publish(
      exchange,
      'any.key',
      Buffer.from(JSON.stringify({ obj_id: 'h1', obj: { a: 1 }, status: 'born', seq: 0 })),
      {
        contentType: 'application/json',
        headers: { tenant: 'acme' },
      },
    );
    await ch.waitForConfirms();
    const check = await conn.createChannel();
    check.on('error', () => {});
    const refused = await check.assertExchange(exchange, 'topic', { durable: true }).then(
      () => null,
      (e: unknown) => String((e as Error).message),
    );
    expect(refused).to.match(/inequivalent arg 'type'.*received 'topic' but current is 'headers'/);
    const store = new RedisContextStore({ redis, prefix });
    cleanup.defer(() => store.close());
    await waitUntil(async () => (await store.get('h1')) !== null, 'the message applied');
    expect((await store.get('h1'))!.headers).to.include({ tenant: 'acme' });
    await cli.stop();
  });

  it('--quorum declares a quorum queue; -r binds it with those routing keys only', async () => {
    const cli = await run(['-e', exchange, '-q', queue, '--quorum', '-r', 'a.*', 'b.#', '--no-registry']);
    // The broker takes a redeclare with a quorum queue's arguments (a classic queue would refuse
    // x-queue-type), and refuses one without them, naming what the queue has.
    const quorum = {
      'x-queue-type': 'quorum',
      'x-delivery-limit': 20,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': `${queue}.dead`,
    };
    expect(await redeclare(quorum)).to.equal(null);
    expect(await redeclare({})).to.match(/PRECONDITION_FAILED - inequivalent arg/);
    // c.x matches no binding: the exchange drops it on publish, before a.x and b.y.z are sent.
    const msg = (id: string) => JSON.stringify({ obj_id: id, obj: { a: 1 }, status: 'born', seq: 0 });
    await publishRaw(exchange, [
      { body: msg('c'), rkey: 'c.x' },
      { body: msg('a'), rkey: 'a.x' },
      { body: msg('ab'), rkey: 'a.x.y' },
      { body: msg('b'), rkey: 'b.y.z' },
    ]);
    const store = new RedisContextStore({ redis, prefix });
    cleanup.defer(() => store.close());
    await waitUntil(
      async () => (await store.get('a')) !== null && (await store.get('b')) !== null,
      'a.x and b.y.z applied',
    );
    await cli.stop();
    // Stopped: everything it was given was applied, and nothing is left in the queue.
    expect(cli.stderr()).to.match(/stopped after applying 2 messages/);
    const conn = await amqp.connect(amqpUrl());
    cleanup.defer(() => conn.close());
    expect((await (await conn.createChannel()).checkQueue(queue)).messageCount).to.equal(0);
    expect(await store.get('c')).to.equal(null);
    expect(await store.get('ab')).to.equal(null);
  });

  it('--delta-threshold, --delta-ttl, --auto-delete, --context-ttl and --finished-ttl set what Redis keeps and for how long', async () => {
    const cli = await run([
      '-e',
      exchange,
      '-q',
      queue,
      '--no-registry',
      '--delta-threshold',
      '3',
      '--delta-ttl',
      '20000',
      '--auto-delete',
      '--context-ttl',
      '90000',
      '--finished-ttl',
      '30000',
    ]);
    const updates = (id: string, n: number) =>
      Array.from({ length: n }, (_, seq) => ({
        body: JSON.stringify({ obj_id: id, obj: { n: seq }, seq, ...(seq === 0 ? { status: 'born' } : {}) }),
      }));
    await publishRaw(exchange, [
      ...updates('open', 12),
      ...updates('done', 2),
      { body: JSON.stringify({ obj_id: 'done', obj: {}, status: 'finished', seq: 2 }) },
    ]);
    const store = new RedisContextStore({ redis, prefix });
    cleanup.defer(() => store.close());
    await waitUntil(
      async () => (await store.get('open'))?.version === 12 && (await store.get('done'))?.status === 'finished',
      'both contexts applied',
    );
    await cli.stop();
    const open = store.keys('open');
    // --auto-delete with --context-ttl: an open context's keys expire after 90 s idle (not never).
    expect(await redis.pttl(open.state)).to.be.within(30_001, 90_000);
    // --finished-ttl: a finished one's after 30 s.
    expect(await redis.pttl(store.keys('done').state)).to.be.within(1, 30_000);
    // --delta-ttl: the deltas list lives on for about that long (1.25 × deltaTtl at most), not as long as the context.
    expect(await redis.pttl(open.deltas)).to.be.within(1, 25_000);
    // --delta-threshold 3: of eleven deltas, three are kept (the list is trimmed in small steps).
    expect(await redis.llen(open.deltas)).to.be.within(3, 5);
    expect((await store.sync('open', 9))!.type).to.equal('delta');
    expect((await store.sync('open', 8))!.type).to.equal('full');
  });

  it('--delta-threshold 0 keeps no deltas: every sync behind the current version is full', async () => {
    const cli = await run(['-e', exchange, '-q', queue, '--no-registry', '--delta-threshold', '0']);
    await publishRaw(exchange, [
      { body: JSON.stringify({ obj_id: 'none', obj: { n: 0 }, seq: 0, status: 'born' }) },
      { body: JSON.stringify({ obj_id: 'none', obj: { n: 1 }, seq: 1 }) },
    ]);
    const store = new RedisContextStore({ redis, prefix });
    cleanup.defer(() => store.close());
    await waitUntil(async () => (await store.get('none'))?.version === 2, 'both messages applied');
    await cli.stop();
    expect(await redis.llen(store.keys('none').deltas)).to.equal(0);
    expect((await store.sync('none', 1))!.type).to.equal('full');
  });

  it('--cleanup-interval runs the cleaner: a context written without a TTL is deleted once idle past --context-ttl', async () => {
    // Written while autoDelete was off: no key TTL, so only the cleaner can remove it.
    const writer = new RedisContextStore({ redis, prefix });
    cleanup.defer(() => writer.close());
    await writer.set('old', { a: 1 });
    expect(await redis.pttl(writer.keys('old').state)).to.equal(-1);
    const cli = await run([
      '-e',
      exchange,
      '-q',
      queue,
      '--no-registry',
      '--auto-delete',
      '--context-ttl',
      '1000',
      '--cleanup-interval',
      '200',
    ]);
    await waitUntil(async () => (await writer.get('old')) === null, 'the cleaner to delete it', 20_000);
    await cli.stop();
  });

  it('--batch-size sets how many deliveries one store call applies', async () => {
    // A Redis of the test's own: its command counts are this collector's alone.
    const server = new TempRedis();
    await server.start();
    cleanup.defer(() => server.destroy());
    const admin = new Redis(server.url);
    cleanup.defer(() => admin.quit());
    const scriptCalls = async (): Promise<number> => {
      const info = await admin.info('commandstats');
      return [...info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
    };
    // 40 messages of one context, queued before the collector starts: deliveries come faster than applies.
    const bodies = Array.from({ length: 40 }, (_, seq) => ({
      body: JSON.stringify({ obj_id: 'batched', obj: { n: seq }, seq, ...(seq === 0 ? { status: 'born' } : {}) }),
    }));
    const counts: Record<string, number> = {};
    for (const size of ['1', '40']) {
      const q = cleanup.queue(uniqueName('cli-q'));
      cleanup.queue(`${q}.dead`);
      const declare = await run(['-e', exchange, '-q', q, '--no-registry'], server.url);
      await declare.stop();
      await publishRaw(exchange, bodies);
      await admin.flushall();
      await admin.config('RESETSTAT');
      const cli = await run(
        ['-e', exchange, '-q', q, '--no-registry', '--batch-size', size, '--prefetch', '100'],
        server.url,
      );
      const store = new RedisContextStore({ redis: admin, prefix });
      cleanup.defer(() => store.close());
      await waitUntil(async () => (await store.get('batched'))?.version === 40, 'the 40 messages applied');
      counts[size] = await scriptCalls();
      await cli.stop();
      expect(cli.stderr()).to.match(/stopped after applying 40 messages/);
    }
    expect(counts['1'], 'one script call per delivery').to.be.at.least(40);
    expect(counts['40'], 'deliveries applied together').to.be.below(20);
  });

  it('--handler-timeout sets how long the registry keeps an entry (4×): the collector’s own entry expires that late', async () => {
    const cli = await run(['-e', exchange, '-q', queue, '--handler-timeout', '100000']);
    let entries: string[] = [];
    await waitUntil(async () => {
      entries = await keysMatching(redis, `${prefix}registry:*:e:*`);
      return entries.length === 1;
    }, "the collector's registry entry");
    // 4 × 100000 ms; the default (15000) would give at most 60000.
    expect(await redis.pttl(entries[0]!)).to.be.within(60_001, 400_000);
    await cli.stop();
  });
});
