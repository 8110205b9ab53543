import amqp from 'amqplib';
import { expect } from 'chai';
import { LcmonError, messages, objects, type MonitorMessage } from '@contexture/lcmon';
import { amqpUrl, Cleanup, uniqueName, waitUntil } from '@contexture/test-support';
import { lifecycle, Publisher, queueExists } from './helpers.js';

const A = lifecycle('qa', { url: '/a', n: 1 }, [{ n: 2 }]);

/** The first `n` messages a stream yields; the stream is closed after. */
async function take(stream: AsyncIterable<MonitorMessage>, n: number): Promise<MonitorMessage[]> {
  const seen: MonitorMessage[] = [];
  for await (const m of stream) if (seen.push(m) === n) break;
  return seen;
}

describe('monitor library: queue, queueArgs and bindingArgs', () => {
  const cleanup = new Cleanup();
  let exchange: string;
  let pub: Publisher;
  afterEach(() => cleanup.run());

  /** An exchange and a queue of the test's own, the queue bound to `key`, and `pub` on them. */
  async function boundQueue(name: string, key: string): Promise<string> {
    exchange = cleanup.exchange(uniqueName(name));
    const queue = cleanup.queue(uniqueName(name));
    pub = await Publisher.open(exchange);
    cleanup.defer(() => pub.close());
    await pub.channel.assertQueue(queue, { durable: false });
    await pub.channel.bindQueue(queue, exchange, key);
    return queue;
  }

  it('queue: an existing queue is consumed as it is (what it already holds first), emptied of what was read, and left in place', async () => {
    // The queue is bound to 'kept' only: it holds what was published there before the monitor ran.
    const queue = await boundQueue('lcmon-q', 'kept');
    await pub.publish(exchange, 'kept', A);
    const stream = messages({ url: amqpUrl(), queue, bindingKeys: ['other'] });
    cleanup.defer(() => stream.close());
    await stream.open();
    expect(stream.queue).to.equal(queue);
    // The monitor neither binds it ('other' is not bound: that message is dropped at the exchange)
    // nor makes a queue of its own: the next message it yields is the next one bound to 'kept'.
    await pub.publish(exchange, 'other', [{ obj_id: 'not-bound', obj: {}, seq: 0 }]);
    await pub.publish(exchange, 'kept', [{ obj_id: 'late', obj: {}, seq: 0 }]);
    const seen = await take(stream, A.length + 1);
    expect(seen.map((m) => [m.rkey, (m.object as { obj_id: string }).obj_id])).to.deep.equal([
      ...A.map(() => ['kept', 'qa']),
      ['kept', 'late'],
    ]);
    expect(await queueExists(queue)).to.equal(true, 'not deleted when the stream closes');
    const conn = await amqp.connect(amqpUrl());
    cleanup.defer(() => conn.close());
    expect((await (await conn.createChannel()).checkQueue(queue)).messageCount).to.equal(0, 'what was read is acked');
    // A queue that does not exist is refused with its code, never created.
    const missing = uniqueName('lcmon-missing');
    let err: unknown;
    await objects({ url: amqpUrl(), queue: missing })
      .open()
      .catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(LcmonError);
    expect(err).to.include({ code: 'LC_BROKER_NO_QUEUE' });
    expect(await queueExists(missing)).to.equal(false);
  });

  it('messages() from a queue: a message is acknowledged once taken; what was not taken goes back to the queue', async () => {
    const queue = await boundQueue('lcmon-qm', '#');
    const body = (n: number) => ({ obj_id: `m${n}`, obj: { n }, seq: 0 });
    await pub.publish(exchange, 'web.qm', [0, 1, 2, 3, 4].map(body));
    const conn = await amqp.connect(amqpUrl());
    cleanup.defer(() => conn.close());
    const ch = await conn.createChannel();
    const depth = async () => (await ch.checkQueue(queue)).messageCount;
    await waitUntil(async () => (await depth()) === 5, 'five messages in the queue');
    const stream = messages({ url: amqpUrl(), queue });
    const seen: string[] = [];
    for await (const m of stream) {
      seen.push((m.object as { obj_id: string }).obj_id);
      // All five are handed to the stream by now; the reader takes two.
      await waitUntil(() => stream.stats().messages === 5, 'the five handed on');
      if (seen.length === 2) break;
    }
    expect(seen).to.deep.equal(['m0', 'm1']);
    await waitUntil(async () => (await depth()) === 3, 'the three not taken back in the queue');
    const again = await take(messages({ url: amqpUrl(), queue }), 3);
    expect(again.map((m) => (m.object as { obj_id: string }).obj_id)).to.deep.equal(['m2', 'm3', 'm4']);
    await waitUntil(async () => (await depth()) === 0, 'the queue emptied');
  });

  it('objects() from a queue: a message is acknowledged once its object is taken; what was not taken goes back to the queue', async () => {
    const queue = await boundQueue('lcmon-qo', '#');
    // Taken (three messages), finished but not taken (three), never finished (one), and a late
    // duplicate of the first (nothing to wait for).
    const taken = lifecycle('taken', { n: 1 }, [{ n: 2 }]);
    const left = lifecycle('left', { n: 1 }, [{ n: 2 }]);
    const open = lifecycle('open', { n: 1 }, []).slice(0, 1);
    await pub.publish(exchange, 'web.qo', [...taken, ...left, ...open, taken[1]!]);
    const conn = await amqp.connect(amqpUrl());
    cleanup.defer(() => conn.close());
    const ch = await conn.createChannel();
    const depth = async () => (await ch.checkQueue(queue)).messageCount;
    expect(await depth()).to.equal(8);

    const stream = objects({ url: amqpUrl(), queue, verbose: true });
    const seen: string[] = [];
    for await (const o of stream) {
      seen.push(o.id);
      // Both finished objects are given out by now (the reader takes them one by one).
      await waitUntil(() => stream.stats().objects === 2 && stream.stats().duplicates === 1, 'all read');
      break;
    }
    expect(seen).to.deep.equal(['taken']);
    // The three messages of the object taken and the duplicate are acknowledged; the four of the
    // object given out but not taken and of the open one are back in the queue.
    await waitUntil(async () => (await depth()) === 4, 'four messages back in the queue');
    const again = await take(messages({ url: amqpUrl(), queue }), 4);
    expect(again.map((m) => (m.object as { obj_id: string }).obj_id).sort()).to.deep.equal([
      'left',
      'left',
      'left',
      'open',
    ]);
  });

  it('objects() from a queue: deliveries let go of out of order are acknowledged exactly, before and after a held one', async () => {
    const queue = await boundQueue('lcmon-qr', '#');
    // a opens first and finishes after b and c; d never finishes; e comes after it. Taken in the
    // order they finish (b, c, a, e): b's and c's deliveries are let go of while a's first ones
    // are held, a's release then frees the run up to d's, and e's come after d's, held to the end.
    const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e'].map((id) => lifecycle(id, { n: 1 }, [{ n: 2 }]));
    await pub.publish(exchange, 'web.qr', [a![0]!, a![1]!, ...b!, ...c!, a![2]!, d![0]!, ...e!]);
    const conn = await amqp.connect(amqpUrl());
    cleanup.defer(() => conn.close());
    const ch = await conn.createChannel();
    const depth = async () => (await ch.checkQueue(queue)).messageCount;
    expect(await depth()).to.equal(13);
    const stream = objects({ url: amqpUrl(), queue, verbose: true });
    const seen: string[] = [];
    for await (const o of stream) if (seen.push(o.id) === 4) break;
    expect(seen).to.deep.equal(['b', 'c', 'a', 'e']);
    // Only d's one message was not acknowledged: it is back in the queue, alone.
    await waitUntil(async () => (await depth()) === 1, 'one message back in the queue');
    const again = await take(messages({ url: amqpUrl(), queue }), 1);
    expect(
      again.map((m) => [(m.object as { obj_id: string }).obj_id, (m.object as { seq: number }).seq]),
    ).to.deep.equal([['d', 0]]);
    expect(await depth()).to.equal(0);
  });

  it('objects() from a queue: open objects that hold the whole prefetch are forced out (counted), so consuming goes on', async () => {
    const queue = await boundQueue('lcmon-qf', '#');
    // Three objects that never finish, then one of three messages: with a prefetch of 3 it can
    // only come once the others let their deliveries go.
    const never = ['o1', 'o2', 'o3'].map((id) => lifecycle(id, { n: 1 }, [])[0]!);
    await pub.publish(exchange, 'web.qf', [...never, ...lifecycle('done', { n: 1 }, [{ n: 2 }])]);
    const stream = objects({ url: amqpUrl(), queue, prefetch: 3, verbose: true });
    const seen: string[] = [];
    for await (const o of stream) {
      seen.push(o.id);
      break;
    }
    expect(seen).to.deep.equal(['done']);
    expect(stream.stats()).to.include({ forced: 3, objects: 1 });
    const conn = await amqp.connect(amqpUrl());
    cleanup.defer(() => conn.close());
    // Forced out (dropped) and taken: every message acknowledged.
    const ch = await conn.createChannel();
    await waitUntil(async () => (await ch.checkQueue(queue)).messageCount === 0, 'the queue emptied');
  });

  it('queueArgs: the anonymous queue is declared with them (x-max-length drops the oldest ready messages)', async () => {
    exchange = cleanup.exchange(uniqueName('lcmon-qa'));
    pub = await Publisher.open(exchange);
    cleanup.defer(() => pub.close());
    const body = (n: number) => ({ obj_id: `m${n}`, obj: { n }, seq: 0 });
    // Five messages reach the queue while the reader takes none (prefetch 1: at most one is out of
    // the queue); the broker has enqueued them all when it confirms the publish.
    const readAfterFive = async (options: Parameters<typeof messages>[0]) => {
      const stream = messages({ url: amqpUrl(), exchange, prefetch: 1, ...options });
      cleanup.defer(() => stream.close());
      await stream.open();
      await pub.publish(exchange, 'web.qa', [0, 1, 2, 3, 4].map(body));
      const ids: string[] = [];
      for await (const m of stream) {
        ids.push((m.object as { obj_id: string }).obj_id);
        if (ids.at(-1) === 'm4') break;
      }
      return ids;
    };
    expect(await readAfterFive({})).to.deep.equal(['m0', 'm1', 'm2', 'm3', 'm4'], 'the default keeps them all');
    const limited = await readAfterFive({ queueArgs: { 'x-max-length': 2 } });
    // m3 and m4 kept; m0 only when it had left the queue (delivered) before the others came.
    expect(limited.filter((id) => id !== 'm0')).to.deep.equal(['m3', 'm4']);
  });

  it('bindingArgs: a headers exchange, bound with those arguments; a message they do not match is never delivered', async () => {
    exchange = cleanup.exchange(uniqueName('lcmon-hx'));
    pub = await Publisher.open(exchange, 'headers');
    cleanup.defer(() => pub.close());
    const stream = messages({ url: amqpUrl(), exchange, bindingArgs: { 'x-match': 'all', app: 'web', tier: 2 } });
    cleanup.defer(() => stream.close());
    await stream.open();
    // Published in this order on one channel: had the first two been routed, they would come first.
    await pub.publish(exchange, 'x', [{ obj_id: 'api', obj: {}, seq: 0 }], { headers: { app: 'api', tier: 2 } });
    await pub.publish(exchange, 'x', [{ obj_id: 'half', obj: {}, seq: 0 }], { headers: { app: 'web' } });
    await pub.publish(exchange, 'x', [{ obj_id: 'web', obj: {}, seq: 0 }], { headers: { app: 'web', tier: 2 } });
    const [first] = await take(stream, 1);
    expect(first!.object).to.deep.include({ obj_id: 'web' });
    expect(first!.headers).to.deep.equal({ app: 'web', tier: 2 });
  });
});
