import { spawn } from 'node:child_process';
import { PassThrough, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Cleanup, redisClusterNodes, redisUrl, uniqueName, waitUntil } from '@contexture/test-support';
import { parseJson } from '@contexture/context/protocol';
import { RedisContextStore } from '../src/store/index.js';
import { createStoreProgram } from '../src/daemon/index.js';

/** The real bin, as npm links it (dist/test → the package's bin/). */
const BIN = fileURLToPath(new URL('../../bin/contexture-store.js', import.meta.url));

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts the bin; `stdin` is written and closed (none: an empty stdin). */
function start(args: string[], options: { stdin?: string; env?: Record<string, string> } = {}) {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.end(options.stdin ?? '');
  const exited = new Promise<Ran>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

function run(args: string[], options: { stdin?: string; env?: Record<string, string> } = {}): Promise<Ran> {
  return start(args, options).exited;
}

/** The JSON lines of an output, read as the store writes them. */
function lines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => parseJson(l) as Record<string, unknown>);
}

const HOSTILE = '<script>alert(1)</script>\u0007';

/**
 * Contexts of every kind in `store`: several versions from the bus with a field deletion and
 * nested fields, finished and open ones, a transient one, direct writes (merges, removals), values
 * JSON alone cannot carry (NaN, a long integer), a hostile id; and one deleted. Returns the ids kept.
 */
async function fill(store: RedisContextStore): Promise<string[]> {
  const t = 1_700_000_000.25;
  await store.applyMany(
    [
      { obj_id: 'done', obj: { user: 'ann', cart: { items: [1, 2], total: 3.5 } }, status: 'born', seq: 0, time_in: t },
      { obj_id: 'done', obj: { step: 1, cart: { items: [1, 2, 3], total: 7 } }, seq: 1, time_in: t + 1 },
      { obj_id: 'done', obj: { step: null }, action: 'delete', seq: 2, time_in: t + 2 },
      { obj_id: 'done', obj: { ok: true }, status: 'finished', seq: 3, time_in: t + 3, elapsed: 3 },
      { obj_id: 'open', obj: { n: 1, deep: { a: { b: { c: 'd' } } } }, status: 'born', seq: 0, time_in: t },
      { obj_id: 'open', obj: { n: 2 }, seq: 1, time_in: t + 1 },
      { obj_id: 'blip', obj: { once: true }, status: 'transient', seq: 0, time_in: t },
      {
        obj_id: HOSTILE,
        obj: { [HOSTILE]: HOSTILE, text: 'ünï 𝄞 "quoted" \\ \n' },
        status: 'born',
        seq: 0,
        time_in: t,
      },
    ].map((message) => ({
      message: message as never,
      meta: { rkey: `web.${message.obj_id === 'blip' ? 'ping' : 'order'}`, headers: { hostname: 'h1' } },
    })),
  );
  await store.set('direct', { a: 1, nested: { x: { y: 1 } }, list: [{ k: 'v' }] });
  await store.update('direct', { nested: { x: { z: 2 } } });
  await store.assign('direct', { b: 'two' }, ['a']);
  // NaN and an integer past 2^53, as a Python publisher sends them.
  await store.apply(parseJson('{"obj_id":"python","obj":{"nan":NaN,"big":12345678901234567890},"seq":0}') as never);
  await store.set('gone', { soon: 'deleted' });
  await store.delete('gone');
  return ['blip', 'direct', 'done', HOSTILE, 'open', 'python'];
}

/** The tests of one Redis: `target()` gives the options naming it. */
function suite(name: string, target: () => string[], makeStore: (prefix: string) => RedisContextStore) {
  describe(`contexture-store on ${name}`, function () {
    // Each test runs the bin a dozen times or more, each a Node.js process of its own.
    this.timeout(120_000);
    let cleanup: Cleanup;
    let prefix: string;
    let copy: string;
    let store: RedisContextStore;

    beforeEach(() => {
      cleanup = new Cleanup();
      const base = uniqueName('test-store-cli');
      prefix = `${base}:a:`;
      copy = `${base}:b:`;
      if (name.includes('Cluster')) cleanup.clusterKeys(`${base}:*`);
      else cleanup.redisKeys(`${base}:*`);
      store = makeStore(prefix);
      cleanup.defer(() => store.close());
    });
    afterEach(() => cleanup.run());

    const bin = (p: string, ...args: string[]) => [...target(), '--prefix', p, ...args];

    it('export → import into another prefix gives identical get output for every context', async () => {
      const ids = await fill(store);
      const exported = await run(bin(prefix, 'export'));
      expect(exported.code, exported.stderr).to.equal(0);
      expect(
        lines(exported.stdout)
          .map((l) => l.id)
          .sort(),
      ).to.deep.equal([...ids].sort());
      const imported = await run(bin(copy, 'import'), { stdin: exported.stdout });
      expect(imported.code, imported.stderr).to.equal(0);
      expect(JSON.parse(imported.stdout)).to.deep.equal({ imported: ids.length, malformed: 0 });
      const listed = await run(bin(copy, 'list'));
      expect(
        lines(listed.stdout)
          .map((l) => l.id)
          .sort(),
      ).to.deep.equal([...ids].sort());
      const gets = await Promise.all(
        ids.map((id) => Promise.all([run(bin(prefix, 'get', id)), run(bin(copy, 'get', id))])),
      );
      for (const [i, [a, b]] of gets.entries()) {
        expect(a.code, a.stderr).to.equal(0);
        expect(b.stdout, `get ${JSON.stringify(ids[i])}`).to.equal(a.stdout);
      }
      // What the output holds is the store's own: the long integer with all its digits, NaN as Python writes it.
      const python = (await run(bin(copy, 'get', 'python'))).stdout;
      expect(python).to.contain('"big":12345678901234567890').and.contain('"nan":NaN');
      const done = lines((await run(bin(copy, 'get', 'done'))).stdout)[0]!;
      expect(done).to.deep.include({ version: 4, status: 'finished', rkey: 'web.order' });
      expect(done.context).to.deep.equal({ cart: { items: [1, 2, 3], total: 7 }, ok: true, user: 'ann' });
      // The deleted one is in neither.
      for (const p of [prefix, copy]) expect((await run(bin(p, 'get', 'gone'))).code).to.equal(66);
      // A client of the original is current on the copy.
      const original = lines((await run(bin(prefix, 'get', 'open'))).stdout)[0]!;
      const synced = await run(
        bin(copy, 'sync', 'open', String(original.version), '--incarnation', String(original.incarnation)),
      );
      expect(lines(synced.stdout)[0]).to.deep.include({ type: 'no_change', version: original.version });
    });

    it('list filters by status, id glob and routing key; get, sync, history and delete answer in JSON', async () => {
      await fill(store);
      const ids = async (...args: string[]) => {
        const r = await run(bin(prefix, 'list', ...args));
        expect(r.code, r.stderr).to.equal(0);
        return lines(r.stdout)
          .map((l) => l.id)
          .sort();
      };
      const [finished, born, statusless, glob, rkey] = await Promise.all([
        ids('--status', 'finished'),
        ids('--status', 'born'),
        ids('--status', 'none'),
        ids('--match', 'd*'),
        ids('--rkey', 'web.p*'),
      ]);
      expect(finished).to.deep.equal(['done']);
      expect(born).to.deep.equal([HOSTILE, 'open'].sort());
      expect(statusless).to.deep.equal(['direct', 'python']);
      expect(glob).to.deep.equal(['direct', 'done']);
      expect(rkey).to.deep.equal(['blip']);
      expect((await run(bin(prefix, 'list', '--status', 'gone'))).code).to.equal(2);

      const got = lines((await run(bin(prefix, 'get', 'direct'))).stdout);
      expect(got).to.have.length(1);
      expect(got[0]).to.deep.include({
        id: 'direct',
        version: 3,
        context: { b: 'two', list: [{ k: 'v' }], nested: { x: { y: 1, z: 2 } } },
      });

      const full = lines((await run(bin(prefix, 'sync', 'open', 'none'))).stdout)[0]!;
      expect(full).to.deep.include({ type: 'full', version: 2, context: { deep: { a: { b: { c: 'd' } } }, n: 2 } });
      const delta = lines((await run(bin(prefix, 'sync', 'open', '1'))).stdout)[0]!;
      expect(delta).to.deep.include({
        type: 'delta',
        version: 2,
        delta: { n: { action: 'modified', old_value: 1, value: 2 } },
      });
      const bads = ['-1', 'x', '1.5', ''];
      for (const [i, r] of (await Promise.all(bads.map((v) => run(bin(prefix, 'sync', 'open', v))))).entries()) {
        expect(r.code, bads[i]).to.equal(2);
        expect(r.stderr).to.match(/version.*integer >= 0/);
      }
      expect((await run(bin(prefix, 'sync', 'nobody', '1'))).code).to.equal(66);

      const history = await run(bin(prefix, 'history', 'done'));
      expect(history.code, history.stderr).to.equal(0);
      const versions = lines(history.stdout);
      expect(versions.map((v) => v.version)).to.deep.equal([1, 2, 3, 4]);
      expect(versions[2]).to.deep.include({ type: 'change', delta: { step: { action: 'removed', old_value: 1 } } });
      expect(versions[3]).to.deep.include({ status: 'finished' });
      const none = await run(bin(prefix, 'history', 'nobody'));
      expect(none.code).to.equal(66);
      expect(none.stderr).to.equal('contexture-store: no context "nobody"\n');

      const deleted = await run(bin(prefix, 'delete', 'open'));
      expect(deleted.code, deleted.stderr).to.equal(0);
      expect(JSON.parse(deleted.stdout)).to.deep.equal({ id: 'open', deleted: true });
      expect(await store.get('open')).to.equal(null);
      const again = await run(bin(prefix, 'delete', 'open'));
      expect(again.code).to.equal(66);
      expect(again.stderr).to.match(/no context "open"/);
      expect((await run(bin(prefix, 'get', ''))).code).to.equal(2);
    });

    it('watch prints each change of the contexts as a JSON line until SIGTERM, then exits 0', async () => {
      const w = start(bin(prefix, 'watch', 'w1', 'w2'));
      cleanup.defer(() => w.child.kill('SIGKILL'));
      await waitUntil(() => /watching 2 contexts/.test(w.stderr()), 'the watch to be ready', 20_000);
      await store.set('w1', { a: 1 });
      await store.update('w2', { b: { c: 1 } });
      await store.update('w1', { a: 2 });
      await store.set('other', { not: 'watched' });
      await store.delete('w2');
      await waitUntil(() => lines(w.stdout()).length >= 4, 'four events', 20_000);
      w.child.kill('SIGTERM');
      const exit = await w.exited;
      expect(exit.code, exit.stderr).to.equal(0);
      const events = lines(exit.stdout);
      expect(events.filter((e) => e.id === 'w1').map((e) => [e.type, e.version])).to.deep.equal([
        ['change', 1],
        ['change', 2],
      ]);
      expect(events.filter((e) => e.id === 'w2').map((e) => e.type)).to.deep.equal(['change', 'deleted']);
      expect(events.find((e) => e.id === 'w1' && e.version === 2)).to.deep.include({
        delta: { a: { action: 'modified', old_value: 1, value: 2 } },
      });
      expect(events.some((e) => e.id === 'other')).to.equal(false);
    });

    it('import counts and reports malformed lines, imports the others, and exits 65', async () => {
      await store.set('x', { a: 1 });
      await store.update('x', { b: 2 });
      const good = (await run(bin(prefix, 'export'))).stdout.trim();
      const input = [
        '{not json',
        good,
        '[1,2]',
        '{"id":"y","context":{"a":1}}',
        '',
        '{"id":"z","context":{"a":1},"version":1,"status":"dead"}',
        '{"id":"","context":{},"version":1}',
        good.replace('"id":"x"', '"id":"x2"'),
        '{"id":"w","context":{},"version":2,"updated_at":"x"}',
        // Nested too deep for the store to encode (it walks values by recursion).
        `{"id":"deep","context":{"a":${'['.repeat(5000)}${']'.repeat(5000)}},"version":1}`,
        // A field name Redis cannot keep apart (a lone surrogate), a routing key that is not text.
        '{"id":"lone","context":{"\\udc00":1},"version":1}',
        '{"id":"rk","version":1,"context":{},"rkey":{"a":1}}',
      ].join('\n');
      const r = await run(bin(copy, 'import'), { stdin: input });
      expect(r.code, r.stderr).to.equal(65);
      expect(JSON.parse(r.stdout)).to.deep.equal({ imported: 2, malformed: 9 });
      expect(r.stderr).to.match(/line 11: .*must be well-formed Unicode.*; skipped/);
      expect(r.stderr).to.match(/line 12: .*a routing key that is not text for "rk"; skipped/);
      expect(r.stderr).to.match(/line 1: not JSON; skipped/);
      expect(r.stderr).to.match(/line 3: not a JSON object; skipped/);
      expect(r.stderr).to.match(/line 4: no "version"/);
      expect(r.stderr).to.match(/line 6: .*unknown status/);
      expect(r.stderr).to.match(/line 7: no "id"/);
      expect(r.stderr).to.match(/line 9: .*updated_at that is not a finite number/);
      expect(r.stderr).to.match(/line 10: .*nested too deep to store for "deep"; skipped/);
      expect(r.stderr).to.match(/imported 2 contexts; 9 malformed lines skipped/);
      expect((await run(bin(copy, 'get', 'x'))).stdout).to.equal((await run(bin(prefix, 'get', 'x'))).stdout);
      expect(lines((await run(bin(copy, 'get', 'x2'))).stdout)[0]).to.deep.include({
        version: 2,
        context: { a: 1, b: 2 },
      });
    });
  });
}

suite(
  'one Redis',
  () => ['-R', redisUrl()],
  (prefix) => new RedisContextStore({ redis: redisUrl(), prefix }),
);
suite(
  'the Redis Cluster',
  () => ['--redis-cluster', redisClusterNodes().join(',')],
  (prefix) => new RedisContextStore({ redis: redisClusterNodes().map((n) => `redis://${n}`), prefix }),
);

describe('contexture-store: bad input and Redis away', function () {
  this.timeout(120_000);
  it('bad options and arguments exit 2 in one line; an unreachable Redis exits 69; no password is printed', async () => {
    for (const [args, said] of [
      [['-R', 'http://user:s3cret@127.0.0.1:6379', 'list'], /--redis is not a URL of redis: or rediss:/],
      [['--redis-cluster', ' , ', 'list'], /--redis-cluster names no node/],
      [['--redis-cluster', 'http://user:s3cret@h:1', 'list'], /--redis-cluster node 1 is not a URL/],
      [['sync', 'a'], /missing required argument 'version'/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [[], /Usage: contexture-store/],
    ] as const) {
      const r = await run([...args]);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.stderr).to.match(said);
      expect(r.stderr + r.stdout).to.not.contain('s3cret');
    }
    const env = await run(['list'], { env: { CONTEXTURE_REDIS_URL: 'user:s3cret@127.0.0.1' } });
    expect(env.code).to.equal(2);
    expect(env.stderr).to.match(/\(from CONTEXTURE_REDIS_URL\)/);
    expect(env.stderr).to.not.contain('s3cret');
    for (const sub of [['get', 'a'], ['list'], ['watch', 'a'], ['import']]) {
      const down = await run(['-R', 'redis://user:s3cret@127.0.0.1:1', ...sub], {
        stdin: '{"id":"a","context":{},"version":1}\n',
      });
      expect(down.code, `${sub[0]}: ${down.stderr}`).to.equal(69);
      expect(down.stderr).to.contain('127.0.0.1:1');
      expect(down.stderr + down.stdout).to.not.contain('s3cret');
      expect(down.stderr.trim().split('\n')).to.have.length(1);
    }
    // A single Redis server given as a cluster's node: the options are wrong (78), not Redis away (69).
    const single = new URL(redisUrl());
    const notCluster = await run(['--redis-cluster', `${single.hostname}:${single.port || 6379}`, 'list']);
    expect(notCluster.code, notCluster.stderr).to.equal(78);
    expect(notCluster.stderr).to.match(/is a single server, not a node of a Redis Cluster/);
    expect(notCluster.stderr.trim().split('\n')).to.have.length(1);
    // A database Redis has not: every command refused (69), saying which, rather than database 0.
    const noDb = new URL(redisUrl());
    noDb.pathname = '/9999';
    for (const sub of [['get', 'a'], ['list']]) {
      const r = await run(['-R', noDb.toString(), ...sub]);
      expect(r.code, `${sub[0]}: ${r.stderr}`).to.equal(69);
      expect(r.stderr).to.match(/refused to select database 9999/);
      expect(r.stderr.trim().split('\n')).to.have.length(1);
    }
    const help = await run(['--help']);
    expect(help.code).to.equal(0);
    expect(help.stdout)
      .to.match(/Examples:/)
      .and.match(/contexture-store export > saved.jsonl/);
  });

  it('import: stdin failing to read exits 74 in one line, after importing what came before', async () => {
    const cleanup = new Cleanup();
    const prefix = cleanup.redisKeys(`${uniqueName('test-store-cli')}:`);
    cleanup.redisKeys(`${prefix}*`);
    try {
      let sent = false;
      const stdin = new Readable({
        read() {
          if (!sent) {
            sent = true;
            this.push('{"id":"before","context":{"a":1},"version":3}\n');
          } else this.destroy(new Error('EIO: i/o error, read'));
        },
      });
      const stderr = new PassThrough();
      let said = '';
      stderr.on('data', (d) => (said += d));
      const program = createStoreProgram({ stdin, stdout: new PassThrough(), stderr });
      const err = await program
        .parseAsync(['node', 'contexture-store', '-R', redisUrl(), '--prefix', prefix, 'import'])
        .then(
          () => null,
          (e: unknown) => e as { exitCode: number },
        );
      expect(err?.exitCode, said).to.equal(74);
      expect(said).to.equal('contexture-store: reading stdin failed: EIO: i/o error, read\n');
      const store = new RedisContextStore({ redis: redisUrl(), prefix });
      cleanup.defer(() => store.close());
      expect(await store.get('before')).to.deep.include({ version: 3, context: { a: 1 } });
    } finally {
      await cleanup.run();
    }
  });

  it('a reader closing stdout early ends export quietly with status 0', async () => {
    const cleanup = new Cleanup();
    const prefix = `${uniqueName('test-store-cli')}:`;
    cleanup.redisKeys(`${prefix}*`);
    try {
      const store = new RedisContextStore({ redis: redisUrl(), prefix });
      cleanup.defer(() => store.close());
      // More than a pipe holds: the bin is still writing when the reader goes.
      await Promise.all(Array.from({ length: 400 }, (_, i) => store.set(`c${i}`, { pad: 'x'.repeat(2000) })));
      const child = spawn(process.execPath, [BIN, '-R', redisUrl(), '--prefix', prefix, 'export'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.stdout.once('data', () => child.stdout.destroy());
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code, stderr).to.equal(0);
      expect(stderr).to.equal('');
    } finally {
      await cleanup.run();
    }
  });
});
