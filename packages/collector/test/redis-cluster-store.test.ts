import { Cleanup, clusterClient, redisClusterNodes, uniqueName, waitUntil } from '@contexture/test-support';
import { expect } from 'chai';
import { type Cluster, Redis } from 'ioredis';
import { slotOf } from '../src/internal/cluster.js';
import {
  type CollectorError,
  type ContextEvent,
  type ContextStore,
  RedisContextStore,
  type StoreOptions,
} from '../src/store/index.js';
import { storeSuite } from './support/store-suite/index.js';

/** The master (host:port) that serves `key` on the test cluster. */
function masterOf(cluster: Cluster, key: string): string {
  const node = (cluster as unknown as { slots: string[][] }).slots[slotOf(key)]![0]!;
  return node;
}

describe('RedisContextStore on a Redis Cluster (3 masters)', () => {
  let cleanup: Cleanup;
  let prefix: string;
  let cluster: Cluster;

  beforeEach(async () => {
    cleanup = new Cleanup();
    prefix = `${uniqueName('test-cstore')}:`;
    cleanup.clusterKeys(`${prefix}*`);
    cluster = clusterClient();
    cleanup.defer(() => cluster.quit());
    await cluster.ping();
  });
  afterEach(() => cleanup.run());

  storeSuite(async (options?: StoreOptions) => {
    const own = `${prefix}${Math.random().toString(36).slice(2, 8)}:`;
    const s = new RedisContextStore({ redis: cluster, prefix: own, scanCount: 5, ...options });
    cleanup.defer(() => s.close());
    return s as ContextStore;
  });

  describe('cluster specifics', () => {
    it('spreads 300 contexts over all three masters; applyMany, list() and cleanup() reach every one', async () => {
      const s = new RedisContextStore({ redis: cluster, prefix, scanCount: 20 });
      cleanup.defer(() => s.close());
      const ids = Array.from({ length: 300 }, (_, i) => `c${i}`);
      const results = await s.applyMany(
        ids.map((id, i) => ({ message: { obj_id: id, obj: { n: i }, status: 'born' as const, seq: 0 } })),
      );
      expect(results.map((r) => [r.id, r.version, r.changed])).to.deep.equal(ids.map((id) => [id, 1, true]));
      const owners = new Map<string, number>();
      for (const id of ids) {
        const at = masterOf(cluster, `${prefix}ctx:{${id}}`);
        owners.set(at, (owners.get(at) ?? 0) + 1);
      }
      expect([...owners.keys()].sort()).to.deep.equal(redisClusterNodes().sort());
      // Each master holds the keys of its contexts, as Redis itself says.
      for (const node of cluster.nodes('master')) {
        const at = `${node.options.host}:${node.options.port}`;
        const [, keys] = await node.scan('0', 'MATCH', `${prefix}ctx:{*}`, 'COUNT', 10_000);
        expect(keys.length, at).to.equal(owners.get(at));
      }

      const listed: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = await s.list({ limit: 25, cursor });
        for (const item of page.items) listed.push(item.id);
        cursor = page.cursor;
        pages++;
      } while (cursor !== null);
      expect(listed.sort()).to.deep.equal([...ids].sort());
      expect(pages).to.be.greaterThan(3);

      let scanned = 0;
      for (let i = 0; i < 100; i++) {
        const r = await s.cleanup({ limit: 50 });
        scanned += r.scanned;
        if (r.wrapped) break;
      }
      expect(scanned).to.equal(300);
    });

    it('applyMany() sends the contexts of one master in one call, whatever their slots', async () => {
      const s = new RedisContextStore({ redis: cluster, prefix, contextsPerCall: 1000 });
      cleanup.defer(() => s.close());
      const scriptCalls = async (): Promise<number> => {
        let n = 0;
        for (const node of cluster.nodes('master')) {
          const info = await node.info('commandstats');
          for (const cmd of ['evalsha', 'eval'])
            n += Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
        }
        return n;
      };
      const items = (n: number) =>
        Array.from({ length: 300 }, (_, i) => ({
          message: { obj_id: `b${i}`, obj: { n }, seq: n, status: 'born' as const },
        }));
      await s.applyMany(items(0)); // loads the scripts on each master
      // A watcher hears of a change sent in such a call (SPUBLISH from a script of several slots).
      const w = s.watch('b7');
      cleanup.defer(() => w.close());
      await w.ready;
      const before = await scriptCalls();
      const results = await s.applyMany(items(1));
      const heard = await w.next();
      expect(heard.value).to.include({ type: 'change', id: 'b7', version: 2 });
      // Three masters, one call each (the stats' own INFO calls are not scripts).
      expect((await scriptCalls()) - before).to.equal(3);
      expect(results.every((r) => r.version === 2 && r.changed)).to.equal(true);
      expect((await s.get('b7'))?.context).to.deep.equal({ n: 1 });
    });

    it('a call across slots whose master lost one of them applies nothing twice: each slot goes again on its own', async () => {
      await cluster.ping();
      const s = new RedisContextStore({ redis: cluster, prefix });
      cleanup.defer(() => s.close());
      const state = (id: string) => `${prefix}ctx:{${id}}`;
      // Two contexts on two masters; the client is made to believe both are on the first one's.
      const ids = Array.from({ length: 50 }, (_, i) => `x${i}`);
      const a = ids[0]!;
      const b = ids.find((id) => masterOf(cluster, state(id)) !== masterOf(cluster, state(a)))!;
      const slots = (cluster as unknown as { slots: string[][] }).slots;
      slots[slotOf(state(b))] = [masterOf(cluster, state(a))];
      // No seq: applied twice, a message would make a second version.
      const results = await s.applyMany([
        { message: { obj_id: a, obj: { n: 1 }, status: 'born' } },
        { message: { obj_id: b, obj: { n: 2 }, status: 'born' } },
      ]);
      expect(results.map((r) => [r.id, r.version, r.changed])).to.deep.equal([
        [a, 1, true],
        [b, 1, true],
      ]);
      expect((await s.get(a))?.version).to.equal(1);
      expect((await s.get(b))?.context).to.deep.equal({ n: 2 });
    });

    it('a master the client has no connection to: each slot goes on its own (not a configuration error)', async () => {
      await cluster.ping();
      const s = new RedisContextStore({ redis: cluster, prefix });
      cleanup.defer(() => s.close());
      const state = (id: string) => `${prefix}ctx:{${id}}`;
      const ids = Array.from({ length: 50 }, (_, i) => `y${i}`);
      const [a, b] = [ids[0]!, ids.find((id) => slotOf(state(id)) !== slotOf(state(ids[0]!)))!];
      // Both slots said to be a master the client knows no connection to: the cluster client
      // follows Redis's MOVED answers to the real ones.
      const slots = (cluster as unknown as { slots: string[][] }).slots;
      slots[slotOf(state(a))] = ['127.0.0.1:1'];
      slots[slotOf(state(b))] = ['127.0.0.1:1'];
      const results = await s.applyMany([
        { message: { obj_id: a, obj: { n: 1 }, status: 'born', seq: 0 } },
        { message: { obj_id: b, obj: { n: 2 }, status: 'born', seq: 0 } },
      ]);
      expect(results.map((r) => r.version)).to.deep.equal([1, 1]);
    });

    it('list() of a store whose cluster client is still connecting waits for it; cursors name the master', async () => {
      const s = new RedisContextStore({ redis: cluster, prefix });
      cleanup.defer(() => s.close());
      await s.applyMany(
        Array.from({ length: 30 }, (_, i) => ({
          message: { obj_id: `l${i}`, obj: {}, status: 'born' as const, seq: 0 },
        })),
      );
      const fresh = clusterClient();
      cleanup.defer(() => fresh.quit());
      const t = new RedisContextStore({ redis: fresh, prefix, scanCount: 5 });
      cleanup.defer(() => t.close());
      expect(fresh.status).to.not.equal('ready');
      const first = await t.list({ limit: 5 });
      expect(first.cursor).to.match(/^127\.0\.0\.1:\d+\/\d+$/);
      let all = first.items.map((i) => i.id);
      let cursor = first.cursor;
      while (cursor !== null) {
        const page = await t.list({ limit: 5, cursor });
        all = all.concat(page.items.map((i) => i.id));
        cursor = page.cursor;
      }
      // SCAN may give an id again on a later page (a master resized its table between them).
      expect([...new Set(all)].sort()).to.deep.equal(Array.from({ length: 30 }, (_, i) => `l${i}`).sort());
      const gone = (await t.list({ cursor: '127.0.0.1:1/5' }).catch((e: unknown) => e)) as CollectorError;
      expect(gone.code).to.equal('LC_REDIS_UNAVAILABLE');
      expect(gone.message).to.include('names no master of the cluster now');
    });

    it('watch() follows a context by sharded pub/sub on the master that owns it', async () => {
      const s = new RedisContextStore({ redis: cluster, prefix });
      cleanup.defer(() => s.close());
      const w = s.watch('watched');
      cleanup.defer(() => w.close());
      await w.ready;
      // The subscription is a sharded one, on the context's own master.
      const owner = masterOf(cluster, `${prefix}ctx:{watched}`);
      const [host, port] = owner.split(':');
      const direct = new Redis({ host, port: Number(port) });
      cleanup.defer(() => direct.quit());
      const channels = (await direct.call('PUBSUB', 'SHARDCHANNELS', `${prefix}*`)) as string[];
      expect(channels).to.deep.equal([`${prefix}ctx:{watched}:changes`]);

      const events: ContextEvent[] = [];
      void (async () => {
        for await (const e of w) events.push(e);
      })();
      await s.apply({ obj_id: 'watched', obj: { a: 1 }, status: 'born', seq: 0 });
      await s.set('watched', { a: 2 });
      await s.delete('watched');
      await waitUntil(() => events.length === 3, 'three events of the watched context');
      expect(events.map((e) => [e.type, 'version' in e ? e.version : null])).to.deep.equal([
        ['change', 1],
        ['change', 2],
        ['deleted', null],
      ]);
    });

    it('takes the nodes as URLs, makes and closes a Cluster of its own, and names the seeds in errors', async () => {
      const s = new RedisContextStore({ redis: redisClusterNodes().map((n) => `redis://${n}`), prefix });
      expect(s.redis.isCluster).to.equal(true);
      await s.apply({ obj_id: 'u1', obj: { a: 1 }, status: 'born', seq: 0 });
      expect((await s.get('u1'))?.context).to.deep.equal({ a: 1 });
      await s.close();
      expect(s.redis.status).to.equal('end');

      const dead = new RedisContextStore({ redis: ['redis://127.0.0.1:1', '127.0.0.1:2'], prefix });
      const err = (await dead.get('x').catch((e: unknown) => e)) as CollectorError;
      await dead.close();
      expect(err.code).to.equal('LC_REDIS_UNAVAILABLE');
      expect(err.message).to.include('127.0.0.1:1, 127.0.0.1:2 (cluster)');
      expect(() => new RedisContextStore({ redis: ['redis://127.0.0.1:1', 7] as unknown as string[] })).to.throw(
        /cluster node 2 is not a string/,
      );
    });

    it('a client of one node of the cluster is told so (LC_REDIS_CLUSTER_MISMATCH), not retried', async () => {
      const [first] = redisClusterNodes();
      const [host, port] = first!.split(':');
      const one = new Redis({ host, port: Number(port) });
      cleanup.defer(() => one.quit());
      const s = new RedisContextStore({ redis: one, prefix });
      cleanup.defer(() => s.close());
      // An id whose slot another master serves.
      const id = Array.from({ length: 100 }, (_, i) => `m${i}`).find(
        (x) => masterOf(cluster, `${prefix}ctx:{${x}}`) !== first,
      )!;
      const err = (await s
        .apply({ obj_id: id, obj: { a: 1 }, status: 'born', seq: 0 })
        .catch((e) => e)) as CollectorError;
      expect(err.code).to.equal('LC_REDIS_CLUSTER_MISMATCH');
      expect(err.message).to.match(/answered MOVED: this client talks to one node of a Redis Cluster/);
    });
  });
});
