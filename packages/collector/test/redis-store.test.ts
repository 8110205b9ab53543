import { Cleanup, freePort, redisUrl, TempRedis, uniqueName, waitUntil } from '@contexture/test-support';
import { expect } from 'chai';
import { type Cluster, Redis } from 'ioredis';
import { readdirSync, readFileSync } from 'node:fs';
import {
  allContexts,
  type CollectorError,
  type ContextSummary,
  type ListOptions,
  RedisContextStore,
  type ContextStore,
  type RedisContextStoreOptions,
  type StoreOptions,
  type SyncResult,
} from '../src/store/index.js';
import { storeSuite } from './support/store-suite/index.js';
import { redisNow, untilRedisTime } from './support/allocator-helpers.js';
import { proxiedRedis } from './support/proxied-redis.js';
import { expectUnavailable } from './support/unavailable.js';
import { contextStream, copy, shuffledWithDuplicates } from './support/streams.js';

/** Counts the commands named `name` a client sends from now on. */
function countCommands(redis: Redis | Cluster, name: string): { count: number } {
  const counter = { count: 0 };
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
    if (command.name === name) counter.count++;
    return (send as (...args: unknown[]) => unknown)(command, ...rest);
  }) as typeof redis.sendCommand;
  return counter;
}

describe('RedisContextStore', () => {
  let cleanup: Cleanup;
  let prefix: string;
  let client: Redis;

  beforeEach(async () => {
    cleanup = new Cleanup();
    prefix = `${uniqueName('test-store')}:`;
    cleanup.redisKeys(`${prefix}*`);
    client = new Redis(redisUrl());
    cleanup.defer(() => client.quit());
  });
  afterEach(() => cleanup.run());

  /** A store on the test's prefix; a fresh client of its own unless one is given. */
  function store(options: RedisContextStoreOptions = {}): RedisContextStore {
    const s = new RedisContextStore({ redis: redisUrl(), prefix, ...options });
    cleanup.defer(() => s.close());
    return s;
  }

  storeSuite(async (options?: StoreOptions) => {
    // Each store of one test gets its own prefix: the suite makes several stores per test.
    const own = `${prefix}${Math.random().toString(36).slice(2, 8)}:`;
    // A small SCAN COUNT, so list() and cleanup() page for real.
    const s = new RedisContextStore({ redis: client, prefix: own, scanCount: 5, ...options });
    cleanup.defer(() => s.close());
    return s as ContextStore;
  });

  describe('Redis specifics', () => {
    it('allContexts() walks every page of list() and yields each context once, though a page repeats one', async () => {
      const s = store({ scanCount: 5 });
      await s.applyMany(
        Array.from({ length: 40 }, (_, i) => ({
          message: {
            obj_id: `w${i}`,
            obj: { i },
            status: i % 2 === 0 ? ('born' as const) : ('finished' as const),
            seq: i % 2,
          },
        })),
      );
      // SCAN returns an id again on a later page when Redis resized its table between two pages
      // (rare, and not to be forced): here each page also repeats the first row of the page before.
      let before: ContextSummary | undefined;
      let rows = 0;
      const repeating = {
        list: async (options: ListOptions) => {
          const page = await s.list(options);
          const items = before === undefined ? page.items : [before, ...page.items];
          rows += items.length;
          before = page.items[0] ?? before;
          return { ...page, items };
        },
      };
      const ids: string[] = [];
      for await (const row of allContexts(repeating, { pageSize: 3 })) ids.push(row.id);
      // How many pages SCAN makes of 40 contexts varies; some page repeated a row.
      expect(rows).to.be.above(40);
      expect(ids).to.have.length(40);
      expect(ids.slice().sort()).to.deep.equal(Array.from({ length: 40 }, (_, i) => `w${i}`).sort());
      // The filters of list() go through; so does a page size.
      const finished: ContextSummary[] = [];
      for await (const row of allContexts(s, { status: 'finished', pageSize: 7 })) finished.push(row);
      expect(finished.map((r) => r.id).sort()).to.deep.equal(
        Array.from({ length: 20 }, (_, i) => `w${2 * i + 1}`).sort(),
      );
      expect(finished.every((r) => r.status === 'finished')).to.equal(true);
    });

    it('history() gives each version it holds deltas of as the change event watch() gives', async () => {
      const s = store({ deltaThreshold: 2 });
      expect(await s.history('none')).to.equal(null);
      const w = s.watch('h');
      cleanup.defer(() => w.close());
      await w.ready;
      await s.set('h', { a: 1, n: { x: 1 } });
      await s.update('h', { n: { y: 2 } });
      await s.assign('h', { b: 'two' }, ['a']);
      const seen: unknown[] = [];
      for await (const e of w) if (seen.push(e) === 3) break;
      const history = await s.history('h');
      // The threshold trims in steps: the newest versions are there, in order, as watch() saw them.
      expect(history!.length).to.be.at.least(2);
      expect(history).to.deep.equal(seen.slice(3 - history!.length));
      expect(history!.at(-1)).to.deep.include({
        version: 3,
        delta: { a: { action: 'removed', old_value: 1 }, b: { action: 'added', value: 'two' } },
      });
    });

    it('a delta record too deep to read (written by another program) is a reset of its version to a watch, LC_STORE_CORRUPT to history()', async () => {
      const s = store();
      await s.set('dr', { a: 1 });
      const keys = s.keys('dr');
      const path = JSON.stringify(Array.from({ length: 200_000 }, () => 'k'));
      const record = `{"v":2,"t":1000,"c":[{"k":"d","p":${path},"n":1}]}`;
      const w = s.watch('dr');
      cleanup.defer(() => w.close());
      await w.ready;
      await client.publish(keys.channel, record);
      await s.update('dr', { a: 2 });
      expect((await w.next()).value).to.deep.equal({ type: 'reset', id: 'dr', version: 2 });
      expect((await w.next()).value).to.include({ type: 'change', version: 2 });
      await client.rpush(keys.deltas, record);
      expect(await s.history('dr').catch((e: CollectorError) => e)).to.include({ code: 'LC_STORE_CORRUPT' });
    });

    it('refuses options of its own that are unknown or of the wrong type, before making a client', () => {
      const code = (make: () => unknown): string | undefined => {
        try {
          make();
        } catch (err) {
          return (err as CollectorError).code;
        }
        return undefined;
      };
      expect(code(() => new RedisContextStore({ redis: client, prefx: 'a:' } as RedisContextStoreOptions))).to.equal(
        'LC_STORE_INVALID_ARGUMENT',
      );
      expect(
        code(() => new RedisContextStore({ redis: client, publish: 'no' } as unknown as RedisContextStoreOptions)),
      ).to.equal('LC_STORE_INVALID_ARGUMENT');
      expect(code(() => new RedisContextStore(null as unknown as RedisContextStoreOptions))).to.equal(
        'LC_STORE_INVALID_ARGUMENT',
      );
      expect(code(() => new RedisContextStore({ redis: 'redis://127.0.0.1:1', knownContexts: -1 }))).to.equal(
        'LC_STORE_INVALID_ARGUMENT',
      );
    });

    it('fails every call with LC_REDIS_UNAVAILABLE when Redis cannot be reached, saying which call and why, never the password', async () => {
      const port = await freePort();
      const s = store({
        redis: `redis://user:hunter2secret@127.0.0.1:${port}`,
        restoreProvider: () => ({ context: { a: 1 }, version: 3 }),
      });
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['apply to "u"', () => s.apply({ obj_id: 'u', obj: { a: 1 }, seq: 0 })],
        ['get of "u"', () => s.get('u')],
        ['sync of "u"', () => s.sync('u', null)],
        ['write to "u"', () => s.set('u', { a: 1 })],
        ['write to "u"', () => s.assign('u', { a: 1 })],
        ['update of "u"', () => s.update('u', { o: { a: 1 } })],
        ['delete of "u"', () => s.delete('u')],
        ['restore of "u"', () => s.restore('u')],
        ['list', () => s.list()],
        ['cleanup', () => s.cleanup()],
      ];
      await expectUnavailable(calls, port, 'hunter2secret', 'context store ');
      const w = s.watch('u');
      let watchError: unknown;
      await w.ready.catch((err: unknown) => (watchError = err));
      expect((watchError as CollectorError)?.code).to.equal('LC_REDIS_UNAVAILABLE');
      await w.close();
    });

    it('a script Redis refuses for other reasons than the data (an ACL without its channel) is LC_REDIS_UNAVAILABLE, not corrupt', async function () {
      this.timeout(30_000);
      // A server of the test's own: the ACL user is made there.
      const server = new TempRedis();
      await server.start();
      cleanup.defer(() => server.destroy());
      const admin = new Redis(server.url);
      cleanup.defer(() => admin.quit());
      await admin.call('ACL', 'SETUSER', 'nochannels', 'on', '>pw', '~*', '+@all', 'resetchannels');
      const url = new URL(server.url);
      url.username = 'nochannels';
      url.password = 'pw';
      const s = store({ redis: url.toString() });
      const err = await s.set('acl', { a: 1 }).then(
        () => null,
        (e: unknown) => e as CollectorError,
      );
      expect(err?.code, String(err)).to.equal('LC_REDIS_UNAVAILABLE');
      expect(err!.message).to.match(/^context store write to "acl": Redis at 127\.0\.0\.1:\d+ failed: .*publish/i);
      // Without publishing, the same user writes.
      expect((await store({ redis: url.toString(), publish: false }).set('acl', { a: 1 })).changed).to.equal(true);
    });

    it('says LC_STORE_CORRUPT when a key of its layout holds another type', async () => {
      const s = store();
      await client.set(`${prefix}ctx:{foreign}`, 'not a hash');
      for (const call of [
        () => s.get('foreign'),
        () => s.sync('foreign', null),
        () => s.apply({ obj_id: 'foreign', obj: { a: 1 }, seq: 0 }),
        () => s.set('foreign', { a: 1 }),
      ]) {
        let caught: unknown;
        try {
          await call();
        } catch (err) {
          caught = err;
        }
        expect((caught as CollectorError)?.code, String(caught)).to.equal('LC_STORE_CORRUPT');
        expect((caught as CollectorError).message).to.match(
          /^context store \w+ (of|to) "foreign": one of its keys holds another type/,
        );
      }
      expect(await client.get(`${prefix}ctx:{foreign}`)).to.equal('not a hash');
      // A hash of the layout with a field that is not JSON, or not in the store's form at all (the
      // sync and the update are another store's: this one knows the fields it wrote, at a version
      // still current).
      await s.set('odd', { a: 1, b: 2 });
      await client.hset(`${prefix}ctx:{odd}`, '.a', '1:{bad');
      const other = store();
      for (const [name, call] of [
        ['get', () => s.get('odd')],
        ['sync', () => other.sync('odd', null)],
        ['update', () => other.update('odd', { a: { x: 1 } })],
      ] as const) {
        const err = await (call as () => Promise<unknown>)().then(
          () => null,
          (e: unknown) => e,
        );
        expect((err as CollectorError)?.code, `${name}: ${String(err)}`).to.equal('LC_STORE_CORRUPT');
        expect((err as CollectorError).message).to.match(/field "a" of "odd" is not JSON/);
      }
      // A write that replaces the field is done (only the stored text is at fault), and the store
      // whose update failed reads the fields again: its next update merges into the mended value.
      expect((await s.assign('odd', { a: 3 })).changed).to.equal(true);
      expect((await s.get('odd'))!.context).to.deep.equal({ a: 3, b: 2 });
      await client.hset(`${prefix}ctx:{odd}`, '.a', '1:{"y":1}');
      await other.update('odd', { a: { x: 1 } });
      expect((await s.get('odd'))!.context).to.deep.equal({ a: { x: 1, y: 1 }, b: 2 });
      await client.hset(`${prefix}ctx:{odd}`, '.#user', '1:{bad');
      expect(
        (
          await s.get('odd').then(
            () => null,
            (e: unknown) => e as CollectorError,
          )
        )?.message,
      ).to.match(/field "#user" of "odd" is not JSON/);
      await client.hdel(`${prefix}ctx:{odd}`, '.#user');
      await client.hset(`${prefix}ctx:{odd}`, '.b', 'no stamp');
      for (const call of [() => s.apply({ obj_id: 'odd', obj: { b: 5 }, seq: 9 }), () => s.set('odd', { c: 1 })]) {
        const err = await call().then(
          () => null,
          (e: unknown) => e,
        );
        expect((err as CollectorError)?.code, String(err)).to.equal('LC_STORE_CORRUPT');
        expect((err as CollectorError).message).to.match(/script could not read what the keys hold/);
      }
    });

    it('refuses ids and prefixes that would leave the hash tag empty (keys of one context in several slots)', async () => {
      const s = store();
      for (const id of ['}', '}x', '}{x}']) {
        for (const call of [() => s.set(id, { a: 1 }), () => s.get(id), () => s.sync(id, null)]) {
          const err = await call().then(
            () => null,
            (e: CollectorError) => e,
          );
          expect(err?.code, id).to.equal('LC_STORE_INVALID_ARGUMENT');
          expect(err?.message).to.match(/must not start with \}/);
        }
      }
      for (const bad of ['{}', 'x{}:']) {
        expect(() => new RedisContextStore({ redis: client, prefix: bad }), bad)
          .to.throw()
          .with.property('code', 'LC_STORE_INVALID_ARGUMENT');
      }
      // A } further in, or braces that make a tag of their own, keep one slot: taken.
      await s.set('a}b', { a: 1 });
      expect((await s.get('a}b'))!.context).to.deep.equal({ a: 1 });
    });

    it('keeps a context in two keys under the prefix that share the {id} hash tag', async () => {
      const s = store();
      await s.apply({ obj_id: 'a:b{c}', obj: { x: {}, y: [] }, status: 'born', seq: 0 });
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, found] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 100);
        cursor = next;
        keys.push(...found);
      } while (cursor !== '0');
      expect(keys.sort()).to.deep.equal([`${prefix}ctx:{a:b{c}}`, `${prefix}ctx:{a:b{c}}:d`]);
      expect(s.keys('a:b{c}')).to.deep.equal({
        state: `${prefix}ctx:{a:b{c}}`,
        deltas: `${prefix}ctx:{a:b{c}}:d`,
        channel: `${prefix}ctx:{a:b{c}}:changes`,
      });
      // Field values are stored as their JSON text, never re-encoded by Lua's cjson.
      expect(await client.hget(`${prefix}ctx:{a:b{c}}`, '.x')).to.equal('0:{}');
      expect(await client.hget(`${prefix}ctx:{a:b{c}}`, '.y')).to.equal('0:[]');
    });

    it('gives the in-order result when several clients apply one shuffled stream concurrently', async () => {
      const stores = [store(), store(), store()];
      for (let seed = 1; seed <= 5; seed++) {
        const ordered = contextStream(`o${seed}`, seed, 200);
        for (const m of ordered) await stores[0]!.apply(copy(m));
        const shuffled = shuffledWithDuplicates(contextStream(`c${seed}`, seed, 200), seed);
        await Promise.all(shuffled.map((m, i) => stores[i % 3]!.apply(copy(m))));
        const a = await stores[1]!.get(`o${seed}`);
        const b = await stores[2]!.get(`c${seed}`);
        expect(b!.context, `seed ${seed}`).to.deep.equal(a!.context);
        expect(b!.status).to.equal('finished');
        expect(b!.born_at).to.equal(a!.born_at);
      }
    });

    it('bumps the version once per change under concurrent direct updates from two clients', async () => {
      const [a, b] = [store(), store()];
      await a.set('cc', { n: {} });
      await Promise.all(
        Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? a : b).update('cc', { n: { [`k${i}`]: i } })),
      );
      const g = await a.get('cc');
      expect(Object.keys(g!.context.n as object)).to.have.length(100);
      expect(g!.version).to.equal(101);
    });

    it('merges start from the fields a store wrote or read last, and read again when another writer changed them', async () => {
      const [a, b] = [store(), store()];
      const reads = countCommands(a.redis, 'hmget');
      await a.set('kn', { n: { x: 1 }, m: { y: 1 } });
      // a wrote both fields: its merges need no read.
      await a.update('kn', { n: { x: 2 } });
      expect(reads.count).to.equal(0);
      // b changes a field behind a's back (and deletes and recreates another context): a's check
      // fails, it reads the fields and merges again; nothing is lost.
      await b.update('kn', { n: { z: 3 }, m: { y: 2 } });
      await a.update('kn', { n: { w: 4 } });
      expect(reads.count).to.equal(1);
      await b.delete('kn');
      await b.set('kn', { n: { x: 9 } });
      await b.update('kn', { n: { x: 10 } });
      await a.update('kn', { n: { v: 5 } });
      expect(reads.count).to.equal(2);
      expect((await a.get('kn'))!).to.deep.include({ version: 3, context: { n: { x: 10, v: 5 } } });
      // A bus message may change any field: what the store knew of that context is dropped.
      await a.apply({ obj_id: 'kn', obj: { n: { x: 11 } }, seq: 1 });
      await a.update('kn', { n: { u: 6 } });
      expect(reads.count).to.equal(3);
      expect((await a.get('kn'))!.context).to.deep.equal({ n: { x: 11, u: 6 } });
      // A full sync() answer reuses the values the store knows, and notes what it read.
      const full = await a.sync('kn', null);
      expect(full).to.deep.include({ type: 'full', context: { n: { x: 11, u: 6 } } });
      await a.update('kn', { n: { t: 7 } });
      expect(reads.count).to.equal(3);
      // Remembering nothing: every merge reads.
      const none = store({ knownContexts: 0 });
      const noneReads = countCommands(none.redis, 'hmget');
      await none.set('kn0', { n: {} });
      await none.update('kn0', { n: { a: 1 } });
      await none.update('kn0', { n: { b: 2 } });
      expect(noneReads.count).to.equal(2);
      expect((await none.get('kn0'))!.context).to.deep.equal({ n: { a: 1, b: 2 } });
      expect(() => store({ knownContexts: -1 })).to.throw(/knownContexts/);
    });

    it('a full sync() of the version the store knows whole takes the fields from what it knows, the rest from Redis', async () => {
      const [a, b] = [store(), store()];
      const big = 'b'.repeat(100);
      // Made by a bus message (status, routing key, headers, times), then set whole by a.
      await b.apply(
        { obj_id: 'fk', obj: { n: { x: 0 } }, seq: 1, status: 'born', time_in: 1700000000 },
        { rkey: 'r.k', headers: { h: 1 } },
      );
      await a.set('fk', { n: { x: 1 }, big });
      // a answers from what it knows, and that is what a store that knows nothing reads.
      const known = await a.sync('fk', null);
      expect(known).to.deep.equal(await b.sync('fk', null));
      expect(known).to.deep.include({
        version: 2,
        status: 'born',
        rkey: 'r.k',
        headers: { h: 1 },
        born_at: 1700000000,
        context: { n: { x: 1 }, big },
      });
      // Proof it did not read the fields: a field changed behind the store's back, the version
      // unchanged, is not seen by a; a store that knows nothing reads it.
      await client.hset(`${prefix}ctx:{fk}`, '.n', '1:{"x":2}');
      expect((await a.sync('fk', null))!).to.deep.include({ context: { n: { x: 1 }, big } });
      expect((await store().sync('fk', null))!).to.deep.include({ context: { n: { x: 2 }, big } });
      await client.hset(`${prefix}ctx:{fk}`, '.n', '1:{"x":1}');
      // A sync asked with writes: the answer is of the version Redis had, whatever a knows when it comes.
      const [synced] = await Promise.all([
        a.sync('fk', null),
        a.update('fk', { n: { y: 1 } }),
        a.update('fk', { n: { z: 1 } }),
      ]);
      expect(synced).to.deep.include({ version: 2, context: { n: { x: 1 }, big } });
      expect((await a.sync('fk', null))!).to.deep.include({ version: 4, context: { n: { x: 1, y: 1, z: 1 }, big } });
      // Another writer moved it on: a reads the whole hash.
      await b.update('fk', { n: { w: 1 } });
      expect((await a.sync('fk', null))!).to.deep.include({
        version: 5,
        context: { n: { x: 1, y: 1, z: 1, w: 1 }, big },
      });
      // What a knows after a delete and set by b is of another incarnation: read whole.
      await b.delete('fk');
      await b.set('fk', { n: { v: 1 } });
      await b.update('fk', { n: { u: 1 } });
      await b.update('fk', { n: { t: 1 } });
      await b.update('fk', { n: { s: 1 } });
      expect((await a.sync('fk', null))!).to.deep.include({ version: 4, context: { n: { v: 1, u: 1, t: 1, s: 1 } } });
    });

    it('sends merges ready (values stamped, records made) once it knows the stamp and status, and never with a stamp gone stale', async () => {
      const [a, b] = [store(), store()];
      const modes: string[] = [];
      const send = a.redis.sendCommand.bind(a.redis);
      a.redis.sendCommand = ((command: { name: string; args: unknown[] }, ...rest: unknown[]) => {
        if (command.name === 'evalsha' || command.name === 'eval') modes.push(String(command.args[10]));
        return (send as (...args: unknown[]) => unknown)(command, ...rest);
      }) as typeof a.redis.sendCommand;
      // Born on the bus (a status and a stamp), then written by a: the first write learns them.
      await b.apply({ obj_id: 'rd', obj: { n: { x: 1 } }, seq: 3, status: 'born' });
      await a.set('rd', { n: { x: 1 }, m: 1 });
      await a.update('rd', { n: { y: 1 } });
      await Promise.all([a.update('rd', { n: { z: 1 } }), a.update('rd', { n: { y: 2 } })]);
      await a.set('rd', { n: { x: 2 }, m: 2 });
      expect(modes).to.deep.equal(['set', 'rmerge', 'rmerge', 'rmergeorset']);
      // What Redis holds is what write.lua makes itself: the stamp of the highest seq, the records
      // with the status (a watcher reads it there).
      const hash = await client.hgetall(`${prefix}ctx:{rd}`);
      expect(hash['.n']).to.equal('3:{"x":2}');
      expect(hash['.m']).to.equal('3:2');
      const records = (await client.lrange(`${prefix}ctx:{rd}:d`, 0, -1)).map(
        (r) => JSON.parse(r) as { v: number; c: unknown[]; s?: string; t: number },
      );
      expect(records.map((r) => [r.v, r.s, Object.keys(r)])).to.deep.equal(
        [1, 2, 3, 4, 5, 6].map((v) => [v, 'born', ['v', 't', 'c', 's']]),
      );
      expect(records[3]!.c).to.deep.equal([{ k: 'n', p: ['z'], n: 1 }]);
      expect(records[5]!.c).to.deep.equal([
        { k: 'n', p: ['x'], o: 1, n: 2 },
        { k: 'n', p: ['y'], o: 2 },
        { k: 'n', p: ['z'], o: 1 },
        { k: 'm', o: 1, n: 2 },
      ]);
      // A bus message that changes nothing raises the stamp, not the version: a's stamp is stale,
      // and Redis stamps the values of its ready merge anew (in the same call, no conflict).
      expect(await b.apply({ obj_id: 'rd', obj: { n: { x: 2 } }, seq: 10 })).to.deep.include({
        changed: false,
        version: 6,
      });
      modes.length = 0;
      expect(await a.update('rd', { n: { w: 1 } })).to.deep.include({ changed: true, version: 7 });
      expect(modes).to.deep.equal(['rmerge']);
      expect(await client.hget(`${prefix}ctx:{rd}`, '.n')).to.equal('10:{"w":1,"x":2}');
      // So a late message older than that stamp loses to the update.
      await b.apply({ obj_id: 'rd', obj: { n: { late: true } }, seq: 7 });
      expect((await a.get('rd'))!.context).to.deep.equal({ n: { x: 2, w: 1 }, m: 2 });
      // A set() likewise: its record holds the paths that changed, the fields the new stamp.
      await b.apply({ obj_id: 'rd', obj: { m: 2 }, seq: 12 });
      modes.length = 0;
      await a.set('rd', { n: { x: 3, w: 1 }, m: 2 });
      expect(modes).to.deep.equal(['rmergeorset']);
      expect(await client.hget(`${prefix}ctx:{rd}`, '.n')).to.equal('12:{"w":1,"x":3}');
      expect(JSON.parse((await client.lrange(`${prefix}ctx:{rd}:d`, -1, -1))[0]!)).to.deep.include({
        v: 8,
        c: [{ k: 'n', p: ['x'], o: 2, n: 3 }],
        s: 'born',
      });
      // A ready set() whose check fails is written whole, its values read without their stamp.
      await b.assign('rd', { o: 1 });
      await a.set('rd', { n: { v: 1 } });
      expect((await a.get('rd'))!.context).to.deep.equal({ n: { v: 1 } });
      expect(await client.hget(`${prefix}ctx:{rd}`, '.n')).to.equal('12:{"v":1}');
      expect(await client.hget(`${prefix}ctx:{rd}`, '.m')).to.equal('12:');
    });

    it('a set() from what the store knows, gone out of date, is written whole in the same call, in the order asked', async () => {
      const [a, b] = [store(), store()];
      await a.set('stale', { a: 0, gone: 1 });
      // b changes the context behind a's back: a's set() check fails and the call writes it whole.
      await b.assign('stale', { x: 1 });
      const mine: Record<string, unknown> = { y: 2 };
      const done = Promise.all([a.assign('stale', { z: 3 }), a.set('stale', mine), a.assign('stale', { w: 4 })]);
      mine.y = 'changed after set() was called';
      expect((await done).map((r) => r.version)).to.deep.equal([3, 4, 5]);
      expect((await a.get('stale'))!.context).to.deep.equal({ y: 2, w: 4 });
      const d = (await a.sync('stale', 3)) as Extract<SyncResult, { type: 'delta' }>;
      expect(d.delta).to.deep.equal({
        a: { action: 'removed', old_value: 0 },
        gone: { action: 'removed', old_value: 1 },
        x: { action: 'removed', old_value: 1 },
        z: { action: 'removed', old_value: 3 },
        y: { action: 'added', value: 2 },
        w: { action: 'added', value: 4 },
      });
      // What a knows now is what is there: the next set() needs no fallback and records only changes.
      expect(await a.set('stale', { y: 3, w: 4 })).to.deep.include({ changed: true, version: 6 });
      expect(((await a.sync('stale', 5)) as Extract<SyncResult, { type: 'delta' }>).delta).to.deep.equal({
        y: { action: 'modified', old_value: 2, value: 3 },
      });
    });

    it('a merge that finds the context changed by another writer goes again first, and the writes asked after it follow in order', async () => {
      const [a, b] = [store(), store()];
      await a.set('race', { n: { x: 0 } });
      await b.update('race', { n: { y: 1 } });
      const writes = countCommands(a.redis, 'evalsha');
      const got = await Promise.all([
        a.update('race', { n: { x: 1 } }),
        a.assign('race', { z: 1 }),
        a.set('race', { n: { w: 1 }, z: 2 }),
        a.update('race', { n: { v: 1 } }),
      ]);
      expect(got.map((r) => r.version)).to.deep.equal([3, 4, 5, 6]);
      expect((await a.get('race'))!.context).to.deep.equal({ n: { w: 1, v: 1 }, z: 2 });
      // Three calls: the first one's merge failed its check (nothing after it done), the same writes
      // went again, then the last merge.
      expect(writes.count).to.equal(3);
      const d = (await a.sync('race', 2)) as Extract<SyncResult, { type: 'delta' }>;
      expect(d.delta).to.deep.equal({
        n: {
          w: { action: 'added', value: 1 },
          v: { action: 'added', value: 1 },
          x: { action: 'removed', old_value: 0 },
          y: { action: 'removed', old_value: 1 },
        },
        z: { action: 'added', value: 2 },
      });
    });

    it('remembers at most knownContexts contexts, the least recently used going first', async () => {
      const s = store({ knownContexts: 2 });
      const reads = countCommands(s.redis, 'hmget');
      for (const id of ['k1', 'k2', 'k3']) await s.set(id, { n: {} });
      await s.update('k2', { n: { a: 1 } });
      await s.update('k3', { n: { a: 1 } });
      expect(reads.count).to.equal(0);
      await s.update('k1', { n: { a: 1 } });
      expect(reads.count).to.equal(1);
      // k1 came back in place of k2, the least recently used.
      await s.update('k3', { n: { b: 1 } });
      await s.update('k1', { n: { b: 1 } });
      expect(reads.count).to.equal(1);
      await s.update('k2', { n: { b: 1 } });
      expect(reads.count).to.equal(2);
    });

    it('stores values as canonical text: array-index keys ascending, then the other keys sorted, however written', async () => {
      const s = store();
      await s.set('canon', { m: { b: 1, '10': 2, a: { z: 1, '2': 0 }, '9': 3 } });
      const text = '{"9":3,"10":2,"a":{"2":0,"z":1},"b":1}';
      expect(await client.hget(s.keys('canon').state, '.m')).to.equal(`-1:${text}`);
      await s.update('canon', { m: { '0': 0, c: 1, A: 1, a: { '1': 1, k: 1 } } });
      expect(await client.hget(s.keys('canon').state, '.m')).to.equal(
        '-1:{"0":0,"9":3,"10":2,"A":1,"a":{"1":1,"2":0,"k":1,"z":1},"b":1,"c":1}',
      );
      await s.apply({ obj_id: 'canon', obj: { n: { y: 1, x: { '5': 1, '40': 2, d: 1, c: 2 } } }, seq: 0 });
      expect(await client.hget(s.keys('canon').state, '.n')).to.equal('0:{"x":{"5":1,"40":2,"c":2,"d":1},"y":1}');
    });

    it('cleanup() finds contexts written while autoDelete was off (SCAN, no KEYS)', async () => {
      const writer = store();
      for (let i = 0; i < 30; i++) await writer.set(`old${i}`, { i });
      expect(await client.pttl(`${prefix}ctx:{old0}`)).to.equal(-1);
      // The old ones are past contextTtl on Redis's clock (the one their write times are on) when
      // 'fresh' is written; 'fresh' stays 2000 ms short of it however long the cleanup takes.
      const contextTtl = 2_000;
      const cleaner = store({ autoDelete: true, contextTtl });
      await untilRedisTime(client, (await redisNow(client)) + contextTtl + 50);
      await writer.set('fresh', { a: 1 });
      let deleted = 0;
      for (;;) {
        const r = await cleaner.cleanup({ limit: 7 });
        deleted += r.contextsDeleted;
        if (r.wrapped) break;
      }
      expect(deleted).to.equal(30);
      expect(await cleaner.get('fresh')).to.not.equal(null);
      expect(await cleaner.get('old3')).to.equal(null);
    });

    it('trims the deltas list in steps but answers by the exact threshold', async () => {
      const s = store({ deltaThreshold: 8 });
      for (let i = 0; i < 40; i++) await s.set('tr', { i });
      const len = await client.llen(`${prefix}ctx:{tr}:d`);
      expect(len).to.be.within(8, 8 + 2);
      expect((await s.sync('tr', 32))!.type).to.equal('delta');
      expect((await s.sync('tr', 31))!.type).to.equal('full');
      await s.cleanup();
      expect(await client.llen(`${prefix}ctx:{tr}:d`)).to.equal(8);
      expect((await s.sync('tr', 32))!.type).to.equal('delta');
    });

    it('expires the keys of idle contexts by TTL (autoDelete) and the deltas list with deltaTtl', async () => {
      const s = store({ autoDelete: true, contextTtl: 5000, finishedTtl: 1000, deltaTtl: 2000 });
      await s.apply({ obj_id: 'k', obj: { a: 1 }, status: 'born', seq: 0 });
      const open = await client.pttl(`${prefix}ctx:{k}`);
      expect(open).to.be.within(1, 5000);
      expect(await client.pttl(`${prefix}ctx:{k}:d`)).to.be.within(1, 2500);
      await s.apply({ obj_id: 'k', obj: {}, status: 'finished', seq: 1 });
      expect(await client.pttl(`${prefix}ctx:{k}`)).to.be.within(1, 1000);
    });

    it('closes a client it made from a URL, and leaves a given client open', async () => {
      const owned = new RedisContextStore({ redis: redisUrl(), prefix });
      await owned.set('x', { a: 1 });
      const w = owned.watch('x');
      await w.ready;
      await owned.close();
      expect(owned.redis.status).to.be.oneOf(['close', 'end']);
      expect((await w.next()).done).to.equal(true);
      const lent = new RedisContextStore({ redis: client, prefix });
      await lent.get('x');
      await lent.close();
      expect(client.status).to.equal('ready');
    });

    it('unsubscribes when the last watcher of a channel closes', async () => {
      const s = store();
      const channel = s.keys('u').channel;
      const w1 = s.watch('u');
      const w2 = s.watch('u');
      await w1.ready;
      const numsub = async () => Number(((await client.pubsub('NUMSUB', channel)) as [string, number])[1]);
      expect(await numsub()).to.equal(1);
      await s.set('u', { a: 1 });
      for await (const ev of w1) {
        expect(ev.type).to.equal('change');
        break;
      }
      expect(await numsub()).to.equal(1);
      await w2.close();
      await waitUntil(async () => (await numsub()) === 0, 'the unsubscribe', 5000);
    });

    it("a watch whose subscription failed makes way for a new one once Redis is back; a caller's client without an offline queue can watch", async () => {
      // No offline queue: the subscriber connection, made at the first watch(), must not fail before it is up.
      const strict = new Redis(redisUrl(), { enableOfflineQueue: false });
      cleanup.defer(() => strict.disconnect());
      await new Promise((r) => strict.once('ready', r));
      const a = new RedisContextStore({ redis: strict, prefix });
      cleanup.defer(() => a.close());
      const w = a.watch('u');
      cleanup.defer(() => w.close());
      await w.ready;
      await a.set('u', { a: 1 });
      expect((await w.next()).value).to.include({ type: 'change', version: 1 });
      // Redis away when the first watch subscribes: it fails; a watch made once Redis is back works.
      const { proxy, client: through } = await proxiedRedis(cleanup);
      proxy.cut();
      const away = through({ maxRetriesPerRequest: 1 });
      const b = new RedisContextStore({ redis: away, prefix });
      cleanup.defer(() => b.close());
      const failed = b.watch('v');
      cleanup.defer(() => failed.close());
      const err = await failed.ready.then(
        () => null,
        (e: unknown) => e as CollectorError,
      );
      expect(err?.code).to.equal('LC_REDIS_UNAVAILABLE');
      proxy.restore();
      await waitUntil(() => away.status === 'ready', 'the client reconnected');
      const again = b.watch('v');
      cleanup.defer(() => again.close());
      await again.ready;
      await b.set('v', { b: 2 });
      expect((await again.next()).value).to.include({ type: 'change', version: 1 });
    });

    it('contextsPerCall: applyMany() over several script calls gives what one call per context and one call for all give', async () => {
      const ids = Array.from({ length: 7 }, (_, c) => `cpc-${c}`);
      const stream = shuffledWithDuplicates(
        ids.flatMap((id, c) => contextStream(id, 70 + c)),
        7,
      );
      const meta = { rkey: 'app.req', headers: { hostname: 'h' } };
      const states = [];
      for (const contextsPerCall of [1, 3, 100]) {
        const s = store({ prefix: `${prefix}cpc${contextsPerCall}:`, contextsPerCall });
        const results = [];
        for (let i = 0; i < stream.length; i += 40)
          results.push(...(await s.applyMany(stream.slice(i, i + 40).map((m) => ({ message: copy(m), meta })))));
        const got = [];
        for (const id of ids) {
          const g = await s.get(id);
          const { incarnation: _i, ...sync } = (await s.sync(id, 1))!;
          got.push({ version: g!.version, context: g!.context, status: g!.status, sync });
        }
        states.push({ results: results.map((r) => [r.id, r.version, r.changed]), got });
      }
      expect(states[0]!.results.length).to.equal(stream.length);
      expect(states[1]).to.deep.equal(states[0]);
      expect(states[2]).to.deep.equal(states[0]);
      expect(() => store({ contextsPerCall: 0 })).to.throw(/contextsPerCall/);
    });

    it('ships every Lua script under src/lua/<concern>/ with a KEYS / ARGV / Returns header', () => {
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
        files: string[];
      };
      expect(pkg.files).to.include('src/lua/**/*.lua');
      const root = new URL('../../src/lua/', import.meta.url);
      const concerns = readdirSync(root).sort();
      expect(concerns).to.deep.equal(['allocator', 'locks', 'registry', 'store', 'tasks']);
      let count = 0;
      for (const concern of concerns) {
        for (const file of readdirSync(new URL(`${concern}/`, root)).sort()) {
          expect(file, `${concern}/${file}`).to.match(/^[a-z-]+\.lua$/);
          const name = `${concern}/${file.slice(0, -4)}`;
          const text = readFileSync(new URL(`${name}.lua`, root), 'utf8');
          expect(text.startsWith(`--[[\n${name}:`), name).to.equal(true);
          count++;
          // A library holds helpers and the key layout; every script says what it takes and returns.
          if (file === 'lib.lua') continue;
          for (const word of ['KEYS', 'ARGV', 'Returns']) expect(text, `${name} ${word}`).to.include(word);
        }
      }
      expect(count).to.equal(31);
    });
  });
});
