import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseLine } from '@contexture/context/protocol';
import { amqpUrl, Cleanup, TestConsumer, uniqueName } from '@contexture/test-support';

const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a fixture to its end; the test's own timeout bounds how long it may take. */
function run(file: string, env: Record<string, string>, opts: { cwd?: string; args?: string[] } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(opts.args ?? []), path.join(fixtures, file)], {
      cwd: opts.cwd ?? fixtures,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describe('Handler and Context across a process lifetime (spawned programs)', function () {
  this.timeout(30_000);
  let cleanup: Cleanup;
  let exchange: string;
  let consumer: TestConsumer;

  beforeEach(async () => {
    cleanup = new Cleanup();
    exchange = cleanup.exchange(uniqueName('proc-x'));
    consumer = await TestConsumer.start({ exchange });
    cleanup.defer(() => consumer.close());
  });
  afterEach(() => cleanup.run());

  it('wait: true drains the buffer before the process exits', async () => {
    const r = await run('publish-and-exit.mjs', {
      URL: amqpUrl(),
      EXCHANGE: exchange,
      N: '2000',
      WAIT: '1',
      FLUSH: '1000',
    });
    expect(r.code).to.equal(0);
    expect(r.stderr).to.equal('');
    await consumer.waitFor(2002);
    const seqs = consumer.received.map((m) => m.json.seq);
    expect(new Set(seqs).size).to.equal(2002);
    expect(consumer.received.at(-1)!.json.status).to.equal('finished');
  });

  it('without wait the process exits at once and says how many messages it did not publish', async () => {
    const r = await run('publish-and-exit.mjs', {
      URL: amqpUrl(),
      EXCHANGE: exchange,
      N: '2000',
      WAIT: '0',
      FLUSH: '1000',
    });
    expect(r.code).to.equal(0);
    const m =
      /contexture: (\d+) message\(s\) not published before the process exited \(wait: true drains before exit\)/.exec(
        r.stderr,
      );
    expect(m, r.stderr).to.not.equal(null);
    expect(Number(m![1])).to.equal(2002);
  });

  it('an unreachable broker never keeps the process alive, and its password never shows', async () => {
    const r = await run('publish-and-exit.mjs', {
      URL: 'amqp://app:s3cret@127.0.0.1:1/%2F',
      EXCHANGE: exchange,
      N: '10',
      WAIT: '0',
    });
    expect(r.code).to.equal(0);
    expect(r.stderr).to.contain('12 message(s) not published');
    expect(r.stderr).to.not.contain('s3cret');
  });

  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'])
    it(`ended by ${signal}, the process says what it did not publish and ends by the signal; a program that handles it decides`, async () => {
      const url = 'amqp://app:s3cret@127.0.0.1:1/%2F';
      const r = await run('signal-exit.mjs', { URL: url, N: '10', SIGNAL: signal });
      expect(r.signal, r.stderr).to.equal(signal);
      expect(r.stderr.match(/message\(s\) not published/g) ?? [], r.stderr).to.have.length(1);
      expect(r.stderr).to.contain('11 message(s) not published');
      expect(r.stderr).to.not.contain('s3cret');
      const own = await run('signal-exit.mjs', { URL: url, N: '10', SIGNAL: signal, OWN: '1' });
      expect([own.code, own.signal, own.stdout]).to.deep.equal([0, null, 'own handler\n']);
      expect(own.stderr.match(/message\(s\) not published/g) ?? [], own.stderr).to.have.length(1);
    });

  for (const which of ['a direct exchange of its own', 'amq.direct'])
    it(`the handler configured on an existing exchange of another type (${which}) warns once, counts, and the program exits 0`, async () => {
      let target = 'amq.direct';
      if (which !== 'amq.direct') {
        target = cleanup.exchange(uniqueName('proc-direct'));
        const direct = await TestConsumer.start({ exchange: target, type: 'direct', bindingKey: 'mismatch.test' });
        cleanup.defer(() => direct.close());
      }
      const r = await run('exchange-mismatch.mjs', { URL: amqpUrl(), EXCHANGE: target });
      expect(r.code, r.stderr).to.equal(0);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).to.have.length(1);
      expect(lines[0]).to.match(
        new RegExp(
          `^contexture: stopped publishing: exchange '${target}' exists with other arguments .*received 'topic' but current is 'direct'; \\d+ message\\(s\\) left unpublished are counted as dropped, and so is every later one$`,
        ),
      );
      expect(JSON.parse(r.stdout)).to.include({ status: 'closed', enqueued: 12, published: 0, dropped: 12 });
    });

  it('waitTimeout (CONTEXTURE_WAIT_TIMEOUT): with wait: true and no broker, the process waits that long, then says what it left', async () => {
    const t0 = performance.now();
    const r = await run('publish-and-exit.mjs', {
      URL: 'amqp://app:s3cret@127.0.0.1:1/%2F',
      EXCHANGE: exchange,
      N: '10',
      WAIT: '1',
      CONTEXTURE_WAIT_TIMEOUT: '7000',
    });
    const elapsed = performance.now() - t0;
    expect(r.code, r.stderr).to.equal(0);
    // Longer than the default 5 s: the variable's 7 s held the process.
    expect(elapsed).to.be.at.least(7000);
    expect(r.stderr).to.match(/contexture: 12 message\(s\) not published before the process exited\n$/);
    expect(r.stderr).to.not.contain('s3cret');
  });

  it('getHandler(): a program that never configures uses the handler of the environment, one for the process', async () => {
    const r = await run('get-handler.mjs', {
      CONTEXTURE_URL: amqpUrl(),
      CONTEXTURE_EXCHANGE: exchange,
      CONTEXTURE_BUFFER_SIZE: '123',
    });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.equal('');
    const out = JSON.parse(r.stdout);
    expect(out).to.include({ same: true, exchange, bufferSize: 123 });
    expect(out.stats).to.include({ enqueued: 1, published: 1, dropped: 0 });
    await consumer.waitFor(1);
    expect(consumer.received[0]!.json).to.include({ obj_id: out.ctx, status: 'born' });
  });

  for (const [what, env, said] of [
    [
      'a bad variable',
      { CONTEXTURE_BUFFER_SIZE: 'lots' },
      "environment: CONTEXTURE_BUFFER_SIZE must be an integer, got 'lots'",
    ],
    [
      'a URL that does not parse, with a password',
      { CONTEXTURE_URL: 'amqp:/app:s3cr/et@127.0.0.1' },
      'url must be an amqp://, amqps:// or jsonl: URL',
    ],
    ['a config file that is not JSON', { CONTEXTURE_CONFIG: 'broken.json' }, 'not valid JSON'],
  ] as const)
    it(`getHandler() with ${what}: one line on stderr, the built-in defaults, nothing thrown`, async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'contexture-'));
      cleanup.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
      fs.writeFileSync(path.join(dir, 'broken.json'), '{"bufferSize": 12,');
      // Destroyed before it sends: the defaults' broker and exchange are shared, nothing goes there.
      const r = await run('get-handler.mjs', { ...env, DESTROY: '1' }, { cwd: dir });
      expect(r.code, r.stderr).to.equal(0);
      // The fallback said once; then the destroy's own count of what it did not send.
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).to.have.length(2);
      expect(lines[0]).to.match(/^contexture: .*; using the built-in defaults$/);
      expect(lines[1]).to.equal('contexture: closed with 1 message(s) unpublished; counted as dropped');
      expect(lines[0]).to.contain(said);
      expect(r.stderr).to.not.contain('s3cr');
      const out = JSON.parse(r.stdout);
      expect(out).to.include({ same: true, exchange: 'lc-topic', bufferSize: 5000 });
      expect(out.url).to.equal('amqp://guest:***@127.0.0.1:5672/%2F');
      expect(out.stats).to.include({ status: 'closed', enqueued: 1, published: 0, dropped: 1 });
    });

  it('an open, idle connection does not keep the process alive', async () => {
    const r = await run('flush-then-idle.mjs', { URL: amqpUrl(), EXCHANGE: exchange });
    expect(r.code).to.equal(0);
    expect(JSON.parse(r.stdout)).to.deep.equal({ ok: true, status: 'connected' });
    await consumer.waitFor(1);
  });

  it('a context that becomes unreachable without finish() still sends finished', async () => {
    const guid = uniqueName('gc');
    const r = await run(
      'unreachable-finalized.mjs',
      { URL: amqpUrl(), EXCHANGE: exchange, GUID: guid },
      { args: ['--expose-gc'] },
    );
    expect(r.code, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout)).to.include({ enqueued: 3, published: 3, dropped: 0 });
    await consumer.waitFor(3);
    expect(consumer.received.map((m) => [m.json.obj_id, m.json.seq, m.json.status ?? null])).to.deep.equal([
      [guid, 0, 'born'],
      [guid, 1, null],
      [guid, 2, 'finished'],
    ]);
  });

  it('the default name comes from the calling module file; jsonl:/path appends -v lines to a file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'contexture-'));
    cleanup.defer(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'out.jsonl');
    fs.writeFileSync(file, '{"rkey":"earlier","headers":{},"object":{"obj_id":"e","obj":{}}}\n');
    for (let i = 0; i < 2; i++) {
      const r = await run('app/handlers/users.mjs', { URL: `jsonl:${file}` });
      expect(r.code, r.stderr).to.equal(0);
    }
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).to.have.length(5);
    const parsed = lines.map((l) => parseLine(l));
    const ok = parsed.map((p) => {
      if ('kind' in p) throw new Error(p.kind);
      return p;
    });
    expect(ok.slice(1).map((p) => p.meta.rkey)).to.deep.equal([
      'app.handlers.users',
      'app.handlers.users',
      'app.handlers.users',
      'app.handlers.users',
    ]);
    expect(ok[1]!.message).to.deep.include({ obj: { user: 'ann' }, status: 'born', seq: 0 });
    expect(ok[2]!.message).to.deep.include({ status: 'finished', seq: 1 });
    expect(ok[1]!.meta.headers).to.deep.equal({ hostname: os.hostname() });
  });

  it('a name derived from a file under contexture/ steps aside from the reserved prefix', async () => {
    const r = await run('contexture/jobs.mjs', { URL: 'jsonl:-' });
    expect(r.code, r.stderr).to.equal(0);
    const rkeys = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).rkey);
    expect(rkeys).to.deep.equal(['_contexture.jobs', '_contexture.jobs']);
  });

  it('jsonl:- stops once the reader of standard output goes away (no reconnect loop), counting what it drops', async () => {
    const child = spawn(process.execPath, [path.join(fixtures, 'stdout-closed.mjs')], {
      cwd: fixtures,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(code, stderr).to.equal(0);
    expect(stderr.match(/stopped publishing: standard output closed \(EPIPE\)/g)).to.have.length(1);
    expect(stderr).to.not.match(/MaxListenersExceeded|reconnecting/);
    const stats = JSON.parse(/stats (\{.*\})/.exec(stderr)![1]!);
    expect(stats.status).to.equal('closed');
    expect(stats.enqueued).to.equal(5000);
    expect(stats.published + stats.dropped).to.equal(5000);
    expect(stats.dropped).to.be.greaterThan(0);
  });

  it('jsonl:- writes the same lines to standard output', async () => {
    const r = await run('app/handlers/users.mjs', { URL: 'jsonl:-' });
    expect(r.code).to.equal(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.rkey, l.object.seq, l.object.status])).to.deep.equal([
      ['app.handlers.users', 0, 'born'],
      ['app.handlers.users', 1, 'finished'],
    ]);
  });
});
