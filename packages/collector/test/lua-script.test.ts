import { expect } from 'chai';
import { Redis } from 'ioredis';
import { TempRedis, waitUntil } from '@contexture/test-support';
import { LuaScript } from '../src/internal/lua-script.js';
import { RedisLock } from '../src/locks/redis-lock.js';
import { Allocator } from '../src/allocator/allocator.js';

describe('LuaScript', function () {
  this.timeout(60_000);
  // a server of the test's own, so that SCRIPT FLUSH touches no one else's scripts
  const server = new TempRedis();
  let redis: Redis;

  before(async () => {
    await server.start();
    redis = new Redis(server.url);
  });
  after(async () => {
    redis?.disconnect();
    await server.destroy();
  });

  it('runs by EVALSHA, and sends the text once when the server does not know the script', async () => {
    const script = new LuaScript<[string, string]>('return {KEYS[1], ARGV[1]}', 1);
    await redis.script('FLUSH');
    const sent: string[] = [];
    const onCommand = (_time: string, args: string[]) => sent.push(String(args[0]).toLowerCase());
    const monitor = await redis.monitor();
    monitor.on('monitor', onCommand);
    expect(await script.run(redis, 'k', 'v')).to.deep.equal(['k', 'v']);
    expect(await script.run(redis, 'k2', 7)).to.deep.equal(['k2', '7']);
    // MONITOR lines come on their own connection: wait until it has shown the PING sent after.
    await redis.ping();
    await waitUntil(() => sent.includes('ping'), 'the monitor to show the PING');
    monitor.disconnect();
    expect(sent.filter((c) => c.startsWith('eval'))).to.deep.equal(['evalsha', 'eval', 'evalsha']);
  });

  it('passes on errors other than NOSCRIPT', async () => {
    const script = new LuaScript<number>("return redis.call('INCR', KEYS[1])", 1);
    await redis.set('not-a-number', 'x');
    let error: unknown;
    await script.run(redis, 'not-a-number').catch((err: unknown) => (error = err));
    expect(String(error)).to.match(/not an integer/);
  });

  it('locks and the allocator keep working after SCRIPT FLUSH', async () => {
    const locks = new RedisLock({ redis, prefix: 'flush:' });
    const pool = new Allocator({ redis, prefix: 'flush:', pool: 'p' });
    await pool.extend(['r1']);
    const h = (await locks.lock('x'))!;
    const a = (await pool.malloc())!;
    await redis.script('FLUSH');
    expect(await h.release()).to.equal(true);
    expect(await a.free()).to.equal(true);
    expect(await locks.lock('x')).to.not.equal(null);
  });
});
