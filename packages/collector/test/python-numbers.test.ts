import { expect } from 'chai';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { amqpUrl, Cleanup, redisUrl, uniqueName, waitUntil } from '@contexture/test-support';
import { RedisContextStore, type SyncResult } from '../src/store/index.js';
import { Collector } from '@contexture/collector/daemon';
import { publishRaw } from './support/bus.js';
import { PYTHON_BODIES, PYTHON_FOLDED, pythonMessages } from './support/store-suite/numbers.js';

/** The JSON text of each field as Redis holds it (after the `<seq>:` of the hash value). */
async function storedTexts(redis: Redis, prefix: string, id: string): Promise<Record<string, string>> {
  const hash = await redis.hgetall(`${prefix}ctx:{${id}}`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(hash)) if (k.startsWith('.')) out[k.slice(1)] = v.slice(v.indexOf(':') + 1);
  return out;
}

/** What the fields of PYTHON_FOLDED are as text: the bare words and every digit, as Python wrote them. */
const FOLDED_TEXTS = {
  ratio: 'Infinity',
  hi: 'Infinity',
  lo: '-Infinity',
  big: '18446744073709551617',
  neg: '-18446744073709551617',
  list: '[NaN,1,12345678901234567890123]',
  deep: '{"x":[{"y":NaN}]}',
  name: '"NaN 18446744073709551616"',
};

describe('the collector and the Redis store keep what the Python contexture writes', function () {
  this.timeout(60_000);
  let cleanup: Cleanup;
  let prefix: string;
  let redis: Redis;
  let store: RedisContextStore;

  beforeEach(() => {
    cleanup = new Cleanup();
    prefix = `${uniqueName('py-num')}:`;
    cleanup.redisKeys(`${prefix}*`);
    redis = new Redis(redisUrl());
    cleanup.defer(() => redis.quit());
    store = new RedisContextStore({ redis: redisUrl(), prefix });
    cleanup.defer(() => store.close());
  });
  afterEach(() => cleanup.run());

  it('the Redis store holds the bare words and the exact digits as text, and its deltas too', async () => {
    for (const m of pythonMessages('direct')) await store.apply(m);
    expect(await storedTexts(redis, prefix, 'direct')).to.deep.equal(FOLDED_TEXTS);
    // The delta records (a list, oldest first) hold the values before and after as text too.
    const deltas = (await redis.lrange(`${prefix}ctx:{direct}:d`, 0, -1)).join('\n');
    expect(deltas).to.contain('"o":18446744073709551616,"n":18446744073709551617');
    expect(deltas).to.contain('"o":NaN,"n":Infinity');
    // A store that reads it afresh (no cache of its own) reads the same values.
    const other = new RedisContextStore({ redis: redisUrl(), prefix });
    cleanup.defer(() => other.close());
    expect((await other.get('direct'))!.context).to.deep.equal(PYTHON_FOLDED);
    const full = (await other.sync('direct', null)) as Extract<SyncResult, { type: 'full' }>;
    expect(full.context).to.deep.equal(PYTHON_FOLDED);
  });

  it('a float beyond 2^53 (Python writes 1e+16) is kept as a number with its exponent, not turned into a BigInt', async () => {
    await store.apply({ obj_id: 'floats', obj: { f: 1e16, g: -1.2345678901234568e18 }, status: 'born', seq: 0 });
    await store.update('floats', { h: { deep: 2 ** 60 } });
    expect(await storedTexts(redis, prefix, 'floats')).to.deep.equal({
      f: '1e+16',
      g: '-1.2345678901234568e+18',
      h: '{"deep":1.152921504606847e+18}',
    });
    const other = new RedisContextStore({ redis: redisUrl(), prefix });
    cleanup.defer(() => other.close());
    expect((await other.get('floats'))!.context).to.deep.equal({
      f: 1e16,
      g: -1.2345678901234568e18,
      h: { deep: 2 ** 60 },
    });
  });

  it('Python bodies published on the broker end in Redis and in sync() exactly, none dead-lettered', async () => {
    const exchange = cleanup.exchange(uniqueName('py-num-x'));
    const queue = cleanup.queue(uniqueName('py-num-q'));
    cleanup.queue(`${queue}.dead`);
    const collector = new Collector({ store, url: amqpUrl(), exchange, queue, logger: null });
    cleanup.defer(() => collector.close());
    await collector.start();
    await publishRaw(
      exchange,
      PYTHON_BODIES.map((b) => ({ body: b.replace('"obj_id": "py"', '"obj_id": "bus"'), rkey: 'py.app' })),
    );
    await waitUntil(() => collector.stats().acked === PYTHON_BODIES.length, 'every delivery acked');
    expect(collector.stats()).to.deep.include({ deadLettered: 0, applied: PYTHON_BODIES.length });
    const got = (await store.get('bus'))!;
    expect(got.context).to.deep.equal(PYTHON_FOLDED);
    expect(got.version).to.equal(2);
    expect(((await store.sync('bus', null)) as Extract<SyncResult, { type: 'full' }>).context).to.deep.equal(
      PYTHON_FOLDED,
    );
    expect(await storedTexts(redis, prefix, 'bus')).to.deep.equal(FOLDED_TEXTS);
    const conn = await amqp.connect(amqpUrl());
    try {
      const ch = await conn.createChannel();
      expect((await ch.checkQueue(`${queue}.dead`)).messageCount).to.equal(0);
    } finally {
      await conn.close();
    }
  });
});
