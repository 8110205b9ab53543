import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type Cluster, Redis } from 'ioredis';
import {
  Cleanup,
  clusterClient,
  freePort,
  redisClusterNodes,
  redisUrl,
  uniqueName,
  waitUntil,
} from '@contexture/test-support';
import { CollectorError } from '../src/internal/errors.js';
import { LockError } from '../src/locks/lock-error.js';
import { LockPool } from '../src/locks/lock-pool.js';
import { LOCK_SCRIPTS } from '../src/locks/lock-scripts.js';
import { lockSubscriber } from '../src/locks/lock-subscriber.js';
import { LockWaits } from '../src/locks/lock-waits.js';
import { RedisLock } from '../src/locks/redis-lock.js';
import { type Backend, BACKENDS, CLUSTER, keysOn, masterOf, nodeAddress, SINGLE } from './support/backends.js';
import { redisNow, untilRedisTime } from './support/allocator-helpers.js';
import { loseReply, proxiedRedis } from './support/proxied-redis.js';
import { expectUnavailable } from './support/unavailable.js';

const WORKER = fileURLToPath(new URL('../../test/fixtures/lock-worker.mjs', import.meta.url));

// Set by the hooks of the describe() that runs (one at a time): the behaviour tests run on each backend.
let cleanup: Cleanup;
let prefix: string;
let redis: Redis | Cluster;
let a: RedisLock;
let b: RedisLock;

/** Hooks: a prefix of the test's own on `backend`, a client of it, and two lock instances on it. */
function onBackend(backend: Backend): void {
  beforeEach(() => {
    cleanup = new Cleanup();
    prefix = `${uniqueName('lock')}:`;
    backend.removeKeys(cleanup, `${prefix}*`);
    redis = backend.client();
    cleanup.defer(() => redis.quit());
    a = new RedisLock({ redis, prefix, owner: 'a' });
    b = new RedisLock({ redis, prefix, owner: 'b' });
  });
  afterEach(() => cleanup.run());
}

/**
 * Counts the attempts to take a lock sent on `client` (EVALSHA of acquire.lua or reenter.lua: the
 * calls whose keys name a fence counter), when sent and when answered.
 */
function countAttempts(client: Redis | Cluster): { sent: number; answered: number } {
  const attempts = { sent: 0, answered: 0 };
  // ioredis passes a command queued before the connection is up through sendCommand again.
  const seen = new WeakSet<object>();
  type Sent = { name: string; args: unknown[]; promise: Promise<unknown> };
  const send = client.sendCommand.bind(client) as (command: Sent, ...rest: unknown[]) => unknown;
  Object.defineProperty(client, 'sendCommand', {
    configurable: true,
    writable: true,
    value: (command: Sent, ...rest: unknown[]): unknown => {
      if (command.name === 'evalsha' && !seen.has(command) && command.args.some((a) => String(a).endsWith(':fence'))) {
        seen.add(command);
        attempts.sent++;
        const answered = () => void attempts.answered++;
        command.promise.then(answered, answered);
      }
      return send(command, ...rest);
    },
  });
  return attempts;
}

/** A RedisLock of `owner` on a client of its own (on `backend`) whose attempts are counted. */
function countedLock(
  backend: Backend,
  owner: string,
): { lock: RedisLock; attempts: { sent: number; answered: number } } {
  const client = backend.client();
  cleanup.defer(() => client.quit());
  const attempts = countAttempts(client);
  const lock = new RedisLock({ redis: client, prefix, owner });
  cleanup.defer(() => lock.close());
  return { lock, attempts };
}

/**
 * A client of the single Redis with a connection name of its own, and what CLIENT LIST says of
 * the other connections whose name starts with it (its subscribers'), with their subscriptions.
 */
async function namedClient(): Promise<{
  client: Redis;
  subscribers: () => Promise<Array<{ name: string; subscriptions: number }>>;
}> {
  const name = uniqueName('lockwaits');
  const client = new Redis(redisUrl(), { connectionName: name });
  cleanup.defer(() => client.quit());
  const own = String(await client.client('ID'));
  const subscribers = async () => {
    const list = String(await (redis as Redis).client('LIST'));
    return list
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => new Map(line.split(' ').map((field) => field.split('=', 2) as [string, string])))
      .filter((c) => c.get('name')!.startsWith(name) && c.get('id') !== own)
      .map((c) => ({ name: c.get('name')!, subscriptions: Number(c.get('sub') ?? 0) + Number(c.get('ssub') ?? 0) }));
  };
  return { client, subscribers };
}

/** The connection the waiters of locks on `client` hear releases on. */
function lockSubscriberOf(client: Redis): Redis {
  return (lockSubscriber(client) as unknown as { sub: Redis }).sub;
}

/** An hour: a waiter with this pause gets in through a release's word only (within a test's time). */
const HOUR = 3_600_000;

const caught = async (p: Promise<unknown>): Promise<LockError> => {
  try {
    await p;
  } catch (err) {
    return err as LockError;
  }
  throw new Error('expected a rejection');
};

describe('RedisLock: Redis unreachable or stalling (single Redis)', function () {
  this.timeout(60_000);
  onBackend(SINGLE);

  it('fails every call with LC_REDIS_UNAVAILABLE when Redis cannot be reached, saying which call and where, never the password', async () => {
    const port = await freePort();
    const locks = new RedisLock({ redis: `redis://user:hunter2secret@127.0.0.1:${port}`, prefix });
    cleanup.defer(() => locks.close());
    const pool = new LockPool({ locks, pool: 'down' });
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['lock acquire', () => locks.lock('x')],
      ['lock acquire', () => locks.acquire('x', { maxRetries: 0 })],
      ['lock reenter', () => locks.rlock('x')],
      ['lock release', () => locks.unlock('x')],
      ['lock setIf', () => locks.setIf('n', 'gt', 1)],
      ['lock holder of "x"', () => locks.holder('x')],
      ['lock getNumber of "n"', () => locks.getNumber('n')],
      ['lock pool "down" add', () => pool.add('x')],
      ['lock pool "down" names', () => pool.names()],
      ['lock pool "down" lock', () => pool.lock('x')],
      ['lock pool "down" names', () => pool.healthCheck()],
    ];
    await expectUnavailable(calls, port, 'hunter2secret');
    expect(await locks.status('x')).to.equal('unavailable');
  });

  it('withLock aborts when the lock expires while an extension waits on a Redis that does not answer, before another owner can take it', async () => {
    const { proxy, client } = await proxiedRedis(cleanup);
    // A client with no command timeout: its extension waits as long as the connection stalls.
    const stalling = client();
    const c = new RedisLock({ redis: stalling, prefix, owner: 'c' });
    let reason: unknown;
    let takenBeforeAbort: boolean | null = null;
    let takenAt = 0;
    await c.withLock('part', 600, async (signal) => {
      proxy.stall();
      const other = b.acquire('part', { maxRetries: 100_000, retryDelay: 5, jitter: 5 }).then((h) => {
        takenAt = Date.now();
        return h;
      });
      const aborted = new Promise<void>((resolve) =>
        signal.addEventListener(
          'abort',
          () => {
            takenBeforeAbort = takenAt !== 0;
            resolve();
          },
          { once: true },
        ),
      );
      await Promise.race([aborted, other.then(() => new Promise((r) => setTimeout(r, 3000)))]);
      reason = signal.reason;
      await (await other).release();
    });
    expect(reason).to.be.instanceOf(LockError);
    expect((reason as LockError).code).to.equal('LC_LOCK_LOST');
    expect(takenBeforeAbort).to.equal(false, 'the work was told before another owner got the lock');
  });

  it('withLock: an extension answered after the work ended changes nothing; a re-entry never shortens the ttl an outer holder counts on', async () => {
    // The extension (ttl 3000: every 1000 ms) goes out while the connection stalls, and is answered
    // only after the work ended: the proxy is restored once the client has both the extension and
    // the release waiting on it (the release goes out only once the work has ended).
    const { proxy, client } = await proxiedRedis(cleanup);
    const slow = client();
    await slow.ping();
    const waiting = () => (slow as unknown as { commandQueue: { length: number } }).commandQueue.length;
    const c = new RedisLock({ redis: slow, prefix, owner: 'c' });
    let signal!: AbortSignal;
    let waitingAtRestore = 0;
    const restored = waitUntil(() => waiting() >= 2, 'the extension and the release to wait', 30_000, 5).then(() => {
      waitingAtRestore = waiting();
      proxy.restore();
    });
    const ttl = 3_000;
    const t0 = performance.now();
    await c.withLock('late', ttl, async (s) => {
      signal = s;
      proxy.stall();
      await waitUntil(() => waiting() === 1, 'the extension to go out', 30_000, 5);
    });
    await restored;
    expect(waitingAtRestore).to.equal(2, 'the extension was still unanswered when the work ended');
    // Past the time a late answer would have counted the ttl from (it went out one ttl/3 in).
    const lateExpiry = t0 + ttl / 3 + ttl + 200;
    await new Promise((r) => setTimeout(r, Math.max(0, lateExpiry - performance.now())));
    expect(signal.aborted).to.equal(false, 'the work had ended: nothing to tell it');
    expect(await a.status('late')).to.equal('free');
    // Nested withLock of one owner: the inner, shorter ttl does not cut the outer one's.
    await a.withLock(
      'nested',
      3_000,
      async (outer) => {
        await a.withLock(
          'nested',
          200,
          async () => {
            await new Promise((r) => setTimeout(r, 150)); // the inner call extends its lock meanwhile
            // The outer holder keeps it near 3000 (renewed every 1000 ms); a shortened one would be <= 200.
            expect(await redis.pttl(a.key('nested'))).to.be.above(1_000);
          },
          { reentrant: true },
        );
        expect(await redis.pttl(a.key('nested'))).to.be.above(1_000);
        await new Promise((r) => setTimeout(r, 400));
        expect(await b.lock('nested')).to.equal(null, "still the outer holder's");
        expect(outer.aborted).to.equal(false);
      },
      { reentrant: true },
    );
    expect(await a.status('nested')).to.equal('free');
  });

  it('acquire() gives up at its timeout and at its signal while Redis does not answer, and gives back a lock taken after it gave up', async () => {
    const { proxy, port, client } = await proxiedRedis(cleanup);
    // A lock of its own client (from a URL: a command fails after 10 s) and one on a caller's
    // client with ioredis' defaults (a command waits as long as the connection stalls).
    const own = new RedisLock({ redis: `redis://127.0.0.1:${port}`, prefix, owner: 'own' });
    cleanup.defer(() => own.close());
    const given = new RedisLock({ redis: client(), prefix, owner: 'given' });
    cleanup.defer(() => given.close());
    await own.status('warm');
    await given.status('warm');
    proxy.stall();
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('no longer wanted')), 300);
    const outcomes = Promise.all([
      caught(own.acquire('own-timeout', { timeout: 300 })),
      caught(own.acquire('own-signal', { signal: ac.signal })),
      caught(given.acquire('given-timeout', { timeout: 300 })),
      caught(given.acquire('given-signal', { signal: ac.signal })),
    ]);
    // Generous: without the proxy restored, a call that waits for Redis would still wait here.
    const settled = await Promise.race([outcomes, new Promise<null>((r) => setTimeout(() => r(null), 8_000))]);
    expect(settled, 'every call gave up while Redis did not answer').to.not.equal(null);
    expect(settled!.map((e) => e.code)).to.deep.equal([
      'LC_LOCK_TIMEOUT',
      'LC_LOCK_ABORTED',
      'LC_LOCK_TIMEOUT',
      'LC_LOCK_ABORTED',
    ]);
    expect(settled![1]!.cause).to.equal(ac.signal.reason);
    // The attempts reach Redis once it answers again, and take the locks: given back, as no one holds them.
    proxy.restore();
    for (const name of ['own-timeout', 'own-signal', 'given-timeout', 'given-signal'])
      await waitUntil(async () => (await redis.get(a.key(name))) === null, `'${name}' to be given back`, 15_000);
    expect(await redis.get(`${a.key('given-signal')}:fence`)).to.equal('1', 'the attempt took it, then gave it back');
  });

  it('a reply lost with its connection: the call fails with LC_REDIS_UNAVAILABLE, it is not sent again (which would answer as if another call had run it)', async () => {
    const { proxy, port } = await proxiedRedis(cleanup);
    const locks = new RedisLock({ redis: `redis://127.0.0.1:${port}`, prefix, owner: 'cut' });
    cleanup.defer(() => locks.close());
    // Until Redis has run the call, its reply held back; then the connection is cut.
    const lose = (call: Promise<unknown>, ran: () => Promise<boolean>) => loseReply(proxy, call, ran);
    await locks.status('warm');
    await (await locks.acquire('warm')).release(); // its scripts known to Redis
    proxy.mute();
    const took = (await lose(
      locks.acquire('L', { maxRetries: 2, retryDelay: 10, jitter: 0 }),
      async () => (await redis.get(a.key('L'))) !== null,
    )) as { err?: CollectorError };
    expect(took.err?.code).to.equal('LC_REDIS_UNAVAILABLE', 'not LC_LOCK_HELD: it holds the lock itself');
    await redis.del(a.key('L'));
    const h = (await locks.acquire('L'))!;
    proxy.mute();
    const gave = (await lose(h.release(), async () => (await redis.get(a.key('L'))) === null)) as {
      v?: boolean;
      err?: CollectorError;
    };
    expect(gave.v, 'not false: the lock was its own until now').to.equal(undefined);
    expect(gave.err?.code).to.equal('LC_REDIS_UNAVAILABLE');
    // The client goes on: the next calls are answered.
    const again = await locks.lock('L');
    expect(again?.fence).to.equal(Number(await redis.get(`${a.key('L')}:fence`)));
    expect(await again!.release()).to.equal(true);
  });

  it("the waiters' subscriber sends a subscription again after a lost reply, on a caller's client made not to send commands again", async () => {
    // As the README advises for a caller's client; the subscriber is made from its options.
    const client = new Redis(redisUrl(), { autoResendUnfulfilledCommands: false });
    cleanup.defer(() => client.quit());
    const c = new RedisLock({ redis: client, prefix, owner: 'c' });
    cleanup.defer(() => c.close());
    const h = (await a.lock('x'))!;
    const waiting = c.acquire('x', { retryDelay: HOUR, jitter: 0 });
    await waitUntil(() => (c as unknown as { waits: LockWaits }).waits.waiting(c.key('x')), 'the call to wait');
    const resends = lockSubscriberOf(client).options.autoResendUnfulfilledCommands;
    await h.release();
    await (await waiting).release();
    expect(resends).to.equal(true);
    expect(client.options.autoResendUnfulfilledCommands).to.equal(false, "the caller's client is left as it is");
  });

  it('status: unavailable when Redis cannot be asked', async () => {
    const down = new RedisLock({ redis: 'redis://127.0.0.1:1', prefix });
    cleanup.defer(() => down.close());
    expect(await down.status('x')).to.equal('unavailable');
  });
});

describe('RedisLock: the subscriber of the waiters, one per client (single Redis)', function () {
  this.timeout(60_000);
  onBackend(SINGLE);

  it('RedisLocks on one client, many waiting at once, share one subscriber connection, closed once no lock is waited for, close() or not', async () => {
    const { client, subscribers } = await namedClient();
    // Never closed: as made per request on a shared client.
    const instances = Array.from({ length: 12 }, (_, i) => new RedisLock({ redis: client, prefix, owner: `o${i}` }));
    const names = ['s0', 's1', 's2'];
    const held = await Promise.all(names.map(async (n) => (await b.lock(n, { ttl: 30_000 }))!));
    let most = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        most = Math.max(most, (await subscribers()).length);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const taken: number[] = [];
    const calls = instances.flatMap((lock) =>
      names.flatMap((n) =>
        [0, 1].map(async () => {
          const h = await lock.acquire(n, { retryDelay: HOUR, jitter: 0, maxRetries: 1_000, timeout: 40_000 });
          taken.push(h.fence);
          expect(await h.release()).to.equal(true);
        }),
      ),
    );
    await waitUntil(
      async () => (await subscribers()).some((c) => c.subscriptions === names.length),
      'one subscription per lock',
    );
    for (const h of held) await h.release();
    await Promise.all(calls);
    sampling = false;
    await sampler;
    expect(taken).to.have.length(instances.length * names.length * 2);
    expect(most).to.equal(1, 'one subscriber connection at most');
    // The subscriptions outlive the last waiter a little, then the connection closes by itself.
    await waitUntil(async () => (await subscribers()).length === 0, 'the subscriber to close');
    // The next wait opens a new one and hears the release on it.
    const again = (await b.lock('s0', { ttl: 30_000 }))!;
    const got = instances[0]!.acquire('s0', { retryDelay: HOUR, jitter: 0, maxRetries: 10, timeout: 30_000 });
    await waitUntil(
      async () => (await subscribers()).some((c) => c.subscriptions === 1),
      'a new subscriber to subscribe',
    );
    expect(await again.release()).to.equal(true);
    await (await got).release();
    await waitUntil(async () => (await subscribers()).length === 0, 'the new subscriber to close');
  });

  it('close() of one RedisLock ends its subscriptions only: another on the client listening to the same lock still hears releases', async () => {
    const { client, subscribers } = await namedClient();
    const attempts = countAttempts(client);
    const x = new RedisLock({ redis: client, prefix, owner: 'x' });
    const y = new RedisLock({ redis: client, prefix, owner: 'y' });
    cleanup.defer(() => y.close());
    const held = (await b.lock('shared', { ttl: 30_000 }))!;
    const ac = new AbortController();
    cleanup.defer(() => ac.abort());
    const xs = caught(x.acquire('shared', { retryDelay: HOUR, jitter: 0, signal: ac.signal }));
    const ys = y.acquire('shared', { retryDelay: HOUR, jitter: 0, timeout: 30_000 });
    // Each one's attempt at once, and one once the subscription holds for it.
    await waitUntil(() => attempts.answered === 4, 'both to wait');
    expect((await subscribers()).map((c) => c.subscriptions)).to.deep.equal([1]);
    await x.close();
    expect((await subscribers()).map((c) => c.subscriptions)).to.deep.equal([1], 'still subscribed for y');
    expect(await held.release()).to.equal(true);
    const h = await ys;
    expect(h.owner).to.equal('y');
    expect(await h.release()).to.equal(true);
    ac.abort();
    expect((await xs).code).to.equal('LC_LOCK_ABORTED');
    await y.close();
    await waitUntil(async () => (await subscribers()).length === 0, 'the subscriber to close');
  });

  it('a wait that comes while the subscriber closes subscribes on a new connection', async () => {
    const { client, subscribers } = await namedClient();
    const key = a.key('race');
    const w1 = new LockWaits(client);
    const w2 = new LockWaits(client);
    // Ends the waits that are left if the test fails.
    const ac = new AbortController();
    cleanup.defer(() => ac.abort());
    const first = w1.join(key);
    // Woken once the subscription holds.
    await w1.wait(key, first, HOUR, ac.signal);
    const closing = w1.close(); // its only channel: the connection closes
    const second = w2.join(key); // meanwhile
    await closing;
    await w2.wait(key, second, HOUR, ac.signal);
    await waitUntil(async () => {
      const subs = await subscribers();
      return subs.length === 1 && subs[0]!.subscriptions === 1;
    }, 'one subscriber again');
    const heard = w2.wait(key, second, HOUR, ac.signal);
    await redis.publish(`${key}:free`, '1');
    await heard;
    w2.leave(key, second);
    w1.leave(key, first);
    await w2.close();
    await waitUntil(async () => (await subscribers()).length === 0, 'the subscriber to close');
  });
});

for (const backend of BACKENDS)
  describe(`RedisLock (${backend.name})`, function () {
    this.timeout(60_000);
    onBackend(backend);

    it('lock: one holder at a time; only the owner can release; status follows', async () => {
      expect(await a.status('res')).to.equal('free');
      const h = await a.lock('res', { ttl: 10_000 });
      expect(h).to.include({ name: 'res', owner: 'a', entries: 1 });
      expect(h!.fence).to.be.a('number');
      expect(await b.lock('res')).to.equal(null);
      expect(await a.lock('res')).to.equal(null, 'lock() is not reentrant');
      expect(await a.status('res')).to.equal('locked');
      expect(await b.unlock('res')).to.equal(false);
      expect(await a.holder('res')).to.deep.include({ owner: 'a', entries: 1 });
      expect(await h!.release()).to.equal(true);
      expect(await h!.release()).to.equal(false);
      expect(await a.status('res')).to.equal('free');
      expect(await b.lock('res')).to.not.equal(null);
    });

    it('fencing tokens strictly increase per name across acquisitions, expiries included', async () => {
      const fences: number[] = [];
      for (let i = 0; i < 5; i++) {
        const h = (await (i % 2 ? a : b).lock('fenced', { ttl: i === 2 ? 20 : 10_000 }))!;
        fences.push(h.fence);
        if (i === 2) await waitUntil(async () => (await a.status('fenced')) === 'free', 'the lock to expire');
        else await h.release();
      }
      for (let i = 1; i < fences.length; i++) expect(fences[i]).to.be.greaterThan(fences[i - 1]!);
      const other = (await a.lock('other'))!;
      expect(other.fence).to.equal(1);
    });

    it('rlock counts re-entries and refreshes the ttl; the last unlock frees it', async () => {
      const h1 = (await a.rlock('re', { ttl: 5_000 }))!;
      const ttl1 = await redis.pttl(a.key('re'));
      const h2 = (await a.rlock('re', { ttl: 60_000 }))!;
      expect(h2.entries).to.equal(2);
      expect(h2.fence).to.equal(h1.fence);
      expect(await redis.pttl(a.key('re'))).to.be.greaterThan(ttl1);
      expect(await b.rlock('re')).to.equal(null);
      expect(await a.unlock('re')).to.equal(true);
      expect(await a.status('re')).to.equal('locked');
      expect(await a.holder('re')).to.deep.equal({ owner: 'a', fence: h1.fence, entries: 1 });
      expect(await redis.pttl(a.key('re'))).to.be.within(1, 60_000, 'giving back a re-entry keeps the ttl');
      expect(await a.unlock('re')).to.equal(true);
      expect(await a.status('re')).to.equal('free');
      expect(await a.unlock('re')).to.equal(false);
    });

    it('an expired handle can neither extend nor release the next holder’s lock', async () => {
      const old = (await a.lock('exp', { ttl: 30 }))!;
      await waitUntil(async () => (await a.status('exp')) === 'free', 'the lock to expire');
      const next = (await a.lock('exp', { ttl: 10_000 }))!; // the same owner, a new acquisition
      expect(next.fence).to.be.greaterThan(old.fence);
      expect(await old.extend(10_000)).to.equal(false);
      expect(await old.release()).to.equal(false);
      expect(await a.holder('exp')).to.deep.include({ owner: 'a', fence: next.fence });
      expect(await next.extend(20_000)).to.equal(true);
      expect(await redis.pttl(a.key('exp'))).to.be.greaterThan(10_000);
    });

    it('acquire retries until the lock is free, and says why when it gives up', async () => {
      const held = (await b.lock('busy', { ttl: 10_000 }))!;
      setTimeout(() => void held.release(), 100);
      const got = await a.acquire('busy', { retryDelay: 10, jitter: 10, maxRetries: 1000 });
      expect(got.owner).to.equal('a');
      await got.release();

      await b.lock('busy', { ttl: 10_000 });
      expect((await caught(a.acquire('busy', { maxRetries: 3, retryDelay: 1, jitter: 1 }))).code).to.equal(
        'LC_LOCK_HELD',
      );
      expect((await caught(a.acquire('busy', { timeout: 50, retryDelay: 5, maxRetries: 1e6 }))).code).to.equal(
        'LC_LOCK_TIMEOUT',
      );
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 30);
      const aborted = await caught(a.acquire('busy', { signal: ac.signal, retryDelay: 5, maxRetries: 1e6 }));
      expect(aborted).to.be.instanceOf(LockError);
      expect(aborted).to.be.instanceOf(CollectorError);
      expect(aborted.code).to.equal('LC_LOCK_ABORTED');
      expect(aborted.lock).to.equal('busy');
      expect(aborted.name).to.equal('LockError');
      // Aborted while its first attempt is on its way to Redis: it gives up when the attempt
      // fails, not after its pause (an hour here; the test's timeout would end it first).
      const during = new AbortController();
      const pending = caught(a.acquire('busy', { signal: during.signal, retryDelay: 3_600_000, jitter: 0 }));
      during.abort();
      expect((await pending).code).to.equal('LC_LOCK_ABORTED');
    });

    it('a waiter of acquire() asks again as soon as the lock is released, not after its pause', async () => {
      const { lock: w, attempts } = countedLock(backend, 'w');
      const held = (await b.lock('wake', { ttl: 30_000 }))!;
      // A pause of an hour: only the release's word can let it in before its timeout.
      const got = w.acquire('wake', { retryDelay: 3_600_000, jitter: 0, maxRetries: 10, timeout: 30_000 });
      // The attempt at once, and one once its subscription holds (a release meanwhile went unheard).
      await waitUntil(() => attempts.answered === 2, 'the waiter to subscribe and ask again');
      expect(await held.release()).to.equal(true);
      const h = await got;
      expect(h.owner).to.equal('w');
      expect(h.fence).to.be.greaterThan(held.fence);
      expect(attempts.sent).to.equal(3, 'one attempt after the release');
      await h.release();
      expect(await w.status('wake')).to.equal('free');
    });

    it('a notification lost costs one pause: the waiter takes the lock at its next attempt', async () => {
      const { lock: w, attempts } = countedLock(backend, 'w');
      const held = (await b.lock('lost', { ttl: 30_000 }))!;
      const got = w.acquire('lost', { retryDelay: 200, jitter: 0, maxRetries: 1_000_000, timeout: 30_000 });
      await waitUntil(() => attempts.answered >= 2, 'the waiter to subscribe and ask again');
      // Released with the word sent to a channel no one hears (as a subscriber reconnecting would miss it).
      const key = b.key('lost');
      const nowhere = `${backend.cluster ? 'S' : 'P'}:${key}:nowhere`;
      expect(await LOCK_SCRIPTS.release.run(redis, key, `${key}:waiting`, 'b', String(held.fence), nowhere)).to.equal(
        1,
      );
      const before = attempts.sent;
      const h = await got;
      expect(h.owner).to.equal('w');
      // An attempt on its way at the release may have taken it; otherwise the next one did.
      expect(attempts.sent - before).to.be.within(0, 1);
      await h.release();
    });

    it('calls of one instance waiting for a lock take it in turn, each with one attempt after the release before it', async () => {
      const { lock: w, attempts } = countedLock(backend, 'w');
      const held = (await b.lock('turns', { ttl: 30_000 }))!;
      const order: number[] = [];
      const calls = Array.from({ length: 12 }, async (_, i) => {
        // A pause of an hour: only the releases let them in.
        const h = await w.acquire('turns', { retryDelay: 3_600_000, jitter: 0, maxRetries: 10, timeout: 40_000 });
        order.push(i);
        expect(await h.release()).to.equal(true);
      });
      // Each call's attempt at once, and the first in line's once its subscription holds.
      await waitUntil(() => attempts.answered === 13, 'the calls to wait');
      await held.release();
      await Promise.all(calls);
      // Each call once.
      expect(order).to.have.length(12);
      expect(new Set(order).size).to.equal(12);
      // One attempt per hand-over, none wasted: the releases of this instance hand the lock to the
      // next call right behind them, and their word on the channel wakes no one here.
      expect(attempts.sent).to.equal(13 + 12);
      expect(await w.status('turns')).to.equal('free');
    });

    it('30 waiters on one lock from 3 instances take it once each, one at a time, woken by the releases', async () => {
      const instances = ['x', 'y', 'z'].map((owner) => countedLock(backend, owner));
      const taken: Array<{ who: string; fence: number }> = [];
      let inside = 0;
      let most = 0;
      const contender = async (lock: RedisLock, who: string) => {
        // A pause of an hour: a waiter gets in only through the releases' word.
        const h = await lock.acquire('many', { retryDelay: 3_600_000, jitter: 0, maxRetries: 1_000, timeout: 40_000 });
        inside++;
        most = Math.max(most, inside);
        taken.push({ who, fence: h.fence });
        expect(await lock.holder('many')).to.deep.equal({ owner: lock.owner, fence: h.fence, entries: 1 });
        inside--;
        expect(await h.release()).to.equal(true);
      };
      await Promise.all(
        instances.flatMap(({ lock }) => Array.from({ length: 10 }, (_, i) => contender(lock, `${lock.owner}${i}`))),
      );
      expect(most).to.equal(1);
      expect(taken.map((t) => t.who).sort()).to.deep.equal(
        ['x', 'y', 'z'].flatMap((o) => Array.from({ length: 10 }, (_, i) => `${o}${i}`)).sort(),
      );
      for (let i = 1; i < taken.length; i++) expect(taken[i]!.fence).to.be.greaterThan(taken[i - 1]!.fence);
      // Per acquisition: each instance's first in line asks at most once per release, besides each
      // call's attempt at once and each instance's one after subscribing.
      const sent = instances.reduce((n, i) => n + i.attempts.sent, 0);
      expect(sent).to.be.at.most(30 + 3 + 30 * 3);
      expect(await a.status('many')).to.equal('free');
    });

    it('withLock keeps the lock past its ttl while the work runs and always releases it', async () => {
      // Decided on Redis's clock: the work runs until Redis says more than twice the ttl has passed
      // since the lock was taken. The ttl is generous (an extension every 500 ms), so a busy
      // machine's pauses do not lose the lock on the way.
      const ttl = 1_500;
      const result = await a.withLock('work', ttl, async (signal) => {
        await untilRedisTime(redis, (await redisNow(redis)) + 2 * ttl);
        expect(signal.aborted).to.equal(false);
        expect(await b.lock('work')).to.equal(null);
        expect(await a.holder('work')).to.deep.include({ owner: 'a' });
        return 42;
      });
      expect(result).to.equal(42);
      expect(await a.status('work')).to.equal('free');
      const err = await caught(
        a.withLock('work', 1000, async () => {
          throw new RangeError('work failed');
        }),
      );
      expect(err).to.be.instanceOf(RangeError);
      expect(await a.status('work')).to.equal('free');
    });

    it('withLock aborts the signal with LC_LOCK_LOST when the lock is taken away', async () => {
      let reason: unknown;
      // A ttl long enough that the next extension (at 1000 ms), not the expiry, finds the lock gone;
      // the signal may be aborted before the work listens to it.
      await a.withLock('lost', 3_000, async (signal) => {
        await redis.del(a.key('lost'));
        if (!signal.aborted)
          await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        reason = signal.reason;
      });
      expect(reason).to.be.instanceOf(LockError);
      expect((reason as LockError).code).to.equal('LC_LOCK_LOST');
      expect((reason as LockError).message).to.match(/another owner holds it or it expired/);
    });

    it("a ttl or timeout of 2^31 ms or more (past what Node's timers take) holds the lock, and waits, that long", async () => {
      const ttl = Number.MAX_SAFE_INTEGER;
      const held = await a.withLock('long', ttl, async (signal) => {
        // A lock taken and let go meanwhile: time enough for a timer of the long lock to have fired.
        expect(await a.withLock('short', 1_000, async () => 'short')).to.equal('short');
        expect(signal.aborted).to.equal(false);
        expect(await redis.pttl(a.key('long'))).to.be.above(2 ** 31);
        const stop = new AbortController();
        const waiting = caught(b.acquire('long', { timeout: 2 ** 31, signal: stop.signal }));
        expect(await b.withLock('other', 1_000, async () => 'other')).to.equal('other');
        stop.abort();
        expect(((await waiting) as LockError).code).to.equal('LC_LOCK_ABORTED');
        return signal.aborted;
      });
      expect(held).to.equal(false);
    });

    it('status: error when the key is not a lock', async () => {
      await redis.set(a.key('weird'), 'not a lock');
      expect(await a.status('weird')).to.equal('error');
      expect(await a.holder('weird')).to.equal(null);
      expect(await a.rlock('weird')).to.equal(null, 'a key that is not a lock is never taken over');
      expect(await redis.get(a.key('weird'))).to.equal('not a lock');
      expect(await a.lock('weird')).to.equal(null);
      // A key of another type under a lock's name is a misuse of the name, not a held lock.
      await redis.hset(a.key('hash'), 'f', '1');
      for (const take of [() => a.lock('hash'), () => a.rlock('hash')]) {
        let caught: unknown;
        await take().catch((err: unknown) => (caught = err));
        expect(String((caught as Error)?.message)).to.match(/WRONGTYPE/);
      }
      expect(await a.status('hash')).to.equal('error');
    });

    it('names and owners are validated', async () => {
      // Lone surrogates too: Redis keeps UTF-8, where 'p-\ud800' and 'p-\udc00' would be one lock.
      for (const bad of ['', 'a\u0000b', 'p-\ud800', 'p-\udc00']) {
        expect((await caught(a.lock(bad))).code).to.equal('LC_LOCK_INVALID_NAME');
        expect((await caught(a.lock('ok', { owner: bad }))).code).to.equal('LC_LOCK_INVALID_NAME');
        expect((await caught(a.unlock(bad))).code).to.equal('LC_LOCK_INVALID_NAME');
      }
      // A name starting with } ends the hash tag at once: the lock's keys would be in several slots.
      for (const bad of ['}', '}x']) {
        expect((await caught(a.lock(bad))).code).to.equal('LC_LOCK_INVALID_NAME');
        expect((await caught(a.status(bad))).code).to.equal('LC_LOCK_INVALID_NAME');
      }
      expect(() => new RedisLock({ redis, prefix: 'p{}' }))
        .to.throw()
        .with.property('code', 'LC_LOCK_INVALID_ARGUMENT');
      const inner = await a.lock('a}b');
      expect(inner).to.not.equal(null);
      await inner!.release();
      // A pair is one character: fine.
      const pair = await a.lock('p-\ud83d\ude00');
      expect(pair).to.not.equal(null);
      await pair!.release();
    });

    it('acquire(), withLock() and setIf() check their options as the constructor does; a signal that is no AbortSignal crashes nothing', async () => {
      // Held by another owner: acquire() would wait, and listen to its signal while it does.
      expect(await b.lock('held', { ttl: 3_000 })).to.not.equal(null);
      const quick = { retryDelay: 10, jitter: 0, maxRetries: 2 };
      const bad: Array<[string, Record<string, unknown>]> = [
        ['signal', { signal: {} }],
        ['signal', { signal: 'abort' }],
        ['maxRetries', { maxRetries: Number.NaN }],
        ['maxRetries', { maxRetries: Number.POSITIVE_INFINITY }],
        ['maxRetries', { maxRetries: -1 }],
        ['retryDelay', { retryDelay: Number.NaN }],
        ['retryDelay', { retryDelay: -100 }],
        ['jitter', { jitter: 1.5 }],
        ['timeout', { timeout: Number.NaN }],
        ['timeout', { timeout: -1 }],
      ];
      for (const [what, options] of bad) {
        const err = await caught(a.acquire('held', { ...quick, ...options }));
        expect(err, what).to.be.instanceOf(CollectorError);
        expect(err.code, what).to.equal('LC_LOCK_INVALID_ARGUMENT');
        expect(err.message, what).to.match(new RegExp(`^${what} must be`));
      }
      // Past several retry pauses: no timer of a refused call throws later (mocha would fail the test).
      await new Promise((r) => setTimeout(r, 100));
      const work = await caught(a.withLock('w', 1_000, 5 as never));
      expect(work.code).to.equal('LC_LOCK_INVALID_ARGUMENT');
      expect(work.message).to.match(/^work must be a function/);
      expect(await a.status('w')).to.equal('free');
      for (const ttl of [Number.NaN, 0, -5, 1.5, 1e20, '60000']) {
        const err = await caught(a.setIf('n', 'gt', 5, { ttl: ttl as never }));
        expect(err.code, String(ttl)).to.equal('LC_LOCK_INVALID_ARGUMENT');
      }
      expect(await redis.exists(`${prefix}num:{n}`)).to.equal(0);
      expect(await a.setIf('n', 'gt', 5, { ttl: 60_000 })).to.equal(true);
      expect(await redis.pttl(`${prefix}num:{n}`)).to.be.within(1, 60_000);
      expect(await a.setIf('m', 'gt', 5)).to.equal(true);
      expect(await redis.pttl(`${prefix}num:{m}`)).to.equal(-1);
    });

    it('setIf writes only when value <op> current (or the key is missing), atomically', async () => {
      expect(await a.setIf('n', 'gt', 5)).to.equal(true);
      expect(await a.setIf('n', 'gt', 3)).to.equal(false);
      expect(await a.setIf('n', 'ge', 5)).to.equal(true);
      expect(await a.setIf('n', 'lt', 2)).to.equal(true);
      expect(await a.getNumber('n')).to.equal(2);
      expect(await a.setIf('n', 'le', 9)).to.equal(false);
      expect(await a.setIf('n', 'eq', 2)).to.equal(true);
      expect(await a.setIf('n', 'ne', 2)).to.equal(false);
      expect(await a.setIf('n', 'ne', 7)).to.equal(true);
      expect(await a.getNumber('n')).to.equal(7);
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => a.setIf('max', 'gt', i)));
      expect(await a.getNumber('max')).to.equal(49);
      expect(results.filter(Boolean).length).to.be.at.least(1);
    });

    it('LockPool: members, locking members only, healthCheck → { locked, free }', async () => {
      const pool = new LockPool({ pool: 'workers', locks: a });
      expect(await pool.add('w1', 'w2', 'w3')).to.equal(3);
      expect(await pool.lock('stranger')).to.equal(null);
      const h = (await pool.lock('w2'))!;
      expect(await pool.healthCheck()).to.deep.equal({ locked: ['w2'], free: ['w1', 'w3'] });
      await h.release();
      await pool.remove('w3');
      expect(await pool.healthCheck()).to.deep.equal({ locked: [], free: ['w1', 'w2'] });
      // Members and pools whose names Redis would make one with others are refused.
      expect((await caught(pool.add('w\ud800'))).code).to.equal('LC_LOCK_INVALID_NAME');
      expect(() => new LockPool({ pool: 'workers\udc00', locks: a }))
        .to.throw()
        .with.property('code', 'LC_LOCK_INVALID_NAME');
      expect(await pool.names()).to.have.members(['w1', 'w2']);
    });

    it('stress: 20 processes on one lock, some killed with SIGKILL: never two holders, fences only grow', async () => {
      const name = 'stress';
      const ITER = 30;
      const children = Array.from({ length: 20 }, () => {
        const child = spawn(process.execPath, [WORKER], {
          env: { ...process.env, ...backend.env(), PREFIX: prefix, NAME: name, ITER: String(ITER) },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let err = '';
        child.stderr.on('data', (d) => (err += d));
        const exited = new Promise<{ code: number | null; signal: string | null; err: string }>((resolve) =>
          child.on('close', (code, signal) => resolve({ code, signal, err })),
        );
        return { child, exited };
      });
      // A failed wait must not leave the workers writing after the clean-up removed the keys.
      cleanup.defer(async () => {
        for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
        await Promise.all(children.map((c) => c.exited));
      });
      const k = (s: string) => `${prefix}stress:{${name}}:${s}`;
      await waitUntil(async () => Number(await redis.get(k('entries'))) >= 100, '100 entries', 30_000);
      const killed = children.slice(0, 5);
      for (const c of killed) c.child.kill('SIGKILL');
      const results = await Promise.all(children.map((c) => c.exited));
      for (const r of results.slice(5)) expect(r.code, r.err).to.equal(0);
      for (const r of results.slice(0, 5)) expect(r.signal === 'SIGKILL' || r.code === 0).to.equal(true);
      // (acquisitions lost to a stall past the ttl, counted as `lost` by the workers, are no violation)
      expect(Number(await redis.get(k('violations'))), `lost: ${await redis.get(k('lost'))}`).to.equal(0);
      expect(Number(await redis.get(k('entries')))).to.be.at.least(15 * ITER);
      // A lock a killed worker held comes back when its ttl runs out.
      await waitUntil(async () => (await a.status(name)) === 'free', 'the lock to come back', 5_000);
    });
  });

describe('RedisLock on a Redis Cluster: the subscriber of the waiters', function () {
  this.timeout(60_000);
  onBackend(CLUSTER);

  it('waiters on locks of all three masters share one subscriber, subscribed on each master, and each is woken by its release', async () => {
    const name = uniqueName('lockwaits');
    const client = clusterClient({ redisOptions: { connectionName: name } });
    cleanup.defer(() => client.quit());
    const attempts = countAttempts(client);
    const w = new RedisLock({ redis: client, prefix, owner: 'w' });
    cleanup.defer(() => w.close());
    await client.ping();
    // One lock whose key lives on each master, and a second on the first one: two channels there.
    const first = masterOf(client, w.key('m0'));
    const wanted = (at: string) => (at === first ? 2 : 1);
    const byMaster = new Map<string, string[]>();
    const full = () => byMaster.size === 3 && [...byMaster].every(([at, list]) => list.length === wanted(at));
    for (let i = 0; !full(); i++) {
      const at = masterOf(client, w.key(`m${i}`));
      const list = byMaster.get(at) ?? [];
      if (list.length < wanted(at)) byMaster.set(at, [...list, `m${i}`]);
    }
    const names = [...byMaster.values()].flat();
    expect(names).to.have.length(4);
    /**
     * The subscriber's connections on each master, with their sharded subscriptions: named after
     * the client's connection name (with a prefix of ioredis's own before it).
     */
    const subscribers = async () => {
      const out = new Map<string, number[]>();
      for (const node of (redis as Cluster).nodes('master')) {
        const list = String(await node.client('LIST'));
        out.set(
          nodeAddress(node),
          list
            .split('\n')
            .filter((line) => line.includes(`${name}:locks `))
            .map((line) => Number(/ ssub=(\d+)/.exec(line)?.[1] ?? 0)),
        );
      }
      return out;
    };
    const held = await Promise.all(names.map(async (n) => (await b.lock(n, { ttl: 30_000 }))!));
    // A pause of an hour: only each release's word lets its waiter in.
    const got = names.map((n) => w.acquire(n, { retryDelay: HOUR, jitter: 0, maxRetries: 10, timeout: 30_000 }));
    // Each waiter's attempt at once, and one once its subscription holds.
    await waitUntil(() => attempts.answered === 2 * names.length, 'the waiters to subscribe and ask again');
    const during = await subscribers();
    // Besides the subscriber's own connection to a node (for the slot map, none subscribed), on
    // each master one connection holds the channels of the locks there.
    for (const [at, list] of byMaster)
      expect(
        during.get(at)!.filter((n) => n > 0),
        at,
      ).to.deep.equal([list.length]);
    for (const h of held) expect(await h.release()).to.equal(true);
    const handles = await Promise.all(got);
    expect(handles.map((h) => h.owner)).to.deep.equal(names.map(() => 'w'));
    expect(attempts.sent).to.equal(3 * names.length, 'one attempt after each release');
    for (const h of handles) expect(await h.release()).to.equal(true);
    // No lock waited for: the subscriptions end, and the connections with them.
    await waitUntil(
      async () => [...(await subscribers()).values()].every((list) => list.length === 0),
      'the subscriber to close on every master',
    );
  });
});

describe('RedisLock on a Redis Cluster: where the keys go', function () {
  this.timeout(60_000);
  onBackend(CLUSTER);

  it('the keys of 300 locks land on all three masters, each on the master of its slot; a LockPool of them checks them all', async () => {
    const names = Array.from({ length: 300 }, (_, i) => `spread-${i}`);
    const handles = await Promise.all(names.map((n) => a.lock(n, { ttl: 60_000 })));
    expect(handles.filter((h) => h === null)).to.deep.equal([]);
    const cluster = redis as Cluster;
    // Where the cluster's slot map (and CRC16 of each key's hash tag) says each key lives.
    const expected = new Map<string, string[]>();
    for (const n of names) {
      for (const key of [a.key(n), `${a.key(n)}:fence`]) {
        const at = masterOf(cluster, key);
        expected.set(at, [...(expected.get(at) ?? []), key]);
      }
    }
    expect([...expected.keys()].sort()).to.deep.equal(redisClusterNodes().sort());
    for (const keys of expected.values()) expect(keys.length).to.be.at.least(2 * 50);
    // Where they are, as each master says.
    const masters = cluster.nodes('master');
    expect(masters).to.have.length(3);
    for (const node of masters) {
      const at = nodeAddress(node);
      expect(await keysOn(node, `${prefix}lock:*`), at).to.deep.equal(expected.get(at)!.sort());
    }
    // A pool whose members' locks are on every master: one health check sees them all.
    const pool = new LockPool({ pool: 'spread', locks: a });
    expect(await pool.add(...names)).to.equal(300);
    for (const h of handles.filter((_, i) => i % 2 === 1)) expect(await h!.release()).to.equal(true);
    const health = await pool.healthCheck();
    const sorted = [...names].sort();
    expect(health.locked).to.deep.equal(sorted.filter((n) => Number(n.slice(7)) % 2 === 0));
    expect(health.free).to.deep.equal(sorted.filter((n) => Number(n.slice(7)) % 2 === 1));
  });
});
