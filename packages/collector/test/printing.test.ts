import { inspect } from 'node:util';
import { Cleanup, freePort } from '@contexture/test-support';
import { expect } from 'chai';
import {
  Allocator,
  LockPool,
  MemoryContextStore,
  RedisContextStore,
  RedisLock,
  Registry,
  SharedContext,
  TaskQueue,
} from '@contexture/collector';
import { Collector, MetricsServer } from '@contexture/collector/daemon';

const SECRET = 'hunter2secret';

describe('printing the classes shows no secret', () => {
  let cleanup: Cleanup;
  beforeEach(() => {
    cleanup = new Cleanup();
  });
  afterEach(() => cleanup.run());

  /** util.inspect (deep), console.log's form and JSON.stringify of `o`: none holds the password. */
  function printsClean(o: object, name: string, where: string): void {
    const forms = [inspect(o, { depth: 10 }), inspect(o, { depth: 10, showHidden: true }), JSON.stringify(o)];
    for (const text of forms) {
      expect(text, `${name}: ${text.slice(0, 200)}`).to.not.include(SECRET);
      expect(text, name).to.include(where);
    }
    expect(forms[0]!.startsWith(name), forms[0]).to.equal(true);
  }

  for (const kind of ['a URL', 'cluster node URLs'] as const) {
    it(`every class made from ${kind} holding a password prints where Redis is, never the password`, async () => {
      const port = await freePort();
      const redis =
        kind === 'a URL'
          ? `redis://user:${SECRET}@127.0.0.1:${port}`
          : [`redis://user:${SECRET}@127.0.0.1:${port}`, `127.0.0.1:${port + 1}`];
      const where = kind === 'a URL' ? `127.0.0.1:${port}` : `127.0.0.1:${port}, 127.0.0.1:${port + 1} (cluster)`;
      const prefix = 'print-test:';
      const store = new RedisContextStore({ redis, prefix });
      const locks = new RedisLock({ redis, prefix });
      const pool = new LockPool({ locks, pool: 'p' });
      const allocator = new Allocator({ redis, prefix, pool: 'p' });
      const registry = new Registry({ redis, prefix });
      const tasks = new TaskQueue({ redis, prefix });
      const collector = new Collector({ store, url: `amqp://guest:${SECRET}@127.0.0.1:${port}/%2F` });
      for (const c of [store, locks, allocator, registry, tasks]) cleanup.defer(() => c.close());
      printsClean(store, 'RedisContextStore', where);
      printsClean(locks, 'RedisLock', where);
      printsClean(pool, 'LockPool', where);
      printsClean(allocator, 'Allocator', where);
      printsClean(registry, 'Registry', where);
      printsClean(tasks, 'TaskQueue', where);
      printsClean(collector, 'Collector', where);
      expect(inspect(collector)).to.include(`amqp://guest:***@127.0.0.1:${port}/%2F`);
      // The metrics server holds the store's client (its options hold the password) and its health.
      const metrics = await MetricsServer.listen({
        collector,
        redis: store.redis,
        redisAt: where,
        port: 0,
        processMetrics: false,
      });
      cleanup.defer(() => metrics.close());
      printsClean(metrics, 'MetricsServer', metrics.url);
      printsClean(metrics.health, 'LinkHealth', where);
    });
  }

  it('a shared context prints its key and version', async () => {
    const shared = await SharedContext.open('print-test', { store: new MemoryContextStore() });
    cleanup.defer(() => shared.close());
    await shared.transaction({ a: 1 });
    expect(inspect(shared)).to.equal("SharedContext { key: 'print-test', version: 1 }");
    expect(JSON.stringify(shared)).to.equal('{"key":"print-test","version":1}');
  });
});
