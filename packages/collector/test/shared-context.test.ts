import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Cleanup, FaultProxy, redisUrl, uniqueName, waitUntil } from '@contexture/test-support';
import { MemoryContextStore } from '../src/store/memory-store.js';
import { RedisContextStore } from '../src/store/redis-store.js';
import { SharedContext, type SharedContextOptions } from '../src/shared/shared-context.js';
import { type Backend, BACKENDS, SINGLE } from './support/backends.js';
import { proxiedRedis } from './support/proxied-redis.js';

const WORKER = fileURLToPath(new URL('../../test/fixtures/shared-worker.mjs', import.meta.url));

// Set by the hooks of the describe() that runs (one at a time): the behaviour tests run on each backend.
let backend: Backend;
let cleanup: Cleanup;
let prefix: string;
let key: string;
let store: RedisContextStore;

/** Hooks: a prefix and context of the test's own on `on`, and a store of it. */
function onBackend(on: Backend): void {
  beforeEach(() => {
    backend = on;
    cleanup = new Cleanup();
    prefix = `${uniqueName('shared')}:`;
    key = uniqueName('room');
    on.removeKeys(cleanup, `${prefix}*`);
    store = new RedisContextStore({ redis: on.option(), prefix });
    cleanup.defer(() => store.close());
  });
  afterEach(() => cleanup.run());
}

const open = async (o: SharedContextOptions = {}) => {
  const s = await SharedContext.open(key, { redis: backend.option(), prefix, ...o });
  cleanup.defer(() => s.close());
  return s;
};
const caught = async (p: Promise<unknown>): Promise<{ code?: string; message: string }> => {
  try {
    await p;
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error('expected a rejection');
};

for (const on of BACKENDS)
  describe(`SharedContext (${on.name})`, function () {
    this.timeout(90_000);
    onBackend(on);

    it('update, transaction and delete apply in Redis; another process sees them within milliseconds', async () => {
      const a = await open();
      const b = await open();
      expect(a.get()).to.deep.equal({});
      expect(a.version).to.equal(0);
      const v1 = await a.update('user', { name: 'ann', email: 'a@x' });
      expect(a.get('user')).to.deep.equal({ name: 'ann', email: 'a@x' }, 'read your own write');
      await waitUntil(() => b.version === v1, 'b to see the update', 2_000);
      expect(b.get()).to.deep.equal({ user: { name: 'ann', email: 'a@x' } });
      // A field's value is replaced whole, as contextd did (no merge).
      await b.transaction({ user: { name: 'bob' }, loggedIn: true });
      await waitUntil(() => a.get('loggedIn') === true, 'a to see the transaction', 2_000);
      expect(a.get()).to.deep.equal({ user: { name: 'bob' }, loggedIn: true });
      await a.delete('loggedIn');
      await a.update('user', undefined);
      await waitUntil(() => b.version === a.version, 'b to catch up', 2_000);
      expect(b.get()).to.deep.equal({});
      expect((await store.get(key))!.context).to.deep.equal({});
      expect(Object.isFrozen(a.get())).to.equal(true, 'the local copy is read-only');
      const changes: number[] = [];
      b.on('change', (_ctx, version) => changes.push(version));
      await a.transaction({ x: 1, y: 2 });
      await waitUntil(() => changes.length === 1, 'one change event for one transaction', 2_000);
      // stats(), as the README and every other class say it: a copy of the counters.
      const stats = a.stats();
      expect(stats.writes).to.equal(4);
      expect(b.stats().notified).to.be.greaterThan(0);
      stats.writes = 0;
      expect(a.stats().writes).to.equal(4);
    });

    it('values as the Python contexture writes them (NaN, Infinity, integers past 2^53) go through a write and back', async () => {
      const a = await open();
      const b = await open();
      const big = 18446744073709551617n;
      const v = await a.update('n', { big, ratio: Number.NaN, hi: Number.POSITIVE_INFINITY });
      await waitUntil(() => b.version === v, 'b to see the write', 10_000);
      const seen = b.get('n') as { big: bigint; ratio: number; hi: number };
      expect(seen.big).to.equal(big);
      expect(seen.ratio).to.be.NaN;
      expect(seen.hi).to.equal(Number.POSITIVE_INFINITY);
      // written back as read: the big integer keeps its digits
      const v2 = await b.transaction({ again: seen.big });
      await waitUntil(() => a.version === v2, 'a to see it', 10_000);
      expect(a.get('again')).to.equal(big);
      expect((await store.get(key))!.context.again).to.equal(big);
    });

    it('5 processes × 200 concurrent update/transaction calls and 10 locked increments each: every write present, every copy equal to the store', async () => {
      const children = Array.from({ length: 5 }, (_, id) => {
        const env = {
          ...process.env,
          ...backend.env(),
          PREFIX: prefix,
          KEY: key,
          ID: String(id),
          N: '200',
          INCR: '10',
        };
        const child = spawn(process.execPath, [WORKER], { env, stdio: ['pipe', 'pipe', 'inherit'] });
        cleanup.defer(() => child.kill('SIGKILL'));
        return {
          child,
          exited: once(child, 'exit'),
          lines: createInterface({ input: child.stdout! })[Symbol.asyncIterator](),
        };
      });
      for (const c of children) expect((await c.lines.next()).value).to.equal('done');
      const final = (await store.get(key))!;
      const expected: Record<string, unknown> = { counter: 50 };
      for (let id = 0; id < 5; id++) {
        for (let j = 0; j < 200; j++) {
          if (j % 2 === 0) expected[`p${id}_${j}`] = j;
          else {
            expected[`t${id}_${j}`] = { j, id: String(id) };
            expected[`u${id}_${j}`] = [j];
          }
        }
      }
      expect(final.context).to.deep.equal(expected);
      for (const c of children) c.child.stdin!.write(`${final.version}\n`);
      for (const c of children) {
        const report = JSON.parse((await c.lines.next()).value as string);
        expect(report.version).to.equal(final.version);
        expect(report.context).to.deep.equal(final.context);
        expect(await c.exited).to.deep.equal([0, null]);
      }
    });

    it('withFieldLock: concurrent read-modify-writes from three instances lose nothing', async () => {
      const all = [await open(), await open(), await open()];
      await Promise.all(
        all.flatMap((s) =>
          Array.from({ length: 15 }, () =>
            s.withFieldLock('n', (n: unknown) => ((n as number | undefined) ?? 0) + 1, {
              retryDelay: 2,
              jitter: 5,
              maxRetries: 10_000,
            }),
          ),
        ),
      );
      expect((await store.get(key))!.context.n).to.equal(45);
      for (const s of all) await waitUntil(() => s.get('n') === 45, 'every copy to have 45', 2_000);
      expect(await all[0]!.withFieldLock('n', () => undefined)).to.equal(undefined, 'undefined writes nothing');
    });

    it('lock: on a memory store, withFieldLock takes its locks in the Redis the lock option names, with its prefix and owner', async () => {
      const memory = new MemoryContextStore();
      cleanup.defer(() => memory.close());
      const lockPrefix = `${prefix}locks:`;
      const lock = { redis: backend.option(), prefix: lockPrefix, owner: 'lock-owner' };
      const copies = await Promise.all([1, 2, 3].map(() => SharedContext.open('k', { store: memory, lock })));
      for (const c of copies) cleanup.defer(() => c.close());
      const redis = backend.client();
      cleanup.defer(() => redis.quit());
      const lockKey = `${lockPrefix}lock:{shared:k:n}`;
      // While the work runs, the lock is in Redis, under the option's prefix, held by its owner.
      const seen = await copies[0]!.withFieldLock('n', async () => {
        const value = await redis.get(lockKey);
        return value === null ? -1 : value.includes('lock-owner') ? 0 : -2;
      });
      expect(seen).to.equal(0, 'the lock was held in Redis by the owner the option names');
      expect(await redis.exists(lockKey)).to.equal(0, 'and given back');
      // Read-modify-writes from the three copies take turns: none is lost.
      await Promise.all(
        copies.flatMap((c) =>
          Array.from({ length: 10 }, () =>
            c.withFieldLock('n', async (n: unknown) => {
              const before = n as number;
              await new Promise((r) => setImmediate(r));
              return before + 1;
            }),
          ),
        ),
      );
      expect((await memory.get('k'))!.context).to.deep.equal({ n: 30 });
      for (const c of copies) await c.refresh();
      for (const c of copies) expect(c.get()).to.deep.equal({ n: 30 });
    });

    it("a 'change' listener that throws is reported as an 'error' event; the copy and the other listeners go on", async () => {
      const a = await open();
      const b = await open();
      const seen: number[] = [];
      b.on('change', () => {
        throw new Error('boom');
      });
      b.on('change', async () => {
        throw new Error('async boom');
      });
      b.on('change', (_copy, version) => seen.push(version));
      // Unheard, the errors are dropped: the copy follows all the same, and a write of its own resolves.
      await a.update('x', 1);
      await waitUntil(() => b.version === 1, 'b to see the first write', 5_000);
      expect(await b.update('x', 2)).to.equal(2);
      const errors: unknown[] = [];
      b.on('error', (err) => errors.push(err));
      await a.update('x', 3);
      await waitUntil(() => b.version === 3 && errors.length === 2, 'b to see the last write', 5_000);
      expect(b.get()).to.deep.equal({ x: 3 });
      expect(seen).to.deep.equal([1, 2, 3]);
      expect(errors.map((e) => (e as Error).message).sort()).to.deep.equal(['async boom', 'boom']);
      await b.refresh();
    });

    it('a value nesting deeper than a shared context holds (64 levels, a value 63) is refused, and nothing of that write is done', async () => {
      const nest = (levels: number): unknown => {
        let v: unknown = 1;
        for (let i = 0; i < levels; i++) v = i % 2 === 0 ? { d: v } : [v];
        return v;
      };
      const a = await open();
      const b = await open();
      await a.update('ok', nest(63));
      for (const levels of [64, 2_600]) {
        const refused = await caught(a.transaction({ fine: 1, deep: nest(levels) }));
        expect(refused.code, `${levels}`).to.equal('LC_SHARED_INVALID_ARGUMENT');
        expect(refused.message, `${levels}`).to.match(/^field "deep" nests too deep: .* at most 64 levels/);
      }
      const refused = await caught(a.update('deep', { wide: [1, 2], deep: nest(63) }));
      expect(refused.code).to.equal('LC_SHARED_INVALID_ARGUMENT');
      // The copies go on: the next write reaches both.
      expect(await a.update('next', 2)).to.equal(2);
      await waitUntil(() => b.version === 2, 'b to see the next write', 5_000);
      expect(b.get('ok')).to.deep.equal(nest(63));
      expect(Object.keys(b.get())).to.deep.equal(['ok', 'next']);
      await b.refresh();
    });

    it("an openTimeout or resyncInterval of 2^31 ms or more (past what Node's timers take) waits that long", async () => {
      const counting = () => {
        const memory = new (class extends MemoryContextStore {
          syncs = 0;
          override sync(...args: Parameters<MemoryContextStore['sync']>) {
            this.syncs++;
            return super.sync(...args);
          }
        })();
        cleanup.defer(() => memory.close());
        return memory;
      };
      const memory = counting();
      const m = await SharedContext.open('k', { store: memory, openTimeout: 2 ** 31, resyncInterval: 2 ** 31 });
      cleanup.defer(() => m.close());
      const synced = memory.syncs;
      // Another copy, resynchronising every 20 ms, does so five times: time enough for this one to have.
      const other = counting();
      const control = await SharedContext.open('k', { store: other, resyncInterval: 20 });
      cleanup.defer(() => control.close());
      await waitUntil(() => other.syncs >= 6, "the other copy's five resyncs", 10_000);
      expect(memory.syncs - synced).to.equal(0);
      expect((await open({ openTimeout: 2 ** 31 })).version).to.equal(0);
    });

    it('works on the memory store too (one process); bad input and closed instances give clear errors', async () => {
      const memory = new MemoryContextStore();
      cleanup.defer(() => memory.close());
      const m = await SharedContext.open('k', { store: memory });
      await m.transaction({ a: 1 });
      expect(m.get()).to.deep.equal({ a: 1 });
      expect((await caught(m.withFieldLock('a', () => 2))).code).to.equal('LC_SHARED_INVALID_ARGUMENT');
      expect((await caught(m.withFieldLock('a', 5 as never))).message).to.match(/^work must be a function/);
      await m.close();
      const s = await open();
      expect((await caught(s.update('', 1))).code).to.equal('LC_SHARED_INVALID_ARGUMENT');
      const cycle: Record<string, unknown> = {};
      cycle.self = cycle;
      expect((await caught(s.update('cycle', cycle))).code).to.equal('LC_SHARED_INVALID_ARGUMENT');
      expect((await caught(s.transaction({ a: 1 }, ['a']))).code).to.equal('LC_SHARED_INVALID_ARGUMENT');
      expect((await caught(s.transaction({ a: 1 }, 'draft' as unknown as string[]))).message).to.match(
        /remove must be an array/,
      );
      expect((await caught(s.update('f', (() => 1) as unknown))).code).to.equal('LC_SHARED_INVALID_ARGUMENT');
      // Anywhere in the value: JSON would drop it without a word.
      for (const v of [{ f() {}, k: 1 }, { a: [1, () => 2] }, [Symbol('s')]]) {
        const nested = await caught(s.update('nested', v as unknown));
        expect(nested.code).to.equal('LC_SHARED_INVALID_ARGUMENT');
        expect(nested.message).to.match(/^field "nested" must hold JSON: it holds a (function|symbol)$/);
      }
      expect(s.get('nested')).to.equal(undefined);
      await s.update('__proto__', { polluted: true });
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
      expect(Object.keys(s.get())).to.deep.equal(['__proto__']);
      await s.close();
      await s.close();
      expect((await caught(s.update('a', 1))).code).to.equal('LC_SHARED_CLOSED');
    });
  });

describe('SharedContext: Redis unreachable or cut off (single Redis)', function () {
  this.timeout(90_000);
  onBackend(SINGLE);

  it('open() refuses an option it does not know, and bad options leave no connection open', async () => {
    const u = new URL(redisUrl());
    const proxy = new FaultProxy(u.hostname, Number(u.port || 6379));
    await proxy.listen();
    cleanup.defer(() => proxy.close());
    const redis = `redis://127.0.0.1:${proxy.port}`;
    const unknown = await caught(SharedContext.open(key, { redis, resyncIntervall: 5, bogus: 1 } as never));
    expect(unknown.code).to.equal('LC_SHARED_INVALID_ARGUMENT');
    expect(unknown.message).to.match(/unknown option "resyncIntervall"/);
    for (const bad of [{ keepAlive: 'yes' }, { openTimeout: 0 }, { lock: { ttll: 5 } }] as SharedContextOptions[]) {
      const err = await caught(SharedContext.open(key, { redis, prefix, ...bad }));
      expect(err.code, JSON.stringify(bad)).to.match(/^LC_(SHARED|LOCK)_INVALID_ARGUMENT$/);
    }
    // One opened after them, and closed: had theirs been left, they would be connected still.
    const last = await SharedContext.open(key, { redis, prefix });
    cleanup.defer(() => last.close());
    expect(proxy.accepted).to.be.above(0);
    await last.close();
    await waitUntil(() => proxy.connections === 0, 'every connection to close', 5_000);
  });

  it('a copy that missed notifications (its connection cut while others wrote) resynchronises', async () => {
    const u = new URL(redisUrl());
    const proxy = new FaultProxy(u.hostname, Number(u.port || 6379));
    await proxy.listen();
    cleanup.defer(() => proxy.close());
    const viaProxy = `redis://127.0.0.1:${proxy.port}`;
    const cut = await SharedContext.open(key, { redis: viaProxy, prefix, resyncInterval: 200 });
    cleanup.defer(() => cut.close());
    const writer = await open();
    await writer.update('a', 1);
    await waitUntil(() => cut.get('a') === 1, 'the copy to follow', 2_000);
    proxy.cut();
    for (let i = 0; i < 20; i++) await writer.update(`f${i}`, i);
    await new Promise((r) => setTimeout(r, 300));
    expect(cut.get('f19')).to.equal(undefined, 'nothing reaches it while cut');
    proxy.restore();
    await waitUntil(() => cut.version === writer.version, 'the copy to resynchronise', 10_000);
    expect(cut.get()).to.deep.equal((await store.get(key))!.context);
    expect(cut.stats().resyncs).to.be.greaterThan(0);
  });

  it('a copy that missed a deletion and the context made again (as many versions as it had) takes the new one whole', async () => {
    const u = new URL(redisUrl());
    const proxy = new FaultProxy(u.hostname, Number(u.port || 6379));
    await proxy.listen();
    cleanup.defer(() => proxy.close());
    const cut = await SharedContext.open(key, {
      redis: `redis://127.0.0.1:${proxy.port}`,
      prefix,
      resyncInterval: 200,
    });
    cleanup.defer(() => cut.close());
    const writer = await open();
    await writer.transaction({ a: 1, b: 1 });
    await writer.update('c', 1);
    await waitUntil(() => cut.get('c') === 1, 'the copy to follow', 2_000);
    const before = cut.version;
    proxy.cut();
    // Deleted and made again behind its back, up to the same version, then one more change that
    // a copy of the old context could take for the next one.
    await store.delete(key);
    for (let v = 1; v <= before; v++) await store.assign(key, { [`n${v}`]: v });
    await new Promise((r) => setTimeout(r, 300));
    proxy.restore();
    await waitUntil(async () => cut.version === before, 'the copy to be back', 5_000);
    await store.assign(key, { last: true });
    await waitUntil(
      async () => JSON.stringify(cut.get()) === JSON.stringify((await store.get(key))!.context),
      'the copy to equal the new context',
      10_000,
    );
    expect(cut.get()).to.not.have.property('a');
  });

  it("an open() that Redis does not answer fails saying where Redis is, and leaves a caller's client working once Redis is back", async () => {
    const { proxy, port, client: through } = await proxiedRedis(cleanup);
    const client = through();
    await once(client, 'ready');
    proxy.cut();
    const err = await caught(SharedContext.open(key, { redis: client, prefix, openTimeout: 500 }));
    expect(err.code).to.equal('LC_REDIS_UNAVAILABLE');
    expect(err.message).to.include(`Redis at 127.0.0.1:${port} did not answer within 500 ms`);
    proxy.restore();
    await waitUntil(() => client.status === 'ready', "the caller's client reconnected", 10_000);
    expect(await client.ping()).to.equal('PONG');
    const s = await open({ redis: client });
    await s.update('a', 1);
    expect(s.get()).to.deep.equal({ a: 1 });
  });

  it('an open() that Redis does not answer fails at openTimeout, not once what it opened is closed', async () => {
    const { proxy, port } = await proxiedRedis(cleanup);
    proxy.stall();
    const t0 = Date.now();
    const err = await caught(SharedContext.open(key, { redis: `redis://127.0.0.1:${port}`, prefix, openTimeout: 300 }));
    const took = Date.now() - t0;
    expect(err.code).to.equal('LC_REDIS_UNAVAILABLE');
    expect(err.message).to.include('did not answer within 300 ms');
    // Generous, and still well short of the 2 s its closing may take on a Redis that does not answer.
    expect(took).to.be.below(1_800);
  });

  it("withFieldLock gives up at its timeout and its signal while the lock's Redis does not answer", async () => {
    const { proxy, port } = await proxiedRedis(cleanup);
    const s = await open({ lock: { redis: `redis://127.0.0.1:${port}` } });
    await s.withFieldLock('n', (n = 0) => (n as number) + 1);
    proxy.stall();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const work = () => {
      throw new Error('the work never runs without the lock');
    };
    const outcomes = Promise.all([
      caught(s.withFieldLock('n', work, { timeout: 300 })),
      caught(s.withFieldLock('m', work, { signal: ac.signal })),
    ]);
    // Generous: the lock's client fails a command it got no answer to after 10 s.
    const settled = await Promise.race([outcomes, new Promise<null>((r) => setTimeout(() => r(null), 6_000))]);
    expect(settled?.map((e) => e.code)).to.deep.equal(['LC_LOCK_TIMEOUT', 'LC_LOCK_ABORTED']);
    proxy.restore();
    const lockKey = (field: string) => `${prefix}lock:{shared:${key}:${field}}`;
    await waitUntil(
      async () => (await store.redis.exists(lockKey('n'), lockKey('m'))) === 0,
      'the locks taken late to be given back',
      15_000,
    );
    expect(s.get('n')).to.equal(1);
  });

  it('an open() with no Redis to reach fails with LC_REDIS_UNAVAILABLE, soon', async () => {
    const t0 = Date.now();
    const down = await caught(SharedContext.open('k', { redis: 'redis://127.0.0.1:1', prefix, openTimeout: 500 }));
    expect(down.code).to.equal('LC_REDIS_UNAVAILABLE');
    expect(Date.now() - t0).to.be.below(4_000);
  });
});
