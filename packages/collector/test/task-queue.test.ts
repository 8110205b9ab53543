import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { type Cluster, Redis } from 'ioredis';
import { Cleanup, freePort, redisUrl, TempRedis, uniqueName, waitUntil } from '@contexture/test-support';
import { CollectorError } from '../src/internal/errors.js';
import { TaskError, TaskQueue, type Task, type TaskQueueOptions } from '../src/tasks/index.js';
import { TASK_SCRIPTS } from '../src/tasks/task-scripts.js';
import { type Backend, BACKENDS, CLUSTER, keysMatching, masterOf, SINGLE } from './support/backends.js';
import { proxiedRedis } from './support/proxied-redis.js';
import { expectUnavailable } from './support/unavailable.js';

const WORKER = fileURLToPath(new URL('../../test/fixtures/task-worker.mjs', import.meta.url));

// Set by the hooks of the describe() that runs (one at a time): the behaviour tests run on each backend.
let backend: Backend;
let cleanup: Cleanup;
let prefix: string;
let namespace: string;
let redis: Redis | Cluster;

/** Hooks: a prefix and namespace of the test's own on `on`, and a client of it. */
function onBackend(on: Backend): void {
  beforeEach(() => {
    backend = on;
    cleanup = new Cleanup();
    prefix = `${uniqueName('tq')}:`;
    namespace = uniqueName('ns');
    on.removeKeys(cleanup, `${prefix}*`);
    redis = on.client();
    cleanup.defer(() => redis.quit());
  });
  afterEach(() => cleanup.run());
}

/** A queue of the test's namespace with a client of its own, closed at the end of the test. */
const queue = (o: TaskQueueOptions = {}) => {
  const q = new TaskQueue({ redis: backend.option(), prefix, namespace, ...o });
  cleanup.defer(() => q.close());
  return q;
};
/** A listener running until the test ends. */
const listening = (q: TaskQueue, names: string[], concurrency = 1) => {
  const stop = new AbortController();
  const done = q.listen(names, { concurrency, signal: stop.signal });
  cleanup.defer(async () => {
    stop.abort();
    await done;
  });
  return done;
};
const rejection = async (p: Promise<unknown>): Promise<{ code: string; message: string; remote?: unknown }> => {
  try {
    await p;
  } catch (err) {
    return err as { code: string; message: string; remote?: unknown };
  }
  throw new Error('expected a rejection');
};

for (const on of BACKENDS)
  describe(`TaskQueue (${on.name})`, function () {
    this.timeout(60_000);
    onBackend(on);

    it('queues of a namespace must say the same shards: another number fails its queries and listen()', async () => {
      const worker = queue({ shards: 2, handler: async () => 'ok' });
      void listening(worker, ['job']);
      expect(await queue({ shards: 2 }).query({ name: 'job', policy: 'remote' })).to.equal('ok');
      expect(await redis.get(`${prefix}tq:{${namespace}}:shards`)).to.equal('2');
      const wrong = queue({ shards: 3, handler: async () => 'never' });
      // Without the check, queued where no listener looks: it would wait for its timeout.
      const queried = await rejection(wrong.query({ name: 'job', policy: 'remote', timeout: 20_000 }));
      expect(queried.code).to.equal('LC_TASK_SHARDS_MISMATCH');
      expect(queried.message).to.include(`task queue namespace '${namespace}' is spread over 2 part(s)`);
      expect(queried.message).to.include('this queue says shards: 3');
      const listened = await rejection(wrong.listen(['job']));
      expect(listened.code).to.equal('LC_TASK_SHARDS_MISMATCH');
      // The namespace's own queues go on.
      expect(await queue({ shards: 2 }).query({ name: 'job', policy: 'remote' })).to.equal('ok');
    });

    it('remote: a listener runs the task; the caller gets the result and sees progress, by notification', async () => {
      const worker = queue({
        handler: {
          resize: async (t: Task<{ w: number }>) => {
            await t.update(1, 2);
            await t.update(2, 2);
            return { width: t.params.w, attempt: t.attempt };
          },
        },
      });
      void listening(worker, ['resize']);
      const caller = queue();
      const progress: Array<[number, number]> = [];
      const out = await caller.query({
        name: 'resize',
        params: { w: 200 },
        policy: 'remote',
        onProgress: (c, t) => progress.push([c, t]),
      });
      expect(out).to.deep.equal({ width: 200, attempt: 1 });
      expect(progress).to.deep.equal([
        [1, 2],
        [2, 2],
      ]);
    });

    it('policies: local, auto, localFirst and remoteFirst pick where the task runs', async () => {
      const here = queue({ handler: { where: () => 'here', broken: () => Promise.reject(new Error('no luck here')) } });
      expect(await here.query({ name: 'where', policy: 'local' })).to.equal('here');
      expect(await keysMatching(redis, `${prefix}tq:*:t:*`)).to.deep.equal([], 'a local run writes nothing to Redis');
      expect((await rejection(queue().query({ name: 'where', policy: 'local' }))).code).to.equal('LC_TASK_NO_HANDLER');
      expect(await here.query({ name: 'where', policy: 'auto' })).to.equal('here', 'auto without a live listener');
      expect(await here.query({ name: 'where', policy: 'remoteFirst' })).to.equal(
        'here',
        'remoteFirst without a live listener',
      );
      const there = queue({ handler: { where: () => 'there', broken: () => 'fixed there' } });
      void listening(there, ['where', 'broken']);
      await waitUntil(async () => (await here.listeners('where')) === 1, 'the listener to be seen');
      expect(await here.query({ name: 'where', policy: 'auto' })).to.equal('there');
      expect(await here.query({ name: 'where', policy: 'remoteFirst' })).to.equal('there');
      expect(await here.query({ name: 'where', policy: 'localFirst' })).to.equal('here');
      expect(await here.query({ name: 'broken', policy: 'localFirst' })).to.equal(
        'fixed there',
        'localFirst goes remote when the local run fails',
      );
    });

    it("a task run here ends at the query's timeout, its abort or close(), its signal aborted, whether or not it heeds it", async () => {
      const heard: unknown[] = [];
      const never = (t: Task) => {
        t.signal.addEventListener('abort', () => heard.push(t.signal.reason), { once: true });
        return new Promise<never>(() => {});
      };
      const q = queue({ handler: { never }, listenerTimeout: 100 });
      for (const policy of ['local', 'auto', 'localFirst'] as const) {
        const t0 = performance.now();
        const err = await rejection(q.query({ name: 'never', policy, timeout: 300 }));
        expect(err.code, policy).to.equal('LC_TASK_TIMEOUT');
        expect(err.message, policy).to.match(/within 300 ms$/);
        expect(performance.now() - t0, policy).to.be.below(5_000);
      }
      expect(heard.map((r) => (r as { code?: string }).code)).to.deep.equal([
        'LC_TASK_TIMEOUT',
        'LC_TASK_TIMEOUT',
        'LC_TASK_TIMEOUT',
      ]);
      const ac = new AbortController();
      const aborted = rejection(q.query({ name: 'never', policy: 'local', signal: ac.signal }));
      ac.abort(new Error('user left'));
      expect((await aborted).code).to.equal('LC_TASK_ABORTED');
      const running = rejection(q.query({ name: 'never', policy: 'local' }));
      await new Promise((r) => setTimeout(r, 20));
      await q.close();
      expect((await running).code).to.equal('LC_TASK_CLOSED');
      expect(heard).to.have.length(5);
      expect((heard[4] as { code?: string }).code).to.equal('LC_TASK_CLOSED');
    });

    it("a query's or listen()'s signal that is no AbortSignal, or an onProgress that is no function, is LC_TASK_INVALID; nothing throws later", async () => {
      const q = queue({ handler: { echo: (t: Task) => t.params }, listenerTimeout: 50 });
      for (const policy of ['auto', 'remote', 'local'] as const) {
        const err = await rejection(q.query({ name: 'echo', params: 1, policy, signal: {} as never }));
        expect(err.code, policy).to.equal('LC_TASK_INVALID');
        expect(err.message, policy).to.match(/^signal must be an AbortSignal/);
      }
      const progress = await rejection(q.query({ name: 'echo', onProgress: 5 as never }));
      expect(progress.code).to.equal('LC_TASK_INVALID');
      expect((await rejection(q.listen(['echo'], { signal: {} as never }))).code).to.equal('LC_TASK_INVALID');
      // Past the listener check's time: no timer of a refused query throws (mocha would fail the test).
      await new Promise((r) => setTimeout(r, 150));
      expect(await keysMatching(redis, `${prefix}tq:*:t:*`)).to.deep.equal([]);
    });

    it('a task that throws rejects the caller with LC_TASK_FAILED and the remote error', async () => {
      const worker = queue({
        handler: async () => {
          throw Object.assign(new RangeError('width too large'), { code: 'E_WIDTH' });
        },
      });
      void listening(worker, ['resize']);
      const err = await rejection(queue().query({ name: 'resize', policy: 'remote', params: { w: 1e9 } }));
      expect(err).to.be.instanceOf(TaskError);
      expect(err).to.be.instanceOf(CollectorError);
      expect(err).to.include({ name: 'TaskError' });
      expect(err.code).to.equal('LC_TASK_FAILED');
      expect(err.remote).to.deep.equal({ name: 'RangeError', message: 'width too large', code: 'E_WIDTH' });
      expect(err.message).to.match(/^task 'resize' \(.+\) failed: width too large$/);
    });

    it('a task that throws a value with no text (a null-prototype object, a throwing toString or name) fails at once, here and on a worker', async () => {
      const thrown: Record<string, () => unknown> = {
        bare: () => Object.create(null),
        badText: () => ({
          toString() {
            throw new Error('no text');
          },
        }),
        badName: () =>
          Object.defineProperty(new Error('named badly'), 'name', {
            get() {
              throw new Error('no name');
            },
          }),
      };
      const runs: Record<string, number> = {};
      const handler = Object.fromEntries(
        Object.entries(thrown).map(([name, make]) => [
          name,
          async () => {
            runs[name] = (runs[name] ?? 0) + 1;
            throw make();
          },
        ]),
      );
      const worker = queue({ handler, visibilityTimeout: 1_000 });
      void listening(worker, Object.keys(thrown));
      const caller = queue();
      for (const name of Object.keys(thrown)) {
        const here = await rejection(worker.query({ name, policy: 'local', timeout: 2_000 }));
        expect(here.code, name).to.equal('LC_TASK_FAILED');
        const there = await rejection(caller.query({ name, policy: 'remote', timeout: 20_000 }));
        expect(there.code, name).to.equal('LC_TASK_FAILED');
        expect(there.remote, name).to.deep.equal(here.remote);
        expect(runs[name], name).to.equal(2, 'once here, once on the worker');
      }
      const remotes = await Promise.all(
        Object.keys(thrown).map((name) => rejection(worker.query({ name, policy: 'local' }))),
      );
      expect(remotes.map((e) => e.remote)).to.deep.equal([
        { name: 'Error', message: '[object Object]' },
        { name: 'Error', message: '[object Object]' },
        { name: 'Error', message: 'named badly' },
      ]);
    });

    it("a timeout of 2^31 ms or more (past what Node's timers take) is waited for, here and for a listener, not ended at once", async () => {
      const never = () => new Promise<never>(() => {});
      const q = queue({ handler: { never }, listenerTimeout: 2 ** 31, visibilityTimeout: 3 * 2 ** 31 });
      const stop = new AbortController();
      const ended: string[] = [];
      const long = (policy: 'local' | 'remote' | 'auto') =>
        rejection(
          q.query({ name: policy === 'remote' ? 'nobody' : 'never', policy, timeout: 2 ** 31, signal: stop.signal }),
        ).then((e) => {
          ended.push(policy);
          return e;
        });
      const waiting = [long('local'), long('remote'), long('auto')];
      // Queries of a short timeout end first: time enough for a long one's timer to have fired.
      for (const policy of ['local', 'remote'] as const) {
        const name = policy === 'remote' ? 'nobody' : 'never';
        expect((await rejection(q.query({ name, policy, timeout: 300 }))).code).to.equal('LC_TASK_TIMEOUT');
      }
      expect(ended).to.deep.equal([]);
      stop.abort();
      expect((await Promise.all(waiting)).map((e) => e.code)).to.deep.equal(Array(3).fill('LC_TASK_ABORTED'));
    });

    it('no listener: LC_TASK_TIMEOUT after the timeout; an aborted wait rejects with LC_TASK_ABORTED', async () => {
      const caller = queue();
      const t0 = Date.now();
      expect((await rejection(caller.query({ name: 'nobody', policy: 'remote', timeout: 300 }))).code).to.equal(
        'LC_TASK_TIMEOUT',
      );
      expect(Date.now() - t0).to.be.at.least(290);
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 100);
      expect((await rejection(caller.query({ name: 'nobody', policy: 'remote', signal: ac.signal }))).code).to.equal(
        'LC_TASK_ABORTED',
      );
      // auto: a listener is alive (asking took part of the timeout) but never answers; the message
      // says the timeout the caller set.
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const worker = queue({ handler: { slow: () => held } });
      void listening(worker, ['slow']);
      cleanup.defer(() => release());
      await waitUntil(async () => (await caller.listeners('slow')) > 0, 'the listener');
      const here = queue({ handler: { slow: () => 'here' } });
      // The timeout leaves seconds for Redis to say the listener is alive (a busy machine can take
      // longer than a few hundred ms, and the message then says Redis did not answer).
      const late = await rejection(here.query({ name: 'slow', policy: 'auto', timeout: 3_000 }));
      expect(late.code).to.equal('LC_TASK_TIMEOUT');
      expect(late.message).to.match(/within 3000 ms$/);
    });

    it('a ready list nobody takes from expires with its tasks; a query drops the ids of expired tasks ahead of it', async () => {
      const base = `${prefix}tq:{${namespace}}:`;
      const caller = queue();
      // Five short-lived tasks, then a long-lived one, of a name no listener runs.
      const short = Array.from({ length: 5 }, (_, i) =>
        rejection(caller.query({ id: `short-${i}`, name: 'nobody', policy: 'remote', timeout: 200 })),
      );
      await waitUntil(async () => (await redis.llen(`${base}q:nobody`)) === 5, 'the short ones queued');
      const stop = new AbortController();
      const long = rejection(
        caller.query({ id: 'long', name: 'nobody', policy: 'remote', timeout: 60_000, signal: stop.signal }),
      );
      cleanup.defer(() => stop.abort());
      await waitUntil(async () => (await redis.llen(`${base}q:nobody`)) === 6, 'the long one queued');
      expect((await Promise.all(short)).map((e) => e.code)).to.deep.equal(Array(5).fill('LC_TASK_TIMEOUT'));
      await waitUntil(
        async () => (await redis.exists(...Array.from({ length: 5 }, (_, i) => `${base}t:short-${i}`))) === 0,
        'the short ones to expire',
        10_000,
      );
      // The list lives as long as its longest-lived task, not as its last one.
      void rejection(caller.query({ id: 'brief', name: 'nobody', policy: 'remote', timeout: 200 }));
      await waitUntil(async () => (await redis.exists(`${base}t:brief`)) === 1, 'the brief one queued');
      expect(await redis.pttl(`${base}q:nobody`)).to.be.within(30_000, 60_000);
      expect(await redis.lrange(`${base}q:nobody`, 0, -1)).to.deep.equal(['long', 'brief'], 'the expired ones dropped');
      stop.abort();
      expect((await long).code).to.equal('LC_TASK_ABORTED');
      // A name's ready list is gone once its tasks expired unclaimed.
      const gone = Array.from({ length: 3 }, () =>
        rejection(caller.query({ name: 'gone', policy: 'remote', timeout: 300 })),
      );
      await waitUntil(async () => (await redis.llen(`${base}q:gone`)) === 3, 'three tasks queued');
      await Promise.all(gone);
      await waitUntil(async () => (await redis.exists(`${base}q:gone`)) === 0, 'the ready list to expire', 10_000);
    });

    it("a claim whose worker died and whose task expired leaves no key: the name's running zset expires with its tasks", async () => {
      const base = `${prefix}tq:{${namespace}}:`;
      const caller = queue();
      const claim = () =>
        TASK_SCRIPTS.claim.call(caller.redis, 2, `${base}q:job`, `${base}running:job`, base, 'dead', 100, '', 'job');
      const pending = rejection(caller.query({ id: 'd1', name: 'job', policy: 'remote', timeout: 500 }));
      await waitUntil(async () => (await redis.llen(`${base}q:job`)) === 1, 'the task queued');
      expect((await claim())!.slice(0, 4)).to.deep.equal(['d1', 'job', 'null', 1]);
      // The worker dies: no renewal, no finish; no worker of the name ever claims again.
      expect(await redis.pttl(`${base}running:job`)).to.be.within(1, 500);
      expect((await pending).code).to.equal('LC_TASK_TIMEOUT');
      await waitUntil(
        async () => (await redis.exists(`${base}running:job`)) === 0,
        'the running zset to expire',
        10_000,
      );
    });

    it('an outcome whose notification never came (a subscriber between cluster nodes) is read back while the query waits', async () => {
      const caller = queue({ recheckInterval: 100 });
      const id = uniqueName('lost');
      const waiting = caller.query({ id, name: 'lost', policy: 'remote', timeout: 10_000 });
      // The task's outcome written where a worker writes it, and told to no one.
      const key = `${prefix}tq:{${namespace}}:t:${id}`;
      await waitUntil(async () => (await redis.hget(key, 'status')) !== null, 'the task queued');
      await redis.hset(key, 'status', 'done', 'result', JSON.stringify({ ok: 1 }));
      expect(await waiting).to.deep.equal({ ok: 1 });
      expect(() => new TaskQueue({ redis: backend.option(), recheckInterval: 0 }))
        .to.throw(/recheckInterval/)
        .with.property('code', 'LC_TASK_INVALID');
      // An empty hash tag would put a namespace's keys in several slots: refused.
      expect(() => new TaskQueue({ redis: backend.option(), namespace: '}x' }))
        .to.throw(/namespace must not start with }/)
        .with.property('code', 'LC_TASK_INVALID');
      expect(() => new TaskQueue({ redis: backend.option(), prefix: 'p{}:' }))
        .to.throw(/prefix must not hold \{ right before \}/)
        .with.property('code', 'LC_TASK_INVALID');
    });

    it('JSON only: params or results that are not JSON are refused; nothing is evaluated', async () => {
      const caller = queue({ handler: { big: () => 10n, fn: () => () => 1, nan: () => ({ n: Number.NaN }) } });
      expect((await rejection(caller.query({ name: 'x', params: { f: 1n } }))).code).to.equal('LC_TASK_INVALID');
      const cyclic: Record<string, unknown> = {};
      cyclic.me = cyclic;
      expect((await rejection(caller.query({ name: 'x', params: cyclic }))).code).to.equal('LC_TASK_INVALID');
      expect((await rejection(caller.query({ name: '', params: {} }))).code).to.equal('LC_TASK_INVALID');
      expect((await rejection(caller.query({ name: 'big', policy: 'local' }))).code).to.equal('LC_TASK_INVALID');
      const nan = await rejection(caller.query({ name: 'nan', policy: 'local' }));
      expect(nan.code).to.equal('LC_TASK_INVALID', 'a NaN result would reach the caller as null');
      expect(nan.message).to.match(/"n" is NaN, not JSON/);
      void listening(caller, ['big', 'nan']);
      // On a worker as here: the result is refused (LC_TASK_INVALID), not a failure of the task.
      for (const name of ['big', 'nan']) {
        const err = await rejection(caller.query({ name, policy: 'remote' }));
        expect(err.code, name).to.equal('LC_TASK_INVALID');
        expect(err.message, name).to.match(/the result must be JSON: .*(BigInt|NaN)/);
      }
      for (const params of [
        { m: new Map([[1, 2]]) },
        { f: () => 1 },
        new Set([1]),
        { s: Symbol('x') },
        { n: Number.NaN },
        [1, Number.POSITIVE_INFINITY],
        Number.NEGATIVE_INFINITY,
      ]) {
        const e = await rejection(caller.query({ name: 'x', params }));
        expect(e.code).to.equal('LC_TASK_INVALID');
        expect(e.message).to.match(/not JSON/);
      }
      // Params arrive as data: a __proto__ key stays an own property.
      const echo = queue({
        handler: {
          echo: (t: Task) => ({
            keys: Object.keys(t.params as object),
            polluted: ({} as Record<string, unknown>).polluted ?? null,
          }),
        },
      });
      void listening(echo, ['echo']);
      const out = await caller.query({
        name: 'echo',
        policy: 'remote',
        params: JSON.parse('{"__proto__":{"polluted":1},"a":1}'),
      });
      expect(out).to.deep.equal({ keys: ['__proto__', 'a'], polluted: null });
    });

    it('one id runs once: callers of the same id share its outcome; asked again, the kept result is returned; once drops it', async () => {
      let runs = 0;
      const worker = queue({
        handler: async () => {
          runs++;
          await new Promise((r) => setTimeout(r, 200));
          return runs;
        },
      });
      void listening(worker, ['count'], 4);
      const a = queue();
      const b = queue();
      const [ra, rb] = await Promise.all([
        a.query({ id: 'job-1', name: 'count', policy: 'remote' }),
        b.query({ id: 'job-1', name: 'count', policy: 'remote' }),
      ]);
      expect([ra, rb, runs]).to.deep.equal([1, 1, 1]);
      expect(await a.query({ id: 'job-1', name: 'count', policy: 'remote' })).to.equal(1);
      expect(runs).to.equal(1);
      expect((await rejection(a.query({ id: 'job-1', name: 'other', policy: 'remote' }))).code).to.equal(
        'LC_TASK_CONFLICT',
      );
      expect(await a.query({ id: 'job-2', name: 'count', policy: 'remote', once: true })).to.equal(2);
      await waitUntil(
        async () => (await redis.exists(`${prefix}tq:{${namespace}}:t:job-2`)) === 0,
        'once to drop the outcome',
        2_000,
      );
      expect(await redis.pttl(`${prefix}tq:{${namespace}}:t:job-1`)).to.be.greaterThan(0, 'a kept outcome expires');
    });

    it('an id asked again after its unclaimed task expired runs once, whatever its attempts', async () => {
      const base = `${prefix}tq:{${namespace}}:`;
      const ids = ['again-1', 'again-3'];
      const callers = [queue({ maxAttempts: 1 }), queue({ maxAttempts: 3 })];
      // A long-lived task ahead of them keeps the ready list, and the ids behind it, until a listener comes.
      const ahead = callers[0]!.query({ id: 'ahead', name: 'job', policy: 'remote', timeout: 30_000 });
      await waitUntil(async () => (await redis.llen(`${base}q:job`)) === 1, 'the first task queued');
      // No listener yet: both time out, their task hashes expire, their ids stay in the ready list.
      const first = await Promise.all(
        ids.map((id, i) => rejection(callers[i]!.query({ id, name: 'job', policy: 'remote', timeout: 200 }))),
      );
      expect(first.map((e) => e.code)).to.deep.equal(['LC_TASK_TIMEOUT', 'LC_TASK_TIMEOUT']);
      await waitUntil(
        async () => (await redis.exists(...ids.map((id) => `${base}t:${id}`))) === 0,
        'the unclaimed tasks to expire',
        10_000,
      );
      // Asked again: each id is queued anew, behind its first copy.
      const again = ids.map((id, i) => callers[i]!.query({ id, name: 'job', policy: 'remote', timeout: 30_000 }));
      await waitUntil(async () => (await redis.llen(`${base}q:job`)) === 5, 'both ids queued twice', 10_000);
      let now = 0;
      let most = 0;
      const runs: string[] = [];
      const worker = queue({
        handler: async (t: Task) => {
          runs.push(t.id);
          most = Math.max(most, ++now);
          // Held until the listener looked at every copy in the ready list (it has room for all).
          await waitUntil(async () => (await redis.llen(`${base}q:job`)) === 0, 'the ready list emptied', 10_000);
          await new Promise((r) => setTimeout(r, 100));
          now--;
          return { id: t.id, attempt: t.attempt };
        },
      });
      void listening(worker, ['job'], 4);
      expect(await Promise.all(again)).to.deep.equal(ids.map((id) => ({ id, attempt: 1 })));
      expect(await ahead).to.deep.equal({ id: 'ahead', attempt: 1 });
      expect(runs.sort()).to.deep.equal([...ids, 'ahead'], 'each task ran once');
      expect(most).to.equal(3, 'no task ran twice at once');
      // The recorded outcome stays the result: no leftover copy failed it afterwards.
      expect(await callers[0]!.query({ id: 'again-1', name: 'job', policy: 'remote' })).to.deep.equal({
        id: 'again-1',
        attempt: 1,
      });
      expect(runs).to.have.length(3);
    });

    it('a claim left behind by a task that expired while it ran does not take the id queued anew: it is claimed once', async () => {
      const caller = queue();
      const base = `${prefix}tq:{${namespace}}:`;
      const claim = (vis: number) =>
        TASK_SCRIPTS.claim.call(caller.redis, 2, `${base}q:job`, `${base}running:job`, base, 'stalled', vis, '', 'job');
      // A long-lived task claimed first keeps the running zset while the other one expires.
      void rejection(caller.query({ id: 'keeper', name: 'job', policy: 'remote', timeout: 30_000 }));
      await waitUntil(async () => (await redis.llen(`${base}q:job`)) === 1, 'the long-lived task queued');
      expect((await claim(60_000))![0]).to.equal('keeper');
      const first = rejection(caller.query({ id: 'e1', name: 'job', policy: 'remote', timeout: 300 }));
      await waitUntil(async () => (await redis.llen(`${base}q:job`)) === 1, 'the task queued');
      expect((await claim(100))!.slice(0, 4)).to.deep.equal(['e1', 'job', 'null', 1]);
      expect((await first).code).to.equal('LC_TASK_TIMEOUT');
      // Its lifetime over, its hash expired; its claim (past its visibility) is still in the running zset.
      await waitUntil(async () => (await redis.exists(`${base}t:e1`)) === 0, 'the task to expire', 10_000);
      expect(await redis.zscore(`${base}running:job`, 'e1')).to.not.equal(null);
      const again = caller.query({ id: 'e1', name: 'job', policy: 'remote', params: 2, timeout: 20_000 });
      await waitUntil(async () => (await redis.llen(`${base}q:job`)) === 1, 'the id queued anew');
      const taken = (await claim(10_000))!;
      expect(taken.slice(0, 5)).to.deep.equal(['e1', 'job', '2', 1, 1]);
      expect(await claim(10_000)).to.equal(null, 'not claimed a second time while it runs');
      const keys = [`${base}t:e1`, `${base}running:job`, `${base}w:e1`];
      expect(await TASK_SCRIPTS.finish.call(caller.redis, 3, ...keys, 'e1', 1, 'done', '"once"', '')).to.deep.equal([
        1,
        null,
      ]);
      expect(await again).to.equal('once');
    });

    it("an id left in a name's ready list after it expired and came back with another name is not run by that name's listener", async () => {
      const base = `${prefix}tq:{${namespace}}:`;
      const caller = queue();
      // A long-lived task ahead keeps the 'job' ready list, and the id behind it.
      const ahead = caller.query({ id: 'ahead', name: 'job', policy: 'remote', timeout: 30_000 });
      await waitUntil(async () => (await redis.llen(`${base}q:job`)) === 1, 'the first task queued');
      expect(
        (await rejection(caller.query({ id: 'moved', name: 'job', policy: 'remote', timeout: 200 }))).code,
      ).to.equal('LC_TASK_TIMEOUT');
      await waitUntil(async () => (await redis.exists(`${base}t:moved`)) === 0, 'the unclaimed task to expire', 10_000);
      const other = caller.query({ id: 'moved', name: 'other', policy: 'remote', timeout: 30_000 });
      await waitUntil(async () => (await redis.llen(`${base}q:other`)) === 1, "queued as 'other'", 10_000);
      // A listener of 'job' alone finds the id in its list: the task is not its own.
      const jobs = queue({ handler: { job: () => 'job' } });
      void listening(jobs, ['job']);
      await waitUntil(async () => (await redis.llen(`${base}q:job`)) === 0, "the 'job' listener to look", 10_000);
      expect(await ahead).to.equal('job');
      expect(await redis.hget(`${base}t:moved`, 'status')).to.equal('queued');
      const others = queue({ handler: { other: (t: Task) => ({ name: t.name, attempt: t.attempt }) } });
      void listening(others, ['other']);
      expect(await other).to.deep.equal({ name: 'other', attempt: 1 });
    });

    it('listen runs at most `concurrency` tasks at once, and all of them', async () => {
      let now = 0;
      let most = 0;
      let started = 0;
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      const worker = queue({
        handler: async (t: Task<number>) => {
          most = Math.max(most, ++now);
          // The first three hold until the test has seen them running together.
          if (++started <= 3) await gate;
          else await new Promise((r) => setImmediate(r));
          now--;
          return t.params * 2;
        },
      });
      void listening(worker, ['double'], 3);
      const caller = queue();
      const all = Promise.all(
        Array.from({ length: 12 }, (_, i) => caller.query({ name: 'double', params: i, policy: 'remote' })),
      );
      await waitUntil(() => now === 3, 'three tasks running at once', 15_000);
      // While those three run, the other nine stay queued in Redis: the listener takes no fourth.
      const ready = `${prefix}tq:{${namespace}}:q:double`;
      await waitUntil(async () => (await redis.llen(ready)) === 9, 'the other nine queued', 15_000);
      expect(now).to.equal(3);
      open();
      expect(await all).to.deep.equal(Array.from({ length: 12 }, (_, i) => i * 2));
      expect(most).to.equal(3);
    });

    it('resultTtl: an outcome is kept that long once finished, then the id runs again', async () => {
      let runs = 0;
      const worker = queue({ handler: { count: () => ++runs } });
      void listening(worker, ['count']);
      const short = queue({ resultTtl: 2_500 });
      const key = (id: string) => `${prefix}tq:{${namespace}}:t:${id}`;
      expect(await short.query({ id: 'r1', name: 'count', policy: 'remote' })).to.equal(1);
      expect(await redis.pttl(key('r1'))).to.be.within(1, 2_500);
      expect(await short.query({ id: 'r1', name: 'count', policy: 'remote' })).to.equal(1, 'the kept outcome');
      await waitUntil(async () => (await redis.exists(key('r1'))) === 0, 'the outcome to expire', 15_000);
      expect(await short.query({ id: 'r1', name: 'count', policy: 'remote' })).to.equal(2, 'run again');
      // The default keeps it for ten minutes.
      expect(await queue().query({ id: 'r2', name: 'count', policy: 'remote' })).to.equal(3);
      expect(await redis.pttl(key('r2'))).to.be.within(590_000, 600_000);
      expect((await rejection(Promise.resolve().then(() => queue({ resultTtl: 0 })))).code).to.equal('LC_TASK_INVALID');
    });

    it('a worker killed mid-task: another runs it again and the caller gets one result', async () => {
      const env = { ...process.env, ...backend.env(), PREFIX: prefix, NAMESPACE: namespace, VISIBILITY: '600' };
      const child = spawn(process.execPath, [WORKER], { env, stdio: ['ignore', 'pipe', 'inherit'] });
      cleanup.defer(() => child.kill('SIGKILL'));
      await once(child.stdout!, 'data');
      const caller = queue();
      const results: unknown[] = [];
      const pending = caller
        .query({ id: 'slow-1', name: 'slow', policy: 'remote', timeout: 30_000 })
        .then((r) => results.push(r));
      await waitUntil(async () => (await redis.llen(`${prefix}started`)) === 1, 'the child to start the task', 10_000);
      expect(await redis.lindex(`${prefix}started`, 0)).to.equal(`${child.pid}:1`);
      child.kill('SIGKILL');
      await once(child, 'exit');
      const rescuer = queue({
        visibilityTimeout: 600,
        handler: { slow: (t: Task) => ({ by: 'rescuer', attempt: t.attempt }) },
      });
      void listening(rescuer, ['slow']);
      await pending;
      await new Promise((r) => setTimeout(r, 300));
      expect(results).to.deep.equal([{ by: 'rescuer', attempt: 2 }]);
    });

    it("a dead worker's task is run again though more than 20 claims of other names went stale before it", async () => {
      // No renewal before the kill (every third of 3 s): the claims' deadlines stay in the order taken.
      const env = {
        ...process.env,
        ...backend.env(),
        PREFIX: prefix,
        NAMESPACE: namespace,
        VISIBILITY: '3000',
        CONCURRENCY: '30',
      };
      const child = spawn(process.execPath, [WORKER], { env, stdio: ['ignore', 'pipe', 'inherit'] });
      cleanup.defer(() => child.kill('SIGKILL'));
      await once(child.stdout!, 'data');
      const caller = queue();
      // 25 tasks of a name no other listener runs, claimed first: their claims go stale first.
      for (let i = 0; i < 25; i++)
        void caller.query({ id: `held-${i}`, name: 'hold', policy: 'remote', timeout: 60_000 }).catch(() => {});
      await waitUntil(async () => (await redis.llen(`${prefix}held`)) === 25, 'the child to hold 25 tasks', 10_000);
      const pending = caller.query({ id: 'slow-1', name: 'slow', policy: 'remote', timeout: 20_000 });
      await waitUntil(async () => (await redis.llen(`${prefix}started`)) === 1, 'the child to start the task', 10_000);
      child.kill('SIGKILL');
      await once(child, 'exit');
      const rescuer = queue({ handler: { slow: (t: Task) => ({ by: 'rescuer', attempt: t.attempt }) } });
      void listening(rescuer, ['slow']);
      expect(await pending).to.deep.equal({ by: 'rescuer', attempt: 2 });
    });

    it('a stalled worker that was taken over cannot answer a second time; attempts run out with LC_TASK_GAVE_UP', async () => {
      const caller = queue({ visibilityTimeout: 100, maxAttempts: 2 });
      const base = `${prefix}tq:{${namespace}}:`;
      const claim = () =>
        TASK_SCRIPTS.claim.call(caller.redis, 2, `${base}q:job`, `${base}running:job`, base, 'stalled', 100, '', 'job');
      const pending = rejection(caller.query({ id: 't1', name: 'job', policy: 'remote', timeout: 20_000 }));
      await waitUntil(async () => (await redis.llen(`${base}q:job`)) === 1, 'the task queued');
      const first = (await claim())!;
      expect(first.slice(0, 5)).to.deep.equal(['t1', 'job', 'null', 1, 1]);
      await new Promise((r) => setTimeout(r, 150)); // its visibility passes: the worker stalled
      const second = (await claim())!;
      expect(second.slice(3, 5)).to.deep.equal([2, 2]);
      const keys = [`${base}t:t1`, `${base}running:job`, `${base}w:t1`];
      expect(await TASK_SCRIPTS.finish.call(caller.redis, 3, ...keys, 't1', 1, 'done', '"late"', '')).to.deep.equal(
        [0, null],
        'the first claim is no longer valid',
      );
      expect(await TASK_SCRIPTS.renew.call(caller.redis, ...keys, 't1', 1, 100, '', '')).to.equal(0);
      await new Promise((r) => setTimeout(r, 150)); // the second stalls too: attempts are spent
      expect(await claim()).to.equal(null);
      const err = await pending;
      expect(err.code).to.equal('LC_TASK_GAVE_UP');
      expect(await TASK_SCRIPTS.finish.call(caller.redis, 3, ...keys, 't1', 2, 'done', '"late"', '')).to.deep.equal([
        0,
        null,
      ]);
    });

    it('a worker that closes mid-task hands the task back: another runs it and the caller gets its result', async () => {
      let started!: () => void;
      const running = new Promise<void>((r) => (started = r));
      const leaving = queue({
        visibilityTimeout: 30_000,
        handler: async (t: Task) => {
          started();
          await new Promise((_, reject) => t.signal.addEventListener('abort', () => reject(t.signal.reason)));
        },
      });
      const listener = leaving.listen(['job']);
      const caller = queue();
      const pending = caller.query({ name: 'job', policy: 'remote', timeout: 20_000 });
      await running;
      await leaving.close(); // waits for the running task, which its signal ends
      await listener;
      const staying = queue({ handler: (t: Task) => ({ attempt: t.attempt }) });
      void listening(staying, ['job']);
      expect(await pending).to.deep.equal({ attempt: 2 }, 'handed back at once, not after the 30 s visibility');
    });

    it("a worker's finish takes its next task in the same call", async () => {
      const caller = queue();
      const base = `${prefix}tq:{${namespace}}:`;
      const a = caller.query({ id: 'a', name: 'job', policy: 'remote', params: 1 });
      const b = caller.query({ id: 'b', name: 'job', policy: 'remote', params: 2 });
      await waitUntil(async () => (await redis.llen(`${base}q:job`)) === 2, 'two tasks queued');
      const first = (await TASK_SCRIPTS.claim.call(
        caller.redis,
        2,
        `${base}q:job`,
        `${base}running:job`,
        base,
        'w',
        10_000,
        '',
        'job',
      ))!;
      expect(first.slice(0, 3)).to.deep.equal(['a', 'job', '1']);
      const keys = [`${base}t:a`, `${base}running:job`, `${base}w:a`];
      const [recorded, next] = await TASK_SCRIPTS.finish.call(
        caller.redis,
        5,
        ...keys,
        `${base}q:job`,
        `${base}running:job`,
        'a',
        first[4],
        'done',
        '"A"',
        base,
        'w',
        10_000,
        'job',
      );
      expect(recorded).to.equal(1);
      expect(next!.slice(0, 4)).to.deep.equal(['b', 'job', '2', 1]);
      expect(await a).to.equal('A');
      await TASK_SCRIPTS.finish.call(
        caller.redis,
        3,
        `${base}t:b`,
        `${base}running:job`,
        `${base}w:b`,
        'b',
        next![4],
        'done',
        '"B"',
        '',
      );
      expect(await b).to.equal('B');
    });

    it('a wake-up that comes while a claim is under way is not lost: the listener looks again at once', async () => {
      const base = `${prefix}tq:{${namespace}}:`;
      // The claim script loaded where the namespace is, so that the calls below are single EVALSHAs.
      const none = [2, `${base}q:double`, `${base}running:double`, base, 'test', 1000, '', 'double'] as const;
      expect(await TASK_SCRIPTS.claim.call(redis, ...none)).to.equal(null);
      const lc = backend.client();
      cleanup.defer(() => lc.quit());
      type Fn = (...a: unknown[]) => unknown;
      const hooked = lc as unknown as Record<'duplicate' | 'evalsha', Fn>;
      // The listener's subscriber: the test hears a wake-up on it right after the listener did.
      const subs: Array<Redis | Cluster> = [];
      const duplicate = hooked.duplicate.bind(lc);
      hooked.duplicate = (...a) => {
        const d = duplicate(...a) as Redis | Cluster;
        subs.push(d);
        return d;
      };
      // The listener's claims (their first key is the ready list): counted, and the first one's
      // reply held, once Redis gave it, until the test lets it through.
      let claims = 0;
      let answered!: () => void;
      const firstAnswered = new Promise<void>((r) => (answered = r));
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      const evalsha = hooked.evalsha.bind(lc);
      hooked.evalsha = async (...a) => {
        // A script's keys and arguments go as one list, the number of keys first.
        const list = a.find((x) => Array.isArray(x)) as unknown[] | undefined;
        if (list?.[1] !== `${base}q:double`) return evalsha(...a);
        const n = ++claims;
        const reply = await evalsha(...a);
        if (n === 1) {
          answered();
          await released;
        }
        return reply;
      };
      const worker = queue({ redis: lc, handler: (t: Task<number>) => t.params * 2 });
      void listening(worker, ['double']);
      await firstAnswered; // its first claim found nothing
      expect(subs).to.have.length(1);
      const heard = new Promise<void>((r) =>
        subs[0]!.on('message', (channel: string) => {
          if (channel === `${base}new`) r();
        }),
      );
      const caller = queue();
      const result = caller.query({ name: 'double', params: 21, policy: 'remote' });
      await heard; // the listener heard of the task while its claim was still under way
      release();
      // It claims again before any timer runs, instead of waiting for its next idle look.
      await new Promise((r) => setImmediate(r));
      expect(claims).to.equal(2);
      expect(await result).to.equal(42);
    });

    it('listeners are woken when a task lands in an empty ready list; tasks queued behind it reach them all the same', async () => {
      const base = `${prefix}tq:{${namespace}}:`;
      const wake = `${base}new`;
      const heard: string[] = [];
      const sub = redis.duplicate();
      cleanup.defer(() => sub.quit());
      sub.on('message', (_channel: string, text: string) => heard.push(text));
      await sub.subscribe(wake);
      // Published from the namespace's slot, after the submits: once it is heard, so are they.
      const mark = async (text: string) => {
        await redis.eval("return redis.call('PUBLISH', ARGV[1], ARGV[2])", 1, `${base}mark`, wake, text);
        await waitUntil(() => heard.includes(text), `the wake-up channel's ${text}`);
      };
      const caller = queue();
      const first = Array.from({ length: 3 }, (_, i) => caller.query({ name: 'double', params: i, policy: 'remote' }));
      await waitUntil(async () => (await redis.llen(`${base}q:double`)) === 3, 'three tasks queued');
      await mark('one');
      // Only the first of the three found the list empty.
      expect(heard).to.deep.equal(['double', 'one']);
      const worker = queue({ handler: (t: Task<number>) => t.params * 2 });
      void listening(worker, ['double'], 2);
      expect(await Promise.all(first)).to.deep.equal([0, 2, 4]);
      // The listener is idle now: a burst of tasks, most of them behind others, are all run.
      const burst = await Promise.all(
        Array.from({ length: 20 }, (_, i) => caller.query({ name: 'double', params: i, policy: 'remote' })),
      );
      expect(burst).to.deep.equal(Array.from({ length: 20 }, (_, i) => i * 2));
    });

    it("an error of Redis's own (not of reaching it) rejects a query as Redis gave it, not as LC_REDIS_UNAVAILABLE", async () => {
      const q = queue();
      await redis.set(`${prefix}tq:{${namespace}}:t:w1`, 'not a task');
      const err = await rejection(q.query({ id: 'w1', name: 'job', policy: 'remote', timeout: 10_000 }));
      expect(err).to.not.be.instanceOf(CollectorError);
      expect(err.message).to.match(/WRONGTYPE/);
    });

    it('close rejects pending queries and stops listeners', async () => {
      const q = queue({ handler: () => 1 });
      const listener = q.listen(['x']);
      const pending = rejection(q.query({ name: 'nobody', policy: 'remote' }));
      await new Promise((r) => setTimeout(r, 50));
      await q.close();
      expect((await pending).code).to.equal('LC_TASK_CLOSED');
      await listener;
      expect((await rejection(q.query({ name: 'x' }))).code).to.equal('LC_TASK_CLOSED');
      expect(await redis.zcard(`${prefix}tq:{${namespace}}:l:x`)).to.equal(0, 'the listener left');
    });
  });

describe('TaskQueue: Redis unreachable, stalling or cut off (single Redis)', function () {
  this.timeout(60_000);
  onBackend(SINGLE);

  it('Redis unreachable: a query and listeners() fail with LC_REDIS_UNAVAILABLE saying which task and where, long before the timeout, never the password; auto and remoteFirst run here', async () => {
    const port = await freePort();
    const q = new TaskQueue({
      redis: `redis://user:hunter2secret@127.0.0.1:${port}`,
      prefix,
      namespace,
      handler: () => 1,
    });
    cleanup.defer(() =>
      Promise.race([q.close(), new Promise((r) => setTimeout(r, 1000))]).then(() => q.redis.disconnect()),
    );
    const t0 = Date.now();
    await expectUnavailable(
      [
        [
          "task 'job' (q1) could not be queued",
          () => q.query({ id: 'q1', name: 'job', policy: 'remote', timeout: 60_000 }),
        ],
        ["listeners of task 'job'", () => q.listeners('job')],
      ],
      port,
      'hunter2secret',
    );
    // The queue's client gives up on a command after 10 s: failing sooner is the connection's refusal, seen at once.
    expect(Date.now() - t0).to.be.below(5_000, 'neither the query timeout nor a command timeout');
    // No listener can be reached, so none is alive: with a handler here these run here.
    expect(await q.query({ name: 'job', policy: 'auto', timeout: 60_000 })).to.equal(1);
    expect(await q.query({ name: 'job', policy: 'remoteFirst', timeout: 60_000 })).to.equal(1);
  });

  it("a Redis that never answers (a client that never gives up): auto and remoteFirst keep the query's timeout and signal, and run here past listenerTimeout", async () => {
    const port = await freePort();
    const patient = new Redis(`redis://127.0.0.1:${port}`, { maxRetriesPerRequest: null });
    patient.on('error', () => {});
    cleanup.defer(() => patient.disconnect());
    const q = new TaskQueue({ redis: patient, prefix, namespace, handler: () => 'here', listenerTimeout: 60_000 });
    cleanup.defer(() => Promise.race([q.close(), new Promise((r) => setTimeout(r, 1000))]));
    for (const policy of ['auto', 'remoteFirst'] as const) {
      expect((await rejection(q.query({ name: 'job', policy, timeout: 300 }))).code, policy).to.equal(
        'LC_TASK_TIMEOUT',
      );
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 100);
      expect(
        (await rejection(q.query({ name: 'job', policy, timeout: 60_000, signal: ac.signal }))).code,
        policy,
      ).to.equal('LC_TASK_ABORTED');
    }
    const soon = new TaskQueue({ redis: patient, prefix, namespace, handler: () => 'here', listenerTimeout: 200 });
    cleanup.defer(() => Promise.race([soon.close(), new Promise((r) => setTimeout(r, 1000))]));
    expect(await soon.query({ name: 'job', policy: 'auto', timeout: 60_000 })).to.equal('here');
    expect(await soon.query({ name: 'job', policy: 'remoteFirst', timeout: 60_000 })).to.equal('here');
    // Queries asking meanwhile share one question: Redis is not left a pile of them to answer.
    const many = await Promise.all(
      Array.from({ length: 50 }, () => soon.query({ name: 'job', policy: 'auto', timeout: 60_000 })),
    );
    expect(many.every((r) => r === 'here')).to.equal(true);
    expect((patient as unknown as { offlineQueue: { length: number } }).offlineQueue.length).to.be.at.most(3);
    // close() ends a query still waiting to hear of listeners.
    const last = new TaskQueue({ redis: patient, prefix, namespace, handler: () => 'here', listenerTimeout: 60_000 });
    const waiting = rejection(last.query({ name: 'job', policy: 'auto', timeout: 60_000 }));
    await new Promise((r) => setTimeout(r, 100));
    await Promise.race([last.close(), new Promise((r) => setTimeout(r, 1000))]);
    expect((await waiting).code).to.equal('LC_TASK_CLOSED');
  });

  it("the subscriber keeps its own settings: a caller's client with no offline queue, or a short command timeout while Redis is away, does not break the queue", async () => {
    const worker = queue({ handler: { job: (t: Task<number>) => t.params * 2 } });
    void listening(worker, ['job']);
    // No offline queue: the subscriber, made when the first query comes, must not fail before it connects.
    const strict = new Redis(redisUrl(), { enableOfflineQueue: false });
    cleanup.defer(() => strict.disconnect());
    await once(strict, 'ready');
    const a = new TaskQueue({ redis: strict, prefix, namespace });
    cleanup.defer(() => a.close());
    expect(await a.query({ name: 'job', params: 2, policy: 'remote', timeout: 10_000 })).to.equal(4);
    // A command timeout of 300 ms on a client whose Redis is away for longer than that.
    const { proxy, client } = await proxiedRedis(cleanup);
    proxy.cut();
    const hasty = client({ maxRetriesPerRequest: 1, commandTimeout: 300 });
    const b = new TaskQueue({ redis: hasty, prefix, namespace });
    cleanup.defer(() => b.close());
    const err = await rejection(b.query({ name: 'job', params: 3, policy: 'remote', timeout: 30_000 }));
    expect(err.code).to.equal('LC_REDIS_UNAVAILABLE');
    const subscriber = (b as unknown as { subscriber: { sub: Redis | null } }).subscriber.sub;
    expect(subscriber).to.not.equal(null);
    await new Promise((r) => setTimeout(r, 600)); // longer than the client's command timeout
    proxy.restore();
    await waitUntil(() => hasty.status === 'ready', 'the client reconnected');
    expect(await b.query({ name: 'job', params: 3, policy: 'remote', timeout: 10_000 })).to.equal(6);
    expect((b as unknown as { subscriber: { sub: Redis | null } }).subscriber.sub).to.equal(
      subscriber,
      'the subscriber waited for Redis: it did not fail and was not made again',
    );
  });

  it('task.update() with Redis cut off rejects with LC_REDIS_UNAVAILABLE; the task still finishes once Redis is back', async () => {
    const { proxy, port, client: through } = await proxiedRedis(cleanup);
    let updated!: (err: unknown) => void;
    const update = new Promise<unknown>((r) => (updated = r));
    let cutOff!: () => void;
    const cut = new Promise<void>((r) => (cutOff = r));
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    let backAgain!: () => void;
    const back = new Promise<void>((r) => (backAgain = r));
    // The proxy takes connections and drops them: the client keeps reconnecting, and a command
    // fails at its timeout (ioredis' own default has none).
    const client = through({ maxRetriesPerRequest: 1, commandTimeout: 1000 });
    const worker = new TaskQueue({
      redis: client,
      prefix,
      namespace,
      handler: async (t: Task) => {
        started();
        await cut;
        updated(
          await t.update(1, 2).then(
            () => null,
            (err: unknown) => err,
          ),
        );
        await back;
        return 'finished';
      },
    });
    cleanup.defer(() => worker.close());
    // Run first (cleanup goes in reverse): whatever failed, the handler returns and the worker can close.
    cleanup.defer(() => {
      cutOff();
      backAgain();
    });
    void listening(worker, ['job']);
    const caller = queue();
    const pending = caller.query({ id: 'u1', name: 'job', policy: 'remote', timeout: 30_000 });
    await running;
    proxy.cut();
    cutOff();
    const err = (await update) as CollectorError;
    expect(err).to.be.instanceOf(CollectorError);
    expect(err.code).to.equal('LC_REDIS_UNAVAILABLE');
    expect(err.message).to.match(
      new RegExp(
        `^progress of task 'job' \\(u1\\): (no connection to Redis at 127\\.0\\.0\\.1:${port}|Redis at 127\\.0\\.0\\.1:${port} failed: .+)$`,
      ),
    );
    proxy.restore();
    await waitUntil(() => worker.redis.status === 'ready', "the worker's client reconnected");
    backAgain();
    expect(await pending).to.equal('finished');
  });
});

describe("TaskQueue: a Redis user refused the wake-up channel (a server of the test's own)", function () {
  this.timeout(60_000);
  onBackend(SINGLE);

  it('a wake-up subscription that fails fails listen() alone: queries on the same queue still get their results', async () => {
    // The ACL user is made on a redis-server of the test's own: it may run every command but
    // SUBSCRIBE, which it may send for its queue's reply channel alone.
    const server = new TempRedis();
    await server.start();
    cleanup.defer(() => server.destroy());
    const admin = new Redis(server.url);
    cleanup.defer(() => admin.quit());
    await admin.call('ACL', 'SETUSER', 'nowake', 'on', '>pw', '~*', '&*', '+@all', '-subscribe');
    const url = new URL(server.url);
    url.username = 'nowake';
    url.password = 'pw';
    const worker = new TaskQueue({ redis: server.url, prefix, namespace, handler: { job: () => 'done' } });
    cleanup.defer(() => worker.close());
    void listening(worker, ['job']);
    const q = new TaskQueue({ redis: url.toString(), prefix, namespace, handler: { job: () => 'never here' } });
    cleanup.defer(() => q.close());
    await admin.call('ACL', 'SETUSER', 'nowake', `+subscribe|${prefix}tq:{${namespace}}:r:${q.id}`);
    expect(await q.query({ name: 'job', policy: 'remote', timeout: 10_000 })).to.equal('done');
    const listened = q.listen(['job']);
    const answer = q.query({ name: 'job', policy: 'remote', timeout: 10_000 });
    const [l, a] = await Promise.allSettled([listened, answer]);
    expect(l.status).to.equal('rejected');
    expect(String((l as PromiseRejectedResult).reason)).to.match(/NOPERM/);
    expect(a).to.deep.equal({ status: 'fulfilled', value: 'done' });
    expect(await q.query({ name: 'job', policy: 'remote', timeout: 10_000 })).to.equal('done');
    expect(await admin.zcard(`${prefix}tq:{${namespace}}:l:job`)).to.equal(1, 'the worker alone listens');
  });
});

describe('TaskQueue spread over parts (shards)', function () {
  this.timeout(60_000);
  onBackend(CLUSTER);

  it('shards: 6 spreads a namespace over every master; listeners take tasks from every part', async () => {
    expect((await rejection(Promise.resolve().then(() => queue({ shards: 0 })))).code).to.equal('LC_TASK_INVALID');
    const worker = queue({ shards: 6, handler: { double: (t: Task<{ n: number }>) => t.params.n * 2 } });
    void listening(worker, ['double'], 4);
    const caller = queue({ shards: 6 });
    const ids = Array.from({ length: 120 }, (_, i) => `job-${i}`);
    const results = await Promise.all(
      ids.map((id, n) => caller.query({ name: 'double', id, params: { n }, policy: 'remote', timeout: 30_000 })),
    );
    expect(results).to.deep.equal(ids.map((_, n) => n * 2));
    // The tasks' hashes (kept for resultTtl) are in all six parts, on all three masters.
    const keys = (await keysMatching(redis, `${prefix}tq:*:t:*`)).filter((k) => k.includes(`{${namespace}`));
    expect(keys.length).to.equal(120);
    const parts = new Set(keys.map((k) => /\{([^}]*)\}/.exec(k)![1]));
    expect(parts.size).to.equal(6);
    const owners = new Set(keys.map((k) => masterOf(redis as Cluster, k)));
    expect(owners.size).to.equal(3);
    // A join by id finds the task in its part.
    expect(await caller.query({ name: 'double', id: 'job-7', params: { n: 7 }, policy: 'remote' })).to.equal(14);
  });
});
