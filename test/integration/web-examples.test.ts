import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { type CollatedObject, Collator, decodeBody, isMalformed } from '@contexture/context/protocol';
import { amqpUrl, Cleanup, freePort, TestConsumer, uniqueName, waitUntil } from '@contexture/test-support';

const root = fileURLToPath(new URL('../../', import.meta.url));

function collate(consumer: TestConsumer): CollatedObject[] {
  const out: CollatedObject[] = [];
  const c = new Collator({ onObject: (o) => out.push(o) });
  for (const r of consumer.received)
    for (const m of decodeBody(r.body, r.properties.contentType)) if (!isMalformed(m)) c.add(m, { rkey: r.routingKey });
  return out;
}

describe('the web examples, started as a user starts them, watched on the broker', function () {
  this.timeout(60_000);
  let cleanup: Cleanup;
  beforeEach(() => {
    cleanup = new Cleanup();
  });
  afterEach(() => cleanup.run());

  for (const name of ['express', 'fastify']) {
    it(`examples/${name}.js: one object per request, errors recorded, /healthz ignored, Ctrl-C exits 0`, async () => {
      const exchange = cleanup.exchange(uniqueName(`web-example-${name}`));
      const consumer = await TestConsumer.start({ exchange, bindingKey: 'http.#' });
      cleanup.defer(() => consumer.close());
      const port = await freePort();
      const child: ChildProcess = spawn(process.execPath, [`examples/${name}.js`], {
        cwd: root,
        env: { ...process.env, PORT: String(port), CONTEXTURE_URL: amqpUrl(), CONTEXTURE_EXCHANGE: exchange },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d) => (stdout += d));
      child.stderr!.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      cleanup.defer(() => child.kill('SIGKILL'));
      // It prints where it listens, then how to watch it.
      await waitUntil(() => stdout.includes(' -c\n'), `the ${name} example to start (${stderr})`, 20_000);
      expect(stdout).to.include(`listening on http://127.0.0.1:${port}`);
      expect(stdout).to.include(`npx lcmon -e ${exchange} -r 'http.#' -c`);

      const base = `http://127.0.0.1:${port}`;
      expect((await fetch(`${base}/healthz`)).status).to.equal(200);
      expect(await (await fetch(`${base}/users/42`)).json()).to.deep.equal({ id: '42', name: 'user 42' });
      expect((await fetch(`${base}/boom`)).status).to.equal(500);
      let objs: CollatedObject[] = [];
      await waitUntil(() => (objs = collate(consumer)).length >= 2, 'two objects');
      child.kill('SIGINT');
      expect(await exited).to.equal(0);

      expect(objs.map((o) => o.rkey)).to.deep.equal(['http.GET./users/:id', 'http.GET./boom']);
      expect(objs[0]!.object).to.include({ url: '/users/42', user: '42', status_code: 200 });
      expect(objs[0]!.object.db_ms).to.be.a('number');
      expect(objs[1]!.object).to.deep.include({
        status_code: 500,
        error: { name: 'RangeError', message: 'the boom route always fails' },
      });
      expect(collate(consumer)).to.have.length(2);
    });
  }
});
