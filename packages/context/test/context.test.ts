import { expect } from 'chai';
import os from 'node:os';
import { Context, ContextError, Handler } from '@contexture/context';
import { parseLine } from '@contexture/context/protocol';
import { amqpUrl, Cleanup, TestConsumer, uniqueName } from '@contexture/test-support';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('Context → RabbitMQ (every message kind, received by a plain amqplib consumer)', () => {
  let cleanup: Cleanup;
  let exchange: string;
  let handler: Handler;
  let consumer: TestConsumer;

  beforeEach(async () => {
    cleanup = new Cleanup();
    exchange = cleanup.exchange(uniqueName('ctx-x'));
    consumer = await TestConsumer.start({ exchange });
    handler = new Handler({ url: amqpUrl(), exchange, flushInterval: 1, logger: null, headers: { service: 'tests' } });
    cleanup.defer(() => consumer.close());
    cleanup.defer(() => handler.close());
  });
  afterEach(() => cleanup.run());

  const bodies = () => consumer.received.map((r) => r.json);

  it('born, update, multi-field update, delete, log, finished: exact bodies and AMQP properties', async () => {
    const ctx = new Context({ context: { url: '/a' }, name: 'web.handle', handler });
    ctx.status_code = 200;
    ctx.update({ a: 1, b: 2 });
    delete ctx.a;
    ctx.log.info('status {status_code}');
    expect(String(ctx)).to.equal('web.handle');
    ctx.finish();
    await consumer.waitFor(6);
    const id = Context.idOf(ctx);
    expect(id).to.match(UUID);
    const b = bodies();
    expect(b.map((m) => m.seq)).to.deep.equal([0, 1, 2, 3, 4, 5]);
    const strip = (m: Record<string, unknown>) => {
      const { handler_id, time_in, time_out, qtime, qlen, elapsed, ...rest } = m;
      expect(handler_id).to.equal(handler.id);
      for (const t of [time_in, time_out, qtime, qlen]) expect(t).to.be.a('number');
      expect(time_out as number).to.be.at.least(time_in as number);
      expect(Math.abs((time_in as number) - Date.now() / 1000)).to.be.below(60);
      // qtime is time_out - time_in, both to the microsecond.
      expect(Math.round((qtime as number) * 1e6)).to.equal(
        Math.round((time_out as number) * 1e6) - Math.round((time_in as number) * 1e6),
      );
      return rest;
    };
    expect(b.map(strip)).to.deep.equal([
      { obj_id: id, obj: { url: '/a' }, status: 'born', seq: 0 },
      { obj_id: id, obj: { status_code: 200 }, seq: 1 },
      { obj_id: id, obj: { a: 1, b: 2 }, seq: 2 },
      { obj_id: id, obj: { a: null }, action: 'delete', seq: 3 },
      { obj_id: id, obj: {}, message: 'status 200', level: 'info', seq: 4 },
      { obj_id: id, obj: {}, status: 'finished', seq: 5 },
    ]);
    expect(b[5].elapsed).to.be.a('number').and.to.be.at.least(0);
    // Seconds to the microsecond: no float noise past the sixth decimal.
    expect(Math.round(b[5].elapsed * 1e6) / 1e6).to.equal(b[5].elapsed);
    expect(String(b[5].elapsed).split('.')[1]?.length ?? 0).to.be.at.most(6);
    for (const [i, r] of consumer.received.entries()) {
      // The times as sent: seconds with at most six decimals (microseconds), no float noise.
      for (const field of ['time_in', 'time_out', 'qtime', 'elapsed']) {
        const raw = new RegExp(`"${field}":([^,}]*)`).exec(r.body.toString('utf8'))?.[1];
        if (field === 'elapsed' && raw === undefined) continue;
        expect(raw, field).to.match(/^\d+(\.\d{1,6})?$/);
      }
      expect(r.routingKey).to.equal('web.handle');
      expect(r.properties.contentType).to.equal('application/json');
      expect(r.properties.messageId).to.equal(`${id}:${i}`);
      expect(r.properties.appId).to.equal('contexture');
      expect(r.properties.timestamp).to.be.a('number');
      expect(Math.abs(r.properties.timestamp - Date.now() / 1000)).to.be.below(60);
      expect(r.properties.headers).to.deep.equal({ hostname: os.hostname(), service: 'tests' });
    }
    expect(await handler.flush(5000)).to.equal(true);
    expect(handler.stats()).to.include({ enqueued: 6, published: 6, dropped: 0, queued: 0, inFlight: 0 });
  });

  it('transient: one message, never finished; guid, routingKey and context headers', async () => {
    const t = new Context({
      transient: true,
      guid: 'job-42',
      routingKey: 'jobs.done',
      headers: { tenant: 'acme', service: 'override' },
      context: { ok: true },
      handler,
    });
    t.finish();
    t.finish();
    const probe = new Context({ name: 'probe', handler, transient: true });
    void probe;
    await consumer.waitFor(2);
    const [first, second] = consumer.received;
    expect(first!.json).to.include({ obj_id: 'job-42', status: 'transient', seq: 0 });
    expect(first!.json.obj).to.deep.equal({ ok: true });
    expect(first!.routingKey).to.equal('jobs.done');
    expect(first!.properties.headers).to.deep.equal({ hostname: os.hostname(), service: 'override', tenant: 'acme' });
    expect(second!.routingKey).to.equal('probe');
    expect(consumer.received).to.have.length(2);
  });

  it('ignore keeps fields local; a Context-valued field is sent as its id (linking)', async () => {
    const parent = new Context({ name: 'parent', handler });
    const child = new Context({ name: 'child', handler, context: { secret: 's3', x: 1 }, ignore: ['secret', 'token'] });
    child.token = 'abc';
    child.parent = parent;
    child.nested = { owner: parent, list: [parent] };
    expect(child.token).to.equal('abc');
    expect(child.context).to.deep.include({ secret: 's3', token: 'abc', x: 1 });
    await consumer.waitFor(4);
    const childMsgs = bodies().filter((m) => m.obj_id === Context.idOf(child));
    expect(childMsgs.map((m) => m.obj)).to.deep.equal([
      { x: 1 },
      { parent: Context.idOf(parent) },
      { nested: { owner: Context.idOf(parent), list: [Context.idOf(parent)] } },
    ]);
  });

  it('reserved names throw a ContextError with a code and send nothing', async () => {
    const ctx = new Context({ name: 'reserved', handler });
    for (const name of ['context', 'log', 'update', 'finish', 'toString', 'toJSON', 'constructor']) {
      let caught: unknown;
      try {
        (ctx as Record<string, unknown>)[name] = 1;
      } catch (err) {
        caught = err;
      }
      expect(caught, name).to.be.instanceOf(ContextError);
      expect((caught as ContextError).code).to.equal('LC_CONTEXT_RESERVED_NAME');
      expect((caught as ContextError).field).to.equal(name);
    }
    expect(() => delete (ctx as Record<string, unknown>).update).to.throw(ContextError);
    ctx.update({ log: 'allowed through update' });
    expect(ctx.context.log).to.equal('allowed through update');
    // ctx.context reads the fields and refuses writes: a write there would send nothing.
    const view = ctx.context as Record<string, unknown>;
    for (const write of [
      () => {
        view.x = 1;
      },
      () => delete view.log,
      () => Object.defineProperty(view, 'y', { value: 1 }),
      () => Object.setPrototypeOf(view, null),
      () => Object.freeze(view),
    ])
      expect(write).to.throw(ContextError).with.property('code', 'LC_CONTEXT_READ_ONLY');
    expect(ctx.context).to.equal(view);
    expect({ ...ctx.context }).to.deep.equal({ log: 'allowed through update' });
    expect(JSON.stringify(ctx.context)).to.equal('{"log":"allowed through update"}');
    ctx.finish();
    await consumer.waitFor(3);
    expect(bodies().map((m) => m.obj)).to.deep.equal([{}, { log: 'allowed through update' }, {}]);
  });

  it('a value that cannot be JSON throws naming the field; the context is unchanged and keeps working', async () => {
    const ctx = new Context({ name: 'bad.values', handler });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const cases: Array<[string, unknown]> = [
      ['circ', circular],
      ['big', 10n],
      ['fn', () => 1],
      ['sym', Symbol('s')],
      // Getters that throw what is no Error.
      [
        'nul',
        {
          get x() {
            throw null;
          },
        },
      ],
      [
        'str',
        {
          get x() {
            throw 'str';
          },
        },
      ],
    ];
    for (const [field, value] of cases) {
      let caught: ContextError | undefined;
      try {
        (ctx as Record<string, unknown>)[field] = value;
      } catch (err) {
        caught = err as ContextError;
      }
      expect(caught, field).to.be.instanceOf(ContextError);
      expect(caught!.code).to.equal('LC_CONTEXT_NOT_SERIALIZABLE');
      expect(caught!.field).to.equal(field);
      expect(caught!.message).to.contain(field);
      expect(caught!.message).to.not.match(/undefined$/);
      expect(field in ctx.context).to.equal(false);
    }
    expect(() => ctx.update({ fine: 1, bad: 1n })).to.throw(ContextError);
    expect(ctx.context).to.not.have.property('fine');
    // Serialised at the assignment: later mutation changes nothing queued.
    const obj = { n: 1 };
    ctx.snapshot = obj;
    obj.n = 2;
    ctx.after = 'still works';
    ctx.finish();
    await consumer.waitFor(4);
    expect(bodies().map((m) => m.obj)).to.deep.equal([{}, { snapshot: { n: 1 } }, { after: 'still works' }, {}]);
  });

  it('numbers go as the wire format writes them: past 2^53 - 1 with an exponent, NaN and Infinity as words', async () => {
    const ctx = new Context({ name: 'numbers', handler, context: { big: 2 ** 60, inf: -Infinity } });
    ctx.update({ ns: 1.7e18, ratio: NaN });
    ctx.nested = { at: [1e16, Infinity], ok: 3, neg: -(2 ** 53) };
    ctx.safe = Number.MAX_SAFE_INTEGER;
    ctx.text = '12345678901234567890 null';
    new Context({ name: 'numbers', handler, transient: true, context: { ns: 1.7e18, n: 1 } });
    ctx.finish({ last: NaN });
    await consumer.waitFor(7);
    const objs = consumer.received.map((r) => {
      const parsed = parseLine(r.body.toString('utf8'));
      if (!('message' in parsed)) throw new Error(`not read back: ${parsed.kind}`);
      return parsed.message.obj as Record<string, unknown>;
    });
    expect(objs).to.deep.equal([
      { big: 2 ** 60, inf: -Infinity },
      { ns: 1.7e18, ratio: NaN },
      { nested: { at: [1e16, Infinity], ok: 3, neg: -(2 ** 53) } },
      { safe: Number.MAX_SAFE_INTEGER },
      { text: '12345678901234567890 null' },
      { ns: 1.7e18, n: 1 },
      { last: NaN },
    ]);
    for (const obj of objs) for (const v of Object.values(obj)) expect(typeof v).to.not.equal('bigint');
    const raw = consumer.received.map((r) => r.body.toString('utf8'));
    expect(raw[1]).to.contain('"obj":{"ns":1.7e+18,"ratio":NaN}');
    expect(raw[2]).to.contain('"at":[1e+16,Infinity]');
    expect(raw[3]).to.contain(`"safe":${Number.MAX_SAFE_INTEGER}`);
  });

  it('options and arguments of the wrong kind throw LC_CONTEXT_INVALID_OPTION before anything is sent', async () => {
    const bad: unknown[] = [
      null,
      'x',
      { name: 5 },
      { name: {} },
      { name: '' },
      { routingKey: 3 },
      { ignore: 5 },
      { ignore: [1] },
      { handler: {} },
      { headers: 'str' },
      { context: 'abc' },
      { context: [1] },
      { obj: 5 },
    ];
    for (const options of bad) {
      expect(() => new Context(options as never), JSON.stringify(options))
        .to.throw(ContextError)
        .with.property('code', 'LC_CONTEXT_INVALID_OPTION');
      expect(() => Context.wrap(() => 1, options as never), `wrap ${JSON.stringify(options)}`)
        .to.throw(ContextError)
        .with.property('code', 'LC_CONTEXT_INVALID_OPTION');
    }
    for (const fn of [undefined, 123, 'f'])
      expect(() => Context.wrap(fn as never))
        .to.throw(ContextError, /takes a function/)
        .with.property('code', 'LC_CONTEXT_INVALID_OPTION');
    for (const notOne of [null, {}, 5])
      expect(() => Context.idOf(notOne as never))
        .to.throw(ContextError, /takes a Context/)
        .with.property('code', 'LC_CONTEXT_INVALID_OPTION');
    await handler.flush(5_000);
    expect(handler.stats().enqueued).to.equal(0);
  });

  it('hostile arguments (throwing getters and Proxy traps, accessors, arrays) throw a ContextError, nothing else', async () => {
    const ctx = new Context({ name: 'hostile.args', handler });
    const throwing = (what: string) => () => {
      throw new Error(what);
    };
    const hostile = new Proxy(
      {},
      { get: throwing('get'), getPrototypeOf: throwing('proto'), ownKeys: throwing('ownKeys'), has: throwing('has') },
    );
    const notifier = {
      get bad(): number {
        throw new Error('getter');
      },
    };
    const cases: Array<[string, () => unknown, string, string?]> = [
      ['update getter', () => ctx.update(notifier), 'LC_CONTEXT_NOT_SERIALIZABLE', 'bad'],
      ['finish getter', () => ctx.finish(notifier), 'LC_CONTEXT_NOT_SERIALIZABLE', 'bad'],
      [
        'update ownKeys',
        () => ctx.update(new Proxy({}, { ownKeys: throwing('ownKeys') })),
        'LC_CONTEXT_INVALID_OPTION',
      ],
      ['context getter', () => new Context({ handler, context: notifier }), 'LC_CONTEXT_NOT_SERIALIZABLE', 'bad'],
      ['options proxy', () => new Context(hostile as never), 'LC_CONTEXT_INVALID_OPTION'],
      ['wrap options proxy', () => Context.wrap(() => 1, hostile as never), 'LC_CONTEXT_INVALID_OPTION'],
      ['handler proxy', () => new Context({ handler: hostile as never }), 'LC_CONTEXT_INVALID_OPTION'],
      ['define getter', () => Object.defineProperty(ctx, 'g', { get: () => 1 }), 'LC_CONTEXT_INVALID_OPTION', 'g'],
      [
        'define fixed',
        () => Object.defineProperty(ctx, 'f', { value: 1, configurable: false }),
        'LC_CONTEXT_INVALID_OPTION',
        'f',
      ],
      ['freeze', () => Object.freeze(ctx), 'LC_CONTEXT_INVALID_OPTION'],
      ['run proxy', () => Context.run(hostile as never, () => 1), 'LC_CONTEXT_INVALID_OPTION'],
      ['idOf proxy', () => Context.idOf(hostile as never), 'LC_CONTEXT_INVALID_OPTION'],
      ['update array', () => ctx.update([1, 2] as never), 'LC_CONTEXT_INVALID_OPTION'],
      ['finish array', () => ctx.finish([1] as never), 'LC_CONTEXT_INVALID_OPTION'],
      ['ignore string', () => new Context({ handler, ignore: 'ab' }), 'LC_CONTEXT_INVALID_OPTION'],
    ];
    for (const [what, call, code, field] of cases) {
      let caught: unknown;
      try {
        call();
      } catch (err) {
        caught = err;
      }
      expect(caught, what).to.be.instanceOf(ContextError);
      expect((caught as ContextError).code, what).to.equal(code);
      if (field !== undefined) expect((caught as ContextError).field, what).to.equal(field);
    }
    // Still a working context, with nothing of the above in it.
    expect(Object.keys(ctx)).to.deep.equal([]);
    // ignore takes any iterable of names, as its type says.
    const withSet = new Context({
      name: 'hostile.args',
      handler,
      ignore: new Set(['secret']),
      context: { secret: 's', a: 1 },
    });
    withSet.secret = 't';
    expect(withSet.context).to.deep.equal({ secret: 't', a: 1 });
    ctx.ok = true;
    ctx.finish();
    await consumer.waitFor(4);
    expect(bodies().map((m) => m.obj)).to.deep.equal([{}, { a: 1 }, { ok: true }, {}]);
  });

  it('wraps an existing object: methods and getters pass through, assignments shadow it without touching it', async () => {
    class Target {
      x = 1;
      #secret = 3;
      get y() {
        return 2;
      }
      f() {
        return this.#secret;
      }
    }
    const original = new Target();
    const ctx = new Context({ obj: original, name: 'wrapped.obj', handler });
    expect(ctx.f()).to.equal(3);
    expect(ctx.y).to.equal(2);
    expect(ctx.x).to.equal(1);
    ctx.y = 10;
    ctx.x = 111;
    expect(ctx.y).to.equal(10);
    expect(ctx.x).to.equal(111);
    expect(original.y).to.equal(2);
    expect(original.x).to.equal(1);
    await consumer.waitFor(3);
    expect(bodies().map((m) => m.obj)).to.deep.equal([{}, { y: 10 }, { x: 111 }]);
  });

  it('Context.wrap: a context per call, current() down the async chain, error field and re-throw', async () => {
    const seen: string[] = [];
    const work = Context.wrap(
      async (n: number): Promise<number> => {
        const ctx = Context.current<{ n: number; later: boolean }>()!;
        ctx.n = n;
        await new Promise((r) => setTimeout(r, 5));
        await Promise.resolve().then(() => {
          Context.current()!.later = true;
          seen.push(Context.idOf(Context.current()!));
        });
        if (n < 0) throw new RangeError('negative');
        return n * 2;
      },
      { name: 'jobs.work', handler },
    );
    const [a, b] = await Promise.all([work(1), work(2)]);
    expect([a, b]).to.deep.equal([2, 4]);
    let rejected: unknown;
    await work(-1).catch((err) => (rejected = err));
    expect(rejected).to.be.instanceOf(RangeError);
    const sync = Context.wrap(
      () => {
        throw new TypeError('sync boom');
      },
      { name: 'jobs.sync', handler },
    );
    expect(() => sync()).to.throw(TypeError, 'sync boom');
    expect(Context.current()).to.equal(undefined);
    await consumer.waitFor(4 * 3 + 1 + 3);
    const byId = new Map<string, Array<Record<string, any>>>();
    for (const m of bodies()) byId.set(m.obj_id, [...(byId.get(m.obj_id) ?? []), m]);
    expect(new Set(seen).size).to.equal(3);
    for (const id of seen) {
      const msgs = byId.get(id)!;
      expect(msgs[0]!.status).to.equal('born');
      expect(msgs.at(-1)!.status).to.equal('finished');
    }
    const failed = [...byId.values()].filter((msgs) => msgs.some((m) => m.obj.error !== undefined));
    expect(failed.map((msgs) => msgs.find((m) => m.obj.error)!.obj.error).sort()).to.deep.equal([
      'RangeError: negative',
      'TypeError: sync boom',
    ]);
    for (const msgs of failed) expect(msgs.at(-1)!.status).to.equal('finished');
  });

  it('Context.wrap: what cannot be described is said so; a thenable that is no Promise is returned untouched', async () => {
    const ids: string[] = [];
    /** Calls `fn` wrapped, noting the id of the context it ran in. */
    const call = (fn: () => unknown): unknown =>
      Context.wrap(
        () => {
          ids.push(Context.idOf(Context.current()!));
          return fn();
        },
        { name: 'jobs.odd', handler },
      )();
    const nullProto = Object.create(null);
    const badMessage = new Error('hidden');
    Object.defineProperty(badMessage, 'message', {
      get() {
        throw new Error('message getter');
      },
    });
    for (const thrown of [nullProto, badMessage]) {
      let caught: unknown;
      try {
        call(() => {
          throw thrown;
        });
      } catch (err) {
        caught = err;
      }
      expect(caught).to.equal(thrown); // re-thrown as it was
    }
    let rejected: unknown;
    await (
      call(async () => {
        throw nullProto;
      }) as Promise<unknown>
    ).catch((err: unknown) => {
      rejected = err;
    });
    expect(rejected).to.equal(nullProto);
    // Thenables that are no Promise: returned as they are, their then() never called by the wrapper.
    let thenCalls = 0;
    const thenable = {
      // biome-ignore lint/suspicious/noThenProperty: a thenable is what this test is about
      then(ok: (v: number) => void) {
        thenCalls++;
        ok(7);
      },
    };
    const hostile = {
      // biome-ignore lint/suspicious/noThenProperty: a thenable is what this test is about
      get then(): never {
        throw new Error('then getter');
      },
    };
    expect(call(() => thenable)).to.equal(thenable);
    expect(thenCalls).to.equal(0);
    expect(call(() => hostile)).to.equal(hostile);
    // A Promise whose own then is hostile is still followed to its end.
    const promise = Promise.resolve(5);
    Object.defineProperty(promise, 'then', {
      get() {
        throw new Error('then getter');
      },
    });
    const followed = call(() => promise);
    expect(followed).to.be.instanceOf(Promise);
    expect(await Promise.prototype.then.call(followed as Promise<number>, (v) => v)).to.equal(5);
    await consumer.waitFor(ids.length * 2 + 3);
    const byId = new Map<string, Array<Record<string, any>>>();
    for (const m of bodies()) byId.set(m.obj_id, [...(byId.get(m.obj_id) ?? []), m]);
    const errors = ids.map((id) => byId.get(id)!.find((m) => m.obj.error !== undefined)?.obj.error);
    expect(errors).to.deep.equal([
      '(cannot be described)',
      '(cannot be described)',
      '(cannot be described)',
      undefined,
      undefined,
      undefined,
    ]);
    for (const id of ids) {
      expect(byId.get(id)![0]!.status).to.equal('born');
      expect(byId.get(id)!.at(-1)!.status, id).to.equal('finished');
    }
  });

  it('finish(fields): the last fields in the finished message itself; afterwards an update', async () => {
    const ctx = new Context({ name: 'web.finish', handler, ignore: ['secret'] });
    expect(() => ctx.finish({ bad: 10n }))
      .to.throw(ContextError)
      .with.property('code', 'LC_CONTEXT_NOT_SERIALIZABLE');
    expect(() => ctx.finish('x' as never))
      .to.throw(ContextError)
      .with.property('code', 'LC_CONTEXT_INVALID_OPTION');
    ctx.finish({ status_code: 200, secret: 's' }); // the bad calls above changed and sent nothing
    expect(ctx.context).to.deep.include({ status_code: 200, secret: 's' });
    ctx.finish({ late: true }); // finished already: an update
    ctx.finish();
    await consumer.waitFor(3);
    const id = Context.idOf(ctx);
    expect(bodies().map((m) => [m.obj_id, m.seq, m.status, m.obj])).to.deep.equal([
      [id, 0, 'born', {}],
      [id, 1, 'finished', { status_code: 200 }],
      [id, 2, undefined, { late: true }],
    ]);
    expect(bodies()[1].elapsed).to.be.a('number');
  });

  it('Context.run: an existing context current down the async chain, not finished, nesting restores', async () => {
    const outer = new Context({ name: 'jobs.outer', handler });
    const inner = new Context({ name: 'jobs.inner', handler });
    const seen: Array<string | undefined> = [];
    const id = () => {
      const c = Context.current();
      return c === undefined ? undefined : Context.idOf(c);
    };
    const result = await Context.run(outer, async () => {
      seen.push(id());
      await new Promise((r) => setTimeout(r, 1));
      seen.push(id());
      Context.current()!.step = 1;
      const nested = Context.run(inner, () => {
        setImmediate(() => seen.push(id()));
        return id();
      });
      seen.push(nested);
      await new Promise((r) => setImmediate(r));
      seen.push(id());
      return 42;
    });
    expect(result).to.equal(42);
    expect(Context.current()).to.equal(undefined);
    expect(seen).to.deep.equal([
      Context.idOf(outer),
      Context.idOf(outer),
      Context.idOf(inner),
      Context.idOf(inner),
      Context.idOf(outer),
    ]);
    expect(() =>
      Context.run(outer, () => {
        throw new RangeError('kept');
      }),
    ).to.throw(RangeError, 'kept');
    for (const bad of [{}, null, 'ctx']) {
      expect(() => Context.run(bad as never, () => 1))
        .to.throw(ContextError)
        .with.property('code', 'LC_CONTEXT_INVALID_OPTION');
    }
    expect(() => Context.run(outer, 'fn' as never))
      .to.throw(ContextError)
      .with.property('code', 'LC_CONTEXT_INVALID_OPTION');
    // run() made it current and nothing else: born, the field set inside, then only our finish().
    outer.finish();
    inner.finish();
    await consumer.waitFor(5);
    const outerMsgs = bodies().filter((m) => m.obj_id === Context.idOf(outer));
    expect(outerMsgs.map((m) => [m.status, m.obj])).to.deep.equal([
      ['born', {}],
      [undefined, { step: 1 }],
      ['finished', {}],
    ]);
  });

  it('subclasses are named after the class; class fields become context fields; typed fields', async () => {
    class Request extends Context {
      method = 'GET';
    }
    const r = new Request({ handler });
    r.status_code = 201;
    expect(String(r)).to.equal('Request');
    const typed = new Context<{ status_code: number }>({ name: 'typed', handler });
    typed.status_code = 200;
    const n: number = typed.status_code;
    expect(n).to.equal(200);
    r.finish();
    await consumer.waitFor(6);
    const rm = consumer.received.filter((m) => m.routingKey === 'Request').map((m) => m.json.obj);
    expect(rm).to.deep.equal([{}, { method: 'GET' }, { status_code: 201 }, {}]);
  });

  it('logger option logs each change as "<name> <id>: x = 1, y = 2"; log levels and formatting', async () => {
    const lines: string[] = [];
    const ctx = new Context({
      name: 'logged',
      handler,
      logger: { info: (l: string) => lines.push(l) },
      context: { a: 1 },
    });
    ctx.update({ x: 1, y: 2 });
    ctx.log.warn('user {user.name} has {missing}', { extra: true });
    ctx.user = { name: 'ann' };
    ctx.log.error('user {user.name}');
    const id = Context.idOf(ctx);
    expect(lines[0]).to.equal(`logged ${id}: status = born, "a":1`);
    expect(lines[1]).to.equal(`logged ${id}: x = 1, y = 2`);
    await consumer.waitFor(5);
    const logs = bodies().filter((m) => m.message !== undefined);
    expect(logs.map((m) => [m.level, m.message])).to.deep.equal([
      ['warning', 'user {user.name} has {missing} { extra: true }'],
      ['error', 'user ann'],
    ]);
  });

  it('ctx.log never throws: what cannot be made text is "(cannot be described)", the rest is kept', async () => {
    const lines: string[] = [];
    const ctx = new Context({
      name: 'log.hostile',
      handler,
      ignore: ['raw', 'prox', 'cyc'],
      logger: (l) => lines.push(l),
    });
    ctx.raw = Object.assign(Object.create(null), { id: 1n });
    ctx.prox = new Proxy(
      {},
      {
        get() {
          throw new Error('get');
        },
        getOwnPropertyDescriptor() {
          throw new Error('gopd');
        },
        ownKeys() {
          throw new Error('ownKeys');
        },
        getPrototypeOf() {
          throw new Error('proto');
        },
      },
    );
    const cyc: Record<string, unknown> = { n: 1 };
    ctx.cyc = cyc;
    cyc.self = cyc; // a cycle made after the assignment (the field is ignored: never serialised)
    ctx.bad = 'x';
    const hostile = {
      toString() {
        throw new Error('toString');
      },
      [Symbol.for('nodejs.util.inspect.custom')]() {
        throw new Error('inspect');
      },
    };
    const calls: Array<() => void> = [
      () => ctx.log.info('raw is {raw}'),
      () => ctx.log.info('arg', hostile),
      () => ctx.log.info('cyc {cyc.n} {cyc}'),
      () => ctx.log.info('prox {prox} {prox.a} after'),
      () => ctx.log.info(Object.create(null) as never, 'kept'),
      () => ctx.log.info(hostile as never, 2),
      () => ctx.log.error('{bad} and {missing}', 'tail'),
    ];
    for (const [i, call] of calls.entries()) expect(call, `call ${i}`).to.not.throw();
    await consumer.waitFor(1 + calls.length + 1);
    const messages = bodies()
      .filter((m) => m.message !== undefined)
      .map((m) => m.message as string);
    expect(messages).to.have.length(calls.length);
    expect(messages[0]).to.equal('raw is [Object: null prototype] { id: 1n }');
    expect(messages[1]).to.equal('arg (cannot be described)');
    expect(messages[2]).to.match(/^cyc 1 <ref \*1> \{ n: 1, self: \[Circular \*1\] \}$/);
    // inspect() shows a Proxy's target; a path into it, read through its traps, cannot be.
    expect(messages[3]).to.equal('prox {} (cannot be described) after');
    expect(messages[4]).to.equal('[Object: null prototype] {} kept');
    expect(messages[5]).to.equal('(cannot be described) 2');
    expect(messages[6]).to.equal('x and {missing} tail');
    expect(lines.filter((l) => l.includes('[info]') || l.includes('[error]'))).to.have.length(calls.length);
  });

  it('a headers exchange routes by the handler and context headers', async () => {
    const hx = cleanup.exchange(uniqueName('ctx-hx'));
    const hconsumer = await TestConsumer.start({
      exchange: hx,
      type: 'headers',
      bindingKey: '',
      bindingArgs: { 'x-match': 'all', tenant: 'acme' },
    });
    cleanup.defer(() => hconsumer.close());
    const hh = new Handler({ url: amqpUrl(), exchange: hx, exchangeType: 'headers', flushInterval: 1, logger: null });
    cleanup.defer(() => hh.close());
    new Context({ name: 'other', handler: hh, transient: true, headers: { tenant: 'other' } });
    new Context({ name: 'mine', handler: hh, transient: true, headers: { tenant: 'acme' } });
    // Messages of one channel arrive in order: had 'other' been routed, it would come before the last one.
    new Context({ name: 'last', handler: hh, transient: true, headers: { tenant: 'acme' } });
    await hconsumer.waitFor(2);
    expect(hconsumer.received.map((r) => r.routingKey)).to.deep.equal(['mine', 'last']);
  });
});
