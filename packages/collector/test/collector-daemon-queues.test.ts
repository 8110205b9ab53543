import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import type { MessageMeta, WireMessage } from '@contexture/context/protocol';
import { amqpUrl, Cleanup, FaultProxy, redisUrl, uniqueName, waitUntil } from '@contexture/test-support';
import { RedisContextStore } from '@contexture/collector';
import { Collector } from '@contexture/collector/daemon';
import { parseInequivalent } from '../src/daemon/queue-declare.js';
import { publishRaw } from './support/bus.js';
import { COLLECTOR_BIN, startBin } from './bin-support.js';

/** Runs `fn` on a channel of its own (a refused declare closes the channel). */
async function onChannel<T>(fn: (ch: amqp.Channel) => Promise<T>): Promise<T> {
  const conn = await amqp.connect(amqpUrl());
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    return await fn(ch);
  } finally {
    await conn.close().catch(() => {});
  }
}

/** The broker's refusal of a declare with `args`, or null when it is taken as equivalent. */
function declareRefusal(queue: string, args?: Record<string, unknown>): Promise<string | null> {
  return onChannel(async (ch) => {
    try {
      await ch.assertQueue(queue, { durable: true, arguments: args });
      return null;
    } catch (err) {
      return String((err as Error).message);
    }
  });
}

const msg = (id: string, seq = 0): WireMessage => ({ obj_id: id, obj: { id, seq }, status: 'transient', seq });

/** `host:port` of a proxy's URL, as the collector names it. */
function urlAt(port: number): string {
  const u = new URL(amqpUrl());
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString();
}

describe('collector daemon: queue types, delivery limit and URL lists', function () {
  this.timeout(60_000);
  let cleanup: Cleanup;
  let exchange: string;
  let queue: string;
  let prefix: string;
  let store: RedisContextStore;

  beforeEach(() => {
    cleanup = new Cleanup();
    ({ exchange, queue, prefix } = cleanup.collectorNames('colq'));
    store = new RedisContextStore({ redis: redisUrl(), prefix });
    cleanup.defer(() => store.close());
  });
  afterEach(() => cleanup.run());

  it('reads the broker refusal: the argument and its current value', () => {
    const q = "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q' in vhost '/'";
    expect(parseInequivalent(`${q}: received the value 'quorum' of type 'longstr' but current is none`)).to.deep.equal({
      arg: 'x-queue-type',
      current: undefined,
    });
    expect(parseInequivalent(`${q}: received none but current is the value 'quorum' of type 'longstr'`)).to.deep.equal({
      arg: 'x-queue-type',
      current: 'quorum',
    });
    expect(
      parseInequivalent(
        "inequivalent arg 'x-delivery-limit' for queue 'q' in vhost '/': received '5' but current is '2'",
      ),
    ).to.deep.equal({ arg: 'x-delivery-limit', current: 2 });
    expect(parseInequivalent('NOT_FOUND - no queue')).to.equal(null);
  });

  it('declares a quorum queue by default, with a delivery limit of 20 that dead-letters to <queue>.dead', async () => {
    const collector = new Collector({ store, url: amqpUrl(), exchange, queue, logger: null });
    cleanup.defer(() => collector.close());
    await collector.start();
    expect(collector.queueType).to.equal('quorum');
    expect(collector.options.queueType).to.equal('quorum');
    const args = {
      'x-queue-type': 'quorum',
      'x-delivery-limit': 20,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': `${queue}.dead`,
    };
    expect(await declareRefusal(queue, args)).to.equal(null);
    expect(await declareRefusal(`${queue}.dead`, { 'x-queue-type': 'quorum' })).to.equal(null);
    expect(await declareRefusal(queue)).to.match(/PRECONDITION_FAILED/);
  });

  it('an existing classic queue with default settings: no crash, one warning, used as a classic queue (CLI and class)', async () => {
    await onChannel(async (ch) => {
      await ch.assertExchange(exchange, 'topic', { durable: true });
      await ch.assertQueue(queue, { durable: true });
      await ch.assertQueue(`${queue}.dead`, { durable: true });
    });
    const warnings: string[] = [];
    const collector = new Collector({
      store,
      url: amqpUrl(),
      exchange,
      queue,
      logger: { info: () => {}, warn: (m: string) => warnings.push(m) },
    });
    cleanup.defer(() => collector.close());
    await collector.start();
    expect(collector.queueType).to.equal('classic');
    const id = uniqueName('classic');
    await publishRaw(exchange, [{ body: JSON.stringify(msg(id)) }]);
    await waitUntil(async () => (await store.get(id)) !== null, 'the message applied');
    // A reconnect declares again: still one warning per queue.
    await collector.close();
    const again = new Collector({
      store,
      url: amqpUrl(),
      exchange,
      queue,
      logger: { info: () => {}, warn: (m: string) => warnings.push(m) },
    });
    cleanup.defer(() => again.close());
    await again.start();
    await again.close();
    expect(
      warnings.filter((w) => w.includes(`queue "${queue}" exists with type classic`)),
      warnings.join('\n'),
    ).to.have.length(2);
    expect(warnings[0]).to.match(/used as it is; it has no delivery limit/);
    // The program: no stack trace, the queue type said, SIGTERM exits 0.
    const bin = startBin(['--url', amqpUrl(), '--redis', redisUrl(), '--prefix', prefix, '-e', exchange, '-q', queue]);
    await waitUntil(() => /consuming \S+ \(classic queue\)/.test(bin.stderr()), 'the consuming line');
    bin.child.kill('SIGTERM');
    expect(await bin.exited, bin.stderr()).to.equal(0);
    expect(bin.stderr()).to.match(/exists with type classic, not as this collector declares it \(quorum\)/);
    expect(bin.stderr()).to.not.match(/\n\s+at /);
  });

  it('--help lists the exit statuses', () => {
    const help = spawnSync(process.execPath, [COLLECTOR_BIN, '--help'], { encoding: 'utf8' });
    expect(help.status).to.equal(0);
    for (const status of ['0 stopped', '2 bad arguments', '69 ', '70 internal error', '77 ', '78 ', '130 '])
      expect(help.stdout, status).to.include(status);
  });

  it('flags given by their variables take the value: false, 0, no, off and empty leave them off; the keys variable is a list', async () => {
    const base = ['--url', amqpUrl(), '--redis', redisUrl(), '--prefix', prefix, '-e', exchange, '-q', queue];
    const off = startBin(base, {
      CONTEXTURE_COLLECTOR_CLASSIC: 'false',
      CONTEXTURE_COLLECTOR_QUORUM: '',
      CONTEXTURE_COLLECTOR_NO_REGISTRY: 'off',
      CONTEXTURE_AUTO_DELETE: '0',
      CONTEXTURE_COLLECTOR_RKEYS: 'a.#, b.*',
    });
    cleanup.defer(async () => {
      off.child.kill('SIGKILL');
      await off.ended;
    });
    await waitUntil(() => /consuming \S+ \(quorum queue\)/.test(off.stderr()), 'the consuming line', 20_000);
    const ids = { a: uniqueName('env-a'), b: uniqueName('env-b'), c: uniqueName('env-c') };
    await publishRaw(exchange, [
      { body: JSON.stringify(msg(ids.c)), rkey: 'c.x' },
      { body: JSON.stringify(msg(ids.a)), rkey: 'a.x.y' },
      { body: JSON.stringify(msg(ids.b)), rkey: 'b.x' },
    ]);
    await waitUntil(async () => (await store.get(ids.b)) !== null, 'the b.* message applied');
    expect(await store.get(ids.a)).to.not.equal(null);
    expect(await store.get(ids.c)).to.equal(null, 'c.x is bound by neither key');
    // The registry is on: the collector announced itself in it.
    const redis = new Redis(redisUrl());
    cleanup.defer(() => redis.quit());
    await waitUntil(async () => (await redis.keys(`${prefix}registry:*`)).length > 0, 'registry keys', 20_000);
    // Auto-delete is off: the context's state has no expiry (its deltas have deltaTtl's).
    expect(await redis.pttl(`${prefix}ctx:{${ids.a}}`)).to.equal(-1);
    off.child.kill('SIGTERM');
    expect(await off.exited, off.stderr()).to.equal(0);
    // Another value is refused, naming the variable.
    const bad = startBin(base, { CONTEXTURE_COLLECTOR_CLASSIC: 'maybe' });
    expect(await bad.exited).to.equal(2);
    expect(bad.stderr()).to.include(
      'CONTEXTURE_COLLECTOR_CLASSIC must be 1, true, yes, on, 0, false, no or off, got "maybe"',
    );
    const both = startBin(base, { CONTEXTURE_COLLECTOR_CLASSIC: 'yes', CONTEXTURE_COLLECTOR_QUORUM: 'on' });
    expect(await both.exited).to.equal(2);
    expect(both.stderr()).to.include('option --classic cannot be used with option --quorum');
  });

  it('an existing quorum queue with another delivery limit, and --classic against a quorum queue: adopted, said once', async () => {
    await onChannel(async (ch) => {
      await ch.assertQueue(queue, {
        durable: true,
        arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 5 },
      });
    });
    const warnings: string[] = [];
    const collector = new Collector({
      store,
      url: amqpUrl(),
      exchange,
      queue,
      logger: { info: () => {}, warn: (m: string) => warnings.push(m) },
    });
    cleanup.defer(() => collector.close());
    await collector.start();
    expect(collector.queueType).to.equal('quorum');
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.match(/exists with .*x-delivery-limit 5/);
    const id = uniqueName('limit5');
    await publishRaw(exchange, [{ body: JSON.stringify(msg(id)) }]);
    await waitUntil(async () => (await store.get(id)) !== null, 'the message applied');
    await collector.close();
    // --classic (queueType 'classic') on the quorum queue and its quorum dead-letter queue.
    const classic = startBin([
      '--url',
      amqpUrl(),
      '--redis',
      redisUrl(),
      '--prefix',
      prefix,
      '-e',
      exchange,
      '-q',
      queue,
      '--classic',
    ]);
    await waitUntil(() => /consuming \S+ \(quorum queue\)/.test(classic.stderr()), 'the consuming line');
    classic.child.kill('SIGTERM');
    expect(await classic.exited, classic.stderr()).to.equal(0);
    expect(classic.stderr()).to.match(/exists with type quorum, .*not as this collector declares it \(classic\)/);
    const both = startBin(['--classic', '--quorum']);
    expect(await both.exited).to.equal(2);
    expect(both.stderr()).to.match(/--classic.*cannot be used with.*--quorum|--quorum.*cannot be used with.*--classic/);
  });

  it('a message whose collector dies on it again and again is dead-lettered at the delivery limit', async () => {
    const poison = uniqueName('poison');
    const fine = uniqueName('fine');
    // A store that never answers for the poison message: its collector is "killed" holding it.
    const seen: string[] = [];
    const hanging = {
      apply: (m: WireMessage, _meta?: MessageMeta) => {
        seen.push(m.obj_id);
        return m.obj_id === poison ? new Promise<void>(() => {}) : store.apply(m);
      },
    };
    const limit = 2;
    for (let round = 1; round <= limit + 1; round++) {
      const c = new Collector({ store: hanging, url: amqpUrl(), exchange, queue, deliveryLimit: limit, logger: null });
      await c.start();
      if (round === 1) await publishRaw(exchange, [{ body: JSON.stringify(msg(poison)) }]);
      await waitUntil(() => seen.filter((id) => id === poison).length === round, `delivery ${round} of the poison`);
      c.destroy();
    }
    // Over the limit: the broker moved it to the dead-letter queue; the next collector gets the rest.
    const next = new Collector({ store, url: amqpUrl(), exchange, queue, deliveryLimit: limit, logger: null });
    cleanup.defer(() => next.close());
    await next.start();
    await publishRaw(exchange, [{ body: JSON.stringify(msg(fine)) }]);
    await waitUntil(async () => (await store.get(fine)) !== null, 'the next message applied');
    expect(await store.get(poison)).to.equal(null);
    const dead = await onChannel(async (ch) => {
      let got: amqp.GetMessage | false = false;
      await waitUntil(async () => {
        got = await ch.get(`${queue}.dead`, { noAck: true });
        return got !== false;
      }, 'the poison in the dead-letter queue');
      return got as unknown as amqp.GetMessage;
    });
    expect(JSON.parse(dead.content.toString()).obj_id).to.equal(poison);
    const death = (dead.properties.headers?.['x-death'] as Array<{ reason: string }> | undefined)?.[0];
    expect(death?.reason).to.equal('delivery_limit');
  });

  it('a message that breaks the connection as it arrives (headers too deep for amqplib) is dead-lettered alone: the messages around it are applied', async function () {
    this.timeout(120_000);
    const before = Array.from({ length: 30 }, (_, i) => msg(`${uniqueName('before')}-${i}`));
    const after = Array.from({ length: 30 }, (_, i) => msg(`${uniqueName('after')}-${i}`));
    const poison = uniqueName('deep');
    const options = {
      store,
      url: amqpUrl(),
      exchange,
      queue,
      deliveryLimit: 3,
      prefetch: 100,
      retry: { initialDelay: 20, maxDelay: 100 },
      logger: null,
    };
    // The queue declared, then everything published before a collector consumes: the poison comes
    // in one window with the messages around it.
    const declaring = new Collector(options);
    await declaring.start();
    await declaring.close();
    await publishRaw(
      exchange,
      before.map((m) => ({ body: JSON.stringify(m) })),
    );
    const publisher = spawnSync(
      process.execPath,
      ['--stack-size=4000', fileURLToPath(new URL('../../test/fixtures/deep-headers-publisher.mjs', import.meta.url))],
      {
        env: {
          ...process.env,
          URL: amqpUrl(),
          EXCHANGE: exchange,
          RKEY: 'deep.headers',
          BODY: JSON.stringify(msg(poison)),
          DEPTH: '6000',
        },
        encoding: 'utf8',
      },
    );
    expect(publisher.stdout, publisher.stderr).to.equal('published\n');
    await publishRaw(
      exchange,
      after.map((m) => ({ body: JSON.stringify(m) })),
    );
    const collector = new Collector(options);
    cleanup.defer(() => collector.close());
    await collector.start();
    // Every message but the poison applied, the poison in the dead-letter queue at the delivery limit.
    await waitUntil(
      async () => {
        for (const m of [...before, ...after]) if ((await store.get(m.obj_id)) === null) return false;
        return true;
      },
      'every other message applied',
      60_000,
      200,
    );
    // The poison alone in the dead-letter queue (counted, not read: amqplib here could not decode it either).
    await waitUntil(
      async () => (await onChannel((ch) => ch.checkQueue(`${queue}.dead`))).messageCount === 1,
      'the poison in the dead-letter queue',
    );
    expect((await onChannel((ch) => ch.checkQueue(queue))).messageCount).to.equal(0);
    expect(collector.stats().reconnects).to.be.at.least(3);
    expect(await store.get(poison)).to.equal(null);
  });

  it('a URL list: a node lost is followed by the next, said with both host:port; the CLI checks each entry', async () => {
    const u = new URL(amqpUrl());
    const a = new FaultProxy(u.hostname, Number(u.port || 5672));
    const b = new FaultProxy(u.hostname, Number(u.port || 5672));
    await Promise.all([a.listen(), b.listen()]);
    cleanup.defer(() => a.close());
    cleanup.defer(() => b.close());
    const logs: string[] = [];
    const log = (m: string) => logs.push(m);
    const collector = new Collector({
      store,
      url: [urlAt(a.port), urlAt(b.port)],
      exchange,
      queue,
      logger: { info: log, warn: log },
      retry: { initialDelay: 20, maxDelay: 200 },
    });
    cleanup.defer(() => collector.close());
    await collector.start();
    expect(collector.where).to.equal(`127.0.0.1:${a.port}`);
    a.cut();
    await waitUntil(() => collector.status === 'consuming' && collector.where === `127.0.0.1:${b.port}`, 'node b');
    const id = uniqueName('after');
    await publishRaw(exchange, [{ body: JSON.stringify(msg(id)) }]);
    await waitUntil(async () => (await store.get(id)) !== null, 'the message applied through b');
    expect(logs.find((l) => l.startsWith('lost'))).to.contain(`lost 127.0.0.1:${a.port} (`);
    expect(logs.find((l) => l.startsWith('lost'))).to.contain(`next: 127.0.0.1:${b.port}, one of 2 nodes`);
    expect(logs).to.include(`consuming from 127.0.0.1:${b.port} (took over from 127.0.0.1:${a.port}) again`);
    expect(JSON.stringify(collector.options)).to.not.contain(`:${u.password}@`);
    expect(collector.options.url).to.contain(':***@');
    // The CLI: a bad entry is named by position (exit 2); every node down names each (exit 69).
    const bad = startBin(['--url', `${amqpUrl()},guest:s3cret@127.0.0.1`, '--prefix', prefix]);
    expect(await bad.exited).to.equal(2);
    expect(bad.stderr()).to.match(/--url entry 2 of 2 is not a URL/);
    const down = startBin([
      '--url',
      'amqp://user:s3cret@127.0.0.1:1/%2F,amqp://user:s3cret@127.0.0.1:2/%2F',
      '--redis',
      redisUrl(),
      '--prefix',
      prefix,
      '-q',
      queue,
    ]);
    expect(await down.exited, down.stderr()).to.equal(69);
    expect(down.stderr()).to.match(/cannot reach the broker at 127\.0\.0\.1:1, 127\.0\.0\.1:2: 127\.0\.0\.1:1: /);
    expect(bad.stderr() + down.stderr()).to.not.contain('s3cret');
  });
});
