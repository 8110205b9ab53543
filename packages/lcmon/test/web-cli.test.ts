import http from 'node:http';
import amqp from 'amqplib';
import { expect } from 'chai';
import { HEARTBEAT_RKEY } from '@contexture/context/protocol';
import { amqpUrl, uniqueName, waitUntil } from '@contexture/test-support';
import { envelopes, lifecycle, run, start } from './helpers.js';

/** GET `url`: status, headers and body. */
function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (s: string) => {
          body += s;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

/** The first `hello` event of the page's event stream. */
function hello(url: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}events`, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => {
        text += s;
        const m = /event: hello\ndata: (.*)\n\n/.exec(text);
        if (m !== null) {
          req.destroy();
          resolve(JSON.parse(m[1]!));
        }
      });
    });
    req.on('error', reject);
  });
}

describe('lcmon --web (command line, saved input)', () => {
  it('serves the page, the live state of saved lines and one object with its history; stays up after the input ends', async () => {
    const open = lifecycle('open-1', { url: '/o' }, [{ n: 1 }]).slice(0, -1);
    const done = lifecycle('done-1', { url: '/d' }, []);
    const l = start(['-s', '--web', '127.0.0.1:0', '--web-fade', '600000'], {
      stdin: `${envelopes([...open, ...done])}not json\n`,
    });
    await l.until((x) => /end of input/.test(x.stderr), 'the end of input');
    const url = /web view on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(l.stderr)![1]!;

    const page = await get(url);
    expect(page.status).to.equal(200);
    expect(page.headers['content-type']).to.equal('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).to.include("script-src 'self'");
    expect(page.body).to.include('<script type="module" src="/app.js"></script>');
    const app = await get(`${url}app.js`);
    expect(app.status).to.equal(200);
    expect(app.body).to.include("from './page.js'");
    const shared = await get(`${url}page.js`);
    expect(shared.status).to.equal(200);
    expect(shared.headers['content-type']).to.equal('text/javascript; charset=utf-8');
    expect(shared.body).to.include('export function fieldNode');
    expect((await get(`${url}page.css`)).headers['content-type']).to.equal('text/css; charset=utf-8');
    expect((await get(`${url}../package.json`)).status).to.equal(404);
    expect((await get(`${url}web/app.js`)).status).to.equal(404);
    // Another site's name resolved to 127.0.0.1 (DNS rebinding) gets nothing; this machine's names do.
    const port = new URL(url).port;
    expect((await get(`${url}api/object?id=open-1`, { Host: `evil.example:${port}` })).status).to.equal(403);
    expect((await get(url, { Host: `localhost:${port}` })).status).to.equal(200);

    const h = await hello(url);
    expect(h.source).to.equal('stdin');
    expect(h.fadeMs).to.equal(600000);
    expect(h.handlers).to.equal(null);
    expect(h.counters).to.include({ messages: 4, malformed: 1, open: 1 });
    const byId = Object.fromEntries(h.objects.map((o: any) => [o.id, o]));
    expect(byId['open-1']).to.include({ status: 'open', rkey: 'web.handle', messages: 2 });
    expect(byId['open-1'].fields).to.deep.equal({ url: '/o', n: 1 });
    expect(byId['done-1']).to.include({ status: 'finished', complete: true });

    const one = await get(`${url}api/object?id=open-1`);
    expect(JSON.parse(one.body).history.map((m: any) => m.fields)).to.deep.equal([{ url: '/o' }, { n: 1 }]);
    expect((await get(`${url}api/object?id=nope`)).status).to.equal(404);

    const r = await l.interrupt();
    expect(r.code).to.equal(0);
    expect(r.stderr).to.match(/line 5: skipped, not JSON/);
    expect(r.stderr).to.match(/Bye\.\n$/);
  });

  it('keeps at most 2,000 handlers heard, whatever interval their heartbeats claim (RabbitMQ)', async function () {
    this.timeout(60_000);
    const exchange = uniqueName('lcmon-web-hb');
    const l = start(['-e', exchange, '--web', '127.0.0.1:0']);
    await l.until((x) => /web view on/.test(x.stderr), 'the web view');
    const url = /web view on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(l.stderr)![1]!;
    const conn = await amqp.connect(amqpUrl());
    try {
      const ch = await conn.createConfirmChannel();
      // 2,100 handlers, each saying it beats once in 1e300 ms: never taken for gone by its interval.
      for (let i = 0; i < 2100; i++) {
        const body = {
          type: 'heartbeat',
          id: `hb-${String(i).padStart(4, '0')}`,
          kind: 'handler',
          name: 'app',
          host: 'box',
          pid: i,
          state: 'running',
          interval: 1e300,
          started_at: 1,
          time: Date.now() / 1000,
          stats: {},
        };
        ch.publish(exchange, HEARTBEAT_RKEY, Buffer.from(JSON.stringify(body)), { contentType: 'application/json' });
      }
      await ch.waitForConfirms();
      await ch.deleteExchange(exchange);
    } finally {
      await conn.close();
    }
    let handlers: Array<{ id: string }> = [];
    await waitUntil(async () => {
      handlers = (await hello(url)).handlers;
      return handlers.some((h) => h.id === 'hb-2099');
    }, 'the last heartbeat heard');
    expect(handlers).to.have.length(2000);
    // The ones heard longest ago were let go.
    expect(handlers.some((h) => h.id === 'hb-0000')).to.equal(false);
    const r = await l.interrupt();
    expect(r.code).to.equal(0);
  });

  it('a page past the 64th following the stream is refused with 503', async () => {
    const l = start(['-s', '--web', '127.0.0.1:0'], { stdin: envelopes(lifecycle('one', { a: 1 }, [])) });
    await l.until((x) => /end of input/.test(x.stderr), 'the end of input');
    const url = /web view on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(l.stderr)![1]!;
    const agent = new http.Agent({ keepAlive: false, maxSockets: 100 });
    const open: http.ClientRequest[] = [];
    /** The status of one GET /events, the stream left open (pages still following it). */
    const follow = () =>
      new Promise<number>((resolve, reject) => {
        const req = http.get(`${url}events`, { agent }, (res) => resolve(res.statusCode ?? 0));
        req.on('error', reject);
        open.push(req);
      });
    const statuses: number[] = [];
    for (let i = 0; i < 65; i++) statuses.push(await follow());
    expect(statuses.filter((s) => s === 200)).to.have.length(64);
    expect(statuses[64]).to.equal(503);
    for (const req of open.splice(0)) req.destroy();
    // Pages that leave free their places.
    await waitUntil(async () => (await follow()) === 200, 'a free place');
    for (const req of open) req.destroy();
    const r = await l.interrupt();
    expect(r.code).to.equal(0);
  });

  it('refuses a bad address, options that do not apply, and a busy port, with a clear error', async () => {
    const bad = await run(['--web', 'nowhere:port']);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.include('expected [HOST:]PORT');
    const collate = await run(['-s', '--web', '0', '-c']);
    expect(collate.code).to.equal(2);
    expect(collate.stderr).to.include('-c does not apply to --web');
    const fade = await run(['-s', '--web-fade', '10']);
    expect(fade.code).to.equal(2);
    expect(fade.stderr).to.include('--web-fade needs --web');

    const first = start(['-s', '--web', '127.0.0.1:0']);
    await first.until((x) => /web view on/.test(x.stderr), 'the URL');
    const port = /127\.0\.0\.1:(\d+)/.exec(first.stderr)![1]!;
    const busy = await run(['-s', '--web', `127.0.0.1:${port}`]);
    expect(busy.code).to.equal(2);
    expect(busy.stderr).to.include(`cannot listen on 127.0.0.1:${port}: EADDRINUSE`);
    expect(busy.stderr).to.not.include('    at ');
    expect((await first.interrupt()).code).to.equal(0);
  });

  it('never prints the password of the broker URL', async () => {
    const r = await run(['--web', '127.0.0.1:0', '-u', 'amqp://watcher:s3cret-pw@127.0.0.1:1/%2F']);
    expect(r.code).to.equal(69);
    expect(r.stderr).to.include('cannot reach RabbitMQ at 127.0.0.1:1');
    expect(r.stderr).to.not.include('s3cret-pw');
  });
});
