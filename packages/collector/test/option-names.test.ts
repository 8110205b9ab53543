import { expect } from 'chai';
import { Allocator, CollectorError, LockPool, RedisLock, Registry, TaskQueue } from '@contexture/collector';

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
