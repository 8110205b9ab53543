import { Cleanup, redisUrl, uniqueName } from '@contexture/test-support';
import { expect } from 'chai';
import {
  Allocator,
  CollectorError,
  LockPool,
  MemoryContextStore,
  RedisContextStore,
  RedisLock,
  Registry,
  TaskQueue,
} from '@contexture/collector';

describe('constructor options of the Redis layer: an unknown one is refused, as the stores refuse it', () => {
  // A misspelt option would leave its default in place without a word: a ttl of 30 s, say.
  const cases: Array<[string, () => unknown, string]> = [
    ['RedisLock', () => new RedisLock({ ttll: 500 } as never), 'LC_LOCK_INVALID_ARGUMENT'],
    ['LockPool', () => new LockPool({ pool: 'p', ttll: 500 } as never), 'LC_LOCK_INVALID_ARGUMENT'],
    ['Allocator', () => new Allocator({ timout: 500 } as never), 'LC_ALLOC_INVALID_ARGUMENT'],
    ['Registry', () => new Registry({ heartbeatTimout: 500 } as never), 'LC_REGISTRY_INVALID_ARGUMENT'],
    ['TaskQueue', () => new TaskQueue({ visibilityTimout: 500 } as never), 'LC_TASK_INVALID'],
  ];
  for (const [name, make, code] of cases) {
    it(`${name}: an unknown option is ${code} naming it, before any client is made`, () => {
      let err: unknown;
      try {
        make();
      } catch (e) {
        err = e;
      }
      expect(err, name).to.be.instanceOf(CollectorError);
      expect((err as CollectorError).code).to.equal(code);
      expect((err as CollectorError).message).to.match(
        /unknown option "(ttll|timout|heartbeatTimout|visibilityTimout)"/,
      );
    });
  }

  it('options that are no object are refused', () => {
    for (const make of [
      () => new RedisLock('redis://x' as never),
      () => new Registry([] as never),
      () => new TaskQueue(5 as never),
      () => new Allocator('x' as never),
    ])
      expect(make).to.throw(CollectorError, /options must be an object/);
  });
});

describe('call options of the Redis layer: an unknown one is refused before Redis is asked', () => {
  let cleanup: Cleanup;
  beforeEach(() => {
    cleanup = new Cleanup();
  });
  afterEach(() => cleanup.run());

  it('list(), watch(), cleanup(), lock(), rlock(), acquire(), malloc(), query() and listen() name a misspelt option', async () => {
    const prefix = `${uniqueName('call-options')}:`;
    cleanup.redisKeys(`${prefix}*`);
    const store = new RedisContextStore({ redis: redisUrl(), prefix });
    const memory = new MemoryContextStore();
    const locks = new RedisLock({ redis: redisUrl(), prefix });
    const alloc = new Allocator({ redis: redisUrl(), prefix, pool: 'p' });
    const tasks = new TaskQueue({ redis: redisUrl(), prefix, handler: { t: () => 1 } });
    cleanup.defer(() => Promise.all([store.close(), memory.close(), locks.close(), alloc.close(), tasks.close()]));
    const calls: Array<[string, () => unknown, string, string]> = [
      ['list', () => store.list({ limt: 5 } as never), 'LC_STORE_INVALID_ARGUMENT', 'limt'],
      ['memory list', () => memory.list({ stauts: 'born' } as never), 'LC_STORE_INVALID_ARGUMENT', 'stauts'],
      ['watch', () => store.watch('w', { maxQueu: 5 } as never), 'LC_STORE_INVALID_ARGUMENT', 'maxQueu'],
      ['cleanup', () => store.cleanup({ limits: 5 } as never), 'LC_STORE_INVALID_ARGUMENT', 'limits'],
      ['lock', () => locks.lock('n', { tll: 5 } as never), 'LC_LOCK_INVALID_ARGUMENT', 'tll'],
      ['rlock', () => locks.rlock('n', { onwer: 'x' } as never), 'LC_LOCK_INVALID_ARGUMENT', 'onwer'],
      ['acquire', () => locks.acquire('n', { timout: 5 } as never), 'LC_LOCK_INVALID_ARGUMENT', 'timout'],
      ['malloc', () => alloc.malloc({ timout: 5 } as never), 'LC_ALLOC_INVALID_ARGUMENT', 'timout'],
      ['query', () => tasks.query({ name: 't', polcy: 'local' } as never), 'LC_TASK_INVALID', 'polcy'],
      ['listen', () => tasks.listen(['t'], { concurency: 2 } as never), 'LC_TASK_INVALID', 'concurency'],
    ];
    for (const [what, call, code, name] of calls) {
      let err: unknown;
      try {
        await call();
      } catch (e) {
        err = e;
      }
      expect(err, what).to.be.instanceOf(CollectorError);
      expect((err as CollectorError).code, what).to.equal(code);
      expect((err as CollectorError).message, what).to.include(`unknown option "${name}"`);
    }
    // Nothing was taken or queued by the refused calls.
    expect(await locks.holder('n')).to.equal(null);
    expect(await store.list()).to.deep.equal({ items: [], cursor: null });
  });
});
