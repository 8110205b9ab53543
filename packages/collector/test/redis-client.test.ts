import { inspect } from 'node:util';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { freePort, redisUrl, uniqueName } from '@contexture/test-support';
import {
  Allocator,
  CollectorError,
  RedisContextStore,
  RedisLock,
  Registry,
  SharedContext,
  TaskQueue,
} from '../src/index.js';
import { unreachable } from '../src/internal/redis-client.js';

/** The local Redis URL with a user and password it does not know. */
function wrongLogin(secret: string): string {
  const url = new URL(redisUrl());
  url.username = 'nobody';
  url.password = secret;
  return url.toString();
}

describe('Redis clients made from a URL (every Redis user)', function () {
  this.timeout(20_000);

  it('a refused login fails each call, and the password shows in no error, however deeply it is printed', async () => {
    const secret = `pw-${uniqueName('s')}`;
    const url = wrongLogin(secret);
    const prefix = `${uniqueName('login')}:`;
    const store = new RedisContextStore({ redis: url, prefix });
    const lock = new RedisLock({ redis: url, prefix });
    const allocator = new Allocator({ redis: url, prefix, pool: 'p' });
    const registry = new Registry({ redis: url, prefix });
    const tasks = new TaskQueue({ redis: url, prefix });
    try {
      const calls: Record<string, () => Promise<unknown>> = {
        'store.get': () => store.get('x'),
        'store.set': () => store.set('x', { a: 1 }),
        'lock.lock': () => lock.lock('n'),
        'allocator.stats': () => allocator.stats(),
        'registry.register': () => registry.register({ id: 'r1', kind: 'test' }),
        'tasks.listeners': () => tasks.listeners('t'),
        'shared.open': () => SharedContext.open(`k-${prefix}`, { redis: url, prefix, openTimeout: 3000 }),
      };
      for (const [name, call] of Object.entries(calls)) {
        const err = await call().then(
          () => null,
          (e: unknown) => e,
        );
        expect(err, name).to.be.instanceOf(Error);
        expect(inspect(err, { depth: 20 }), name).to.not.include(secret);
        expect(String((err as Error).message), name).to.match(
          /WRONGPASS|no connection|did not answer|cannot load|max retries/,
        );
      }
      const wrapped = await store.get('x').then(
        () => null,
        (e: unknown) => e as CollectorError,
      );
      expect(wrapped?.code).to.equal('LC_REDIS_UNAVAILABLE');
    } finally {
      await Promise.all([store.close(), lock.close(), allocator.close(), registry.close(), tasks.close()]);
    }
  });

  it("what counts as Redis out of reach: a login refused by any Redis version, a connection lost or timed out, Redis refusing for now; not a command's own error", () => {
    const at = '127.0.0.1:6379';
    for (const message of [
      'WRONGPASS invalid username-password pair or user is disabled.',
      'ERR invalid password',
      'NOAUTH Authentication required.',
      'Connection is closed.',
      'Command timed out',
      'connect ECONNREFUSED 127.0.0.1:6379',
      'LOADING Redis is loading the dataset in memory',
      "OOM command not allowed when used memory > 'maxmemory'.",
    ]) {
      expect(unreachable(new Error(message), at), message).to.equal(`Redis at ${at} failed: ${message}`);
    }
    for (const message of [
      'WRONGTYPE Operation against a key holding the wrong kind of value',
      'ERR unknown command',
      'NOPERM this user has no permissions to access one of the channels used as arguments',
      'ERR Error running script: invalid password field',
    ]) {
      expect(unreachable(new Error(message), at), message).to.equal(null);
    }
    // A Redis Cluster whose master of a slot is down: ioredis gives up after its redirections, and
    // the message says which master it kept being sent to.
    const seeds = '127.0.0.1:7000, 127.0.0.1:7001 (cluster)';
    const lost = 'Too many Cluster redirections. Last error: ReplyError: MOVED 10104 127.0.0.1:7101';
    expect(unreachable(new Error(lost), seeds)).to.equal(
      `Redis at ${seeds} failed: slot 10104 is served by 127.0.0.1:7101, which did not answer (${lost})`,
    );
    const closed = 'Too many Cluster redirections. Last error: Error: Connection is closed.';
    expect(unreachable(new Error(closed), seeds)).to.equal(`Redis at ${seeds} failed: ${closed}`);
  });

  it('a URL naming a database Redis has not fails each call saying so, and writes nothing in database 0', async () => {
    const url = new URL(redisUrl());
    url.pathname = '/9999';
    const prefix = `${uniqueName('nodb')}:`;
    const store = new RedisContextStore({ redis: url.toString(), prefix });
    const lock = new RedisLock({ redis: url.toString(), prefix });
    const allocator = new Allocator({ redis: url.toString(), prefix, pool: 'p' });
    const check = new Redis(redisUrl());
    try {
      const calls: Record<string, () => Promise<unknown>> = {
        'store.set': () => store.set('x', { a: 1 }),
        'store.get': () => store.get('x'),
        'lock.lock': () => lock.lock('n'),
        'allocator.extend': () => allocator.extend(['k']),
      };
      // Twice: the calls made once the refusal is known fail the same way.
      for (const round of [1, 2]) {
        for (const [name, call] of Object.entries(calls)) {
          const err = await call().then(
            () => null,
            (e: unknown) => e,
          );
          expect(err, `${name} ${round}`).to.be.instanceOf(CollectorError);
          expect((err as CollectorError).code, name).to.equal('LC_REDIS_UNAVAILABLE');
          expect((err as Error).message, name).to.match(/refused to select database 9999/);
        }
      }
      expect(await check.keys(`${prefix}*`)).to.deep.equal([]);
    } finally {
      await Promise.all([store.close(), lock.close(), allocator.close()]);
      await check.del(...(await check.keys(`${prefix}*`)), 'unused-key');
      check.disconnect();
    }
  });

  it('a URL that is not redis:// or rediss://, or does not parse, is refused at once without repeating it', () => {
    const secret = 'pw-never-shown';
    const bad = [
      `http://u:${secret}@127.0.0.1:6379`,
      `u:${secret}@127.0.0.1:6379`,
      `redis://u:${secret}@127.0.0.1:63790x`,
      `redis://u:${secret}@[::1`,
      `//u:${secret}@127.0.0.1:6379`,
      `redis://:${secret}%zz@127.0.0.1:6379`,
    ];
    const makers: Array<[string, (redis: string) => unknown]> = [
      ['store', (redis) => new RedisContextStore({ redis })],
      ['lock', (redis) => new RedisLock({ redis })],
      ['allocator', (redis) => new Allocator({ redis, pool: 'p' })],
      ['registry', (redis) => new Registry({ redis })],
      ['tasks', (redis) => new TaskQueue({ redis })],
    ];
    for (const url of bad) {
      for (const [name, make] of makers) {
        let caught: unknown = null;
        try {
          make(url);
        } catch (err) {
          caught = err;
        }
        expect(caught, `${name} ${url.replace(secret, '…')}`).to.be.instanceOf(CollectorError);
        expect((caught as CollectorError).code, name).to.match(/INVALID_ARGUMENT|LC_TASK_INVALID/);
        expect(inspect(caught, { depth: 20 }), name).to.not.include(secret);
      }
    }
    // The same in a list of cluster nodes: another scheme is refused, naming the node, not the URL.
    for (const list of [
      ['127.0.0.1:7000', `http://u:${secret}@127.0.0.1:7001`],
      [`amqp://u:${secret}@127.0.0.1:7001`],
    ]) {
      for (const [name, make] of makers) {
        let caught: unknown = null;
        try {
          make(list as never);
        } catch (err) {
          caught = err;
        }
        expect(caught, `${name} ${list.length}`).to.be.instanceOf(CollectorError);
        expect((caught as CollectorError).message, name).to.match(
          /cluster node \d is neither a redis:\/\/ or rediss:\/\/ URL nor host:port/,
        );
        expect(inspect(caught, { depth: 20 }), name).to.not.include(secret);
      }
    }
  });
});

describe('errors name where a Sentinel client connects', function () {
  this.timeout(20_000);

  it("a Sentinel client that reaches no sentinel: the error names its sentinels and the master, not ioredis' default host", async () => {
    const [a, b, c] = [await freePort(), await freePort(), await freePort()];
    const prefix = `${uniqueName('sentinel')}:`;
    // No Sentinel listens there: ioredis retries for ever, so only the command's own timeout ends a call.
    const redis = new Redis({
      sentinels: [{ host: '127.0.0.1', port: a }, { host: '::1', port: b }, { port: c }],
      name: 'orders',
      commandTimeout: 300,
      sentinelRetryStrategy: () => 50,
    });
    redis.on('error', () => {});
    const store = new RedisContextStore({ redis, prefix });
    const lock = new RedisLock({ redis, prefix });
    try {
      for (const [what, call] of [
        ['store.get', () => store.get('x')],
        ['lock.lock', () => lock.lock('n')],
      ] as const) {
        const err = (await call().then(
          () => null,
          (e: unknown) => e,
        )) as CollectorError;
        expect(err, what).to.be.instanceOf(CollectorError);
        expect(err.code, what).to.equal('LC_REDIS_UNAVAILABLE');
        expect(err.message, what).to.include(
          `Redis at 127.0.0.1:${a}, [::1]:${b}, localhost:${c} (Sentinel, master 'orders') failed: Command timed out`,
        );
        expect(err.message, what).to.not.match(/(127\.0\.0\.1|localhost):6379\b/);
      }
    } finally {
      await Promise.all([store.close(), lock.close()]);
      redis.disconnect();
    }
  });
});
