import amqp from 'amqplib';
import { Collator, type CollatedObject, type WireMessage } from '@contexture/context/protocol';
import { amqpUrl } from '@contexture/test-support';
import { rng } from './streams.js';

/** `contexts` lifecycles of `perContext` messages each (born, updates, deletes, nested values, finished), interleaved. */
export function makeStream(prefix: string, contexts: number, perContext: number, seed = 1): WireMessage[] {
  const rnd = rng(seed);
  const lists: WireMessage[][] = [];
  const t0 = Date.now() / 1000;
  for (let c = 0; c < contexts; c++) {
    const id = `${prefix}-${c}`;
    const list: WireMessage[] = [{ obj_id: id, obj: { n: 0, name: `ctx ${c}` }, status: 'born', seq: 0, time_in: t0 }];
    for (let seq = 1; seq < perContext - 1; seq++) {
      const r = rnd();
      const t = t0 + seq / 1000;
      if (r < 0.1) list.push({ obj_id: id, obj: { [`f${seq % 5}`]: null }, action: 'delete', seq, time_in: t });
      else if (r < 0.2) list.push({ obj_id: id, obj: { nested: { a: seq, b: { c: [seq, 'x'] } } }, seq, time_in: t });
      else list.push({ obj_id: id, obj: { n: seq, [`f${seq % 5}`]: Math.floor(rnd() * 1000) }, seq, time_in: t });
    }
    list.push({
      obj_id: id,
      obj: {},
      status: 'finished',
      elapsed: perContext / 1000,
      seq: perContext - 1,
      time_in: t0 + perContext / 1000,
    });
    lists.push(list);
  }
  const out: WireMessage[] = [];
  for (let i = 0; i < perContext; i++) for (const l of lists) out.push(l[i]!);
  return out;
}

/** The objects the stream folds into, by id (the protocol's own collation, as the reference). */
export function expectedObjects(messages: WireMessage[]): Map<string, CollatedObject> {
  const out = new Map<string, CollatedObject>();
  const c = new Collator({ onObject: (o) => out.set(o.id, o) });
  for (const m of messages) c.add(structuredClone(m));
  c.flush(true);
  return out;
}

/** Publishes raw bodies with a plain amqplib confirm channel. */
export async function publishRaw(
  exchange: string,
  bodies: Array<{ body: Buffer | string; rkey?: string; contentType?: string; headers?: Record<string, unknown> }>,
): Promise<void> {
  const conn = await amqp.connect(amqpUrl());
  try {
    const ch = await conn.createConfirmChannel();
    await ch.assertExchange(exchange, 'topic', { durable: true });
    for (const b of bodies) {
      const ok = ch.publish(exchange, b.rkey ?? 'test.stream', Buffer.isBuffer(b.body) ? b.body : Buffer.from(b.body), {
        contentType: b.contentType ?? 'application/json',
        headers: b.headers,
      });
      if (!ok) await new Promise((r) => ch.once('drain', r));
    }
    await ch.waitForConfirms();
  } finally {
    await conn.close();
  }
}

export function publishMessages(exchange: string, messages: WireMessage[], rkey = 'test.stream'): Promise<void> {
  return publishRaw(
    exchange,
    messages.map((m) => ({ body: JSON.stringify(m), rkey })),
  );
}
