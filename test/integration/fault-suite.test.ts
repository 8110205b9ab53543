/**
 * The fault suite: the whole pipeline (a program's Handler → RabbitMQ → the collector → Redis, and
 * lcmon reading the same stream) under the faults users meet, with exact accounting, and every
 * reader fed the same hostile corpus. Each fault is shown to have happened before its outcome is
 * asserted.
 */
import { expect } from 'chai';
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { Context, Handler } from '@contexture/context';
import { RedisContextStore } from '@contexture/collector/store';
import {
  amqpUrl,
  brokerProxy,
  Cleanup,
  proxiedAmqpUrl,
  hostileCorpus,
  redisUrl,
  TempRedis,
  TestConsumer,
  uniqueName,
  waitUntil,
} from '@contexture/test-support';

const COLLECTOR = fileURLToPath(
  new URL('../../packages/collector/dist/src/bin/contexture-collector.js', import.meta.url),
);
const LCMON = fileURLToPath(new URL('../../packages/lcmon/dist/src/bin/lcmon.js', import.meta.url));
const PRODUCER = fileURLToPath(new URL('./fixtures/producer.js', import.meta.url));

interface Proc {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function run(file: string, args: string[], cleanup: Cleanup, env: Record<string, string> = {}, input?: Buffer): Proc {
  const child = spawn(process.execPath, [file, ...args], {
    env: { ...process.env, ...env },
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  if (input !== undefined) {
    child.stdin!.on('error', () => {});
    child.stdin!.end(input);
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  cleanup.defer(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function withChannel<T>(fn: (ch: amqp.Channel) => Promise<T>): Promise<T> {
  const conn = await amqp.connect(amqpUrl());
  try {
    const ch = await conn.createChannel();
    return await fn(ch);
  } finally {
    await conn.close();
  }
}

/** Publishes bodies to an exchange (declared topic) and resolves once the broker confirmed every one. */
async function publishConfirmed(exchange: string, bodies: Array<string | Buffer>): Promise<void> {
  const conn = await amqp.connect(amqpUrl());
  try {
    const ch = await conn.createConfirmChannel();
    await ch.assertExchange(exchange, 'topic', { durable: true });
    for (const body of bodies) ch.publish(exchange, 'corpus', Buffer.from(body), { contentType: 'application/json' });
    await ch.waitForConfirms();
  } finally {
    await conn.close();
  }
}

const queueDepth = (queue: string) => withChannel(async (ch) => (await ch.checkQueue(queue)).messageCount);

/** The highest `produced <n>` line a producer printed so far. */
function progress(p: Proc): number {
  const all = [...p.stdout().matchAll(/^produced (\d+)$/gm)];
  return all.length === 0 ? 0 : Number(all[all.length - 1]![1]);
}

/** Crash signatures no reader may print, whatever it is fed. */
const CRASH = /internal error|RangeError|Maximum call stack|IllegalOperationError|Unhandled|TypeError|at .*\.js:\d+/;

describe('fault suite', function () {
  this.timeout(240_000);
  let cleanup: Cleanup;
  beforeEach(() => {
    cleanup = new Cleanup();
  });
  afterEach(() => cleanup.run());

  it('end to end: a broker outage, a collector SIGKILL and a Redis SIGKILL mid-stream lose no change', async () => {
    const exchange = cleanup.exchange(uniqueName('fault-x'));
    const queue = cleanup.queue(uniqueName('fault-q'));
    cleanup.queue(`${queue}.dead`);
    const prefix = `${uniqueName('fault')}:`;
    const id = uniqueName('fault-ctx');
    const redis = new TempRedis();
    await redis.start();
    cleanup.defer(() => redis.destroy());
    const proxy = await brokerProxy(cleanup);

    const collectorArgs = ['-u', amqpUrl(), '--redis', redis.url, '-e', exchange, '-q', queue, '--prefix', prefix];
    let collector = run(COLLECTOR, [...collectorArgs, '--prefetch', '100'], cleanup);
    await waitUntil(() => /consuming/.test(collector.stderr()), 'the collector to consume', 30_000);

    const CONTEXTS = 150;
    const CHANGES = 20;
    const producer = run(PRODUCER, [], cleanup, {
      URL: proxiedAmqpUrl(proxy.port),
      EXCHANGE: exchange,
      ID: id,
      CONTEXTS: String(CONTEXTS),
      CHANGES: String(CHANGES),
      PAUSE: '25',
      BUFFER: '100000',
      FLUSH_MS: '120000',
    });
    const at = (n: number) => waitUntil(() => progress(producer) >= n, `the producer to reach ${n} contexts`, 60_000);

    // 1. the program loses the broker for a while; its buffer holds what it produces meanwhile
    await at(20);
    const acceptedBefore = proxy.accepted;
    proxy.cut();
    await at(50);
    proxy.restore();
    await waitUntil(() => proxy.accepted > acceptedBefore, 'the producer to reconnect', 30_000);

    // 2. the collector is killed with SIGKILL, and started again
    await at(70);
    collector.child.kill('SIGKILL');
    expect((await collector.exited).signal).to.equal('SIGKILL');
    collector = run(COLLECTOR, [...collectorArgs, '--prefetch', '100'], cleanup);
    await waitUntil(() => /consuming/.test(collector.stderr()), 'the second collector to consume', 30_000);

    // 3. Redis is killed with SIGKILL (its AOF is fsynced on every write) and started again
    await at(100);
    await redis.kill();
    await waitUntil(() => /the store failed/.test(collector.stderr()), 'the collector to see Redis gone', 30_000);
    await at(120);
    await redis.start();
    await waitUntil(
      () => /the store answers again/.test(collector.stderr()),
      'the collector to see Redis back',
      60_000,
    );

    const done = await producer.exited;
    expect(done.code, producer.stderr()).to.equal(0);
    const line = /^stats (.*)$/m.exec(producer.stdout());
    expect(line, producer.stdout().slice(-500)).to.not.equal(null);
    const stats = JSON.parse(line![1]!);
    const produced = CONTEXTS * (CHANGES + 2);
    // the buffer held the whole outage: everything was confirmed, nothing dropped
    expect(stats).to.include({ flushed: true, enqueued: produced, published: produced, dropped: 0, queued: 0 });
    expect(stats.reconnects).to.be.at.least(1);

    await waitUntil(async () => (await queueDepth(queue)) === 0, 'the queue to drain', 120_000);
    const store = new RedisContextStore({ redis: redis.url, prefix });
    cleanup.defer(() => store.close());
    const missing: string[] = [];
    for (let n = 0; n < CONTEXTS; n++) {
      const got = await store.get(`${id}-${n}`);
      if (got === null) {
        missing.push(`${n}: absent`);
        continue;
      }
      if (got.status !== 'finished') missing.push(`${n}: status ${got.status}`);
      for (let k = 0; k < CHANGES; k++) if (got.context[`f${k}`] !== k) missing.push(`${n}: f${k}`);
    }
    expect(missing).to.deep.equal([]);
    expect(await queueDepth(`${queue}.dead`)).to.equal(0);
    expect(collector.child.exitCode).to.equal(null);
  });

  it('an outage longer than the buffer: received + dropped = produced exactly, the newest kept', async () => {
    const exchange = cleanup.exchange(uniqueName('fault-drop-x'));
    const consumer = await TestConsumer.start({ exchange });
    cleanup.defer(() => consumer.close());
    const proxy = await brokerProxy(cleanup);
    const handler = new Handler({
      url: proxiedAmqpUrl(proxy.port),
      exchange,
      bufferSize: 50,
      flushInterval: 1,
      logger: null,
      reconnect: { initialDelay: 20, maxDelay: 200 },
    });
    cleanup.defer(() => handler.close());
    const ctx = new Context({ name: 'fault.drop', handler });
    for (let i = 1; i < 40; i++) ctx.i = i; // seq 0..39, within the buffer
    // everything so far is confirmed before the outage begins: no confirm can be lost in it
    expect(await handler.flush(30_000)).to.equal(true);
    proxy.cut();
    for (let i = 40; i < 540; i++) ctx.i = i; // seq 40..539 into a buffer of 50
    await waitUntil(() => handler.stats().lastError !== null, 'the handler to see the broker gone');
    proxy.restore();
    expect(await handler.flush(30_000)).to.equal(true);
    await consumer.waitFor(90).catch((e) => {
      throw new Error(`${e.message}; stats ${JSON.stringify(handler.stats())}`);
    });
    const s = handler.stats();
    expect(s).to.include({ enqueued: 540, published: 90, dropped: 450, droppedUnconfirmed: 0, queued: 0, inFlight: 0 });
    expect(consumer.received.length + s.dropped).to.equal(540);
    const seqs = consumer.received.map((r) => r.json.seq);
    expect(seqs).to.deep.equal([
      ...Array.from({ length: 40 }, (_, i) => i),
      ...Array.from({ length: 50 }, (_, i) => 490 + i),
    ]);
  });

  describe('the hostile corpus', () => {
    /** A valid stream around the corpus: 4 contexts, born, changed, finished; `valid-<n>` marks each. */
    function validStream(id: string): string[] {
      const out: string[] = [];
      for (let n = 0; n < 4; n++) {
        const obj_id = `${id}-valid-${n}`;
        out.push(JSON.stringify({ obj_id, obj: { mark: `valid-${n}` }, status: 'born', seq: 0 }));
        out.push(JSON.stringify({ obj_id, obj: { step: 1 }, seq: 1 }));
        out.push(JSON.stringify({ obj_id, obj: { step: 2 }, status: 'finished', seq: 2, elapsed: 0.5 }));
      }
      return out;
    }

    /** The corpus and the valid stream interleaved, one body per element. */
    function mixed(id: string): Array<string | Buffer> {
      const valid = validStream(id);
      const corpus = hostileCorpus(id).map((h) => h.body);
      const out: Array<string | Buffer> = [];
      const n = Math.max(valid.length, corpus.length);
      for (let i = 0; i < n; i++) {
        if (i < corpus.length) out.push(corpus[i]!);
        if (i < valid.length) out.push(valid[i]!);
      }
      return out;
    }

    const MODES: string[][] = [
      ['-s'],
      ['-s', '-v'],
      ['-s', '-p'],
      ['-s', '-t', 'step'],
      ['-s', '-z'],
      ['-s', '-k', 'mark'],
      ['-sc'],
      ['-sc', '-v'],
      ['-sc', '-p'],
      ['-sc', '-z'],
      ['-sc', '-k', 'mark'],
      ['-sc', '--flush-incomplete'],
    ];

    for (const mode of MODES) {
      it(`lcmon ${mode.join(' ')} (stdin) reports what it cannot read, prints every valid object, exits 0`, async () => {
        const id = uniqueName('corpus');
        const input = Buffer.concat(mixed(id).map((b) => Buffer.concat([Buffer.from(b), Buffer.from('\n')])));
        const p = run(LCMON, mode, cleanup, { NO_COLOR: '1' }, input);
        const r = await p.exited;
        expect(r.code, p.stderr().slice(-2000)).to.equal(0);
        expect(p.stderr()).to.not.match(CRASH);
        expect(p.stderr()).to.match(/skipped \d+ malformed input/);
        for (let n = 0; n < 4; n++) expect(p.stdout(), `valid-${n}`).to.include(`valid-${n}`);
        // nothing of the corpus reaches the terminal raw
        expect(p.stdout()).to.not.match(/[\u0080-\u009f\u2028\u202e\u2066]/);
        expect(p.stderr()).to.not.match(/[\u0080-\u009f\u2028\u202e\u2066]/);
      });
    }

    it('lcmon live (-c and -v) reads on past the corpus and ends with Ctrl-C, exit 0', async () => {
      const exchange = cleanup.exchange(uniqueName('corpus-x'));
      const id = uniqueName('corpus-live');
      const readers = [['-c'], ['-v']].map((mode) =>
        run(LCMON, ['-u', amqpUrl(), '-e', exchange, ...mode], cleanup, { NO_COLOR: '1' }),
      );
      await waitUntil(
        () => readers.every((r) => /^lcmon: listening on /m.test(r.stderr())),
        'both readers to listen',
        30_000,
      );
      await publishConfirmed(exchange, mixed(id));
      for (const r of readers)
        await waitUntil(
          () => [0, 1, 2, 3].every((n) => r.stdout().includes(`valid-${n}`)),
          'every valid object printed',
          30_000,
        );
      for (const r of readers) {
        r.child.kill('SIGINT');
        const e = await r.exited;
        expect(e.code, r.stderr().slice(-2000)).to.equal(0);
        expect(r.stderr()).to.not.match(CRASH);
      }
    });

    it('the collector dead-letters or stores each item with a reason, keeps the valid objects whole, stops cleanly', async () => {
      const exchange = cleanup.exchange(uniqueName('corpus-col-x'));
      const queue = cleanup.queue(uniqueName('corpus-col-q'));
      cleanup.queue(`${queue}.dead`);
      const prefix = `${uniqueName('corpus-col')}:`;
      cleanup.redisKeys(`${prefix}*`);
      const id = uniqueName('corpus-col');
      const collector = run(
        COLLECTOR,
        ['-u', amqpUrl(), '--redis', redisUrl(), '-e', exchange, '-q', queue, '--prefix', prefix],
        cleanup,
      );
      await waitUntil(() => /consuming/.test(collector.stderr()), 'the collector to consume', 30_000);
      const corpus = hostileCorpus(id);
      await publishConfirmed(exchange, mixed(id));
      const store = new RedisContextStore({ redis: redisUrl(), prefix });
      cleanup.defer(() => store.close());
      for (let n = 0; n < 4; n++)
        await waitUntil(async () => (await store.get(`${id}-valid-${n}`))?.status === 'finished', `valid-${n} stored`);
      await waitUntil(async () => (await queueDepth(queue)) === 0, 'the queue to drain', 60_000);
      // SIGTERM: it finishes what it holds and exits 0; what it had not settled would be back in the queue
      expect(collector.stderr()).to.not.match(CRASH);
      collector.child.kill('SIGTERM');
      expect((await collector.exited).code, collector.stderr().slice(-2000)).to.equal(0);
      // (a collector's last heartbeat may wait in its own queue: the next collector passes over it)
      const left = await withChannel(async (ch) => {
        const out: string[] = [];
        for (;;) {
          const m = await ch.get(queue, { noAck: true });
          if (m === false) return out;
          if (!m.fields.routingKey.startsWith('contexture.')) out.push(m.content.toString().slice(0, 100));
        }
      });
      expect(left, collector.stderr().slice(-3000)).to.deep.equal([]);
      for (let n = 0; n < 4; n++)
        expect((await store.get(`${id}-valid-${n}`))!.context).to.deep.equal({ mark: `valid-${n}`, step: 2 });
      // every dead letter names its reason; each corpus item is dead-lettered or stored under its id
      const dead = await withChannel(async (ch) => {
        const out: Array<{ body: Buffer; reason: unknown }> = [];
        for (;;) {
          const m = await ch.get(`${queue}.dead`, { noAck: true });
          if (m === false) break;
          out.push({ body: m.content, reason: m.properties.headers?.['x-contexture-error'] });
        }
        return out;
      });
      for (const d of dead) expect(String(d.reason ?? ''), d.body.toString().slice(0, 80)).to.match(/\w/);
      const deadBodies = new Set(dead.map((d) => d.body.toString('base64')));
      const unaccounted: string[] = [];
      for (const item of corpus) {
        if (deadBodies.has(Buffer.from(item.body).toString('base64'))) continue;
        if (item.id !== undefined && (await store.get(item.id)) !== null) continue;
        unaccounted.push(item.name);
      }
      expect(unaccounted, collector.stderr().slice(-3000)).to.deep.equal([]);
      const proto = await store.get(`${id}-proto`);
      if (proto !== null) expect(Object.hasOwn(proto.context, '__proto__')).to.equal(true);
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    });
  });
});
