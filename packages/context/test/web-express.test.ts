import http from 'node:http';
import net from 'node:net';
import { createRequire } from 'node:module';
import { sep } from 'node:path';
import { expect } from 'chai';
import express from 'express';
import { Context, ContextError, Handler } from '@contexture/context';
import { contexture } from '@contexture/context/express';
import { amqpUrl, Cleanup, TestConsumer, uniqueName, waitUntil } from '@contexture/test-support';
import {
  abortedRequest,
  checkConcurrentRequests,
  checkLateBody,
  byUrl,
  checkBornAfter,
  deferred,
  keepAliveThenAbort,
  listen,
  pipelined,
  objects,
  streamedRequest,
} from './web-support.js';

describe('Express middleware → RabbitMQ (real Express 5 server, real HTTP, collated from the broker)', () => {
  let cleanup: Cleanup;
  let handler: Handler;
  let consumer: TestConsumer;

  beforeEach(async () => {
    cleanup = new Cleanup();
    const exchange = cleanup.exchange(uniqueName('web-express-x'));
    consumer = await TestConsumer.start({ exchange });
    handler = new Handler({ url: amqpUrl(), exchange, flushInterval: 1, logger: null });
    cleanup.defer(() => consumer.close());
    cleanup.defer(() => handler.close());
  });
  afterEach(() => cleanup.run());

  async function serve(app: express.Express): Promise<string> {
    const server = http.createServer(app);
    const url = await listen(server);
    cleanup.defer(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    return url;
  }

  /** Sets a field from deep down the request's async chain. */
  async function lookUp(id: string): Promise<void> {
    await new Promise((r) => setImmediate(r));
    Context.current()!.user = `u${id}`;
  }

  it('concurrent requests: one context each, named after the route pattern, current down the awaits', async () => {
    const app = express();
    app.use(contexture({ handler }));
    app.get('/users/:id', async (req, res) => {
      await new Promise((r) => setTimeout(r, 1));
      await lookUp(req.params.id);
      res.json({ ctx: Context.idOf(Context.current()!) });
    });
    const api = express.Router();
    api.get('/items/:item', (_req, res) => {
      res.send('item');
    });
    app.use('/api', api);
    const base = await serve(app);

    await checkConcurrentRequests(base, consumer);
  });

  it('routers and apps mounted under patterns: named after the patterns, never the URL values', async () => {
    const app = express();
    app.use(contexture({ handler }));
    const orders = express.Router({ mergeParams: true });
    orders.get('/orders/:orderId', (_req, res) => {
      res.send('order');
    });
    const items = express.Router({ mergeParams: true });
    items.get('/items/:item', (_req, res) => {
      res.send('item');
    });
    orders.use('/orders/:orderId/', items); // a trailing slash, as req.baseUrl drops it
    // A router mounted under a parameter that passes the request on: the next one is not under it.
    const passing = express.Router();
    passing.use((_req, _res, next) => next());
    app.use('/users/:userId', passing);
    app.use('/users/:userId', orders);
    const sub = express();
    sub.get('/status', (_req, res) => {
      res.send('status');
    });
    app.use(['/v/:version', '/w'], sub);
    // contexture() itself inside a router mounted under a parameter: that pattern cannot be known.
    const inner = express.Router();
    inner.use(contexture({ handler }));
    inner.get('/things/:id', (_req, res) => {
      res.send('thing');
    });
    const outer = express();
    outer.use('/t/:tenant', inner);
    const base = await serve(app);
    const outerBase = await serve(outer);

    const long = 'x'.repeat(300);
    for (const path of [
      '/users/1/orders/9',
      `/users/${long}/orders/9`,
      '/users/2/orders/3/items/4',
      '/v/7/status',
      '/w/status',
    ])
      expect((await fetch(`${base}${path}`)).status, path).to.equal(200);
    expect((await fetch(`${outerBase}/t/acme/things/5`)).status).to.equal(200);
    const objs = await objects(consumer, 6);
    for (const [url, route] of [
      ['/users/1/orders/9', '/users/:userId/orders/:orderId'],
      [`/users/${long}/orders/9`, '/users/:userId/orders/:orderId'],
      ['/users/2/orders/3/items/4', '/users/:userId/orders/:orderId/items/:item'],
      ['/v/7/status', '/v/:version/status'],
      ['/w/status', '/w/status'],
      ['/t/acme/things/5', '(mount)/things/:id'],
    ] as const) {
      const o = byUrl(objs, url);
      expect(o.rkey, url).to.equal(`http.GET.${route}`);
      expect(o.object, url).to.include({ route, status_code: 200 });
      expect(o.object, url).to.not.have.property('name_error');
    }
  });

  it('a thrown error, a rejection and next(err): recorded as error with the status Express sends', async () => {
    const app = express();
    app.set('env', 'test'); // finalhandler logs errors outside the test env
    app.use(contexture({ handler }));
    app.get('/sync', () => {
      throw new TypeError('bad input');
    });
    app.get('/async', async () => {
      await new Promise((r) => setImmediate(r));
      throw Object.assign(new Error('short and stout'), { status: 418, name: 'TeapotError' });
    });
    app.get('/next', (_req, _res, next) => next(Object.assign(new RangeError('out of range'), { statusCode: 416 })));
    app.get('/fine', (_req, res) => {
      res.send('ok');
    });
    // An error handler of the app's own that passes errors on: the origin is still what is recorded.
    app.use((err: unknown, _req: express.Request, _res: express.Response, next: express.NextFunction) => next(err));
    const base = await serve(app);

    expect((await fetch(`${base}/sync`)).status).to.equal(500);
    expect((await fetch(`${base}/async`)).status).to.equal(418);
    expect((await fetch(`${base}/next`)).status).to.equal(416);
    expect((await fetch(`${base}/fine`)).status).to.equal(200);
    const objs = await objects(consumer, 4);
    expect(byUrl(objs, '/sync').object).to.deep.include({
      status_code: 500,
      error: { name: 'TypeError', message: 'bad input' },
    });
    expect(byUrl(objs, '/async').object).to.deep.include({
      status_code: 418,
      error: { name: 'TeapotError', message: 'short and stout' },
    });
    expect(byUrl(objs, '/next').object).to.deep.include({
      status_code: 416,
      error: { name: 'RangeError', message: 'out of range' },
    });
    expect(byUrl(objs, '/fine').object).to.not.have.property('error');
  });

  it('a connection closed before the response: finished then with aborted: true and no status', async () => {
    const app = express();
    app.use(contexture({ handler }));
    const started = deferred();
    const release = deferred();
    app.get('/slow', async (_req, res) => {
      Context.current()!.waiting = true;
      started.resolve();
      await release.promise;
      res.end();
    });
    const base = await serve(app);
    cleanup.defer(() => release.resolve());

    await abortedRequest(`${base}/slow`, started.promise);
    const [o] = await objects(consumer, 1);
    expect(o!.complete).to.equal(true);
    expect(o!.object).to.include({ route: '/slow', waiting: true, aborted: true });
    expect(o!.object).to.not.have.property('status_code');
  });

  it('shut down as the example does, requests in flight: each finished, aborted, before the handler closes', async () => {
    const app = express();
    app.use(contexture({ handler, bornAfter: 0 }));
    const started = deferred();
    const release = deferred();
    cleanup.defer(() => release.resolve());
    app.get('/hang', async (_req, res) => {
      Context.current()!.hanging = true;
      started.resolve();
      await release.promise;
      res.end();
    });
    app.get('/stream', async (_req, res) => {
      res.write('first');
      await release.promise;
      res.end();
    });
    const server = http.createServer(app);
    const base = await listen(server);
    const hang = http.get(`${base}/hang`, { agent: false }).on('error', () => {});
    const stream = await streamedRequest(`${base}/stream`);
    stream.rest.catch(() => {});
    await started.promise;

    // Both born (bornAfter 0): what the end of each enqueues is counted from here.
    const before = handler.stats().enqueued;
    let ended = -1;
    // examples/express.js: the handler closed once the server is.
    await new Promise<void>((resolve, reject) => {
      server.close(() => {
        ended = handler.stats().enqueued - before;
        handler.close().then(resolve, reject);
      });
      server.closeAllConnections();
    });
    hang.destroy();
    expect(ended, 'both ended when the server closed').to.equal(2);
    expect(handler.stats().dropped).to.equal(0);
    const objs = await objects(consumer, 2);
    expect(objs).to.have.length(2);
    expect(byUrl(objs, '/hang').object).to.include({ route: '/hang', hanging: true, aborted: true });
    expect(byUrl(objs, '/hang').object).to.not.have.property('status_code');
    expect(byUrl(objs, '/stream').object).to.include({ route: '/stream', status_code: 200, aborted: true });
  });

  it('one keep-alive connection: the requests it finished are not aborted, the one it left is; no listener added per response', async () => {
    // The listeners a plain app's response has in its handler, and what the middleware's has.
    const listeners = (res: http.ServerResponse) => ({
      finish: res.listenerCount('finish'),
      close: res.listenerCount('close'),
    });
    const plainApp = express();
    let plain: ReturnType<typeof listeners> | undefined;
    plainApp.get('/x', (_req, res) => {
      plain = listeners(res);
      res.end();
    });
    const plainBase = await serve(plainApp);
    await fetch(`${plainBase}/x`).then((r) => r.text());

    const app = express();
    app.use(contexture({ handler }));
    const seen: Array<ReturnType<typeof listeners>> = [];
    app.get('/fast/:n', (_req, res) => {
      seen.push(listeners(res));
      res.send('ok');
    });
    const started = deferred();
    const release = deferred();
    app.get('/slow', async (_req, res) => {
      started.resolve();
      await release.promise;
      res.end();
    });
    cleanup.defer(() => release.resolve());
    const base = await serve(app);
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

  it('pipelined requests (both sent before either response): both finish with their status, neither aborted', async () => {
    const app = express();
    app.use(contexture({ handler }));
    app.get('/first', async (_req, res) => {
      await new Promise((r) => setTimeout(r, 20));
      res.send('first-done');
    });
    app.get('/second', (_req, res) => {
      res.send('second-done');
    });
    const base = await serve(app);
    await pipelined(base, ['/first', '/second'], ['first-done', 'second-done']);
    const objs = await objects(consumer, 2);
    for (const url of ['/first', '/second']) {
      expect(byUrl(objs, url).object).to.include({ status_code: 200 });
      expect(byUrl(objs, url).object).to.not.have.property('aborted');
    }
  });

  it('a pipelined response queued behind one the connection lost: aborted, and no status', async () => {
    const app = express();
    app.use(contexture({ handler }));
    const answered = deferred();
    const release = deferred();
    cleanup.defer(() => release.resolve());
    app.get('/first', async (_req, res) => {
      await release.promise;
      res.send('first-done');
    });
    app.get('/second', (_req, res) => {
      res.send('second-done'); // waits behind /first: nothing reaches the client
      answered.resolve();
    });
    const base = await serve(app);

    const { hostname, port } = new URL(base);
    const socket = net.connect(Number(port), hostname);
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(['/first', '/second'].map((p) => `GET ${p} HTTP/1.1\r\nHost: ${hostname}\r\n\r\n`).join(''));
    await answered.promise;
    socket.destroy();
    await closed;
    const objs = await objects(consumer, 2);
    for (const url of ['/first', '/second']) {
      expect(byUrl(objs, url).object, url).to.include({ route: url, aborted: true });
      expect(byUrl(objs, url).object, url).to.not.have.property('status_code');
    }
  });

  it('a streamed response the client leaves midway: aborted: true with the status already sent', async () => {
    const app = express();
    app.use(contexture({ handler }));
    app.get('/leave', (_req, res) => {
      res.write('one,');
      // never ended: the client leaves
    });
    const base = await serve(app);

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
    const app = express();
    app.use(contexture({ handler }));
    const firstSeen = deferred();
    app.get('/stream', async (_req, res) => {
      res.write('one,');
      await firstSeen.promise;
      // Set after the headers and the first chunk went out: a context finished early would miss it.
      Context.current()!.midstream = true;
      res.end('two');
    });
    const base = await serve(app);

    const s = await streamedRequest(`${base}/stream`);
    expect(s.first).to.equal('one,');
    firstSeen.resolve();
    expect(await s.rest).to.equal('one,two');
    const [o] = await objects(consumer, 1);
    expect(o!.complete).to.equal(true);
    expect(o!.object).to.include({ midstream: true, status_code: 200, route: '/stream' });
  });

  it('after a body parser that resumes from the stream, the context is still current in the route', async () => {
    const app = express();
    app.use(contexture({ handler }));
    const headersSeen = deferred();
    app.use((_req, _res, next) => {
      headersSeen.resolve();
      next();
    });
    // A parser of its own, as many are: it resumes the chain from the request stream's 'end'
    // (express.json() binds its callback to the async chain; this one does not).
    app.use((req, _res, next) => {
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (text += c));
      req.on('end', () => {
        req.body = JSON.parse(text);
        next();
      });
    });
    app.post('/echo', (req, res) => {
      const ctx = Context.current();
      if (ctx !== undefined) ctx.n = (req.body as { n: number }).n;
      res.json({ ctx: ctx === undefined ? null : Context.idOf(ctx) });
    });
    const base = await serve(app);

    // The body arrives in its own packet, once the server is waiting for it: the parser then resumes
    // the chain from the socket's callback, not from the middleware's async chain.
    await checkLateBody(base, headersSeen.promise, consumer);
  });

  it('asked for before routing: made then, named unrouted, its route field set once matched', async () => {
    const app = express();
    app.use(contexture({ handler }));
    app.use((_req, _res, next) => {
      Context.current()!.auth = 'ok';
      next();
    });
    app.get('/users/:id', (_req, res) => {
      Context.current()!.seen = true;
      res.send('user');
    });
    const base = await serve(app);

    expect((await fetch(`${base}/users/3`)).status).to.equal(200);
    const [o] = await objects(consumer, 1);
    expect(o!.rkey).to.equal('http.GET.unrouted');
    expect(o!.object).to.include({ auth: 'ok', seen: true, route: '/users/:id', status_code: 200 });
  });

  it('a name function that throws or gives a refused key: the default name, the reason in name_error', async () => {
    const app = express();
    app.get(
      '/throws',
      contexture({
        handler,
        name: () => {
          throw new Error('no name for you');
        },
      }),
      (_req, res) => {
        res.send('a');
      },
    );
    app.get('/reserved', contexture({ handler, name: () => 'contexture.heartbeat' }), (_req, res) => {
      res.send('b');
    });
    const base = await serve(app);

    expect((await fetch(`${base}/throws`)).status).to.equal(200);
    expect((await fetch(`${base}/reserved`)).status).to.equal(200);
    const objs = await objects(consumer, 2);
    const thrown = byUrl(objs, '/throws');
    expect(thrown.rkey).to.equal('http.GET./throws');
    expect(thrown.object).to.include({ name_error: 'no name for you', status_code: 200 });
    const reserved = byUrl(objs, '/reserved');
    expect(reserved.rkey).to.equal('http.GET./reserved');
    expect(reserved.object.name_error)
      .to.be.a('string')
      .and.match(/contexture\./);
  });

  it('a name or routingKey function that gives no key, or an ignore function that throws: the response is unchanged and the request recorded', async () => {
    const app = express();
    app.get('/none', contexture({ handler, name: () => undefined as never }), (_req, res) => {
      res.send('a');
    });
    app.get('/empty', contexture({ handler, routingKey: () => '' }), (_req, res) => {
      res.send('b');
    });
    const ignore = () => {
      throw new Error('ignore boom');
    };
    app.get('/ignore', contexture({ handler, ignore }), (_req, res) => {
      res.send('c');
    });
    app.use((_err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(418).send('handled');
    });
    const base = await serve(app);

    for (const [path, body] of [
      ['/none', 'a'],
      ['/empty', 'b'],
      ['/ignore', 'c'],
    ]) {
      const r = await fetch(`${base}${path}`);
      expect(r.status, path).to.equal(200);
      expect(await r.text(), path).to.equal(body);
    }
    const objs = await objects(consumer, 3);
    expect(byUrl(objs, '/none').rkey).to.equal('http.GET./none');
    expect(byUrl(objs, '/none').object.name_error).to.equal('name gave undefined, not a routing key');
    expect(byUrl(objs, '/empty').rkey).to.equal('http.GET./empty');
    expect(byUrl(objs, '/empty').object.name_error).to.equal('routingKey gave an empty string, not a routing key');
    expect(byUrl(objs, '/ignore').object).to.include({ status_code: 200 });
    expect(() => contexture({ handler: {} as never }))
      .to.throw(ContextError, /handler must be a Handler/)
      .with.property('code', 'LC_WEB_INVALID_OPTION');
  });

  it('options: recorded headers, name and routingKey functions, ignored paths; bad options throw', async () => {
    const app = express();
    app.get('/healthz', contexture({ handler, ignore: ['/healthz'] }), (_req, res) => {
      res.send('ok');
    });
    app.get('/probe', contexture({ handler, ignore: (req) => req.headers['x-probe'] === '1' }), (_req, res) => {
      res.send('ok');
    });
    app.use(
      contexture({
        handler,
        headers: ['X-Request-Id', 'x-absent', 'constructor', '__proto__'],
        // Longer than any request here: each ends before its context is due.
        bornAfter: 60_000,
        name: (r) => `shop.${r.route ?? 'none'}`,
        routingKey: (r) => `shop.${r.method.toLowerCase()}`,
      }),
    );
    // A second contexture() in front of a route adds no second context.
    app.get('/orders/:id', contexture({ handler }), (_req, res) => {
      res.send('order');
    });
    const base = await serve(app);

    expect((await fetch(`${base}/healthz`)).status).to.equal(200);
    expect((await fetch(`${base}/probe`, { headers: { 'x-probe': '1' } })).status).to.equal(200);
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
    expect(objs[0]!.object.elapsed).to.be.a('number');

    const bads: unknown[] = [{ headers: 'x' }, { name: 'n' }, { ignore: 3 }, { ignore: [1] }, { nope: 1 }, 'x'];
    bads.push({ bornAfter: -1 }, { bornAfter: '5' }, { bornAfter: Number.NaN });
    for (const bad of bads) {
      expect(() => contexture(bad as never), JSON.stringify(bad))
        .to.throw(ContextError)
        .with.property('code', 'LC_WEB_INVALID_OPTION');
    }
  });

  it('an absolute-form request target: its password masked, its path matched by ignore', async () => {
    const named: string[] = [];
    const app = express();
    app.use(
      contexture({
        handler,
        ignore: ['/healthz'],
        name: (r) => {
          named.push(r.url);
          return `http.${r.method}.${r.route}`;
        },
      }),
    );
    app.get('/healthz', (_req, res) => {
      res.send('healthy');
    });
    app.get('/users/:id', (req, res) => {
      res.send(`user-${req.params.id}`);
    });
    const base = await serve(app);

    await pipelined(
      base,
      ['http://admin:hunter2@example.com/users/1?x=1', 'http://example.com/healthz?full=1', '/users/2'],
      ['user-1', 'healthy', 'user-2'],
    );
    const objs = await objects(consumer, 2);
    await handler.flush(5_000);
    expect(new Set(consumer.received.map((m) => m.json.obj_id)).size, 'the health check ignored').to.equal(2);
    expect(byUrl(objs, 'http://admin:***@example.com/users/1?x=1').object).to.include({ route: '/users/:id' });
    expect(byUrl(objs, '/users/2').object).to.include({ route: '/users/:id' });
    expect(consumer.received.some((m) => m.body.toString().includes('hunter2'))).to.equal(false);
    expect(named.some((u) => u.includes('hunter2'))).to.equal(false);
  });

  it('bornAfter: a request still open then shows as born while it runs; 0 sends born as the route matches', async () => {
    const release = deferred();
    const app = express();
    app.get('/slow', contexture({ handler, bornAfter: 20 }), async (_req, res) => {
      await release.promise;
      res.send('slow');
    });
    app.get('/at-once', contexture({ handler, bornAfter: 0 }), (_req, res) => {
      res.send('at once');
    });
    const base = await serve(app);

    await checkBornAfter(consumer, `${base}/slow`, `${base}/at-once`, release);
  });

  it('req.route reads as Express sets it; the middleware adds no property of its own to the request or response', async () => {
    const app = express();
    app.use(contexture({ handler }));
    let seen: { route: unknown; reqKeys: PropertyKey[]; resKeys: PropertyKey[] } | undefined;
    const plain = express();
    let plainKeys: { reqKeys: PropertyKey[]; resKeys: PropertyKey[] } | undefined;
    app.get('/things/:id', (req, res) => {
      res.on('finish', () => {
        seen = { route: req.route?.path, reqKeys: Reflect.ownKeys(req), resKeys: Reflect.ownKeys(res) };
      });
      res.send('thing');
    });
    plain.get('/things/:id', (req, res) => {
      res.on('finish', () => {
        plainKeys = { reqKeys: Reflect.ownKeys(req), resKeys: Reflect.ownKeys(res) };
      });
      res.send('thing');
    });
    const base = await serve(app);
    const plainBase = await serve(plain);

    expect((await fetch(`${base}/things/1`)).status).to.equal(200);
    expect((await fetch(`${plainBase}/things/1`)).status).to.equal(200);
    await objects(consumer, 1);
    await waitUntil(() => seen !== undefined && plainKeys !== undefined, 'both responses finished', 5000);
    expect(seen!.route).to.equal('/things/:id');
    const ours = (keys: PropertyKey[]) => keys.filter((k) => typeof k === 'symbol' && /contexture/.test(String(k)));
    expect(ours(seen!.reqKeys)).to.deep.equal([]);
    expect(ours(seen!.resKeys)).to.deep.equal([]);
    // The same own properties as without the middleware, but for the route the router assigns.
    const named = (keys: PropertyKey[]) => keys.filter((k) => typeof k === 'string' && k !== 'route').sort();
    expect(named(seen!.reqKeys)).to.deep.equal(named(plainKeys!.reqKeys));
    expect(named(seen!.resKeys)).to.deep.equal(named(plainKeys!.resKeys));
  });

  it('an app of another copy of Express called as a handler: its routes heard, from the first request on', async () => {
    const other = anotherExpress();
    expect(other.request, 'really another copy').to.not.equal(express.request);
    const app = express();
    app.use(contexture({ handler }));
    const sub = other();
    sub.get('/items/:item', (_req, res) => {
      res.send('item');
    });
    sub.get('/asks/:n', (_req, res) => {
      Context.current()!.asked = true;
      res.send('asked');
    });
    sub.get('/slow/:n', async (_req, res) => {
      await new Promise((r) => setTimeout(r, 40));
      res.send('slow');
    });
    // Called, not mounted: a mounted app's requests inherit the parent's prototypes, this one's do not.
    app.use('/other', (req, res, next) => sub(req, res, next));
    const base = await serve(app);

    // One after another: the first is heard as it ends, the next ones as they are routed.
    for (const path of ['/other/items/1', '/other/items/2', '/other/asks/3', '/other/slow/4'])
      expect((await fetch(`${base}${path}`)).status).to.equal(200);
    const objs = await objects(consumer, 4);
    for (const [url, route] of [
      ['/other/items/1', '/other/items/:item'],
      ['/other/items/2', '/other/items/:item'],
      ['/other/asks/3', '/other/asks/:n'],
      ['/other/slow/4', '/other/slow/:n'],
    ] as const) {
      const o = byUrl(objs, url);
      expect(o.rkey, url).to.equal(`http.GET.${route}`);
      expect(o.object, url).to.include({ route, status_code: 200 });
    }
    expect(byUrl(objs, '/other/asks/3').object).to.include({ asked: true });
  });

  it('asked for after its quick request ended: the context that went as one transient message, same id, later fields as updates', async () => {
    const later = deferred<string>();
    const app = express();
    app.use(contexture({ handler, bornAfter: 60_000 }));
    app.get('/after/:id', (_req, res) => {
      res.on('finish', () => {
        setImmediate(() => {
          const ctx = Context.current()!;
          ctx.later = true;
          later.resolve(String(ctx));
        });
      });
      res.send('done');
    });
    const base = await serve(app);

    expect((await fetch(`${base}/after/1`)).status).to.equal(200);
    expect(await later.promise).to.equal('http.GET./after/:id');
    await waitUntil(() => consumer.received.length >= 2, 'the transient message and the update', 5000);
    const [first, update] = consumer.received;
    expect(first!.json).to.include({ status: 'transient', seq: 0 });
    expect(first!.json.obj).to.include({ route: '/after/:id', status_code: 200 });
    expect(update!.json.obj_id).to.equal(first!.json.obj_id);
    expect(update!.json).to.include({ seq: 1 });
    expect(update!.json).to.not.have.property('status');
    expect(update!.json.obj).to.deep.equal({ later: true });
    expect(consumer.received).to.have.length(2);
  });
});

/**
 * A second copy of Express, as a process that loads it from two places has: its modules loaded
 * anew (with their own `request` and `response` prototypes), the module cache then put back.
 */
function anotherExpress(): typeof express {
  const require = createRequire(import.meta.url);
  const mark = `${sep}node_modules${sep}express${sep}`;
  const saved = Object.entries(require.cache).filter(([file]) => file.includes(mark));
  for (const [file] of saved) delete require.cache[file];
  try {
    return require('express') as typeof express;
  } finally {
    for (const file of Object.keys(require.cache)) if (file.includes(mark)) delete require.cache[file];
    for (const [file, mod] of saved) require.cache[file] = mod;
  }
}
