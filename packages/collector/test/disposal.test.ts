/**
 * `await using` on each public class of the package: leaving the block closes it (or, for an
 * Allocation, frees it), as close() would.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { amqpUrl, Cleanup, redisUrl, uniqueName } from '@contexture/test-support';
import {
  Allocator,
  CollectorError,
  MemoryContextStore,
  RedisContextStore,
  RedisLock,
  Registry,
  SharedContext,
  TaskQueue,
} from '@contexture/collector';
import { Collector } from '@contexture/collector/daemon';

const code = async (p: Promise<unknown>): Promise<string | undefined> => {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(CollectorError);
    return (err as CollectorError).code;
  }
  throw new Error('expected a rejection');
};

describe('await using: the public classes close when their block ends', function () {
  this.timeout(60_000);
  let cleanup: Cleanup;
  let prefix: string;
  let redis: Redis;

  beforeEach(() => {
    cleanup = new Cleanup();
    prefix = `${uniqueName('dispose')}:`;
    cleanup.redisKeys(`${prefix}*`);
    redis = new Redis(redisUrl());
    cleanup.defer(() => redis.quit());
  });
  afterEach(() => cleanup.run());

  it('RedisLock, Registry, TaskQueue and the stores: closed, the clients they made ended', async () => {
    let lock!: RedisLock;
    let registry!: Registry;
    let tasks!: TaskQueue;
    let store!: RedisContextStore;
    let memory!: MemoryContextStore;
    {
      await using l = new RedisLock({ redis: redisUrl(), prefix });
      await using r = new Registry({ redis: redisUrl(), prefix });
      await using t = new TaskQueue({ redis: redisUrl(), prefix, handler: () => 1 });
      await using s = new RedisContextStore({ redis: redisUrl(), prefix });
      await using m = new MemoryContextStore();
      [lock, registry, tasks, store, memory] = [l, r, t, s, m];
      expect(await l.lock('x')).to.not.equal(null);
      await r.register({ id: 'me' });
      expect(await t.query({ name: 'job', policy: 'local' })).to.equal(1);
      await s.set('c', { a: 1 });
      await m.set('c', { a: 1 });
    }
    expect(lock.redis.status).to.equal('end');
    expect(await code(registry.list())).to.equal('LC_REGISTRY_CLOSED');
    expect(await code(tasks.query({ name: 'job', policy: 'local' }))).to.equal('LC_TASK_CLOSED');
    expect(store.redis.status).to.equal('end');
    expect(await code(store.get('c'))).to.equal('LC_STORE_CLOSED');
    expect(await code(memory.get('c'))).to.equal('LC_STORE_CLOSED');
  });

  it('SharedContext is closed; an Allocation is freed (its resource free for the next malloc)', async () => {
    let shared!: SharedContext;
    {
      await using s = await SharedContext.open('room', { redis: redisUrl(), prefix });
      shared = s;
      await s.update('a', 1);
    }
    expect(await code(shared.update('a', 2))).to.equal('LC_SHARED_CLOSED');
    const allocator = new Allocator({ redis: redisUrl(), prefix, pool: 'p' });
    cleanup.defer(() => allocator.close());
    await allocator.extend(['only']);
    {
      await using held = (await allocator.malloc())!;
      expect(held.key).to.equal('only');
      expect(await allocator.malloc()).to.equal(null, 'the one resource is held');
    }
    const again = await allocator.malloc();
    expect(again?.key).to.equal('only', 'freed when the block ended');
    await again!.free();
  });

  it('Collector: stopped and closed', async () => {
    const exchange = cleanup.exchange(uniqueName('dispose-x'));
    const queue = cleanup.queue(uniqueName('dispose-q'));
    cleanup.queue(`${queue}.dead`);
    const store = new RedisContextStore({ redis: redisUrl(), prefix });
    cleanup.defer(() => store.close());
    let collector!: Collector;
    {
      await using c = new Collector({ store, url: amqpUrl(), exchange, queue, queueType: 'classic', logger: null });
      collector = c;
      await c.start();
      expect(c.stats().status).to.equal('consuming');
    }
    expect(collector.stats().status).to.equal('closed');
  });
});
