import { spawn } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Cleanup, redisUrl, uniqueName, waitUntil } from '@contexture/test-support';
import { parseJson } from '@contexture/context/protocol';
import { StoreWebServer } from '../src/daemon/store-web.js';
import { RedisContextStore } from '../src/store/index.js';

/** The real bin, as npm links it (dist/test → the package's bin/). */
const BIN = fileURLToPath(new URL('../../bin/contexture-store.js', import.meta.url));

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** One request; `host` replaces the Host header. */
function request(url: string, options: { method?: string; host?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: options.method ?? 'GET', headers: options.host === undefined ? {} : { host: options.host } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    req.on('error', reject).end();
  });
}

async function getJson(url: string): Promise<{ status: number; body: any }> {
  const a = await request(url);
  expect(a.headers['content-type']).to.equal('application/json');
  // Plain JSON, as the browser's JSON.parse reads it.
  return { status: a.status, body: JSON.parse(a.text) };
}

interface SseEvent {
  event: string;
  data: any;
}

/** Follows `/events`: the events as they come, and whether the server ended the stream. */
function follow(url: string) {
  const events: SseEvent[] = [];
  const state = { status: 0, ended: false, body: '' };
  const req = http.get(url, (res) => {
    state.status = res.statusCode ?? 0;
    res.setEncoding('utf8');
    let buffer = '';
    res.on('data', (d: string) => {
      state.body += d;
      buffer += d;
      let i = buffer.indexOf('\n\n');
      while (i >= 0) {
        const block = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) });
        i = buffer.indexOf('\n\n');
      }
    });
    res.on('end', () => (state.ended = true));
    res.on('close', () => (state.ended = true));
  });
  req.on('error', () => (state.ended = true));
  return { events, state, close: () => req.destroy() };
}

describe('contexture-store web: the HTTP side (Redis)', function () {
  this.timeout(30_000);
  const cleanup = new Cleanup();
  let store: RedisContextStore;
  let url: string;
  let server: StoreWebServer;

  beforeEach(async () => {
    const prefix = `${uniqueName('store-web')}:`;
    cleanup.redisKeys(`${prefix}*`);
    store = new RedisContextStore({ redis: redisUrl(), prefix });
    cleanup.defer(() => store.close());
    server = new StoreWebServer({ store, host: '127.0.0.1', port: 0, source: 'the test store', maxRows: 3 });
    url = await server.listen();
    cleanup.defer(() => server.close());
  });
  afterEach(() => cleanup.run());

  async function fill(): Promise<void> {
    const t = 1_700_000_000.5;
    await store.applyMany(
      [
        { obj_id: 'order-1', obj: { n: 1 }, status: 'born', seq: 0, time_in: t },
        { obj_id: 'order-2', obj: { n: 2 }, status: 'born', seq: 0, time_in: t },
        { obj_id: 'order-2', obj: { ok: true }, status: 'finished', seq: 1, time_in: t + 1 },
        { obj_id: 'ping-1', obj: { once: true }, status: 'transient', seq: 0, time_in: t },
      ].map((message) => ({
        message: message as never,
        meta: { rkey: message.obj_id.startsWith('ping') ? 'web.ping' : 'web.order', headers: {} },
      })),
    );
    await store.set('direct', { a: 1 });
    await store.set('other', { b: 2 });
  }

  it('lists the contexts with status, version, routing key and update time, filtered, capped with a count of the rest', async () => {
    await fill();
    const all = await getJson(`${url}api/contexts`);
    expect(all.status).to.equal(200);
    expect(all.body.items).to.have.length(3);
    expect(all.body.more).to.equal(2);
    expect(all.body.moreAtLeast).to.equal(false);

    const orders = await getJson(`${url}api/contexts?q=order`);
    const byId = new Map<string, any>(orders.body.items.map((r: any) => [r.id, r]));
    expect([...byId.keys()].sort()).to.deep.equal(['order-1', 'order-2']);
    expect(byId.get('order-2')).to.include({ status: 'finished', version: 2, rkey: 'web.order' });
    expect(byId.get('order-1')).to.include({ status: 'born', version: 1, rkey: 'web.order' });
    expect(byId.get('order-1').updated_at).to.be.a('number');
    expect(orders.body.more).to.equal(0);

    // A routing key substring finds the context as well.
    const pings = await getJson(`${url}api/contexts?q=web.ping`);
    expect(pings.body.items.map((r: any) => r.id)).to.deep.equal(['ping-1']);
    const finished = await getJson(`${url}api/contexts?status=finished`);
    expect(finished.body.items.map((r: any) => r.id)).to.deep.equal(['order-2']);
    const none = await getJson(`${url}api/contexts?status=none`);
    expect(none.body.items.map((r: any) => r.id).sort()).to.deep.equal(['direct', 'other']);
    const bad = await getJson(`${url}api/contexts?status=gone`);
    expect(bad.status).to.equal(400);
    expect(bad.body.error).to.match(/status must be one of/);
  });

  it("gives a context's fields and its delta history per version; 404 for none, 400 for a bad id", async () => {
    await store.set('c1', { a: 1, b: { x: 1 }, gone: 'soon' });
    await store.assign('c1', { a: 2, c: 'new' }, ['gone']);
    // Values JSON alone cannot carry reach the browser as strings.
    await store.apply(parseJson('{"obj_id":"c1","obj":{"nan":NaN,"big":12345678901234567890},"seq":0}') as never);
    const { status, body } = await getJson(`${url}api/context?id=c1`);
    expect(status).to.equal(200);
    expect(body.context).to.include({ id: 'c1', version: 3 });
    expect(body.context.context).to.deep.equal({
      a: 2,
      b: { x: 1 },
      big: '12345678901234567890',
      c: 'new',
      nan: 'NaN',
    });
    expect(body.history.map((e: any) => e.version)).to.deep.equal([1, 2, 3]);
    expect(body.history[1].delta).to.deep.equal({
      a: { action: 'modified', old_value: 1, value: 2 },
      c: { action: 'added', value: 'new' },
      gone: { action: 'removed', old_value: 'soon' },
    });

    const missing = await getJson(`${url}api/context?id=nope`);
    expect(missing.status).to.equal(404);
    expect(missing.body.error).to.equal('no context "nope"');
    const empty = await getJson(`${url}api/context?id=`);
    expect(empty.status).to.equal(400);
    expect(empty.body.error).to.match(/non-empty/);

    // Foreign data under the prefix, nested too deep to send: a 500 saying so, not an empty 200.
    const keys = store.keys('deep');
    await store.redis.hset(keys.state, '.x', `0:${'['.repeat(5000)}${']'.repeat(5000)}`, '#v', '1');
    const deep = await getJson(`${url}api/context?id=deep`);
    expect(deep.status).to.equal(500);
    expect(deep.body.error).to.be.a('string').and.not.equal('');
  });

  it("streams a context's changes as Server-Sent Events once the watch is live, and its deletion", async () => {
    await store.set('live', { n: 1 });
    const f = follow(`${url}events?id=live`);
    cleanup.defer(() => f.close());
    await waitUntil(() => f.events.some((e) => e.event === 'ready'), 'the ready event');
    expect(f.state.status).to.equal(200);
    await store.update('live', { n: 2, m: 'x' });
    await waitUntil(() => f.events.some((e) => e.event === 'change'), 'the change event');
    const change = f.events.find((e) => e.event === 'change')!.data;
    expect(change).to.include({ type: 'change', id: 'live', version: 2 });
    expect(change.delta).to.deep.equal({
      m: { action: 'added', value: 'x' },
      n: { action: 'modified', old_value: 1, value: 2 },
    });
    await store.delete('live');
    await waitUntil(() => f.events.some((e) => e.event === 'deleted'), 'the deleted event');
    expect(f.events.find((e) => e.event === 'deleted')!.data).to.deep.equal({ type: 'deleted', id: 'live' });

    // Closing the server ends the stream.
    await server.close();
    await waitUntil(() => f.state.ended, 'the stream to end');
  });

  it('holds a stream back for a page that does not read, dropping the oldest events past its queue', async () => {
    const slow = new StoreWebServer({ store, host: '127.0.0.1', port: 0, source: 's', maxQueue: 5 });
    const slowUrl = await slow.listen();
    cleanup.defer(() => slow.close());
    const events: number[] = [];
    let res!: http.IncomingMessage;
    let ready = false;
    const req = http.get(`${slowUrl}events?id=big`, (r) => {
      res = r;
      r.setEncoding('utf8');
      let buffer = '';
      r.on('data', (d: string) => {
        buffer += d;
        // Whole events only: a chunk may end anywhere.
        let i = buffer.indexOf('\n\n');
        while (i >= 0) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          if (block.startsWith('event: ready')) ready = true;
          const data = /^event: change\ndata: (.*)$/m.exec(block)?.[1];
          if (data !== undefined) events.push(JSON.parse(data).version as number);
          i = buffer.indexOf('\n\n');
        }
      });
    });
    cleanup.defer(() => req.destroy());
    await waitUntil(() => ready, 'the ready event');
    res.pause();
    // Far more than the socket buffers hold: 400 changes of 64 KiB each.
    const blob = 'x'.repeat(64 * 1024);
    for (let v = 1; v <= 400; v++) await store.set('big', { blob: `${v}${blob}` });
    res.resume();
    await waitUntil(() => events.at(-1) === 400, 'the last version', 20_000);
    expect(events.length).to.be.below(400);
    // Versions in order, with the gap the dropped ones left.
    expect(events).to.deep.equal([...events].sort((a, b) => a - b));
    expect(events.some((v, i) => i > 0 && v - events[i - 1]! > 1)).to.equal(true);
  });

  it('refuses a stream for a bad id, and more streams than it follows at once', async () => {
    const bad = await getJson(`${url}events?id=`);
    expect(bad.status).to.equal(400);
    const small = new StoreWebServer({ store, host: '127.0.0.1', port: 0, source: 's', maxWatchers: 1 });
    const smallUrl = await small.listen();
    cleanup.defer(() => small.close());
    const first = follow(`${smallUrl}events?id=a`);
    cleanup.defer(() => first.close());
    await waitUntil(() => first.events.some((e) => e.event === 'ready'), 'the first stream');
    const second = await getJson(`${smallUrl}events?id=b`);
    expect(second.status).to.equal(503);
    expect(second.body.error).to.match(/close one/);
    // A closed page frees its place.
    first.close();
    await waitUntil(async () => {
      const again = follow(`${smallUrl}events?id=b`);
      try {
        await waitUntil(() => again.state.status !== 0, 'an answer');
        return again.state.status === 200;
      } finally {
        again.close();
      }
    }, 'the place to be freed');
  });

  it('serves the page with a policy that runs only its own script; answers only to loopback names; GET only', async () => {
    const page = await request(url);
    expect(page.status).to.equal(200);
    expect(page.headers['content-type']).to.equal('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).to.include("script-src 'self'");
    expect(page.text).to.include('<script type="module" src="/app.js"></script>');
    for (const file of ['app.js', 'style.css', 'page.js', 'page.css']) {
      const answer = await request(`${url}${file}`);
      expect(answer.status, file).to.equal(200);
      expect(answer.headers['content-type'], file).to.match(file.endsWith('.js') ? /^text\/javascript/ : /^text\/css/);
    }
    // The shared module and style sheet, from @contexture/context: the page's own files use them.
    expect((await request(`${url}app.js`)).text).to.include("from './page.js'");
    expect(page.text).to.match(/href="\/page\.css">\s*<link rel="stylesheet" href="\/style\.css">/);
    expect((await request(`${url}nothing`)).status).to.equal(404);
    expect((await request(`${url}api/source`, { host: 'evil.example:80' })).status).to.equal(403);
    expect((await request(`${url}api/contexts`, { method: 'POST' })).status).to.equal(405);
    expect((await getJson(`${url}api/source`)).body).to.deep.equal({ source: 'the test store' });
  });
});

describe('contexture-store web: the command', function () {
  this.timeout(30_000);
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  function start(args: string[]) {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '' };
    child.stdout.on('data', (d) => (out.stdout += d));
    child.stderr.on('data', (d) => (out.stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    cleanup.defer(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    return { child, out, exited };
  }

  it('says its URL without the password, serves the page over the prefix, and exits 0 on SIGTERM', async () => {
    const prefix = `${uniqueName('store-web-cli')}:`;
    cleanup.redisKeys(`${prefix}*`);
    const withPassword = redisUrl().replace('redis://', 'redis://:s3cret-pw@');
    const p = start(['-R', withPassword, '--prefix', prefix, 'web', '127.0.0.1:0']);
    await waitUntil(() => /web view on http:\/\/\S+/.test(p.out.stderr), 'the URL on stderr', 15_000);
    const url = /web view on (http:\/\/\S+)/.exec(p.out.stderr)![1]!;
    expect(url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const source = (await getJson(`${url}api/source`)).body.source as string;
    expect(source).to.include(prefix);
    expect(source + p.out.stderr).not.to.include('s3cret-pw');
    p.child.kill('SIGTERM');
    expect(await p.exited).to.equal(0);
    expect(p.out.stdout).to.equal('');
  });

  it('says it cannot listen on a port in use, with status 69', async () => {
    const taken = http.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    cleanup.defer(() => new Promise((resolve) => taken.close(resolve)));
    const port = (taken.address() as { port: number }).port;
    const p = start(['web', `127.0.0.1:${port}`]);
    expect(await p.exited).to.equal(69);
    expect(p.out.stderr).to.equal(`contexture-store: cannot listen on 127.0.0.1:${port}: EADDRINUSE\n`);
  });

  it('says it cannot listen on a host name that does not resolve, with status 69', async () => {
    // .invalid never resolves (RFC 2606): ENOTFOUND, or EAI_AGAIN without a resolver.
    const p = start(['web', 'no-such-host.invalid:80']);
    expect(await p.exited, p.out.stderr).to.equal(69);
    expect(p.out.stderr).to.match(
      /^contexture-store: cannot listen on no-such-host\.invalid:80: (ENOTFOUND|EAI_AGAIN)\n$/,
    );
  });

  it('refuses an address that is not [HOST:]PORT with status 2', async () => {
    for (const bad of ['http://x:1', '70000', 'host:']) {
      const p = start(['web', bad]);
      expect(await p.exited, bad).to.equal(2);
      expect(p.out.stderr, bad).to.match(/must be \[HOST:\]PORT/);
    }
  });
});
