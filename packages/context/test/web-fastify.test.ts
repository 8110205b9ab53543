import http from 'node:http';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import Fastify, { type FastifyInstance } from 'fastify';
import { Context, ContextError, Handler } from '@contexture/context';
import contexturePlugin from '@contexture/context/fastify';
import { amqpUrl, Cleanup, TestConsumer, uniqueName, waitUntil } from '@contexture/test-support';
import {
  abortedRequest,
  checkConcurrentRequests,
  checkLateBody,
  byUrl,
  checkBornAfter,
  deferred,
  keepAliveThenAbort,
  objects,
  pipelined,
  streamedRequest,
} from './web-support.js';

describe('Fastify plugin → RabbitMQ (real Fastify 5 server, real HTTP, collated from the broker)', () => {
  let cleanup: Cleanup;
  let handler: Handler;
  let consumer: TestConsumer;

  beforeEach(async () => {
    cleanup = new Cleanup();
    const exchange = cleanup.exchange(uniqueName('web-fastify-x'));
    consumer = await TestConsumer.start({ exchange });
    handler = new Handler({ url: amqpUrl(), exchange, flushInterval: 1, logger: null });
    cleanup.defer(() => consumer.close());
    cleanup.defer(() => handler.close());
  });
  afterEach(() => cleanup.run());

  function app(): FastifyInstance {
    const f = Fastify({ logger: false, forceCloseConnections: true });
    cleanup.defer(() => f.close());
    return f;
  }

  async function serve(f: FastifyInstance): Promise<string> {
    return f.listen({ port: 0, host: '127.0.0.1' });
  }

  /** Sets a field from deep down the request's async chain. */
  async function lookUp(id: string): Promise<void> {
    await new Promise((r) => setImmediate(r));
    Context.current()!.user = `u${id}`;
  }

  it('concurrent requests: one context each, named after the route, also in encapsulated plugins', async () => {
    const f = app();
    await f.register(contexturePlugin, { handler });
    f.get<{ Params: { id: string } }>('/users/:id', async (req) => {
      await new Promise((r) => setTimeout(r, 1));
      await lookUp(req.params.id);
      return { ctx: Context.idOf(Context.current()!) };
    });
    // Routes of an encapsulated plugin, registered apart from contexturePlugin: its hooks apply too.
    await f.register(
      async (child) => {
        child.get('/items/:item', async () => 'item');
      },
      { prefix: '/api' },
    );
    const base = await serve(f);

    await checkConcurrentRequests(base, consumer);
  });

  it('a thrown error and a rejection: recorded as error with the status Fastify sends', async () => {
    const f = app();
    await f.register(contexturePlugin, { handler });
    f.get('/sync', () => {
      throw new TypeError('bad input');
    });
    f.get('/async', async () => {
      await new Promise((r) => setImmediate(r));
      throw Object.assign(new Error('short and stout'), { statusCode: 418, name: 'TeapotError' });
    });
    f.get('/fine', async () => 'ok');
    const base = await serve(f);

    expect((await fetch(`${base}/sync`)).status).to.equal(500);
    expect((await fetch(`${base}/async`)).status).to.equal(418);
    expect((await fetch(`${base}/fine`)).status).to.equal(200);
    const objs = await objects(consumer, 3);
    expect(byUrl(objs, '/sync').object).to.deep.include({
      status_code: 500,
      error: { name: 'TypeError', message: 'bad input' },
    });
    expect(byUrl(objs, '/async').object).to.deep.include({
      status_code: 418,
      error: { name: 'TeapotError', message: 'short and stout' },
    });
    expect(byUrl(objs, '/fine').object).to.not.have.property('error');
  });

  it('an error after the headers went out: the status sent, aborted, and the handler’s error', async () => {
    const f = app();
    await f.register(contexturePlugin, { handler });
    f.get('/partial', async (_req, reply) => {
      reply.raw.writeHead(200, { 'content-type': 'text/plain' });
      reply.raw.write('partial');
      await new Promise((r) => setTimeout(r, 10));
      throw new Error('database went away');
    });
    const base = await serve(f);

    const req = http.get(`${base}/partial`, { agent: false });
    req.on('error', () => {});
    const closed = new Promise<void>((resolve) => req.once('close', () => resolve()));
    const res = await new Promise<http.IncomingMessage>((resolve) => req.once('response', resolve));
    res.on('error', () => {});
    res.resume();
    await closed;
    const [o] = await objects(consumer, 1);
    expect(o!.object).to.deep.include({
      route: '/partial',
      status_code: 200,
      aborted: true,
      error: { name: 'Error', message: 'database went away' },
    });
  });

  it('a connection closed before the response: finished then with aborted: true and no status', async () => {
    const f = app();
    await f.register(contexturePlugin, { handler });
    const started = deferred();
    const release = deferred();
    f.get('/slow', async () => {
      Context.current()!.waiting = true;
      started.resolve();
      await release.promise;
      return 'late';
    });
    const base = await serve(f);
    cleanup.defer(() => release.resolve());

    await abortedRequest(`${base}/slow`, started.promise);
    const [o] = await objects(consumer, 1);
    expect(o!.complete).to.equal(true);
    expect(o!.object).to.include({ route: '/slow', waiting: true, aborted: true });
    expect(o!.object).to.not.have.property('status_code');
  });

  it('one keep-alive connection: the requests it finished are not aborted, the one it left is; no listener added per request', async () => {
    const listeners = (req: { raw: http.IncomingMessage }, res: http.ServerResponse) => ({
      reqClose: req.raw.listenerCount('close'),
      finish: res.listenerCount('finish'),
      close: res.listenerCount('close'),
    });
    const plainApp = app();
    let plain: ReturnType<typeof listeners> | undefined;
    plainApp.get('/x', async (req, reply) => {
      plain = listeners(req, reply.raw);
      return 'ok';
    });
    const plainBase = await serve(plainApp);
    await fetch(`${plainBase}/x`).then((r) => r.text());

    const f = app();
    await f.register(contexturePlugin, { handler });
    const seen: Array<ReturnType<typeof listeners>> = [];
    f.get('/fast/:n', async (req, reply) => {
      seen.push(listeners(req, reply.raw));
      return 'ok';
    });
    const started = deferred();
    const release = deferred();
    f.get('/slow', async () => {
      started.resolve();
      await release.promise;
      return 'late';
    });
    cleanup.defer(() => release.resolve());
    const base = await serve(f);
    await keepAliveThenAbort(base, started.promise);

    const objs = await objects(consumer, 4);
    for (const n of [0, 1, 2]) {
      expect(byUrl(objs, `/fast/${n}`).object).to.include({ status_code: 200 });
      expect(byUrl(objs, `/fast/${n}`).object).to.not.have.property('aborted');
    }
    expect(byUrl(objs, '/slow').object).to.include({ route: '/slow', aborted: true });
    expect(plain).to.not.equal(undefined);
    expect(seen).to.deep.equal([plain, plain, plain]);
  });

  it('shut down as the example does, requests in flight: each finished, aborted, before the handler closes', async () => {
    const f = app();
    await f.register(contexturePlugin, { handler, bornAfter: 0 });
    const started = deferred();
    const release = deferred();
    cleanup.defer(() => release.resolve());
    f.get('/hang', async () => {
      Context.current()!.hanging = true;
      started.resolve();
      await release.promise;
      return 'late';
    });
    f.get('/stream', async (_req, reply) => {
      const body = new Readable({ read() {} });
      body.push('first');
      void release.promise.then(() => body.push(null));
      return reply.type('text/plain').send(body);
    });
    const base = await serve(f);
    const hang = http.get(`${base}/hang`, { agent: false }).on('error', () => {});
    const stream = await streamedRequest(`${base}/stream`);
    stream.rest.catch(() => {});
    await started.promise;

    // Both born (bornAfter 0): what the end of each enqueues is counted from here.
    const before = handler.stats().enqueued;
    // examples/fastify.js: the handler closed once the app is.
    await f.close();
    const ended = handler.stats().enqueued - before;
    await handler.close();
    hang.destroy();
    expect(ended, 'both ended when the app closed').to.equal(2);
    expect(handler.stats().dropped).to.equal(0);
    const objs = await objects(consumer, 2);
    expect(objs).to.have.length(2);
    expect(byUrl(objs, '/hang').object).to.include({ route: '/hang', hanging: true, aborted: true });
    expect(byUrl(objs, '/hang').object).to.not.have.property('status_code');
    expect(byUrl(objs, '/stream').object).to.include({ route: '/stream', status_code: 200, aborted: true });
  });

  it('pipelined requests (both sent before either response): both finish with their status, neither aborted', async () => {
    const f = app();
    await f.register(contexturePlugin, { handler });
    f.get('/first', async () => {
      await new Promise((r) => setTimeout(r, 20));
      return 'first-done';
    });
    f.get('/second', async () => 'second-done');
    const base = await serve(f);
    await pipelined(base, ['/first', '/second'], ['first-done', 'second-done']);
    const objs = await objects(consumer, 2);
    for (const url of ['/first', '/second']) {
      expect(byUrl(objs, url).object).to.include({ status_code: 200 });
      expect(byUrl(objs, url).object).to.not.have.property('aborted');
    }
  });

  it('inject() (no socket, no HTTP server): each request still finishes with its status', async () => {
    const f = app();
    await f.register(contexturePlugin, { handler });
    f.get('/injected/:n', async (req) => ({ n: (req.params as { n: string }).n }));
    f.get('/fails', async () => {
      throw new Error('nope');
    });
    await f.ready();
    for (const n of [1, 2, 3]) expect((await f.inject({ url: `/injected/${n}` })).statusCode).to.equal(200);
    expect((await f.inject({ url: '/fails' })).statusCode).to.equal(500);
    const objs = await objects(consumer, 4);
    for (const n of [1, 2, 3]) expect(byUrl(objs, `/injected/${n}`).object).to.include({ status_code: 200 });
    expect(byUrl(objs, '/fails').object).to.deep.include({
      status_code: 500,
      error: { name: 'Error', message: 'nope' },
    });
  });

  it('a streamed response the client leaves midway: aborted: true with the status already sent', async () => {
    const f = app();
    await f.register(contexturePlugin, { handler });
    f.get('/leave', async (_req, reply) => {
      const body = new Readable({ read() {} });
      body.push('one,'); // never ended: the client leaves
      return reply.type('text/plain').send(body);
    });
    const base = await serve(f);

    const req = http.get(`${base}/leave`, { agent: false });
    req.on('error', () => {});
    const res = await new Promise<http.IncomingMessage>((resolve) => req.once('response', resolve));
    await new Promise((resolve) => res.once('data', resolve));
    req.destroy();
    const [o] = await objects(consumer, 1);
    expect(o!.complete).to.equal(true);
    expect(o!.object).to.include({ route: '/leave', aborted: true, status_code: 200 });
  });

  it('a streamed response: finished only once its last chunk is sent', async () => {
    const f = app();
    await f.register(contexturePlugin, { handler });
    const firstSeen = deferred();
    f.get('/stream', async (_req, reply) => {
      const ctx = Context.current()!;
      const body = new Readable({ read() {} });
      body.push('one,');
      firstSeen.promise.then(() => {
        // Set after the headers and the first chunk went out: a context finished early would miss it.
        ctx.midstream = true;
        body.push('two');
        body.push(null);
      });
      return reply.type('text/plain').send(body);
    });
    const base = await serve(f);

    const s = await streamedRequest(`${base}/stream`);
    expect(s.first).to.equal('one,');
    firstSeen.resolve();
    expect(await s.rest).to.equal('one,two');
    const [o] = await objects(consumer, 1);
    expect(o!.complete).to.equal(true);
    expect(o!.object).to.include({ midstream: true, status_code: 200, route: '/stream' });
  });

  it('a body sent after the headers: the context is current in the handler after parsing', async () => {
    const f = app();
    await f.register(contexturePlugin, { handler });
    const headersSeen = deferred();
    f.addHook('onRequest', (_req, _reply, next) => {
      headersSeen.resolve();
      next();
    });
    f.post<{ Body: { n: number } }>('/echo', async (req) => {
      const ctx = Context.current();
      if (ctx !== undefined) ctx.n = req.body.n;
      return { ctx: ctx === undefined ? null : Context.idOf(ctx) };
    });
    const base = await serve(f);

    await checkLateBody(base, headersSeen.promise, consumer);
  });

  it('registered twice (in the app, in a plugin, before the app): harmless, one context per request', async () => {
    const f = app();
    await f.register(contexturePlugin, { handler });
    await f.register(contexturePlugin, { handler, headers: ['user-agent'] });
    await f.register(async (child) => {
      await child.register(contexturePlugin, { handler });
      child.get('/inner', async () => 'inner');
    });
    f.get('/outer', async () => 'outer');
    const base = await serve(f);
    // In a plugin first, then in the app that holds it: the plugin's routes pass both hooks.
    const g = app();
    await g.register(async (child) => {
      await child.register(contexturePlugin, { handler });
      child.get('/child', async () => 'child');
    });
    await g.register(contexturePlugin, { handler });
    g.get('/root', async () => 'root');
    const gBase = await serve(g);

    for (const url of [`${base}/outer`, `${base}/inner`, `${gBase}/child`, `${gBase}/root`])
      expect((await fetch(url)).status, url).to.equal(200);
    const objs = await objects(consumer, 4);
    await handler.flush(5_000);
    expect(new Set(consumer.received.map((m) => m.json.obj_id)).size, 'one context per request').to.equal(4);
    for (const url of ['/outer', '/inner', '/child', '/root']) {
      expect(byUrl(objs, url).object).to.include({ route: url, status_code: 200 });
      // The first registration's options.
      expect(byUrl(objs, url).object).to.not.have.property('headers');
    }
  });

  it('options: recorded headers, name and routingKey functions, ignored requests; bad options fail', async () => {
    const f = app();
    await f.register(contexturePlugin, {
      handler,
      headers: ['X-Request-Id', 'x-absent'],
      // Longer than any request here: each ends before its context is due.
      bornAfter: 60_000,
      name: (r) => `shop.${r.route ?? 'none'}`,
      routingKey: (r) => `shop.${r.method.toLowerCase()}`,
      ignore: (req) => req.url === '/healthz' || req.headers['x-probe'] === '1',
    });
    f.get('/healthz', async () => 'ok');
    f.get('/orders/:id', async () => 'order');
    const base = await serve(f);

    expect((await fetch(`${base}/healthz`)).status).to.equal(200);
    expect((await fetch(`${base}/orders/1`, { headers: { 'x-probe': '1' } })).status).to.equal(200);
    const r = await fetch(`${base}/orders/9`, { headers: { 'x-request-id': 'req-1', 'user-agent': 'test' } });
    expect(r.status).to.equal(200);
    const objs = await objects(consumer, 1);
    // The ignored requests were made first on the same handler: their messages would be here.
    expect(new Set(consumer.received.map((m) => m.json.obj_id))).to.deep.equal(new Set([objs[0]!.id]));
    expect(objs[0]!.rkey).to.equal('shop.get');
    // One message for a quick request whose handler asks nothing of its context: all its fields.
    expect(consumer.received.map((m) => m.json.status)).to.deep.equal(['transient']);
    expect(objs[0]!.object).to.deep.include({ url: '/orders/9', headers: { 'x-request-id': 'req-1' } });
    expect(objs[0]!.object).to.include({ method: 'GET', route: '/orders/:id', status_code: 200 });

    // Fastify's own register options, which it passes on to the plugin, are not the plugin's to refuse.
    const paths = app();
    await paths.register(contexturePlugin, {
      handler,
      ignore: ['/healthz'],
      prefix: '/p',
      logLevel: 'warn',
      logSerializers: {},
    } as never);
    paths.get('/healthz', async () => 'ok');
    await paths.ready();
    expect((await paths.inject({ url: '/healthz?full=1' })).statusCode).to.equal(200);

    for (const bad of [{ headers: 'x' }, { name: 'n' }, { ignore: 3 }, { nope: 1 }, { bornAfter: -5 }]) {
      const g = app();
      let err: unknown;
      try {
        await g.register(contexturePlugin, bad as never);
        await g.ready();
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(bad)).to.be.instanceOf(ContextError).with.property('code', 'LC_WEB_INVALID_OPTION');
    }
    // Nothing from the ignored path of the second app either.
    await handler.flush(5_000);
    expect(new Set(consumer.received.map((m) => m.json.obj_id)).size).to.equal(1);

    // An ignore function that throws changes no response: the request is recorded.
    const throwing = app();
    await throwing.register(contexturePlugin, {
      handler,
      ignore: () => {
        throw new Error('ignore boom');
      },
    });
    throwing.get('/ok', async () => 'ok');
    await throwing.ready();
    const res = await throwing.inject({ url: '/ok' });
    expect([res.statusCode, res.body]).to.deep.equal([200, 'ok']);
    await handler.flush(5_000);
    await waitUntil(() => new Set(consumer.received.map((m) => m.json.obj_id)).size === 2, 'the request recorded');
  });

  it('bornAfter: a request still open then shows as born while it runs; 0 sends born as the route matches', async () => {
    const release = deferred();
    const f = app();
    await f.register(contexturePlugin, { handler, bornAfter: 20 });
    f.get('/slow', async () => {
      await release.promise;
      return 'slow';
    });
    const g = app();
    await g.register(contexturePlugin, { handler, bornAfter: 0 });
    g.get('/at-once', async () => 'at once');
    const base = await serve(f);
    const other = await serve(g);

    await checkBornAfter(consumer, `${base}/slow`, `${other}/at-once`, release);
  });
});
