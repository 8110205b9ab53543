import { Readable } from 'node:stream';
import { expect } from 'chai';
import { LcmonError, messages, objects, type MonitorMessage } from '@contexture/lcmon';
import { amqpUrl, Cleanup, uniqueName } from '@contexture/test-support';
import { envelopes, lifecycle, Publisher, PY_ANNOUNCEMENT, PY_STOPPING, queueExists } from './helpers.js';

const A = lifecycle('a', { url: '/a', n: 1 }, [{ n: 2 }, { n: 3 }]);
const B = lifecycle('b', { url: '/b' }, [{ code: 200 }], 1_700_000_100);

describe('monitor library: messages() and objects()', () => {
  const cleanup = new Cleanup();
  let exchange: string;
  let pub: Publisher;
  beforeEach(async () => {
    exchange = cleanup.exchange(uniqueName('lcmon-lib'));
    pub = await Publisher.open(exchange);
    cleanup.defer(() => pub.close());
  });
  afterEach(() => cleanup.run());

  it('messages() yields {rkey, headers, object}; break closes the connection and the queue goes', async () => {
    const stream = messages({ url: amqpUrl(), exchange, bindingKeys: ['web.#'] });
    await stream.open();
    const queue = stream.queue!;
    expect(await queueExists(queue)).to.equal(true);
    await pub.publish(exchange, 'web.lib', A, { headers: { hostname: 'h1' } });
    const seen: MonitorMessage[] = [];
    for await (const m of stream) {
      seen.push(m);
      if (seen.length === 2) break;
    }
    expect(seen).to.deep.equal([
      { rkey: 'web.lib', headers: { hostname: 'h1' }, object: A[0] },
      { rkey: 'web.lib', headers: { hostname: 'h1' }, object: A[1] },
    ]);
    expect(stream.status).to.equal('closed');
    expect(await queueExists(queue)).to.equal(false);
  });

  it('messages() reports a body, or a batch line, whose bytes are not UTF-8 as such and yields the rest', async () => {
    const bad: unknown[] = [];
    const stream = messages({ url: amqpUrl(), exchange, onMalformed: (p, at) => bad.push([p.kind, at.rkey]) });
    await stream.open();
    const body = (id: Buffer, v: number) =>
      Buffer.concat([Buffer.from('{"obj_id":"'), id, Buffer.from(`","obj":{"v":${v}},"status":"transient","seq":0}`)]);
    await pub.publish(exchange, 'web.u8', [
      body(Buffer.from([0x75, 0xff]), 1),
      body(Buffer.from([0x75, 0xfe]), 2),
      body(Buffer.from('é'), 3),
    ]);
    await pub.publish(
      exchange,
      'web.batch',
      [
        Buffer.concat([
          body(Buffer.from('b1'), 4),
          Buffer.from('\n'),
          body(Buffer.from([0xc3]), 5),
          Buffer.from('\n'),
          body(Buffer.from('b2'), 6),
        ]),
      ],
      { contentType: 'application/x-ndjson' },
    );
    const seen: unknown[] = [];
    for await (const m of stream) if (seen.push(m.object.obj_id) === 3) break;
    expect(seen).to.deep.equal(['é', 'b1', 'b2']);
    expect(bad).to.deep.equal([
      ['not UTF-8', 'web.u8'],
      ['not UTF-8', 'web.u8'],
      ['not UTF-8', 'web.batch'],
    ]);
  });

  it('messages() gives AMQP header values as plain JSON: bytes as text, timestamps as seconds, decimals as numbers, a __proto__ table as a key', async () => {
    const stream = messages({ url: amqpUrl(), exchange });
    await stream.open();
    // What the Python contexture's producers send (pika: bytes, datetime, Decimal), as amqplib encodes them.
    const headers = JSON.parse(
      '{"__proto__":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}',
    );
    Object.assign(headers, {
      hostname: 'h',
      text: Buffer.from('something'),
      raw: Buffer.from([0xff, 0x00]),
      at: { '!': 'timestamp', value: 1_700_000_000 },
      price: { '!': 'decimal', value: { places: 2, digits: 12345 } },
      nested: { list: [Buffer.from('a'), 1] },
    });
    await pub.publish(exchange, 'web.h', [A[0]!], { headers });
    let got: MonitorMessage | undefined;
    for await (const m of stream) {
      got = m;
      break;
    }
    expect(JSON.stringify(got!.headers)).to.equal(
      JSON.stringify(
        JSON.parse(
          '{"__proto__":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},"hostname":"h","text":"something","raw":{"base64":"/wA="},"at":1700000000,"price":123.45,"nested":{"list":["a",1]}}',
        ),
      ),
    );
    expect(Object.getPrototypeOf(got!.headers)).to.equal(Object.prototype);
    expect((got!.headers as { traceparent?: unknown }).traceparent).to.equal(undefined);
  });

  it('objects() yields collated objects; verbose adds headers, rkey, ISO times and id; captureMessages keeps the messages', async () => {
    const plain = objects({ url: amqpUrl(), exchange });
    const verbose = objects({ url: amqpUrl(), exchange, verbose: true, captureMessages: true });
    await Promise.all([plain.open(), verbose.open()]);
    await pub.publish(exchange, 'web.obj', [...B].reverse().concat(A));
    const p: unknown[] = [];
    for await (const o of plain) if (p.push(o) === 2) break;
    const v = [];
    for await (const o of verbose) if (v.push(o) === 2) break;
    expect(p).to.deep.equal([
      { url: '/b', code: 200 },
      { url: '/a', n: 3 },
    ]);
    expect(v[0]).to.deep.include({
      object: { url: '/b', code: 200 },
      rkey: 'web.obj',
      id: 'b',
      start: '2023-11-14T22:15:00.000Z',
      elapsed: 0.2,
    });
    expect(v[0]!.messages).to.have.length(3);
  });

  it('messages() yields a message without obj_id (the Python handler announcing itself); objects() leaves it out, not as malformed', async () => {
    const msgs = messages({ url: amqpUrl(), exchange });
    const objs = objects({ url: amqpUrl(), exchange });
    await Promise.all([msgs.open(), objs.open()]);
    const python = { contentType: 'text/plain', headers: { hostname: 'box-1' } };
    await pub.publish(exchange, 'default', [PY_ANNOUNCEMENT, PY_STOPPING], python);
    await pub.publish(exchange, 'web.py', A);
    const seen: MonitorMessage[] = [];
    for await (const m of msgs) if (seen.push(m) === 2 + A.length) break;
    expect(seen).to.deep.equal([
      { rkey: 'default', headers: { hostname: 'box-1' }, object: JSON.parse(PY_ANNOUNCEMENT) },
      { rkey: 'default', headers: { hostname: 'box-1' }, object: JSON.parse(PY_STOPPING) },
      ...A.map((object) => ({ rkey: 'web.py', headers: { hostname: 'box-1' }, object })),
    ]);
    const got: unknown[] = [];
    for await (const o of objs) if (got.push(o) === 1) break;
    expect(got).to.deep.equal([{ url: '/a', n: 3 }]);
    expect(objs.stats()).to.include({ messages: 2 + A.length, objects: 1 });
    expect(objs.stats().malformed).to.deep.equal({});
  });

  it('await using closes it, and its channel publishes on the same connection', async () => {
    let queue: string;
    {
      await using stream = messages({ url: amqpUrl(), exchange, bindingKeys: ['echo'] });
      await stream.open();
      queue = stream.queue!;
      stream.channel!.publish(exchange, 'echo', Buffer.from(JSON.stringify(B[0])), { contentType: 'application/json' });
      const it = stream[Symbol.asyncIterator]();
      const first = await it.next();
      expect(first.value.object).to.deep.equal(B[0]);
    }
    expect(await queueExists(queue)).to.equal(false);
  });

  it('reads a stream of saved lines with stdin (a leading BOM cut), counting malformed lines', async () => {
    const bad: unknown[] = [];
    const lines = `${envelopes([...A, ...B])}garbage\n`;
    const stream = objects({
      stdin: Readable.from([Buffer.from(`\ufeff${lines}`)]),
      verbose: true,
      onMalformed: (p, at) => bad.push([p.kind, at.line]),
    });
    const out = [];
    for await (const o of stream) out.push(o.object);
    expect(out).to.deep.equal([
      { url: '/a', n: 3 },
      { url: '/b', code: 200 },
    ]);
    expect(bad).to.deep.equal([['not JSON', 8]]);
    expect(stream.stats()).to.include({ messages: 7, objects: 2 });
  });

  it('a line of 50 MiB read in many pieces is reported as too large once, and the line after it is read', async () => {
    const bad: unknown[] = [];
    const piece = Buffer.alloc(1 << 20, 'x'.charCodeAt(0));
    const after = `${JSON.stringify({ obj_id: 'after', obj: { v: 1 }, status: 'transient' })}\n`;
    const pieces = [...Array.from({ length: 50 }, () => piece), Buffer.from(`\n${after}`)];
    const out = [];
    for await (const m of messages({
      stdin: Readable.from(pieces),
      onMalformed: (p, at) => bad.push([p.kind, at.line]),
    }))
      out.push(m.object);
    expect(bad).to.deep.equal([['too large', 1]]);
    expect(out).to.deep.equal([{ obj_id: 'after', obj: { v: 1 }, status: 'transient' }]);
  });

  it('maxDepth (64 by default) skips a message nested deeper as too deep; objects() without verbose wraps incomplete objects', async () => {
    const deep = `{"obj_id":"d","obj":{"v":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}},"status":"born","seq":0}\n`;
    const three = `${JSON.stringify({ obj_id: 't', obj: { v: { a: 1 } }, status: 'born', seq: 0 })}\n`;
    const run = async (options: { maxDepth?: number }) => {
      const bad: unknown[] = [];
      const stream = objects({
        stdin: Readable.from([deep + three + envelopes(B)]),
        flushIncomplete: true,
        onMalformed: (p, at) => bad.push([p.kind, p.detail, at.line]),
        ...options,
      });
      const out = [];
      for await (const o of stream) out.push(o);
      return { out, bad };
    };
    const byDefault = await run({});
    expect(byDefault.bad).to.deep.equal([['too deep', 'more than 64 levels', 1]]);
    expect(byDefault.out).to.deep.equal([
      { url: '/b', code: 200 },
      { object: { v: { a: 1 } }, id: 't', complete: false },
    ]);
    const two = await run({ maxDepth: 2 });
    expect(two.bad).to.deep.equal([
      ['too deep', 'more than 2 levels', 1],
      ['too deep', 'more than 2 levels', 2],
    ]);
    expect(two.out).to.deep.equal([{ url: '/b', code: 200 }]);
    expect(() => objects({ maxDepth: -1 }))
      .to.throw(LcmonError)
      .with.property('code', 'LC_MONITOR_INVALID_OPTION');
  });

  it('skips a line whose bytes are not UTF-8 as such, however the reads cut it', async () => {
    const line = (id: Buffer, v: number) =>
      Buffer.concat([
        Buffer.from('{"obj_id":"'),
        id,
        Buffer.from(`","obj":{"v":${v}},"status":"transient","seq":0}\n`),
      ]);
    const input = Buffer.concat([
      line(Buffer.from('ok€'), 1),
      line(Buffer.from([0x75, 0xff]), 2),
      line(Buffer.from('𝄞'), 3),
      line(Buffer.from([0x75, 0xe2, 0x82]), 4),
      line(Buffer.from('end'), 5),
    ]);
    for (const size of [1, 3, 7, input.length]) {
      const pieces = [];
      for (let at = 0; at < input.length; at += size) pieces.push(input.subarray(at, at + size));
      const bad: unknown[] = [];
      const out = [];
      for await (const m of messages({
        stdin: Readable.from(pieces),
        onMalformed: (p, at) => bad.push([p.kind, at.line]),
      }))
        out.push(m.object.obj_id);
      expect(out, `reads of ${size}`).to.deep.equal(['ok€', '𝄞', 'end']);
      expect(bad, `reads of ${size}`).to.deep.equal([
        ['not UTF-8', 2],
        ['not UTF-8', 4],
      ]);
    }
  });

  it('gives each message read from stdin meta of its own', async () => {
    const stream = messages({ stdin: Readable.from([envelopes(A.slice(0, 3), 'web.m', { hostname: 'h' })]) });
    const out: MonitorMessage[] = [];
    for await (const m of stream) {
      out.push(m);
      (m.headers as Record<string, unknown>).seen = true;
    }
    expect(out.map((m) => m.object)).to.deep.equal(A.slice(0, 3));
    expect(new Set(out.map((m) => m.headers)).size).to.equal(3);
    expect(out.map((m) => m.rkey)).to.deep.equal(['web.m', 'web.m', 'web.m']);
  });

  it('rejects bad options at once and an unreachable broker on first use, with stable codes', async () => {
    expect(() => messages({ bindingKeys: [] }))
      .to.throw(LcmonError)
      .with.property('code', 'LC_MONITOR_INVALID_OPTION');
    expect(() => messages({ prefetch: 0 }))
      .to.throw(LcmonError)
      .with.property('code', 'LC_MONITOR_INVALID_OPTION');
    // A typo (which would bind `#`), an option of objects() given to messages(), a wrong type.
    for (const [make, text] of [
      [() => messages({ bindingKey: ['web.#'] } as never), /messages\(\): unknown option 'bindingKey'/],
      [() => objects({ flushIncomplet: true } as never), /objects\(\): unknown option 'flushIncomplet'/],
      [() => messages({ gapTimeout: 10 } as never), /gapTimeout is an option of objects\(\), not of messages\(\)/],
      [() => objects({ verbose: 'yes' } as never), /verbose must be true or false/],
      [() => messages({ queue: 'q', noAck: true }), /noAck cannot be used with queue/],
      [() => messages({ onMalformed: 1 } as never), /onMalformed must be a function/],
      [() => messages('amqp://x' as never), /the options of messages\(\) must be an object/],
    ] as const)
      expect(make).to.throw(LcmonError, text).with.property('code', 'LC_MONITOR_INVALID_OPTION');
    const stream = messages({ url: 'amqp://u:pw-secret@127.0.0.1:1/%2F' });
    let caught: unknown;
    try {
      for await (const _ of stream) break;
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(LcmonError);
    expect((caught as LcmonError).code).to.equal('LC_BROKER_UNREACHABLE');
    expect((caught as LcmonError).message).to.equal('cannot reach RabbitMQ at 127.0.0.1:1: ECONNREFUSED');
  });
});
