import { expect } from 'chai';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { Context, Handler } from '@contexture/context';
import { Collector } from '@contexture/collector/daemon';
import { RedisContextStore } from '@contexture/collector/store';
import { amqpUrl, Cleanup, freePort, redisUrl, uniqueName, waitUntil } from '@contexture/test-support';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Runs a shell pipeline from the repository root; resolves with its output and status. */
function sh(
  command: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', command], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('across the packages', function () {
  this.timeout(120_000);
  let cleanup: Cleanup;
  beforeEach(() => {
    cleanup = new Cleanup();
  });
  afterEach(() => cleanup.run());

  it("the demo over RabbitMQ with no broker ends at once with lcmon's status, starting no service", async () => {
    const port = await freePort();
    const r = await sh('examples/demo-amqp.sh', {
      CONTEXTURE_URL: `amqp://guest:guest@127.0.0.1:${port}/%2F`,
      REQUESTS: '50',
    });
    expect(r.code, r.stderr).to.equal(69);
    expect(r.stderr).to.include(`cannot reach RabbitMQ at 127.0.0.1:${port}`);
    // The service would have said it cannot publish (its handler's warning): it never ran.
    expect(r.stderr).to.not.match(/^contexture:/m);
    expect(r.stdout).to.equal('');
  });

  it("the web demo with no broker ends at once with lcmon's status, starting no service", async () => {
    const port = await freePort();
    const r = await sh('examples/demo-web.sh', {
      CONTEXTURE_URL: `amqp://guest:guest@127.0.0.1:${port}/%2F`,
      PORT: '0',
    });
    expect(r.code, r.stderr).to.equal(69);
    expect(r.stderr).to.include(`cannot reach RabbitMQ at 127.0.0.1:${port}`);
    expect(r.stderr).to.not.match(/^(demo: open|contexture:)/m);
  });

  it("the web demo serves the service's open objects on its page, and Ctrl-C stops lcmon and the service", async () => {
    const exchange = cleanup.exchange(uniqueName('demo-web'));
    const child = spawn('examples/demo-web.sh', [], {
      cwd: root,
      // Many requests in flight with short steps: some step ends while the service closes its handler.
      env: {
        ...process.env,
        CONTEXTURE_URL: amqpUrl(),
        CONTEXTURE_EXCHANGE: exchange,
        PORT: '0',
        CONCURRENCY: '300',
        STEP_MS: '300',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    cleanup.defer(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    await waitUntil(() => /demo: open http:\/\/127\.0\.0\.1:\d+\//.test(stderr), 'the URL', 60_000);
    const url = /demo: open (http:\S+)/.exec(stderr)![1]!;
    // The page's event stream: its snapshots and updates carry the service's objects.
    const open = await new Promise<{ rkey?: string; fields: Record<string, unknown> }>((resolve, reject) => {
      const req = http.get(`${url}events`, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
          let end = text.indexOf('\n\n');
          while (end >= 0) {
            const data = /^data: (.*)$/m.exec(text.slice(0, end));
            text = text.slice(end + 2);
            end = text.indexOf('\n\n');
            const body = data === null ? {} : JSON.parse(data[1]!);
            const views = [...(body.objects ?? []), ...(body.changed ?? [])];
            const v = views.find((o) => o.status === 'open' && o.fields.request !== undefined);
            if (v !== undefined) {
              req.destroy();
              resolve(v);
              return;
            }
          }
        });
      });
      req.on('error', reject);
      setTimeout(() => reject(new Error(`no open object of the service on the page: ${stderr}`)), 60_000).unref();
    });
    expect(open.rkey).to.equal('example.web.request');
    expect(open.fields).to.include.keys('request', 'method', 'path', 'user');
    child.kill('SIGINT');
    expect(await exited).to.equal(0);
    expect(stderr).to.match(/Bye\./);
    expect(stderr).to.not.match(/^contexture:/m);
  });

  it("the README's demo: the example service's jsonl stream through lcmon -sc gives one whole object per request", async () => {
    const r = await sh('node examples/service.js | node packages/lcmon/bin/lcmon.js -sc', {
      REQUESTS: '500',
      CONCURRENCY: '20',
    });
    expect(r.code, r.stderr).to.equal(0);
    const objects = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(objects).to.have.length(500);
    expect(new Set(objects.map((o) => o.request)).size).to.equal(500);
    for (const o of objects) {
      expect(o).to.include.keys('request', 'method', 'path', 'user', 'db_ms', 'status_code');
      if (o.status_code === 404) expect(o.error).to.match(/^NotFound: /);
      else expect(o.bytes).to.be.a('number');
    }
    expect(r.stderr).to.match(/500 requests \(\d+ failed\).* 0 dropped/);
  });

  it('Context → RabbitMQ → collector → Redis: the store holds what the program set', async () => {
    const exchange = cleanup.exchange(uniqueName('int-x'));
    const queue = cleanup.queue(uniqueName('int-q'));
    cleanup.queue(`${queue}.dead`);
    const prefix = `${uniqueName('int')}:`;
    cleanup.redisKeys(`${prefix}*`);
    const store = new RedisContextStore({ redis: redisUrl(), prefix });
    cleanup.defer(() => store.close());
    const collector = new Collector({ store, url: amqpUrl(), exchange, queue, logger: null });
    cleanup.defer(() => collector.close());
    await collector.start();
    const handler = new Handler({ url: amqpUrl(), exchange, batch: true, logger: null });
    cleanup.defer(() => handler.close());
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) {
      const ctx = new Context({ name: 'int.job', handler, context: { i } });
      ctx.step = 'one';
      ctx.update({ step: 'two', result: { ok: i % 2 === 0 } });
      ctx.finish();
      ids.push(Context.idOf(ctx));
    }
    expect(await handler.flush(20_000)).to.equal(true);
    await waitUntil(
      async () => (await store.get(ids.at(-1)!))?.status === 'finished',
      'the last context in Redis',
      30_000,
    );
    await waitUntil(() => collector.stats().inFlight === 0, 'the collector to settle');
    for (const [i, id] of ids.entries()) {
      const got = await store.get(id);
      expect(got?.status, id).to.equal('finished');
      expect(got?.context).to.deep.equal({ i, step: 'two', result: { ok: i % 2 === 0 } });
      expect(got?.rkey).to.equal('int.job');
    }
  });
});
