import { expect } from 'chai';
import { inspect } from 'node:util';
import { Context, ContextError, Handler, type HandlerStats } from '@contexture/context';
import {
  amqpUrl,
  Cleanup,
  TestConsumer,
  uniqueName,
  waitUntil,
  brokerProxy,
  proxiedAmqpUrl,
} from '@contexture/test-support';

const balanced = (s: HandlerStats) => s.enqueued === s.published + s.dropped + s.queued + s.inFlight;

describe('Handler: buffer, outages and reconnects (real RabbitMQ behind a loopback proxy)', () => {
  let cleanup: Cleanup;
  let exchange: string;
  let consumer: TestConsumer;

  beforeEach(async () => {
    cleanup = new Cleanup();
    exchange = cleanup.exchange(uniqueName('hdl-x'));
    consumer = await TestConsumer.start({ exchange });
    cleanup.defer(() => consumer.close());
  });
  afterEach(() => cleanup.run());

  const quick = { initialDelay: 20, maxDelay: 200 };

  it('drop-oldest: broker unreachable, buffer of 10, 50 changes → dropped 40; the newest 10 arrive in order after reconnect', async () => {
    const proxy = await brokerProxy(cleanup);
    proxy.cut();
    const drops: number[] = [];
    const handler = new Handler({
      url: proxiedAmqpUrl(proxy.port),
      exchange,
      bufferSize: 10,
      flushInterval: 1,
      logger: null,
      reconnect: quick,
    });
    cleanup.defer(() => handler.close());
    handler.on('drop', (n: number) => drops.push(n));
    const ctx = new Context({ name: 'overflow', handler }); // seq 0
    for (let i = 1; i < 50; i++) ctx.i = i; // seq 1..49
    await waitUntil(() => handler.stats().lastError !== null, 'a failed connection attempt');
    expect(handler.stats()).to.include({ enqueued: 50, dropped: 40, queued: 10, published: 0 });
    expect(drops.reduce((a, b) => a + b, 0)).to.equal(40);
    proxy.restore();
    expect(await handler.flush(10_000)).to.equal(true);
    await consumer.waitFor(10);
    expect(consumer.received.map((r) => r.json.seq)).to.deep.equal([40, 41, 42, 43, 44, 45, 46, 47, 48, 49]);
    expect(consumer.received.map((r) => r.json.obj.i)).to.deep.equal([40, 41, 42, 43, 44, 45, 46, 47, 48, 49]);
    expect(handler.stats()).to.include({ enqueued: 50, dropped: 40, published: 10, queued: 0, inFlight: 0 });
  });

  it('drop-newest keeps the oldest messages instead', async () => {
    const proxy = await brokerProxy(cleanup);
    proxy.cut();
    const handler = new Handler({
      url: proxiedAmqpUrl(proxy.port),
      exchange,
      bufferSize: 10,
      overflow: 'drop-newest',
      flushInterval: 1,
      logger: null,
      reconnect: quick,
    });
    cleanup.defer(() => handler.close());
    const ctx = new Context({ name: 'overflow.newest', handler });
    for (let i = 1; i < 50; i++) ctx.i = i;
    proxy.restore();
    expect(await handler.flush(10_000)).to.equal(true);
    await consumer.waitFor(10);
    expect(consumer.received.map((r) => r.json.seq)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(handler.stats()).to.include({ dropped: 40, published: 10 });
  });

  it('block: nothing is dropped and ready() resolves once the buffer has room again', async () => {
    const proxy = await brokerProxy(cleanup);
    proxy.cut();
    const handler = new Handler({
      url: proxiedAmqpUrl(proxy.port),
      exchange,
      bufferSize: 5,
      overflow: 'block',
      flushInterval: 1,
      logger: null,
      reconnect: quick,
    });
    cleanup.defer(() => handler.close());
    const ctx = new Context({ name: 'overflow.block', handler });
    for (let i = 1; i < 20; i++) ctx.i = i;
    let ready = false;
    const readyPromise = handler.ready().then(() => (ready = true));
    await waitUntil(() => handler.stats().lastError !== null, 'a failed connection attempt');
    expect(ready).to.equal(false);
    expect(handler.stats()).to.include({ queued: 20, dropped: 0 });
    proxy.restore();
    await readyPromise;
    expect(await handler.flush(10_000)).to.equal(true);
    await consumer.waitFor(20);
    expect(consumer.received.map((r) => r.json.seq)).to.deep.equal(Array.from({ length: 20 }, (_, i) => i));
  });

  it('connection cut while publishing steadily: no exception, reconnects by itself, published + dropped = produced, nothing lost', async function () {
    this.timeout(60_000);
    const proxy = await brokerProxy(cleanup);
    const warnings: string[] = [];
    const handler = new Handler({
      url: proxiedAmqpUrl(proxy.port),
      exchange,
      bufferSize: 20_000,
      flushInterval: 1,
      reconnect: quick,
      logger: { warn: (m: string) => warnings.push(m) },
    });
    cleanup.defer(() => handler.close());
    let produced = 0;
    let thrown: unknown = null;
    const contexts: Context[] = [];
    const tick = () => {
      try {
        for (let i = 0; i < 20; i++) {
          if (produced % 50 === 0) contexts.push(new Context({ name: 'steady', handler }));
          else contexts.at(-1)!.n = produced;
          produced++;
        }
      } catch (err) {
        thrown = err;
      }
    };
    const timer = setInterval(tick, 2);
    cleanup.defer(() => clearInterval(timer));
    await waitUntil(() => handler.stats().published > 500, '500 messages published');
    // Two outages, the second while the first reconnect's backlog is still in flight.
    proxy.cut();
    await waitUntil(() => handler.stats().status === 'disconnected', 'the handler to notice the cut');
    await new Promise((r) => setTimeout(r, 300));
    proxy.restore();
    await waitUntil(() => handler.stats().reconnects >= 1, 'a reconnect');
    proxy.cut();
    await new Promise((r) => setTimeout(r, 200));
    proxy.restore();
    await waitUntil(() => handler.stats().reconnects >= 2, 'a second reconnect');
    await waitUntil(() => handler.stats().published > produced * 0.5 + 500, 'publishing to resume');
    clearInterval(timer);
    expect(await handler.flush(20_000)).to.equal(true);
    const s = handler.stats();
    expect(thrown).to.equal(null);
    expect(s.enqueued).to.equal(produced);
    expect(s.dropped).to.equal(0);
    expect(s.published).to.equal(produced);
    expect(s.reconnects).to.be.at.least(2);
    expect(proxy.accepted).to.be.at.least(3);
    // At least once: duplicates are allowed, so wait for the distinct (obj_id, seq) pairs.
    const seen = new Set<string>();
    await waitUntil(
      () => {
        for (const r of consumer.received) seen.add(`${r.json.obj_id}:${r.json.seq}`);
        return seen.size >= produced;
      },
      `${produced} distinct messages`,
      20_000,
    ).catch(() => {});
    const missing: string[] = [];
    for (const c of contexts) {
      const id = Context.idOf(c);
      const last = contexts.indexOf(c) === contexts.length - 1 ? (produced - 1) % 50 : 49;
      for (let seq = 0; seq <= last; seq++) if (!seen.has(`${id}:${seq}`)) missing.push(`${id}:${seq}`);
    }
    expect(missing).to.deep.equal([]);
    expect(seen.size).to.equal(produced);
    // Warned once per outage, with the drop count at its end; the URL never shows a password.
    expect(warnings.filter((w) => w.includes('cannot publish'))).to.have.length(2);
    expect(warnings.filter((w) => /again after [\d.]+ s; 0 message\(s\) dropped/.test(w))).to.have.length(2);
    for (const w of warnings) expect(w).to.not.contain(':guest@');
  });

  it('keeps the counters balanced at every moment and counts messages after close as dropped', async () => {
    const handler = new Handler({ url: amqpUrl(), exchange, flushInterval: 1, logger: null });
    const ctx = new Context({ name: 'balanced', handler });
    for (let i = 0; i < 1000; i++) {
      ctx.i = i;
      if (i % 100 === 0) expect(balanced(handler.stats())).to.equal(true);
    }
    const p1 = handler.close();
    const p2 = handler.close();
    expect(p1).to.equal(p2);
    await p1;
    ctx.after = 1;
    const s = handler.stats();
    expect(s).to.include({ status: 'closed', enqueued: 1002, published: 1001, dropped: 1, queued: 0, inFlight: 0 });
    expect(await handler.flush()).to.equal(true); // nothing left pending
    await consumer.waitFor(1001);
  });

  it('a throwing event listener does not break publishing', async () => {
    const handler = new Handler({ url: amqpUrl(), exchange, flushInterval: 1, logger: null });
    cleanup.defer(() => handler.close());
    handler.on('connect', () => {
      throw new Error('listener bug');
    });
    new Context({ name: 'listener', handler, transient: true });
    expect(await handler.flush(10_000)).to.equal(true);
    await consumer.waitFor(1);
    expect(handler.stats().lastError).to.contain('listener bug');
  });

  it('the messages of one send leave the socket in a few writes, not one system call each, and all arrive in order', async () => {
    const handler = new Handler({ url: amqpUrl(), exchange, flushInterval: 20, logger: null });
    cleanup.defer(() => handler.close());
    new Context({ name: 'connected', handler, transient: true });
    expect(await handler.flush(10_000)).to.equal(true);
    // Counts the socket writes to the broker's port of every socket, in this process, while the
    // 300 messages go out (written from the muxer's loop, in one pump).
    const { Socket } = await import('node:net');
    const proto = Socket.prototype as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>;
    const original = { _write: proto._write, _writev: proto._writev };
    let writes = 0;
    const port = Number(new URL(amqpUrl()).port || 5672);
    for (const k of ['_write', '_writev'] as const) {
      proto[k] = function (this: InstanceType<typeof Socket>, ...args: unknown[]) {
        if (this.remotePort === port) writes++;
        return original[k].apply(this, args);
      };
    }
    try {
      const ctx = new Context({ name: 'coalesced', handler });
      for (let i = 1; i < 300; i++) ctx.i = i;
      expect(await handler.flush(10_000)).to.equal(true);
    } finally {
      Object.assign(proto, original);
    }
    await consumer.waitFor(301);
    const coalesced = consumer.received.filter((r) => r.routingKey === 'coalesced');
    expect(coalesced.map((r) => r.json.seq)).to.deep.equal(Array.from({ length: 300 }, (_, i) => i));
    // One write per message (300) without the coalescing; a handful with it (each write holds up to
    // the socket's 16 KB high-water mark of frames).
    expect(writes).to.be.above(0).and.below(30);
  });

  it('batch mode packs messages of one route into ndjson messages that decode to the same bodies', async () => {
    const handler = new Handler({
      url: amqpUrl(),
      exchange,
      batch: true,
      batchSize: 50,
      flushInterval: 20,
      logger: null,
    });
    cleanup.defer(() => handler.close());
    const a = new Context({ name: 'batch.a', handler });
    const b = new Context({ name: 'batch.b', handler });
    for (let i = 0; i < 200; i++) (i % 2 ? a : b).i = i;
    a.finish();
    b.finish();
    expect(await handler.flush(10_000)).to.equal(true);
    const { decodeBody, isMalformed, isNote } = await import('@contexture/context/protocol');
    const msgs: Array<{ rkey: string; obj_id: string; seq: number }> = [];
    await waitUntil(() => consumer.received.length > 0 && handler.stats().published === 204, 'the batches');
    await waitUntil(async () => {
      msgs.length = 0;
      for (const r of consumer.received) {
        for (const m of decodeBody(r.body, r.properties.contentType)) {
          if (isMalformed(m)) throw new Error(m.kind);
          if (isNote(m)) throw new Error('a message without obj_id');
          msgs.push({ rkey: r.routingKey, obj_id: m.obj_id, seq: m.seq! });
        }
      }
      return msgs.length === 204;
    }, 'all 204 messages');
    expect(consumer.received.length).to.be.below(204 / 2);
    expect(consumer.received.some((r) => r.properties.contentType === 'application/x-ndjson')).to.equal(true);
    for (const r of consumer.received) {
      const ids = new Set(decodeBody(r.body, r.properties.contentType).map((m) => (m as { obj_id: string }).obj_id));
      expect(ids.size).to.equal(1); // one route per AMQP message
    }
    const seqsOf = (ctx: Context) => msgs.filter((m) => m.obj_id === Context.idOf(ctx)).map((m) => m.seq);
    expect(seqsOf(a)).to.deep.equal(Array.from({ length: 102 }, (_, i) => i));
    expect(seqsOf(b)).to.deep.equal(Array.from({ length: 102 }, (_, i) => i));
  });

  it('a context whose routing key or headers AMQP cannot carry is refused at once; the others keep publishing', async () => {
    const handler = new Handler({ url: amqpUrl(), exchange, flushInterval: 1, logger: null });
    cleanup.defer(() => handler.close());
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return `${(err as { name?: string; code?: string }).name} ${(err as { code?: string }).code}`;
      }
      return 'no error';
    };
    expect(code(() => new Context({ name: `web.${'x'.repeat(300)}`, handler }))).to.equal(
      'ContextError LC_CONTEXT_INVALID_OPTION',
    );
    expect(code(() => new Context({ name: 'web.h', handler, headers: { f: () => 1 } }))).to.equal(
      'ContextError LC_CONTEXT_INVALID_OPTION',
    );
    expect(code(() => new Context({ name: 'web.h', handler, headers: { n: 10n } }))).to.equal(
      'ContextError LC_CONTEXT_INVALID_OPTION',
    );
    expect(code(() => new Context({ name: 'web.h', handler, headers: { ['k'.repeat(300)]: 1 } }))).to.equal(
      'ContextError LC_CONTEXT_INVALID_OPTION',
    );
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(code(() => new Context({ name: 'web.h', handler, headers: { cyclic } }))).to.equal(
      'ContextError LC_CONTEXT_INVALID_OPTION',
    );
    for (let i = 0; i < 20; i++) new Context({ name: `web.ok`, handler, context: { i } });
    expect(await handler.flush(10_000)).to.equal(true);
    expect(handler.stats()).to.include({ enqueued: 20, published: 20, dropped: 0, reconnects: 0 });
    await consumer.waitFor(20);
  });

  it('status is closing from close() until it is done, then closed; what was queued is still published', async () => {
    const handler = new Handler({ url: amqpUrl(), exchange, flushInterval: 1, logger: null });
    new Context({ name: 'web.close', handler });
    expect(await handler.flush(10_000)).to.equal(true);
    const ctx = new Context({ name: 'web.close', handler });
    ctx.n = 1;
    const closed = handler.close();
    expect(handler.status).to.equal('closing');
    expect(handler.stats().status).to.equal('closing');
    await closed;
    expect(handler.status).to.equal('closed');
    expect(handler.stats()).to.include({ status: 'closed', enqueued: 3, published: 3, dropped: 0 });
    await consumer.waitFor(3);
  });

  it('JSON.stringify(handler) gives its id, options and stats, the password masked, before and after it connects', async () => {
    const handler = new Handler({ url: amqpUrl(), exchange, flushInterval: 1, logger: null });
    cleanup.defer(() => handler.close());
    const password = new URL(amqpUrl()).password;
    const shown = () => {
      const text = JSON.stringify(handler);
      expect(text).to.not.contain(`:${password}@`);
      return JSON.parse(text);
    };
    expect(shown()).to.deep.include({ id: handler.id, stats: handler.stats() });
    expect(shown().options).to.include({ url: handler.options.url, exchange, logger: false });
    new Context({ name: 'web.json', handler });
    expect(await handler.flush(10_000)).to.equal(true);
    expect(handler.status).to.equal('connected');
    const after = shown();
    expect(after.stats).to.include({ status: 'connected', published: 1 });
    expect(after.options.url).to.equal(handler.options.url);
  });

  it("headers of the handler's own that AMQP cannot carry are refused when it is made: LC_HANDLER_INVALID_OPTION", () => {
    for (const headers of [{ n: 10n }, { ['k'.repeat(300)]: 1 }, { f: () => 1 }, ...unencodable])
      expect(() => new Handler({ url: amqpUrl(), exchange, logger: null, headers }), Object.keys(headers)[0])
        .to.throw(ContextError, /headers must be JSON the broker can carry/)
        .with.property('code', 'LC_HANDLER_INVALID_OPTION');
  });

  it('headers the AMQP client cannot send as their JSON (an integer below -2^63, a "!" key, a Date, NaN) are refused, naming the header; the edges it can are sent', async () => {
    const handler = new Handler({ url: amqpUrl(), exchange, flushInterval: 1, logger: null });
    cleanup.defer(() => handler.close());
    for (const headers of unencodable) {
      const name = Object.keys(headers)[0]!;
      expect(() => new Context({ name: 'web.h', handler, headers }), name)
        .to.throw(ContextError, new RegExp(`header "${name}"`))
        .with.property('code', 'LC_CONTEXT_INVALID_OPTION');
    }
    expect(handler.stats().enqueued).to.equal(0);
    // The largest magnitudes it sends: -2^63 as a 64-bit integer, beyond 2^63 a double.
    new Context({ name: 'web.edge', handler, headers: { low: -(2 ** 63), high: 2 ** 64, nested: { a: [1, 'x'] } } });
    expect(await handler.flush(10_000)).to.equal(true);
    expect(handler.stats()).to.include({ enqueued: 1, published: 1, dropped: 0 });
    await consumer.waitFor(1);
    expect(consumer.received[0]!.properties.headers).to.include({ low: -(2 ** 63), high: 2 ** 64 });
  });

  it('a message the client library cannot encode (a header over its 64 KB table) is dropped and counted; flush() ends, the others publish', async () => {
    const warnings: string[] = [];
    const handler = new Handler({
      url: amqpUrl(),
      exchange,
      flushInterval: 1,
      logger: { warn: (m: string) => warnings.push(m) },
    });
    cleanup.defer(() => handler.close());
    new Context({ name: 'web.ok', handler, context: { i: 0 } });
    expect(await handler.flush(10_000)).to.equal(true);
    new Context({ name: 'web.huge', handler, headers: { big: 'x'.repeat(70_000) } });
    const t0 = Date.now();
    expect(await handler.flush(10_000)).to.equal(true);
    expect(Date.now() - t0).to.be.below(5_000, 'not the flush timeout');
    for (let i = 1; i <= 5; i++) new Context({ name: 'web.ok', handler, context: { i } });
    expect(await handler.flush(10_000)).to.equal(true);
    expect(handler.stats()).to.include({ enqueued: 7, published: 6, dropped: 1, reconnects: 0, status: 'connected' });
    expect(warnings.join('\n')).to.match(/1 message\(s\) could not be sent and were dropped/);
    await consumer.waitFor(6);
  });

  it("a URL password is never shown: not percent-encoded (a '/' in it), a mistyped scheme, or the handler printed", async () => {
    for (const url of ['amqp://guest:S3cr/etPW@127.0.0.1:5672/%2F', 'amqp:/guest:S3cr/etPW@127.0.0.1']) {
      let caught: unknown;
      try {
        new Handler({ url, logger: null });
      } catch (err) {
        caught = err;
      }
      expect((caught as { code?: string })?.code, url).to.equal('LC_CONFIG_INVALID');
      expect(inspect(caught, { depth: 10 }), url).to.not.contain('etPW');
    }
    // The broker's user with its own password, connected: the client and its transport printed too.
    const u = new URL(amqpUrl());
    const handler = new Handler({ url: u.toString(), exchange, logger: null });
    new Context({ name: 'printed', handler });
    expect(await handler.flush(10_000)).to.equal(true);
    expect(u.password).to.not.equal('');
    expect(inspect(handler, { depth: 12 })).to.not.contain(`:${u.password}@`);
    expect(JSON.stringify(handler.options)).to.not.contain(`:${u.password}@`);
    await handler.close();
  });

  it('close() against a broker that stopped answering takes closeTimeout in all, then cuts the connection', async () => {
    const proxy = await brokerProxy(cleanup);
    const handler = new Handler({
      url: proxiedAmqpUrl(proxy.port),
      exchange,
      flushInterval: 1,
      logger: null,
      closeTimeout: 2000,
      heartbeatInterval: 0,
    });
    const ctx = new Context({ name: 'stalled', handler });
    expect(await handler.flush(10_000)).to.equal(true);
    const socket = (handler as unknown as { transport: { model: { connection: { stream: { destroyed: boolean } } } } })
      .transport.model.connection.stream;
    proxy.stall();
    ctx.i = 1;
    const t0 = Date.now();
    await handler.close();
    expect(Date.now() - t0).to.be.below(3_500, 'one closeTimeout (2 s), not two');
    expect(socket.destroyed).to.equal(true, 'the connection cut');
    expect(handler.stats()).to.include({ status: 'closed', dropped: 1 });
  });

  it('a broker that stops answering is found out by the AMQP heartbeat (5 s unless the URL sets one), with the reason', async function () {
    this.timeout(30_000);
    const proxy = await brokerProxy(cleanup);
    const url = new URL(proxiedAmqpUrl(proxy.port));
    url.searchParams.set('heartbeat', '1');
    const warnings: string[] = [];
    const handler = new Handler({
      url: url.toString(),
      exchange,
      flushInterval: 1,
      logger: { warn: (m: string) => warnings.push(m) },
      heartbeatInterval: 0,
      reconnect: quick,
    });
    cleanup.defer(() => handler.destroy());
    const ctx = new Context({ name: 'silent', handler });
    expect(await handler.flush(10_000)).to.equal(true);
    proxy.stall();
    ctx.i = 1;
    await waitUntil(() => handler.status !== 'connected', 'the dead connection noticed', 15_000);
    // Whichever side misses the heartbeats first says so: the client ("Heartbeat timeout") or the
    // broker, closing the connection ("Unexpected close").
    expect(handler.stats().lastError).to.match(/heartbeat timeout|unexpected close/i);
    expect(warnings.join('\n')).to.match(/cannot publish .*(heartbeat timeout|unexpected close)/i);
    // Without one in the URL the handler asks for 5 s (the broker's own is 60 s).
    const plain = new Handler({ url: amqpUrl(), exchange, logger: null });
    cleanup.defer(() => plain.close());
    new Context({ name: 'plain', handler: plain });
    expect(await plain.flush(10_000)).to.equal(true);
    const negotiated = (plain as unknown as { transport: { model: { connection: { heartbeat: number } } } }).transport
      .model.connection.heartbeat;
    expect(negotiated).to.equal(5);
  });

  it('a connection refused at start is warned once with the password masked, and never throws into the program', async () => {
    // A proxy that drops every connection it takes: it counts the attempts, so the one warning is
    // checked after several of them, not after a sleep.
    const proxy = await brokerProxy(cleanup);
    proxy.cut();
    const warnings: string[] = [];
    const handler = new Handler({
      url: `amqp://user:hunter2@127.0.0.1:${proxy.port}/%2F`,
      exchange,
      logger: { warn: (m: string) => warnings.push(m) },
      reconnect: { initialDelay: 10, maxDelay: 30 },
      closeTimeout: 200,
    });
    const ctx = new Context({ name: 'refused', handler });
    for (let i = 0; i < 10; i++) ctx.i = i;
    await waitUntil(() => handler.stats().lastError !== null && warnings.length > 0, 'the refusal');
    await waitUntil(() => proxy.accepted >= 5, 'five connection attempts');
    await handler.close();
    expect(warnings.filter((w) => w.includes('cannot publish'))).to.have.length(1);
    expect(warnings.join('\n')).to.not.contain('hunter2');
    // Named by host:port: the node tried, never a URL with its password.
    expect(warnings[0]).to.contain(`cannot publish to 127.0.0.1:${proxy.port} (`);
    // A port nothing listens on (ECONNREFUSED) is said the same way.
    const refusedWarnings: string[] = [];
    const refused = new Handler({
      url: 'amqp://user:hunter2@127.0.0.1:1/%2F',
      exchange,
      logger: { warn: (m: string) => refusedWarnings.push(m) },
      closeTimeout: 200,
    });
    new Context({ name: 'refused', handler: refused });
    await waitUntil(() => refusedWarnings.length > 0, 'the refusal');
    await refused.close();
    expect(refusedWarnings[0]).to.contain('cannot publish to 127.0.0.1:1 (').and.not.contain('hunter2');
    // A flush() still waiting when the handler closes with messages left says it did not flush.
    const late = new Handler({
      url: 'amqp://user:hunter2@127.0.0.1:1/%2F',
      exchange,
      logger: null,
      reconnect: { initialDelay: 10, maxDelay: 30 },
    });
    new Context({ name: 'refused', handler: late });
    const flushing = late.flush(10_000);
    late.destroy();
    expect(await flushing).to.equal(false);
    expect(handler.stats()).to.include({ enqueued: 11, dropped: 11, published: 0 });
    expect(warnings.at(-1)).to.contain('closed with 11 message(s) unpublished');
  });
});

/** Headers JSON takes and the AMQP client cannot send as that JSON: each is refused when a context is made. */
const unencodable: Array<Record<string, unknown>> = [
  { negative: -1e19 },
  { typed: { '!': 'bogus', value: 1 } },
  { stamp: { '!': 'timestamp', value: 1 } },
  { date: new Date(0) },
  { nan: Number.NaN },
  { inf: Number.NEGATIVE_INFINITY },
];
