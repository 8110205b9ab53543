import { expect } from 'chai';
import type { Cluster, Redis } from 'ioredis';
import { Cleanup, freePort, uniqueName, waitUntil } from '@contexture/test-support';
import { CollectorError } from '../src/internal/errors.js';
import { Registry } from '../src/registry/registry.js';
import { type Backend, BACKENDS, CLUSTER, keysMatching, masterOf, SINGLE } from './support/backends.js';
import { expectUnavailable } from './support/unavailable.js';

// Set by the hooks of the describe() that runs (one at a time): the behaviour tests run on each backend.
let cleanup: Cleanup;
let prefix: string;
let redis: Redis | Cluster;

/** Hooks: a prefix of the test's own on `backend`, and a client of it. */
function onBackend(backend: Backend): void {
  beforeEach(() => {
    cleanup = new Cleanup();
    prefix = `${uniqueName('registry')}:`;
    backend.removeKeys(cleanup, `${prefix}*`);
    redis = backend.client();
    cleanup.defer(() => redis.quit());
  });
  afterEach(() => cleanup.run());
}

const make = (o: ConstructorParameters<typeof Registry>[0] = {}) => {
  const r = new Registry({ redis, prefix, ...o });
  cleanup.defer(() => r.close());
  return r;
};

const caught = async (p: Promise<unknown> | (() => unknown)): Promise<CollectorError> => {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return err as CollectorError;
  }
  throw new Error('expected an error');
};

describe('Registry: Redis unreachable (single Redis)', function () {
  this.timeout(30_000);
  onBackend(SINGLE);

  it('a call Redis does not answer fails with LC_REDIS_UNAVAILABLE naming the call and where Redis is, never the password', async () => {
    const port = await freePort();
    const down = new Registry({ redis: `redis://user:hunter2secret@127.0.0.1:${port}`, prefix });
    cleanup.defer(() => down.close());
    await expectUnavailable(
      [
        ['registry register', () => down.register({ id: 'x' })],
        ['registry heartbeat', () => down.heartbeat('x')],
        ['registry beat', () => down.beat({ id: 'x' })],
        ['registry updateMetrics', () => down.updateMetrics('x', { n: 1 })],
        ['registry markUnhealthy', () => down.markUnhealthy('x')],
        ['registry markHealthy', () => down.markHealthy('x')],
        ['registry unregister', () => down.unregister('x')],
        ['registry get', () => down.get('x')],
        ['registry list', () => down.list()],
        ['registry cleanupExpired', () => down.cleanupExpired()],
      ],
      port,
      'hunter2secret',
    );
  });
});

for (const backend of BACKENDS)
  describe(`Registry (${backend.name})`, function () {
    this.timeout(30_000);
    onBackend(backend);

    it('registries of a namespace must say the same shards: the first stores its number, another fails every call', async () => {
      const two = make({ namespace: 'parts', shards: 2 });
      await two.register({ id: 'a', kind: 'k' });
      expect(await redis.get(`${prefix}registry:{parts}:shards`)).to.equal('2');
      const same = make({ namespace: 'parts', shards: 2 });
      expect((await same.list()).map((r) => r.id)).to.deep.equal(['a']);
      const three = make({ namespace: 'parts', shards: 3 });
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['register', () => three.register({ id: 'b' })],
        ['beat', () => three.beat({ id: 'b' })],
        ['heartbeat', () => three.heartbeat('a')],
        ['get', () => three.get('a')],
        ['list', () => three.list()],
        ['unregister', () => three.unregister('a')],
        ['cleanupExpired', () => three.cleanupExpired()],
      ];
      for (const [what, call] of calls) {
        const e = await caught(call);
        expect(e, what).to.be.instanceOf(CollectorError);
        expect(e.code, what).to.equal('LC_REGISTRY_SHARDS_MISMATCH');
        expect(e.message, what).to.include("registry namespace 'parts' is spread over 2 part(s)");
        expect(e.message, what).to.include('this registry says shards: 3');
      }
      // It wrote nothing and removed nothing.
      expect((await same.list()).map((r) => r.id)).to.deep.equal(['a']);
      // Another namespace keeps its own number.
      const other = make({ namespace: 'other', shards: 3 });
      await other.register({ id: 'c' });
      expect((await make({ namespace: 'other', shards: 3 }).list()).map((r) => r.id)).to.deep.equal(['c']);
    });

    it('register, heartbeat with metrics, get and list (another registry of the namespace sees it)', async () => {
      const a = make();
      const b = make();
      await a.register(
        { id: 'api-1', kind: 'backend', host: 'h1', pid: 42, url: 'http://10.0.0.5:8001', info: { zone: 'eu' } },
        { inFlight: 2 },
      );
      expect(await a.heartbeat('api-1', { inFlight: 3, avgLatencyMs: 12.5, inFlightAvgLatencyMs: 20 })).to.equal(true);
      const r = (await b.get('api-1'))!;
      expect(r).to.include({
        id: 'api-1',
        kind: 'backend',
        host: 'h1',
        pid: 42,
        url: 'http://10.0.0.5:8001',
        healthy: true,
        markedUnhealthyUntil: null,
      });
      expect(r.info).to.deep.equal({ zone: 'eu' });
      expect(r.metrics).to.deep.equal({ inFlight: 3, avgLatencyMs: 12.5, inFlightAvgLatencyMs: 20 });
      expect(r.age).to.be.within(0, 5_000);
      expect(r.lastHeartbeat).to.be.at.least(r.registeredAt);
      const list = await b.list();
      expect(list.map((e) => e.id)).to.deep.equal(['api-1']);
      const other = make({ namespace: 'other' });
      expect(await other.list()).to.deep.equal([]);
      expect(await other.get('api-1')).to.equal(null);
    });

    it('heartbeats stop: the entry turns unhealthy, then it is gone (keys expired, index cleaned)', async () => {
      // Ages are on Redis's clock; the margins are seconds: w2 beats every 200 ms and once more
      // just before each check of it, against a 2000 ms timeout.
      const reg = make({ heartbeatTimeout: 2_000, expireAfter: 5_000 });
      await reg.register({ id: 'w1', kind: 'handler' });
      await reg.register({ id: 'w2', kind: 'handler' });
      const keep = setInterval(() => void reg.heartbeat('w2').catch(() => {}), 200);
      cleanup.defer(() => clearInterval(keep));
      const w1 = (await reg.get('w1'))!;
      expect(w1.healthy, `age ${w1.age} ms`).to.equal(true);
      await waitUntil(async () => (await reg.get('w1'))?.healthy === false, 'w1 unhealthy', 15_000);
      expect(await reg.heartbeat('w2')).to.equal(true);
      const mid = await reg.list();
      expect(mid.map((e) => [e.id, e.healthy])).to.deep.equal([
        ['w2', true],
        ['w1', false],
      ]);
      expect(mid[1]!.age).to.be.at.least(2_000, 'unhealthy by its age on Redis');
      expect(await reg.heartbeat('w2')).to.equal(true);
      expect((await reg.list({ healthyOnly: true })).map((e) => e.id)).to.deep.equal(['w2']);
      // Its hash expires by itself: nobody has to clean up for it to go.
      await waitUntil(async () => (await redis.exists(reg.key('w1'))) === 0, 'w1 expired', 15_000);
      expect((await reg.list()).map((e) => e.id)).to.deep.equal(['w2']);
      expect(await redis.zscore(`${prefix}registry:{default}:index`, 'w1')).to.not.equal(
        null,
        'still indexed until a cleanup',
      );
      expect(await reg.cleanupExpired()).to.equal(1);
      expect(await redis.zscore(`${prefix}registry:{default}:index`, 'w1')).to.equal(null);
      expect(await reg.heartbeat('w1')).to.equal(false, 'a heartbeat does not resurrect an expired entry');
      expect(await redis.exists(reg.key('w1'))).to.equal(0);
      expect(await reg.cleanupExpired()).to.equal(0, 'the live entry stays');
      expect(await reg.heartbeat('w2')).to.equal(true);
      expect((await reg.get('w2'))!.healthy).to.equal(true);
    });

    it('keys never lose their expiry on update; updates of a missing entry create nothing', async () => {
      const reg = make({ heartbeatTimeout: 5_000, expireAfter: 20_000 });
      await reg.register({ id: 'x' });
      const ttl = async () => redis.pttl(reg.key('x'));
      expect(await ttl()).to.be.within(1, 20_000);
      expect(await reg.updateMetrics('x', { inFlight: 9 })).to.equal(true);
      expect(await ttl()).to.be.within(1, 20_000);
      expect(await reg.markUnhealthy('x')).to.equal(true);
      expect(await ttl()).to.be.within(1, 20_000);
      expect(await reg.markHealthy('x')).to.equal(true);
      expect(await reg.heartbeat('x', { inFlight: 1 })).to.equal(true);
      expect(await reg.beat({ id: 'x', kind: 'handler' }, { queued: 4 })).to.equal(undefined);
      expect(await ttl()).to.be.within(1, 20_000);
      expect(await redis.pttl(`${prefix}registry:{default}:index`)).to.be.within(1, 20_000);
      const r = (await reg.get('x'))!;
      expect(r.metrics).to.deep.equal({ inFlight: 1, queued: 4 });
      expect(r.kind).to.equal('handler');
      // A register replaces the entry, metrics included.
      await reg.register({ id: 'x', kind: 'backend' });
      expect((await reg.get('x'))!.metrics).to.deep.equal({});
      for (const write of [
        () => reg.updateMetrics('gone', { a: 1 }),
        () => reg.markUnhealthy('gone'),
        () => reg.heartbeat('gone'),
      ]) {
        expect(await write()).to.equal(false);
        expect(await redis.exists(reg.key('gone'))).to.equal(0);
      }
      // beat() is the heartbeat that registers what it does not know.
      await reg.beat({ id: 'new', kind: 'collector' });
      expect(await redis.pttl(reg.key('new'))).to.be.within(1, 20_000);
    });

    it('markUnhealthy holds whatever the heartbeats say, until markHealthy or its time is up', async () => {
      const reg = make();
      await reg.register({ id: 'b1' });
      await reg.markUnhealthy('b1');
      await reg.heartbeat('b1');
      const r = (await reg.get('b1'))!;
      expect(r.healthy).to.equal(false);
      expect(r.markedUnhealthyUntil).to.equal(Infinity);
      expect(await reg.list({ healthyOnly: true })).to.deep.equal([]);
      await reg.markHealthy('b1');
      expect((await reg.get('b1'))!.healthy).to.equal(true);
      // A timed mark (its end on Redis's clock), with seconds to spare for the read that sees it.
      await reg.markUnhealthy('b1', 2_000);
      const marked = (await reg.get('b1'))!;
      expect(marked.healthy).to.equal(false);
      expect(marked.markedUnhealthyUntil).to.be.a('number').and.above(marked.lastHeartbeat);
      await reg.heartbeat('b1');
      await waitUntil(
        async () => (await reg.get('b1'))!.markedUnhealthyUntil === null,
        'the timed mark to end',
        15_000,
      );
      expect(await reg.heartbeat('b1')).to.equal(true);
      expect((await reg.get('b1'))!.healthy).to.equal(true);
    });

    it('unregister removes at once; list filters by kind', async () => {
      const reg = make();
      await reg.register({ id: 'h', kind: 'handler' });
      await reg.register({ id: 'c', kind: 'collector' });
      expect((await reg.list({ kind: 'collector' })).map((e) => e.id)).to.deep.equal(['c']);
      expect(await reg.unregister('h')).to.equal(true);
      expect(await reg.unregister('h')).to.equal(false);
      expect((await reg.list()).map((e) => e.id)).to.deep.equal(['c']);
      expect(await redis.exists(reg.key('h'))).to.equal(0);
    });

    it('bad input gets a clear error; hostile names stay data', async () => {
      const reg = make();
      expect((await caught(() => reg.register({ id: '' }))).code).to.equal('LC_REGISTRY_INVALID_ARGUMENT');
      expect((await caught(() => reg.register({ id: 'a\nb' }))).code).to.equal('LC_REGISTRY_INVALID_ARGUMENT');
      expect((await caught(() => reg.register({ id: 'a' }, { x: Number.NaN }))).message).to.match(/finite number/);
      expect((await caught(() => reg.register({ id: 'a' }, { x: '1' as unknown as number }))).code).to.equal(
        'LC_REGISTRY_INVALID_ARGUMENT',
      );
      expect((await caught(() => reg.register({ id: 'a', pid: -1 }))).code).to.equal('LC_REGISTRY_INVALID_ARGUMENT');
      // A key the entry does not have (it would be dropped without a word), list options of the wrong kind.
      expect((await caught(() => reg.register({ id: 'a', hostname: 'h' } as never))).message).to.match(
        /unknown entry key "hostname" \(extra fields go in entry.info\)/,
      );
      expect((await caught(() => reg.list({ kind: 5 } as never))).message).to.match(/kind must be a string/);
      expect((await caught(() => reg.list({ healthyOnly: 'yes' } as never))).message).to.match(/healthyOnly/);
      expect((await caught(() => reg.list({ healthy: true } as never))).message).to.match(/unknown option "healthy"/);
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      expect((await caught(() => reg.register({ id: 'a', info: cyclic }))).message).to.match(/JSON/);
      expect(() => new Registry({ redis, heartbeatTimeout: 1000, expireAfter: 10 })).to.throw(
        CollectorError,
        /expireAfter/,
      );
      await reg.register(
        { id: '__proto__', info: JSON.parse('{"__proto__": {"polluted": true}}') },
        JSON.parse('{"__proto__": 1, "constructor": 2}'),
      );
      const r = (await reg.get('__proto__'))!;
      expect(Object.keys(r.metrics).sort()).to.deep.equal(['__proto__', 'constructor']);
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
      // Foreign data in an entry's hash is left out, never thrown.
      await redis.hset(reg.key('__proto__'), 'e', 'not json', 'm:bad', 'NaN');
      expect((await reg.get('__proto__'))!.metrics).to.not.have.property('bad');
      await reg.close();
      expect((await caught(() => reg.list())).code).to.equal('LC_REGISTRY_CLOSED');
    });

    it('foreign data under its keys fails as Redis says, not as LC_REDIS_UNAVAILABLE', async () => {
      // Not a failure to reach Redis: the script's own error, as Redis gave it.
      const reg = make();
      await redis.set(reg.key('y'), 'not a hash');
      const e = await caught(() => reg.heartbeat('y'));
      expect(e).to.not.be.instanceOf(CollectorError);
      expect(e.message).to.match(/WRONGTYPE/);
    });
  });

describe('Registry spread over parts (shards)', function () {
  this.timeout(30_000);
  onBackend(CLUSTER);

  it('shards: 1 keeps the one-slot layout; shards: 6 spreads a namespace over every master, and every call finds its entry', async () => {
    expect(make().key('a')).to.equal(`${prefix}registry:{default}:e:a`);
    expect((await caught(() => make({ shards: 0 }))).code).to.equal('LC_REGISTRY_INVALID_ARGUMENT');
    // An empty hash tag would put a namespace's keys in several slots: refused.
    for (const [o, why] of [
      [{ namespace: '}x' }, /namespace must not start with }/],
      [{ prefix: 'p{}:' }, /prefix must not hold \{ right before \}/],
    ] as const) {
      const e = await caught(() => make(o));
      expect(e.code).to.equal('LC_REGISTRY_INVALID_ARGUMENT');
      expect(e.message).to.match(why);
    }
    expect(make({ namespace: 'a}b' }).key('a')).to.equal(`${prefix}registry:{a}b}:e:a`);
    const reg = make({ namespace: 'wide', shards: 6, heartbeatTimeout: 60_000, expireAfter: 120_000 });
    const other = make({ namespace: 'wide', shards: 6 });
    const ids = Array.from({ length: 300 }, (_, i) => `backend-${i}`);
    await Promise.all(ids.map((id) => reg.register({ id, kind: 'b' }, { load: 1 })));
    // The entries' keys are on all three masters, each on the master of its slot.
    const owners = new Set(ids.map((id) => masterOf(redis as Cluster, reg.key(id))));
    expect(owners.size).to.equal(3);
    const keys = await keysMatching(redis, `${prefix}registry:*`);
    expect(keys.filter((k) => k.includes(':e:')).length).to.equal(300);
    expect(keys.filter((k) => k.endsWith(':index')).length).to.equal(6);
    // Another registry of the namespace lists them all, and each call reaches the entry's part.
    const listed = await other.list();
    expect(listed.map((r) => r.id).sort()).to.deep.equal([...ids].sort());
    expect(await other.heartbeat('backend-7', { load: 2 })).to.equal(true);
    expect((await reg.get('backend-7'))?.metrics).to.deep.equal({ load: 2 });
    expect(await other.markUnhealthy('backend-8', 60_000)).to.equal(true);
    expect((await reg.get('backend-8'))?.healthy).to.equal(false);
    expect(await other.unregister('backend-9')).to.equal(true);
    expect(await reg.get('backend-9')).to.equal(null);
    expect((await reg.list()).length).to.equal(299);
    // No other namespace's registry sees them (a part's tag is no namespace's own).
    for (const ns of ['wide#1', 'wide1', 'wide 1']) expect(await make({ namespace: ns }).list(), ns).to.deep.equal([]);
    // cleanupExpired() walks every part: an entry whose keys are gone leaves every index.
    await (redis as Cluster).del(reg.key('backend-10'));
    expect(await reg.cleanupExpired()).to.equal(1);
    expect((await reg.list()).length).to.equal(298);
  });
});
