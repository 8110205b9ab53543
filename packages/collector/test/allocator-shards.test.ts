import { Cleanup, redisClusterNodes, uniqueName } from '@contexture/test-support';
import { expect } from 'chai';
import type { Cluster, Redis } from 'ioredis';
import { Allocator, type AllocatorOptions } from '../src/allocator/allocator.js';
import { CollectorError } from '../src/internal/errors.js';
import { invariants, snapshot } from './support/allocator-invariants.js';
import { redisNow, untilRedisTime } from './support/allocator-helpers.js';
import { BACKENDS, CLUSTER, keysOn, masterOf, nodeAddress } from './support/backends.js';

/** `count` resource keys (30 of them put at least three in each of 3 shards). */
function resources(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `res-${i}`);
}

for (const backend of BACKENDS)
  describe(`Allocator with a sharded pool (${backend.name})`, () => {
    let cleanup: Cleanup;
    let prefix: string;
    let client: Redis | Cluster;

    beforeEach(() => {
      cleanup = new Cleanup();
      prefix = `${uniqueName('test-alloc-shards')}:`;
      backend.removeKeys(cleanup, `${prefix}*`);
      client = backend.client();
      cleanup.defer(() => client.quit());
    });
    afterEach(async () => cleanup.run());

    function allocator(options: AllocatorOptions = {}): Allocator {
      const a = new Allocator({ redis: client, prefix, pool: 'p', shards: 3, ...options });
      cleanup.defer(() => a.close());
      return a;
    }

    /** Every shard is consistent and holds only its own resources; resolves each shard's resources. */
    async function consistent(a: Allocator): Promise<string[][]> {
      const per: string[][] = [];
      for (const [n, keys] of a.shardKeys.entries()) {
        expect(await invariants(client, keys, a.shared), `shard ${n}`).to.deep.equal([]);
        const own = [...(await snapshot(client, keys)).resources.keys()];
        for (const key of own) expect(a.shardOf(key), key).to.equal(n);
        per.push(own);
      }
      return per;
    }

    /** The shards where a binding of `name` is stored. */
    async function boundIn(a: Allocator, name: string): Promise<number[]> {
      const out: number[] = [];
      for (const [n, keys] of a.shardKeys.entries()) if ((await client.hexists(keys.bindings, name)) === 1) out.push(n);
      return out;
    }

    it('validates the shard count and keeps shard 0 in the layout of an unsharded pool', () => {
      for (const shards of [0, -1, 1.5, 1025, '2'])
        expect(() => allocator({ shards: shards as number }))
          .to.throw(CollectorError, /shards/)
          .with.property('code', 'LC_ALLOC_INVALID_ARGUMENT');
      const one = allocator({ shards: 1 });
      const three = allocator();
      expect(three.shardKeys[0]).to.deep.equal(one.redisKeys);
      expect(three.shardKeys.map((k) => k.resources)).to.deep.equal([
        `${prefix}alloc:{p}:res`,
        `${prefix}alloc:{p\u001f1}:res`,
        `${prefix}alloc:{p\u001f2}:res`,
      ]);
      expect(JSON.stringify(three)).to.include('"shards":3');
    });

    it('allocators of a pool must say the same shards: the first stores its number, another fails its calls', async () => {
      const three = allocator();
      expect(await three.extend(resources(30))).to.equal(30);
      expect(await client.get(`${prefix}alloc:{p}:shards`)).to.equal('3');
      const two = allocator({ shards: 2 });
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['extend', () => two.extend(['x'])],
        ['malloc', () => two.malloc()],
        ['mallocKey', () => two.mallocKey('res-1')],
        ['freeKeys', () => two.freeKeys(['res-1'])],
        ['keys', () => two.keys()],
        ['size', () => two.size()],
        ['stats', () => two.stats()],
        ['bind', () => two.bind('n', 'res-1')],
        ['markUnhealthy', () => two.markUnhealthy('res-1')],
        ['gc', () => two.gc()],
        ['clear', () => two.clear()],
      ];
      for (const [what, call] of calls) {
        let err: unknown;
        await call().catch((e: unknown) => (err = e));
        expect(err, what).to.be.instanceOf(CollectorError);
        expect((err as CollectorError).code, what).to.equal('LC_ALLOC_SHARDS_MISMATCH');
        expect((err as CollectorError).message, what).to.include('pool "p" is spread over 3 shard(s)');
        expect((err as CollectorError).message, what).to.include('this allocator says shards: 2');
      }
      // It changed nothing: the pool is whole, and its own allocators go on.
      expect(await allocator().stats()).to.include({ size: 30, free: 30, held: 0, bindings: 0, unhealthy: 0 });
      expect(await allocator().malloc()).to.not.equal(null);
    });

    it('spreads resources by key over the shards; keys, size, stats and clear cover them all', async () => {
      const a = allocator();
      const all = resources(30);
      expect(await a.extend(all)).to.equal(30);
      expect(await a.extend(all.slice(0, 5))).to.equal(0);
      const per = await consistent(a);
      for (const own of per) expect(own.length, 'every shard holds some').to.be.at.least(3);
      expect(await a.keys()).to.deep.equal([...all].sort());
      expect(await a.size()).to.equal(30);
      expect(await a.stats()).to.deep.equal({ size: 30, free: 30, held: 0, unhealthy: 0, bindings: 0 });
      // a second allocator of the pool (another process) sees the same shards
      const b = allocator({ owner: 'b' });
      expect(await b.keys()).to.deep.equal([...all].sort());
      expect(await a.shrink(['res-1', 'res-2', 'nope'])).to.equal(2);
      expect(await a.clear()).to.equal(28);
      expect(await a.stats()).to.include({ size: 0, free: 0 });
    });

    it('assign() makes the whole pool exactly the list, emptying a shard none of whose keys is listed', async () => {
      const a = allocator();
      await a.extend(resources(30));
      const keep = resources(30).filter((k) => a.shardOf(k) !== 2);
      const r = await a.assign(keep);
      expect(r.added).to.equal(0);
      expect(r.removed).to.equal(30 - keep.length);
      const per = await consistent(a);
      expect(per[2]).to.deep.equal([]);
      expect(await a.keys()).to.deep.equal([...keep].sort());
    });

    it('exclusive: hands out every resource of every shard once, then null; frees across shards', async () => {
      const a = allocator();
      await a.extend(resources(30));
      const held = [];
      for (let i = 0; i < 30; i++) held.push((await a.malloc())!);
      expect(new Set(held.map((h) => h.key)).size).to.equal(30);
      expect(await a.malloc()).to.equal(null);
      expect(await a.stats()).to.include({ free: 0, held: 30 });
      // fences increase per shard
      for (let n = 0; n < 3; n++) {
        const fences = held.filter((h) => a.shardOf(h.key) === n).map((h) => h.fence);
        expect(fences).to.deep.equal([...fences].sort((x, y) => x - y));
      }
      expect(await held[0]!.update(60_000)).to.equal(true);
      expect(await held[0]!.free()).to.equal(true);
      expect(await a.free(held[1]!.key)).to.equal(true);
      expect(await a.freeKeys(held.slice(2, 20).map((h) => h.key))).to.equal(18);
      expect(await a.stats()).to.include({ free: 20, held: 10 });
      expect((await a.mallocKey(held[0]!.key))!.key).to.equal(held[0]!.key);
      expect(await a.mallocKey(held[25]!.key)).to.equal(null);
      await consistent(a);
    });

    it('malloc() turns over the shards, and finds the last free resource whichever shard holds it', async () => {
      const a = allocator();
      await a.extend(resources(30));
      const first = [];
      for (let i = 0; i < 3; i++) first.push((await a.malloc())!);
      expect(first.map((h) => a.shardOf(h.key)).sort()).to.deep.equal([0, 1, 2]);
      for (const h of first) await h.free();
      const last = resources(30).find((k) => a.shardOf(k) === 1)!;
      await a.assign([last]);
      for (let i = 0; i < 3; i++) {
        const b = allocator({ owner: `b${i}` });
        const got = await b.malloc();
        expect(got?.key, `allocator ${i}`).to.equal(last);
        await got!.free();
      }
    });

    it('shared mode hands out resources of every shard and holds nothing', async () => {
      const a = allocator({ shared: true });
      await a.extend(resources(30));
      const seen = new Set<string>();
      for (let i = 0; i < 60; i++) seen.add((await a.malloc())!.key);
      expect(new Set([...seen].map((k) => a.shardOf(k))).size).to.equal(3);
      expect(await a.stats()).to.include({ free: 30, held: 0 });
    });

    it('a name keeps one binding: malloc({ name }) returns to its resource, bind() moves it to another shard', async () => {
      const a = allocator();
      await a.extend(resources(30));
      const first = (await a.malloc({ name: 'w' }))!;
      await first.free();
      for (let i = 0; i < 4; i++) {
        const again = (await a.malloc({ name: 'w' }))!;
        expect(again.key).to.equal(first.key);
        await again.free();
      }
      expect(await boundIn(a, 'w')).to.deep.equal([a.shardOf(first.key)]);
      const elsewhere = resources(30).find((k) => a.shardOf(k) !== a.shardOf(first.key))!;
      expect(await a.bind('w', elsewhere)).to.equal(true);
      expect(await boundIn(a, 'w')).to.deep.equal([a.shardOf(elsewhere)]);
      expect(await a.bindingsFor(first.key)).to.deep.equal([]);
      expect(await a.bindingsFor(elsewhere)).to.deep.equal(['w']);
      expect((await a.malloc({ name: 'w' }))!.key).to.equal(elsewhere);
      // a failed bind (the key is not in the pool) leaves the binding where it was
      expect(await a.bind('w', 'nope')).to.equal(false);
      expect(await boundIn(a, 'w')).to.deep.equal([a.shardOf(elsewhere)]);
      expect(await a.unbind('w')).to.equal(true);
      expect(await a.unbind('w')).to.equal(false);
      expect(await boundIn(a, 'w')).to.deep.equal([]);
      await consistent(a);
    });

    it('when the bound shard has nothing free, a named malloc goes elsewhere and the binding follows', async () => {
      const a = allocator();
      await a.extend(resources(30));
      const first = (await a.malloc({ name: 'w' }))!;
      const home = a.shardOf(first.key);
      // hold everything else in the bound resource's shard
      const rest = resources(30).filter((k) => a.shardOf(k) === home && k !== first.key);
      for (const k of rest) expect(await a.mallocKey(k), k).to.not.equal(null);
      const next = (await a.malloc({ name: 'w' }))!;
      expect(a.shardOf(next.key)).to.not.equal(home);
      expect(await boundIn(a, 'w')).to.deep.equal([a.shardOf(next.key)]);
      // mallocKey with a name moves it back
      await first.free();
      const back = (await a.mallocKey(first.key, { name: 'w' }))!;
      expect(back.key).to.equal(first.key);
      expect(await boundIn(a, 'w')).to.deep.equal([home]);
      await consistent(a);
    });

    it('health marks, checkHealth and gc reach every shard', async () => {
      const a = allocator();
      const all = resources(30);
      await a.extend(all);
      const sick = all.filter((_, i) => i % 5 === 0);
      expect(new Set(sick.map((k) => a.shardOf(k))).size).to.equal(3);
      expect(await a.markUnhealthy(sick, 60_000)).to.equal(sick.length);
      expect(await a.stats()).to.include({ unhealthy: sick.length });
      expect(await a.markHealthy(sick)).to.equal(sick.length);
      const report = await a.checkHealth((k) => !sick.includes(k));
      expect(report.unhealthy).to.deep.equal([...sick].sort());
      expect(report.healthy).to.have.length(30 - sick.length);
      await a.markHealthy(sick);
      // short holds in every shard all come back in one gc
      const held = [];
      for (let i = 0; i < 9; i++) held.push((await a.malloc({ timeout: 20 }))!);
      expect(new Set(held.map((h) => a.shardOf(h.key))).size).to.equal(3);
      await untilRedisTime(client, (await redisNow(client)) + 25);
      expect(await a.gc(100)).to.include({ returned: 9 });
      expect(await a.stats()).to.include({ free: 30, held: 0 });
      await consistent(a);
    });
  });

describe('Allocator on a Redis Cluster: one sharded pool spreads over every master', () => {
  let cleanup: Cleanup;
  let prefix: string;
  let cluster: Cluster;

  beforeEach(async () => {
    cleanup = new Cleanup();
    prefix = `${uniqueName('test-alloc-shard-spread')}:`;
    CLUSTER.removeKeys(cleanup, `${prefix}*`);
    cluster = CLUSTER.client() as Cluster;
    cleanup.defer(() => cluster.quit());
    await cluster.ping();
  });
  afterEach(async () => cleanup.run());

  it('300 resources of one pool of 12 shards land on all three masters and are all allocated', async () => {
    const a = new Allocator({ redis: cluster, prefix, pool: 'wide', shards: 12 });
    cleanup.defer(() => a.close());
    const all = resources(300);
    await a.extend(all);
    const perMaster = new Map<string, number>();
    for (const key of all) {
      const at = masterOf(cluster, a.shardKeys[a.shardOf(key)]!.resources);
      perMaster.set(at, (perMaster.get(at) ?? 0) + 1);
    }
    expect([...perMaster.keys()].sort()).to.deep.equal(redisClusterNodes().sort());
    for (const n of perMaster.values()) expect(n).to.be.at.least(30);
    // Redis itself shows each master holding keys of the pool, each on the master of its slot
    for (const node of cluster.nodes('master')) {
      const at = nodeAddress(node);
      const keys = await keysOn(node, `${prefix}alloc:*`);
      expect(keys.length, at).to.be.greaterThan(0);
      for (const k of keys) expect(masterOf(cluster, k), k).to.equal(at);
    }
    const held = await Promise.all(all.map(() => a.malloc()));
    expect(new Set(held.map((h) => h?.key)).size).to.equal(300);
    expect(await a.malloc()).to.equal(null);
    expect(await a.freeKeys(all)).to.equal(300);
    expect(await a.stats()).to.include({ size: 300, free: 300, held: 0 });
  });
});
