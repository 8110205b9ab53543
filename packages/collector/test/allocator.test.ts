import { Cleanup, freePort, redisClusterNodes, redisUrl, uniqueName } from '@contexture/test-support';
import { expect } from 'chai';
import { inspect } from 'node:util';
import type { Cluster, Redis } from 'ioredis';
import { CollectorError } from '../src/internal/errors.js';
import { Allocator, type AllocatorOptions } from '../src/allocator/allocator.js';
import { ALLOCATOR_DEFAULTS } from '../src/allocator/allocator-options.js';
import { invariants, snapshot } from './support/allocator-invariants.js';
import { redisNow, untilRedisTime } from './support/allocator-helpers.js';
import { BACKENDS, CLUSTER, keysMatching, keysOn, masterOf, nodeAddress } from './support/backends.js';
import { loseReply, proxiedRedis } from './support/proxied-redis.js';
import { expectUnavailable } from './support/unavailable.js';

async function rejects(p: Promise<unknown>, code: string): Promise<CollectorError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(CollectorError);
    expect((err as CollectorError).code).to.equal(code);
    return err as CollectorError;
  }
  throw new Error(`expected a rejection with ${code}`);
}

function throws(fn: () => unknown, code: string): CollectorError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(CollectorError);
    expect((err as CollectorError).code).to.equal(code);
    return err as CollectorError;
  }
  throw new Error(`expected a throw with ${code}`);
}

describe('Allocator: Redis unreachable (single Redis)', () => {
  let cleanup: Cleanup;
  let prefix: string;

  beforeEach(() => {
    cleanup = new Cleanup();
    prefix = `${uniqueName('test-alloc')}:`;
    cleanup.redisKeys(`${prefix}*`);
  });
  afterEach(async () => cleanup.run());

  it('fails every call with LC_REDIS_UNAVAILABLE when Redis cannot be reached, saying which call and where, never the password', async () => {
    const port = await freePort();
    const a = new Allocator({ redis: `redis://user:hunter2secret@127.0.0.1:${port}`, prefix, pool: 'down' });
    cleanup.defer(() => a.close());
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['allocator extend', () => a.extend(['r1'])],
      ['allocator malloc', () => a.malloc()],
      ['allocator free', () => a.freeKeys(['r1'])],
      ['allocator keys', () => a.keys()],
      ['allocator size', () => a.size()],
      ['allocator stats', () => a.stats()],
      ['allocator gc', () => a.gc()],
    ];
    await expectUnavailable(calls, port, 'hunter2secret');
  });

  it('a reply lost with its connection: malloc() and free() fail with LC_REDIS_UNAVAILABLE, they are not sent again (a second allocation, a free that says false)', async () => {
    const { proxy, port } = await proxiedRedis(cleanup);
    const a = new Allocator({ redis: `redis://127.0.0.1:${port}`, prefix, pool: 'cut' });
    cleanup.defer(() => a.close());
    const direct = new Allocator({ redis: redisUrl(), prefix, pool: 'cut' });
    cleanup.defer(() => direct.close());
    await a.extend(['r1', 'r2']);
    await (await a.malloc())!.free(); // its scripts known to Redis
    // Until Redis has run the call, its reply held back; then the connection is cut.
    const lose = <T>(call: Promise<T>, ran: () => Promise<boolean>) => loseReply<T, CollectorError>(proxy, call, ran);
    proxy.mute();
    const got = await lose(a.malloc(), async () => (await direct.stats()).held === 1);
    expect(got.err?.code).to.equal('LC_REDIS_UNAVAILABLE');
    expect((await direct.stats()).held).to.equal(1, 'one allocation made, not two');
    expect(await direct.freeKeys(await direct.keys())).to.equal(0); // another owner's: left alone
    await a.freeKeys(['r1', 'r2']);
    const held = (await a.malloc())!;
    proxy.mute();
    const freed = await lose(held.free(), async () => (await direct.stats()).held === 0);
    expect(freed.v, 'not false: the hold was live until now').to.equal(undefined);
    expect(freed.err?.code).to.equal('LC_REDIS_UNAVAILABLE');
    expect(await a.stats()).to.include({ free: 2, held: 0 });
  });

  it('an allocation printed or logged as JSON shows its resource, never the client and its password', async () => {
    const url = new URL(redisUrl());
    url.username = 'default'; // the local Redis's default user takes any password
    url.password = 'pw-in-allocation-secret';
    const a = new Allocator({ redis: url.toString(), prefix, pool: 'logged' });
    cleanup.defer(() => a.close());
    await a.extend(['r1']);
    const held = (await a.malloc())!;
    expect(held.key).to.equal('r1');
    expect(JSON.parse(JSON.stringify(held))).to.deep.equal({
      key: 'r1',
      owner: held.owner,
      fence: held.fence,
      expiresAt: held.expiresAt,
    });
    expect(inspect(held, { depth: 20, showHidden: true })).to.not.include('pw-in-allocation-secret');
    expect(await held.free()).to.equal(true);
  });
});

for (const backend of BACKENDS)
  describe(`Allocator (${backend.name})`, () => {
    let cleanup: Cleanup;
    let prefix: string;
    let client: Redis | Cluster;

    beforeEach(() => {
      cleanup = new Cleanup();
      prefix = `${uniqueName('test-alloc')}:`;
      backend.removeKeys(cleanup, `${prefix}*`);
      client = backend.client();
      cleanup.defer(() => client.quit());
    });
    afterEach(async () => cleanup.run());

    /** An allocator on the test's prefix and the shared client, closed by the clean-up. */
    function allocator(options: AllocatorOptions = {}): Allocator {
      const a = new Allocator({ redis: client, prefix, pool: 'p', ...options });
      cleanup.defer(() => a.close());
      return a;
    }

    async function consistent(a: Allocator): Promise<void> {
      expect(await invariants(client, a.redisKeys, a.shared)).to.deep.equal([]);
    }

    describe('Redis failures', () => {
      it('stats() fails when a key of the pool holds another type, rather than counting NaN', async () => {
        const a = allocator();
        await a.extend(['r1', 'r2']);
        expect(await a.stats()).to.deep.include({ size: 2, free: 2 });
        await client.set(a.redisKeys.free, 'foreign');
        const err = await a.stats().then(
          () => null,
          (e: unknown) => e as Error,
        );
        expect(String(err)).to.match(/WRONGTYPE/);
      });
    });

    describe('options and validation', () => {
      it('has frozen defaults and validates options in the constructor', () => {
        expect(Object.isFrozen(ALLOCATOR_DEFAULTS)).to.equal(true);
        expect(ALLOCATOR_DEFAULTS.shared).to.equal(false);
        throws(() => new Allocator({ redis: client, pool: '' }), 'LC_ALLOC_INVALID_KEY');
        throws(() => new Allocator({ redis: client, pool: 'a{b}' }), 'LC_ALLOC_INVALID_KEY');
        throws(() => new Allocator({ redis: client, prefix: 'x{' }), 'LC_ALLOC_INVALID_ARGUMENT');
        throws(() => new Allocator({ redis: client, timeout: 0 }), 'LC_ALLOC_INVALID_ARGUMENT');
        throws(() => new Allocator({ redis: client, cacheTimeout: 1.5 }), 'LC_ALLOC_INVALID_ARGUMENT');
        throws(
          () => new Allocator({ redis: client, shared: 'yes' as unknown as boolean }),
          'LC_ALLOC_INVALID_ARGUMENT',
        );
        throws(() => new Allocator({ redis: 42 as unknown as string }), 'LC_ALLOC_INVALID_ARGUMENT');
        throws(() => new Allocator({ redis: client, owner: 'a\0b' }), 'LC_ALLOC_INVALID_KEY');
      });

      it('rejects empty keys, NUL and control characters, duplicates, with a clear message', async () => {
        const a = allocator();
        const e1 = await rejects(a.extend(['']), 'LC_ALLOC_INVALID_KEY');
        expect(e1.message).to.match(/must not be empty/);
        const e2 = await rejects(a.extend(['ok', 'a\0b']), 'LC_ALLOC_INVALID_KEY');
        expect(e2.message).to.match(/NUL/);
        await rejects(a.extend(['line\nbreak']), 'LC_ALLOC_INVALID_KEY');
        await rejects(a.extend(['x', 'x']), 'LC_ALLOC_INVALID_KEY');
        await rejects(a.extend([7 as unknown as string]), 'LC_ALLOC_INVALID_KEY');
        await rejects(a.mallocKey(''), 'LC_ALLOC_INVALID_KEY');
        await rejects(a.malloc({ name: 'n\0' }), 'LC_ALLOC_INVALID_KEY');
        await rejects(a.bind('n', 'k\u0001'), 'LC_ALLOC_INVALID_KEY');
        await rejects(a.extend(['k'], { priority: 1.5 }), 'LC_ALLOC_INVALID_ARGUMENT');
        await rejects(a.extend(['k'], { priority: 2_000_000 }), 'LC_ALLOC_INVALID_ARGUMENT');
        await rejects(a.malloc({ timeout: -1 }), 'LC_ALLOC_INVALID_ARGUMENT');
        await rejects(a.gc(0), 'LC_ALLOC_INVALID_ARGUMENT');
        // Lone surrogates: Redis keeps UTF-8, where '\ud800' and '\udc00' would both be one key '\ufffd'.
        const lone = await rejects(a.extend(['\ud800', '\udc00', 'ok']), 'LC_ALLOC_INVALID_KEY');
        expect(lone.message).to.match(/well-formed Unicode/);
        await rejects(a.mallocKey('a\udc00'), 'LC_ALLOC_INVALID_KEY');
        await rejects(a.bind('n\ud800', 'k'), 'LC_ALLOC_INVALID_KEY');
        throws(() => new Allocator({ redis: client, pool: 'p\ud800' }), 'LC_ALLOC_INVALID_KEY');
        // Nothing of the rejected calls reached Redis.
        expect(await a.size()).to.equal(0);
        // Keys may hold any other character, braces and separators of other layers included.
        await a.extend(['http://u:p@10.0.0.1:3128', 'a{b}c', 'é|x:y', '\ud83d\ude00']);
        expect(await a.keys()).to.deep.equal(['a{b}c', 'http://u:p@10.0.0.1:3128', 'é|x:y', '\ud83d\ude00']);
      });
    });

    describe('layout', () => {
      it('keeps every key of a pool under <prefix>alloc:{<pool>}: (one hash-tag slot)', async () => {
        const a = allocator({ pool: 'proxies' });
        await a.extend(['r1', 'r2'], { timeout: 60_000 });
        const held = await a.malloc({ name: 'n' });
        expect(held).to.not.equal(null);
        await a.markUnhealthy('r2', 60_000);
        const found = await keysMatching(client, `${prefix}*`);
        expect(found.length).to.be.greaterThan(5);
        for (const k of found) expect(k.startsWith(`${prefix}alloc:{proxies}:`), k).to.equal(true);
        for (const k of Object.values(a.redisKeys)) expect(k.startsWith(`${prefix}alloc:{proxies}:`)).to.equal(true);
      });
    });

    describe('the pool', () => {
      it('extends, lists, sizes, shrinks, assigns and clears', async () => {
        const a = allocator();
        expect(await a.extend(['a', 'b', 'c'])).to.equal(3);
        expect(await a.extend(['c', 'd'])).to.equal(1);
        expect(await a.keys()).to.deep.equal(['a', 'b', 'c', 'd']);
        expect(await a.size()).to.equal(4);
        await consistent(a);
        expect(await a.shrink(['a', 'zz'])).to.equal(1);
        expect(await a.keys()).to.deep.equal(['b', 'c', 'd']);
        await consistent(a);
        const held = (await a.mallocKey('c'))!;
        expect(await a.assign(['c', 'e'])).to.deep.equal({ added: 1, removed: 2 });
        expect(await a.keys()).to.deep.equal(['c', 'e']);
        // assign keeps the hold of a resource it keeps
        expect((await snapshot(client, a.redisKeys)).held.has('c')).to.equal(true);
        await consistent(a);
        expect(await a.assign(['e'])).to.deep.equal({ added: 0, removed: 1 });
        expect(await held.free()).to.equal(false);
        await consistent(a);
        expect(await a.clear()).to.equal(1);
        expect(await a.size()).to.equal(0);
        expect(await a.malloc()).to.equal(null);
        await consistent(a);
      });

      it('removes a resource at the end of its timeout, keeps it when extended again, and none without timeout', async () => {
        const a = allocator();
        await a.extend(['short', 'renewed'], { timeout: 40 });
        await a.extend(['forever']);
        const t0 = await redisNow(client);
        await a.extend(['renewed'], { timeout: 60_000 });
        await untilRedisTime(client, t0 + 40);
        expect(await a.gc(10)).to.include({ removed: 1 });
        expect(await a.keys()).to.deep.equal(['forever', 'renewed']);
        // extend without a timeout clears an expiry
        await a.extend(['renewed']);
        expect((await snapshot(client, a.redisKeys)).resourceExpiry.size).to.equal(0);
        await consistent(a);
      });

      it('does not hand out an expired resource that gc has not removed yet', async () => {
        const a = allocator({ reclaimLimit: 1 });
        await a.extend(['x1', 'x2', 'x3'], { timeout: 30 });
        await a.extend(['live']);
        await untilRedisTime(client, (await redisNow(client)) + 30);
        const got = await a.malloc();
        expect(got!.key).to.equal('live');
        expect(await a.keys()).to.deep.equal(['live']);
        await consistent(a);
      });
    });

    describe('exclusive mode', () => {
      it('holds a resource for one allocation until it is freed', async () => {
        const a = allocator();
        const b = allocator();
        await a.extend(['r1', 'r2']);
        const x = (await a.malloc())!;
        const y = (await b.malloc())!;
        expect([x.key, y.key].sort()).to.deep.equal(['r1', 'r2']);
        expect(await a.malloc()).to.equal(null);
        expect(await b.mallocKey(x.key)).to.equal(null);
        await consistent(a);
        expect(await x.free()).to.equal(true);
        expect(await x.free()).to.equal(false);
        const z = (await b.malloc())!;
        expect(z.key).to.equal(x.key);
        await consistent(a);
      });

      it('gives strictly increasing fencing tokens per pool, across clear()', async () => {
        const a = allocator();
        await a.extend(['r1', 'r2', 'r3']);
        const fences: number[] = [];
        for (let i = 0; i < 10; i++) {
          const x = (await a.malloc())!;
          fences.push(x.fence);
          if (i % 2 === 0) await x.free();
          if (i === 5) {
            await a.clear();
            await a.extend(['r1', 'r2', 'r3']);
          }
        }
        for (let i = 1; i < fences.length; i++) expect(fences[i]).to.be.greaterThan(fences[i - 1]!);
      });

      it('lets only the owner free or update a hold, and a stale allocation frees nothing', async () => {
        const a = allocator();
        const b = allocator();
        await a.extend(['r']);
        const x = (await a.malloc({ timeout: 30 }))!;
        expect(await b.free('r')).to.equal(false);
        expect(await b.freeKeys(['r'])).to.equal(0);
        expect(await b.mallocKey('r')).to.equal(null);
        // x's hold runs out; b takes the resource
        await untilRedisTime(client, x.expiresAt);
        const y = (await b.malloc())!;
        expect(y.key).to.equal('r');
        expect(y.fence).to.be.greaterThan(x.fence);
        // the stale holder can neither extend nor free b's hold
        expect(await x.update(60_000)).to.equal(false);
        expect(await x.free()).to.equal(false);
        expect(await a.free('r')).to.equal(false);
        expect((await snapshot(client, a.redisKeys)).held.get('r')).to.equal(`${y.fence}:${b.owner}`);
        await consistent(a);
        expect(await b.freeKeys(['r'])).to.equal(1);
        await consistent(a);
      });

      it('does not let an older allocation of the same owner free a newer hold', async () => {
        const a = allocator();
        await a.extend(['r']);
        const old = (await a.malloc({ timeout: 30 }))!;
        await untilRedisTime(client, old.expiresAt);
        const fresh = (await a.malloc())!;
        expect(fresh.key).to.equal('r');
        expect(await old.free()).to.equal(false);
        expect((await snapshot(client, a.redisKeys)).held.has('r')).to.equal(true);
        expect(await fresh.free()).to.equal(true);
      });

      it('update() extends a live hold; an expired one is lost and returned', async () => {
        const a = allocator();
        await a.extend(['r']);
        const x = (await a.malloc({ timeout: 60 }))!;
        expect(await x.update(60_000)).to.equal(true);
        expect(x.expiresAt).to.be.greaterThan((await redisNow(client)) + 50_000);
        await untilRedisTime(client, x.expiresAt - 59_940); // the original 60 ms have passed: still held
        expect(await a.mallocKey('r')).to.equal(null);
        expect(await x.update(20)).to.equal(true);
        await untilRedisTime(client, x.expiresAt);
        expect(await x.update(60_000)).to.equal(false);
        // the lost hold went back to the pool at once
        expect((await snapshot(client, a.redisKeys)).free.has('r')).to.equal(true);
        await consistent(a);
      });

      it('notices each kind of expiry shorter than every earlier one (the pool skips its expiry checks until the earliest)', async () => {
        const a = allocator();
        const b = allocator();
        await a.extend(['long', 'r1', 'r2', 'r3', 'r4']);
        await a.bind('long-binding', 'long', { timeout: 60_000 });
        await a.markUnhealthy('r3', 60_000);
        const long = (await a.malloc({ timeout: 60_000 }))!;
        expect(long.key).to.equal('long');
        const past = async (ms: number) => untilRedisTime(client, ms);
        // one phase per kind; each expires long before everything above
        const hold = (await a.mallocKey('r1', { timeout: 40 }))!;
        await past(hold.expiresAt);
        expect(await hold.free()).to.equal(false, 'a lost hold says so');
        expect(await b.mallocKey('r1')).to.not.equal(null);

        const shortened = (await a.mallocKey('r2', { timeout: 60_000 }))!;
        expect(await shortened.update(40)).to.equal(true);
        await past(shortened.expiresAt);
        expect(await b.mallocKey('r2')).to.not.equal(null, 'an updated hold that ran out comes back');

        await a.extend(['gone'], { timeout: 40 });
        await past((await redisNow(client)) + 40);
        expect(await b.mallocKey('gone')).to.equal(null, 'an expired resource is not handed out');
        expect(await a.keys()).to.not.include('gone');

        await a.markUnhealthy('r4', 40);
        await past((await redisNow(client)) + 40);
        expect(await b.mallocKey('r4')).to.not.equal(null, 'an ended unhealthy period lets the resource back');

        await a.bind('short-binding', 'long', { timeout: 40 });
        await past((await redisNow(client)) + 40);
        expect(await b.malloc()).to.equal(null);
        expect((await snapshot(client, a.redisKeys)).bindings.has('short-binding')).to.equal(
          false,
          'malloc removed the expired binding',
        );
        expect(await a.bindingsFor('long')).to.deep.equal(['long-binding']);
        expect(await long.free()).to.equal(true);
        await consistent(a);
      });

      it('returns expired holds in gc() and, a few at a time, in malloc()', async () => {
        const a = allocator({ reclaimLimit: 2 });
        await a.extend(['r1', 'r2', 'r3', 'r4', 'r5']);
        const held = [];
        for (let i = 0; i < 5; i++) held.push((await a.malloc({ timeout: 30 }))!);
        await untilRedisTime(client, Math.max(...held.map((h) => h.expiresAt)));
        // malloc returns two due holds and takes one of them
        const m = (await a.malloc({ timeout: 60_000 }))!;
        expect(m).to.not.equal(null);
        const s = await snapshot(client, a.redisKeys);
        expect(s.free.size).to.equal(1);
        expect(s.held.size).to.equal(4);
        expect(await a.gc(100)).to.include({ returned: 3 });
        expect((await a.stats()).free).to.equal(4);
        await consistent(a);
      });

      it('mallocKey() allocates one given resource when free, with a binding when named', async () => {
        const a = allocator();
        await a.extend(['r1', 'r2']);
        const x = (await a.mallocKey('r2', { name: 'w' }))!;
        expect(x.key).to.equal('r2');
        expect(await a.mallocKey('r2')).to.equal(null);
        expect(await a.mallocKey('missing')).to.equal(null);
        expect(await a.bindingsFor('r2')).to.deep.equal(['w']);
        await consistent(a);
      });
    });

    describe('shared mode', () => {
      it('hands resources out round-robin and holds nothing', async () => {
        const a = allocator({ shared: true });
        const b = allocator({ shared: true });
        await a.extend(['r1', 'r2', 'r3']);
        const seen: string[] = [];
        for (let i = 0; i < 7; i++) seen.push((await (i % 2 ? a : b).malloc())!.key);
        expect(seen).to.deep.equal(['r1', 'r2', 'r3', 'r1', 'r2', 'r3', 'r1']);
        const x = (await a.malloc())!;
        expect(x.fence).to.equal(0);
        expect(await x.update()).to.equal(true);
        expect(await x.free()).to.equal(true);
        expect(await a.freeKeys(['r1'])).to.equal(0);
        expect((await a.stats()).held).to.equal(0);
        await consistent(a);
      });

      it('skips unhealthy resources and honours bindings', async () => {
        const a = allocator({ shared: true });
        await a.extend(['r1', 'r2', 'r3']);
        await a.markUnhealthy('r1', 60_000);
        expect((await a.malloc())!.key).to.equal('r2');
        expect((await a.malloc({ name: 'n' }))!.key).to.equal('r3');
        expect((await a.malloc({ name: 'n' }))!.key).to.equal('r3');
        expect((await a.malloc())!.key).to.equal('r2');
        await consistent(a);
      });
    });

    describe('soft binding', () => {
      it('gives a named client the same resource again while it is free', async () => {
        const a = allocator();
        await a.extend(['r1', 'r2', 'r3']);
        const first = (await a.malloc({ name: 'worker-1' }))!;
        await first.free();
        // round-robin would give the next resource; the binding wins
        const again = (await a.malloc({ name: 'worker-1' }))!;
        expect(again.key).to.equal(first.key);
        expect(await a.bindingsFor(first.key)).to.deep.equal(['worker-1']);
        // bound resource held by someone else: another one, and the binding follows it
        const other = (await a.malloc({ name: 'worker-1' }))!;
        expect(other.key).to.not.equal(first.key);
        expect(await a.bindingsFor(other.key)).to.deep.equal(['worker-1']);
        expect(await a.bindingsFor(first.key)).to.deep.equal([]);
        await consistent(a);
      });

      it('binds, unbinds, lists by resource and expires bindings on their own timeout', async () => {
        const a = allocator();
        await a.extend(['r1', 'r2']);
        expect(await a.bind('n1', 'r2')).to.equal(true);
        expect(await a.bind('n2', 'r2')).to.equal(true);
        expect(await a.bind('n3', 'r2', { timeout: 30 })).to.equal(true);
        expect(await a.bind('n4', 'nope')).to.equal(false);
        expect((await a.malloc({ name: 'n1' }))!.key).to.equal('r2');
        expect(await a.bindingsFor('r2')).to.deep.equal(['n1', 'n2', 'n3']);
        expect(await a.unbind('n2')).to.equal(true);
        expect(await a.unbind('n2')).to.equal(false);
        const t = await redisNow(client);
        await untilRedisTime(client, t + 30);
        expect(await a.bindingsFor('r2')).to.deep.equal(['n1']);
        expect(await a.gc(10)).to.include({ unbound: 1 });
        await consistent(a);
      });

      it('a binding ends after cacheTimeout: the name then gets the round-robin resource', async () => {
        const a = allocator();
        await a.extend(['r1', 'r2']);
        const x = (await a.malloc({ name: 'n', cacheTimeout: 30 }))!;
        expect(x.key).to.equal('r1');
        await x.free();
        await untilRedisTime(client, (await redisNow(client)) + 30);
        expect((await a.malloc({ name: 'n' }))!.key).to.equal('r2');
        await consistent(a);
      });

      it('removing a resource removes the bindings that point at it', async () => {
        const a = allocator();
        await a.extend(['r1', 'r2']);
        await a.bind('n1', 'r1');
        await a.bind('n2', 'r2');
        await a.shrink(['r1']);
        expect(await a.bindingsFor('r1')).to.deep.equal([]);
        expect((await snapshot(client, a.redisKeys)).bindings).to.deep.equal(new Map([['n2', 'r2']]));
        await consistent(a);
      });
    });

    describe('priority', () => {
      it('allocates higher priorities first, ties in round-robin order', async () => {
        const a = allocator({ shared: true });
        await a.extend(['low1', 'low2'], { priority: 1 });
        await a.extend(['high1', 'high2'], { priority: 5 });
        await a.extend(['neg'], { priority: -3 });
        const seen: string[] = [];
        for (let i = 0; i < 5; i++) seen.push((await a.malloc())!.key);
        expect(seen).to.deep.equal(['high1', 'high2', 'high1', 'high2', 'high1']);
        const b = allocator({ pool: 'q' });
        await b.extend(['low1', 'low2'], { priority: 1 });
        await b.extend(['high1', 'high2'], { priority: 5 });
        await b.extend(['neg'], { priority: -3 });
        const order: string[] = [];
        for (let i = 0; i < 5; i++) order.push((await b.malloc())!.key);
        expect(order).to.deep.equal(['high1', 'high2', 'low1', 'low2', 'neg']);
        await consistent(b);
      });

      it('malloc({ priority }) takes only resources of at least that priority', async () => {
        const a = allocator();
        await a.extend(['slow'], { priority: 1 });
        await a.extend(['fast'], { priority: 9 });
        expect((await a.malloc({ priority: 5 }))!.key).to.equal('fast');
        expect(await a.malloc({ priority: 5 })).to.equal(null);
        expect(await a.malloc({ priority: 2, name: 'n' })).to.equal(null);
        expect((await a.malloc({ priority: -1_000_000 }))!.key).to.equal('slow');
        await consistent(a);
      });

      it('a new priority moves a free resource to its new level', async () => {
        const a = allocator();
        await a.extend(['a', 'b', 'c']);
        await a.extend(['c'], { priority: 2 });
        expect((await a.malloc())!.key).to.equal('c');
        await consistent(a);
      });

      it('keeps the order when the round-robin sequence wraps at 2^32', async () => {
        const a = allocator({ shared: true });
        await a.extend(['p1', 'p2'], { priority: 3 });
        await a.extend(['q1', 'q2']);
        await client.hset(a.redisKeys.meta, 'seq', 2 ** 32 - 3);
        const seen: string[] = [];
        for (let i = 0; i < 6; i++) seen.push((await a.malloc())!.key);
        expect(seen).to.deep.equal(['p1', 'p2', 'p1', 'p2', 'p1', 'p2']);
        expect(Number(await client.hget(a.redisKeys.meta, 'seq'))).to.be.lessThan(100);
        await consistent(a);
      });
    });

    describe('health', () => {
      it('markUnhealthy takes a resource out of rotation for its duration', async () => {
        const a = allocator();
        await a.extend(['r1', 'r2']);
        expect(await a.markUnhealthy('r1', 40)).to.equal(1);
        const t = await redisNow(client);
        const x = (await a.malloc())!;
        expect(x.key).to.equal('r2');
        expect(await a.malloc()).to.equal(null);
        await consistent(a);
        await untilRedisTime(client, t + 40);
        expect((await a.malloc())!.key).to.equal('r1');
        await consistent(a);
      });

      it('a held resource marked unhealthy returns unhealthy when freed, then heals', async () => {
        const a = allocator();
        await a.extend(['r']);
        const x = (await a.malloc())!;
        await a.markUnhealthy('r', 60_000);
        await consistent(a);
        expect(await x.free()).to.equal(true);
        expect(await a.malloc()).to.equal(null);
        expect(await a.stats()).to.include({ free: 0, held: 0, unhealthy: 1 });
        await consistent(a);
        expect(await a.markHealthy('r')).to.equal(1);
        expect((await a.malloc())!.key).to.equal('r');
        await consistent(a);
      });

      it('checkHealth runs the check on every resource, at most `concurrency` at once', async () => {
        const a = allocator();
        const keys = Array.from({ length: 30 }, (_, i) => `r${String(i).padStart(2, '0')}`);
        await a.extend(keys);
        await a.markUnhealthy('r03', 60_000);
        let running = 0;
        let most = 0;
        const report = await a.checkHealth(
          async (key) => {
            running++;
            most = Math.max(most, running);
            await new Promise((r) => setImmediate(r));
            running--;
            if (key === 'r07') throw new Error('down');
            return !key.endsWith('5');
          },
          { concurrency: 4, duration: 60_000 },
        );
        expect(most).to.equal(4);
        expect(report.unhealthy).to.deep.equal(['r05', 'r07', 'r15', 'r25']);
        expect(report.healthy).to.have.length(26);
        const s = await snapshot(client, a.redisKeys);
        expect([...s.unhealthy.keys()].sort()).to.deep.equal(['r05', 'r07', 'r15', 'r25']);
        await consistent(a);
      });
    });

    describe('gc', () => {
      it('repairs inconsistent entries, incrementally from a stored cursor', async () => {
        const a = allocator();
        // More resources than a small hash or sorted set holds in one listpack (whose SCAN gives
        // every entry at once, whatever COUNT says): then each gc step scans a part of them.
        const keys = Array.from({ length: 1000 }, (_, i) => `r${i}`);
        await a.extend(keys);
        await a.bind('good', 'r1');
        const k = a.redisKeys;
        // break every rule once
        await client.zrem(k.free, 'r10'); // in no state
        await client.hset(k.held, 'r11', '999999:ghost'); // free and held, no hold expiry
        await client.zadd(k.unhealthy, Date.now() + 60_000, 'r12'); // free and unhealthy
        await client.zadd(k.free, 1, 'gone'); // entries of resources not in the pool
        await client.zadd(k.unhealthy, 1e15, 'gone2');
        await client.hset(k.held, 'gone3', '1:x');
        await client.zadd(k.holdExpiry, 1e15, 'gone4');
        await client.hset(k.bindings, 'orphan', 'gone'); // binding out of the pool
        await client.zadd(k.bindingIndex, 0, 'r2\0nobody'); // index without binding
        await client.zrem(k.bindingIndex, 'r1\0good'); // binding without index
        await client.hset(k.resources, 'r13', 'junk'); // unreadable priority
        expect((await invariants(client, k)).length).to.be.greaterThan(8);
        let repaired = 0;
        let steps = 0;
        while ((await invariants(client, k)).length > 0) {
          repaired += (await a.gc(20)).repaired;
          steps++;
          expect(steps).to.be.lessThan(100);
        }
        expect(steps).to.be.greaterThan(1);
        expect(repaired).to.be.at.least(10);
        expect(await a.bindingsFor('r1')).to.deep.equal(['good']);
        expect((await a.stats()).free).to.equal(999); // r12 is unhealthy
      });
    });

    describe('lifecycle', () => {
      it('owns and closes the client it makes from a URL, not one it is given', async () => {
        const own = new Allocator({ redis: backend.option(), prefix, pool: 'u' });
        await own.extend(['r']);
        expect(own.status).to.equal('open');
        const closing = own.close();
        expect(own.close()).to.equal(closing);
        await closing;
        expect(own.status).to.equal('closed');
        expect(own.redis.status).to.equal('end');
        await rejects(own.malloc(), 'LC_ALLOC_CLOSED');
        const given = new Allocator({ redis: client, prefix, pool: 'u' });
        // Used first: a cluster client is 'connect', not 'ready', until its slots are read.
        expect(await given.size()).to.equal(1);
        await given.close();
        expect(client.status).to.equal('ready');
        expect(await client.ping()).to.equal('PONG');
        const d = new Allocator({ redis: backend.option(), prefix, pool: 'u' });
        await d.size();
        d.destroy();
        expect(d.status).to.equal('closed');
        {
          await using disposed = new Allocator({ redis: backend.option(), prefix, pool: 'u' });
          expect(await disposed.size()).to.equal(1);
        }
      });
    });
  });

describe('Allocator on a Redis Cluster: where the pools go', () => {
  let cleanup: Cleanup;
  let prefix: string;
  let cluster: Cluster;

  beforeEach(async () => {
    cleanup = new Cleanup();
    prefix = `${uniqueName('test-alloc-spread')}:`;
    CLUSTER.removeKeys(cleanup, `${prefix}*`);
    cluster = CLUSTER.client() as Cluster;
    cleanup.defer(() => cluster.quit());
    await cluster.ping();
  });
  afterEach(async () => cleanup.run());

  it('300 pools land on all three masters, each whole on the master of its slot', async () => {
    const pools = Array.from({ length: 300 }, (_, i) => `pool-${i}`);
    const allocators = pools.map((pool) => {
      const a = new Allocator({ redis: cluster, prefix, pool });
      cleanup.defer(() => a.close());
      return a;
    });
    await Promise.all(allocators.map((a) => a.extend(['r1', 'r2'])));
    const held = await Promise.all(allocators.map((a) => a.malloc({ name: 'n' })));
    expect(held.map((h) => h?.key)).to.deep.equal(pools.map(() => 'r1'));
    // A pool is one hash tag: every key of it is on the master of that one slot.
    const expected = new Map<string, number>();
    for (const a of allocators) {
      const at = masterOf(cluster, a.redisKeys.resources);
      for (const key of Object.values(a.redisKeys)) expect(masterOf(cluster, key), key).to.equal(at);
      expected.set(at, (expected.get(at) ?? 0) + 1);
    }
    expect([...expected.keys()].sort()).to.deep.equal(redisClusterNodes().sort());
    for (const n of expected.values()) expect(n).to.be.at.least(50);
    // Each master holds the keys of its pools and no other, as Redis says.
    const masters = cluster.nodes('master');
    expect(masters).to.have.length(3);
    for (const node of masters) {
      const at = nodeAddress(node);
      const keys = await keysOn(node, `${prefix}alloc:*`);
      const pools = new Set(keys.map((k) => /alloc:\{([^}]*)\}:/.exec(k)![1]!));
      expect(pools.size, at).to.equal(expected.get(at));
      for (const k of keys) expect(masterOf(cluster, k), k).to.equal(at);
    }
    for (const h of held) expect(await h!.free()).to.equal(true);
    expect((await allocators[299]!.stats()).free).to.equal(2);
  });
});
