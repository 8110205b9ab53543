import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Cleanup, freePort, redisClusterNodes, redisUrl, uniqueName, waitUntil } from '@contexture/test-support';
import { RedisContextStore } from '@contexture/collector/store';
import { TaskQueue } from '@contexture/collector/tasks';

/** The package's folder: `@contexture/collector` resolves from there (through the workspaces). */
const PACKAGE_DIR = fileURLToPath(new URL('../..', import.meta.url));
/** Generous: a script that ends ends in a second or two; one kept alive never does. */
const BOUND_MS = 20_000;

interface Script {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** The exit code, or 'alive' if the process still ran at the bound (it is killed then). */
  exited: Promise<number | 'alive'>;
}

/** Runs `code` as an ES module in a process of its own, killed if it has not ended within `bound` ms. */
function script(code: string, bound = BOUND_MS): Script {
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    cwd: PACKAGE_DIR,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | 'alive'>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve('alive');
    }, bound);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code ?? -1);
    });
  });
  return { child, stdout: () => out, stderr: () => err, exited };
}

describe('one-shot scripts end by themselves: the Redis classes keep nothing alive once idle', function () {
  this.timeout(BOUND_MS + 30_000);
  let cleanup: Cleanup;
  let prefix: string;
  let redis: string;

  beforeEach(() => {
    cleanup = new Cleanup();
    prefix = `${uniqueName('oneshot')}:`;
    cleanup.redisKeys(`${prefix}*`);
    redis = redisUrl();
  });
  afterEach(() => cleanup.run());

  /** Runs a script that does not call close() and expects it to print "done" and exit 0 by itself. */
  const endsByItself = async (code: string): Promise<void> => {
    const run = script(code);
    cleanup.defer(() => void run.child.kill('SIGKILL'));
    const exit = await run.exited;
    expect(exit, `still running after ${BOUND_MS} ms; stdout: ${run.stdout()} stderr: ${run.stderr()}`).to.equal(0);
    expect(run.stdout()).to.match(/done\n$/);
    expect(run.stderr()).to.equal('');
  };

  const options = () => `{ redis: ${JSON.stringify(redis)}, prefix: ${JSON.stringify(prefix)} }`;

  it('RedisLock: lock, release, withLock, an acquire() that waited (a subscriber of its own), no close()', () =>
    endsByItself(`
      import { RedisLock } from '@contexture/collector/locks';
      const locks = new RedisLock(${options()});
      const h = await locks.lock('invoice:42', { ttl: 10_000 });
      await h.release();
      await locks.withLock('report', 10_000, async () => 'built');
      const other = new RedisLock({ ...${options()}, owner: 'other' });
      const held = await locks.lock('busy', { ttl: 10_000 });
      const waiting = other.acquire('busy', { retryDelay: 10_000, jitter: 0 });
      setTimeout(() => void held.release(), 200);
      await (await waiting).release();
      console.log('done');
    `));

  it('LockPool: add, lock, release, healthCheck, no close()', () =>
    endsByItself(`
      import { LockPool } from '@contexture/collector/locks';
      const pool = new LockPool({ ...${options()}, pool: 'workers' });
      await pool.add('w1', 'w2');
      const h = await pool.lock('w1');
      await h.release();
      await pool.healthCheck();
      console.log('done');
    `));

  it('Allocator: extend, malloc, free, no close()', () =>
    endsByItself(`
      import { Allocator } from '@contexture/collector/allocator';
      const pool = new Allocator({ ...${options()}, pool: 'proxies' });
      await pool.extend(['p1', 'p2']);
      const a = await pool.malloc({ timeout: 60_000 });
      await a.free();
      console.log('done');
    `));

  it('Registry: register, heartbeat, list, no close()', () =>
    endsByItself(`
      import { Registry } from '@contexture/collector/registry';
      const registry = new Registry(${options()});
      await registry.register({ id: 'api-1', kind: 'backend' });
      await registry.heartbeat('api-1', { inFlight: 1 });
      await registry.list();
      console.log('done');
    `));

  it('RedisContextStore: apply, get, sync, no close()', () =>
    endsByItself(`
      import { RedisContextStore } from '@contexture/collector/store';
      const store = new RedisContextStore(${options()});
      await store.apply({ obj_id: 'o1', obj: { total: 10 }, status: 'born', seq: 0 }, { rkey: 'shop.order' });
      await store.get('o1');
      await store.sync('o1', null);
      console.log('done');
    `));

  it('SharedContext: open, update, transaction, no close() (its subscription does not hold the process)', () =>
    endsByItself(`
      import { SharedContext } from '@contexture/collector/shared';
      const room = await SharedContext.open('room:1', ${options()});
      await room.update('topic', 'standup');
      await room.transaction({ host: 'ann' });
      console.log('done');
    `));

  it('SharedContext: writes under way when close() comes settle with their versions, and the script ends', () =>
    endsByItself(`
      import { SharedContext } from '@contexture/collector/shared';
      const room = await SharedContext.open('room:2', ${options()});
      const writes = [room.update('z', 1), room.transaction({ y: 2 }), room.delete('y')];
      await room.close();
      const versions = await Promise.all(writes);
      if (versions.join() !== '1,2,3') throw new Error('versions ' + versions.join());
      console.log('done');
    `));

  it('TaskQueue: a query answered by a listener, the listener stopped, no close()', () =>
    endsByItself(`
      import { TaskQueue } from '@contexture/collector/tasks';
      const tasks = new TaskQueue({ ...${options()}, handler: { add: async (t) => t.params.a + t.params.b } });
      const stop = new AbortController();
      const listening = tasks.listen(['add'], { signal: stop.signal });
      await tasks.query({ name: 'add', params: { a: 1, b: 2 }, timeout: 10_000, policy: 'remote' });
      stop.abort();
      await listening;
      console.log('done');
    `));

  it('on a Redis Cluster (nodes given as URLs): a store, a SharedContext and a TaskQueue, no close()', async () => {
    cleanup.clusterKeys(`${prefix}*`);
    const nodes = JSON.stringify(redisClusterNodes().map((n) => `redis://${n}`));
    await endsByItself(`
      import { RedisContextStore } from '@contexture/collector/store';
      import { SharedContext } from '@contexture/collector/shared';
      import { TaskQueue } from '@contexture/collector/tasks';
      const options = { redis: ${nodes}, prefix: ${JSON.stringify(prefix)} };
      const store = new RedisContextStore(options);
      await store.apply({ obj_id: 'o1', obj: { total: 10 }, status: 'born', seq: 0 }, { rkey: 'shop.order' });
      const watch = store.watch('o1', { keepAlive: false });
      await watch.ready;
      const room = await SharedContext.open('room:1', options);
      await room.update('topic', 'standup');
      const tasks = new TaskQueue({ ...options, handler: { add: async (t) => t.params.a + t.params.b } });
      const stop = new AbortController();
      const listening = tasks.listen(['add'], { signal: stop.signal });
      await tasks.query({ name: 'add', params: { a: 1, b: 2 }, timeout: 10_000, policy: 'remote' });
      stop.abort();
      await listening;
      console.log('done');
    `);
  });

  it('a call awaited while Redis is unreachable keeps the process until it fails (not an early exit)', async () => {
    const port = await freePort();
    await endsByItself(`
      import { RedisLock } from '@contexture/collector/locks';
      const locks = new RedisLock({ redis: 'redis://127.0.0.1:${port}', prefix: ${JSON.stringify(prefix)} });
      const code = await locks.lock('a', { ttl: 1000 }).then(() => 'taken', (e) => e.code);
      console.log(code);
      console.log('done');
    `);
  });

  it('what waits on purpose holds the process: a watch iterated, a listening worker, a SharedContext with keepAlive', async () => {
    const run = script(`
      import { RedisContextStore } from '@contexture/collector/store';
      import { SharedContext } from '@contexture/collector/shared';
      import { TaskQueue } from '@contexture/collector/tasks';
      const options = ${options()};
      const store = new RedisContextStore(options);
      const watch = store.watch('w1');
      await watch.ready;
      const shared = await SharedContext.open('room:2', { ...options, keepAlive: true });
      const sharedSeen = new Promise((resolve) =>
        shared.once('change', () => {
          console.log('shared changed');
          resolve(shared.close());
        }),
      );
      const stop = new AbortController();
      const tasks = new TaskQueue({ ...options, handler: { ping: async () => { stop.abort(); return 'pong'; } } });
      const listening = tasks.listen(['ping'], { signal: stop.signal });
      console.log('waiting');
      for await (const ev of watch) {
        console.log('watched', ev.type);
        break;
      }
      await listening;
      console.log('worker stopped');
      await sharedSeen;
      console.log('done');
    `);
    cleanup.defer(() => void run.child.kill('SIGKILL'));
    await waitUntil(() => run.stdout().includes('waiting') || run.child.exitCode !== null, 'the script to wait');
    expect(run.child.exitCode, run.stderr()).to.equal(null);
    // Each of the three, in turn, from here: the script must still be there for it.
    const store = new RedisContextStore({ redis, prefix });
    cleanup.defer(() => store.close());
    await store.apply({ obj_id: 'w1', obj: { a: 1 }, status: 'born', seq: 0 }, { rkey: 'r' });
    await waitUntil(() => run.stdout().includes('watched'), 'the watch event in the script');
    const tasks = new TaskQueue({ redis, prefix });
    cleanup.defer(() => tasks.close());
    expect(await tasks.query({ name: 'ping', timeout: 10_000, policy: 'remote' })).to.equal('pong');
    await waitUntil(() => run.stdout().includes('worker stopped'), 'the worker to stop in the script');
    const { SharedContext } = await import('@contexture/collector/shared');
    const room = await SharedContext.open('room:2', { redis, prefix });
    cleanup.defer(() => room.close());
    await room.update('topic', 'x');
    const exit = await run.exited;
    expect(exit, `stdout: ${run.stdout()} stderr: ${run.stderr()}`).to.equal(0);
    expect(run.stdout()).to.equal('waiting\nwatched change\nworker stopped\nshared changed\ndone\n');
  });
});
