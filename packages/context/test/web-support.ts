import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { type CollatedObject, Collator, decodeBody, isMalformed } from '@contexture/context/protocol';
import { expect } from 'chai';
import { type TestConsumer, waitUntil } from '@contexture/test-support';

/** The objects the messages received so far fold into (finished ones only), in the order they completed. */
export function collate(consumer: TestConsumer): CollatedObject[] {
  const out: CollatedObject[] = [];
  const c = new Collator({ onObject: (o) => out.push(o) });
  for (const r of consumer.received) {
    for (const m of decodeBody(r.body, r.properties.contentType)) {
      if (isMalformed(m)) throw new Error(`malformed message on the bus: ${m.kind}`);
      c.add(m, { rkey: r.routingKey, headers: r.properties.headers });
    }
  }
  return out;
}

/** Waits for `n` finished objects, and returns them. */
export async function objects(consumer: TestConsumer, n: number, what = `${n} objects`): Promise<CollatedObject[]> {
  let got: CollatedObject[] = [];
  await waitUntil(() => (got = collate(consumer)).length >= n, what, 15_000);
  return got;
}

/** The URL of a server listening on a free loopback port. */
export async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A promise with its resolve function. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Sends a request and destroys it once `started` resolves (the server is in the handler): the
 * connection closes before the response.
 */
export async function abortedRequest(url: string, started: Promise<void>): Promise<void> {
  const req = http.request(url, { agent: false });
  const closed = new Promise<void>((resolve) => req.once('close', () => resolve()));
  req.on('error', () => {});
  req.end();
  await started;
  req.destroy();
  await closed;
}

/**
 * A streamed request: resolves with the first chunk's text once it arrived, and `rest` with the
 * whole body once the response ended.
 */
export async function streamedRequest(url: string): Promise<{ first: string; rest: Promise<string> }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        let first = true;
        const rest = new Promise<string>((done, fail) => {
          res.on('end', () => done(body));
          res.on('error', fail);
        });
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
          if (first) {
            first = false;
            resolve({ first: chunk, rest });
          }
        });
      })
      .on('error', reject);
  });
}

/**
 * Three requests to `${base}/fast/N` one after another on one keep-alive connection, then one to
 * `${base}/slow` on the same connection, which is destroyed once `started` resolves: the last
 * request is aborted, the first three are not.
 */
export async function keepAliveThenAbort(base: string, started: Promise<void>): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const sockets = new Set<unknown>();
  try {
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => {
        http
          .get(`${base}/fast/${i}`, { agent }, (res) => {
            sockets.add(res.socket);
            res.resume();
            res.on('end', () => resolve());
          })
          .on('error', reject);
      });
    }
    if (sockets.size !== 1) throw new Error(`the three requests took ${sockets.size} connections, not one`);
    const req = http.get(`${base}/slow`, { agent });
    req.on('error', () => {});
    const closed = new Promise<void>((resolve) => req.once('close', () => resolve()));
    await started;
    req.destroy();
    await closed;
  } finally {
    agent.destroy();
  }
}

/**
 * Sends GET requests for `paths` pipelined: all in one write on one connection, before any
 * response. Resolves with the raw text received once every one of `bodies` is in it, then closes.
 */
export async function pipelined(base: string, paths: string[], bodies: string[]): Promise<string> {
  const { hostname, port } = new URL(base);
  const socket = net.connect(Number(port), hostname);
  let text = '';
  socket.setEncoding('utf8');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.on('data', (chunk: string) => {
        text += chunk;
        if (bodies.every((b) => text.includes(b))) resolve();
      });
      socket.write(paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: ${hostname}\r\n\r\n`).join(''));
    });
  } finally {
    socket.destroy();
  }
  return text;
}

/** The object of `objs` whose URL is `url`. */
export function byUrl(objs: CollatedObject[], url: string): CollatedObject {
  const o = objs.find((x) => x.object.url === url);
  if (o === undefined) throw new Error(`no object for ${url} among ${objs.map((x) => x.object.url).join(', ')}`);
  return o;
}

/**
 * What `bornAfter` does, the same under both frameworks: `slow` (a GET of /slow, whose handler
 * waits until `release`, under a bornAfter of 20 ms) is born while its handler waits, named after
 * its route, and not finished; released, it finishes; `atOnce` (a GET of /at-once, bornAfter 0) is
 * born and finished too: two messages each.
 */
export async function checkBornAfter(
  consumer: TestConsumer,
  slowUrl: string,
  atOnceUrl: string,
  release: { resolve: () => void },
): Promise<void> {
  const slow = fetch(slowUrl);
  await waitUntil(() => consumer.received.some((m) => m.json.status === 'born'), 'born of the open request', 5000);
  const born = consumer.received.find((m) => m.json.status === 'born')!;
  expect(born.routingKey).to.equal('http.GET./slow');
  expect(born.json.obj).to.include({ method: 'GET', route: '/slow', url: '/slow' });
  expect(consumer.received.some((m) => m.json.status === 'finished')).to.equal(false);
  release.resolve();
  expect((await slow).status).to.equal(200);
  expect((await fetch(atOnceUrl)).status).to.equal(200);

  const objs = await objects(consumer, 2);
  const bySlow = byUrl(objs, '/slow');
  expect(bySlow.object).to.include({ route: '/slow', status_code: 200 });
  expect(bySlow.object.elapsed).to.be.at.least(0.02);
  const statuses = (id: string) => consumer.received.filter((m) => m.json.obj_id === id).map((m) => m.json.status);
  expect(statuses(bySlow.id)).to.deep.equal(['born', 'finished']);
  expect(statuses(byUrl(objs, '/at-once').id)).to.deep.equal(['born', 'finished']);
}

/**
 * The requests of the concurrency tests of both frameworks, and what they must give: 20 requests
 * at once to `/users/:id` (whose handler sets `user` from deep in its async chain and answers with
 * the id of the context current in it), one to `/api/items/:item` (a route of a nested router or
 * plugin) and one to `/nowhere` (no route): 22 objects, each named after its route, the current
 * context in each handler its request's.
 */
export async function checkConcurrentRequests(base: string, consumer: TestConsumer): Promise<void> {
  const ids = Array.from({ length: 20 }, (_, i) => String(i));
  const replies = await Promise.all(
    ids.map(async (id) => {
      const r = await fetch(`${base}/users/${id}?q=${id}`);
      return { id, body: (await r.json()) as { ctx: string } };
    }),
  );
  expect((await fetch(`${base}/api/items/7`)).status).to.equal(200);
  expect((await fetch(`${base}/nowhere`)).status).to.equal(404);

  const objs = await objects(consumer, 22);
  expect(objs).to.have.length(22);
  for (const { id, body } of replies) {
    const o = byUrl(objs, `/users/${id}?q=${id}`);
    expect(o.id, 'the context current in the handler is the request’s').to.equal(body.ctx);
    expect(o.rkey).to.equal('http.GET./users/:id');
    expect(o.complete).to.equal(true);
    const { elapsed, ...rest } = o.object;
    expect(rest).to.deep.equal({
      method: 'GET',
      url: `/users/${id}?q=${id}`,
      route: '/users/:id',
      user: `u${id}`,
      status_code: 200,
    });
    expect(elapsed).to.be.a('number').and.at.least(0);
  }
  const item = byUrl(objs, '/api/items/7');
  expect(item.rkey).to.equal('http.GET./api/items/:item');
  expect(item.object).to.include({ route: '/api/items/:item', status_code: 200 });
  const missing = byUrl(objs, '/nowhere');
  expect(missing.rkey).to.equal('http.GET.unrouted');
  expect(missing.object).to.include({ status_code: 404 });
  expect(missing.object).to.not.have.property('route');
}

/**
 * The late-body tests of both frameworks: POSTs `{"n":7}` to `/echo` with the body sent only once
 * `headersSeen` (the server is waiting for it), so that the body parser resumes the chain from the
 * socket's callback; the handler sets `n` on the current context and answers with its id, which
 * must be the request's.
 */
export async function checkLateBody(base: string, headersSeen: Promise<void>, consumer: TestConsumer): Promise<void> {
  const body = JSON.stringify({ n: 7 });
  const req = http.request(`${base}/echo`, {
    method: 'POST',
    agent: false,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
  });
  const reply = new Promise<string>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
  });
  req.flushHeaders();
  await headersSeen;
  req.end(body);
  const got = JSON.parse(await reply) as { ctx: string | null };
  const [o] = await objects(consumer, 1);
  expect(got.ctx).to.equal(o!.id);
  expect(o!.object).to.include({ method: 'POST', route: '/echo', n: 7, status_code: 200 });
}
