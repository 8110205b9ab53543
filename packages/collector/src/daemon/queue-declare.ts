/**
 * Declaring the collector's queues so that an existing queue is used as it is: a queue declared
 * earlier with another type (a classic queue, now that quorum is the default, or the reverse) or
 * other arguments (another delivery limit, a TTL) is adopted, said once, instead of the broker's
 * PRECONDITION_FAILED ending the collector.
 */
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { HEARTBEAT_RKEY } from '@contexture/context/protocol';
import type { ResolvedCollectorOptions } from './collector-options.js';
import { CollectorError } from '../internal/errors.js';

/** The queue types the collector declares. */
export type QueueType = 'classic' | 'quorum';

/** What {@link declareQueue} did. */
export interface DeclaredQueue {
  /** The channel to go on with: each refusal closes a channel, so it may be a new one. */
  ch: ConfirmChannel;
  /** The queue's type, as it exists ('classic', 'quorum', or another the broker named, e.g. 'stream'). */
  type: string;
  /** The arguments the queue exists with (as far as they differ from the ones asked for, learnt from the broker). */
  args: Record<string, unknown>;
  /** What differs from what was asked for, in words, or null when nothing does. */
  adapted: string | null;
}

/** The arguments of a queue of `type`: quorum queues carry the delivery limit and where its victims go. */
export function queueArgs(
  type: string,
  deliveryLimit: number,
  deadLetterQueue: string | null,
): Record<string, unknown> {
  if (type !== 'quorum') return type === 'classic' ? {} : { 'x-queue-type': type };
  const args: Record<string, unknown> = { 'x-queue-type': 'quorum' };
  if (deliveryLimit > 0 && deadLetterQueue !== null) {
    args['x-delivery-limit'] = deliveryLimit;
    // The default exchange routes by queue name: a message over the limit goes to the dead-letter queue.
    args['x-dead-letter-exchange'] = '';
    args['x-dead-letter-routing-key'] = deadLetterQueue;
  }
  return args;
}

/**
 * The broker's reply to a declare with other arguments than the queue has: `inequivalent arg
 * 'x-queue-type' for queue 'q' in vhost '/': received the value 'quorum' of type 'longstr' but
 * current is none`. The argument and its current value (undefined for none); null when the text is
 * not of that form.
 */
export function parseInequivalent(message: string): { arg: string; current: unknown } | null {
  const m = /inequivalent arg '([^']+)'.*? but current is (none|the value '([^']*)' of type '([^']+)'|'([^']*)')/.exec(
    message,
  );
  if (m === null) return null;
  const arg = m[1]!;
  if (m[2] === 'none') return { arg, current: undefined };
  if (m[3] !== undefined) {
    const type = m[4]!;
    const text = m[3];
    if (type === 'longstr' || type === 'shortstr') return { arg, current: text };
    const n = Number(text);
    if (Number.isFinite(n)) return { arg, current: n };
    if (type === 'bool') return { arg, current: text === 'true' };
    return null;
  }
  // A number is shown bare: received '5' but current is '2'.
  const n = Number(m[5]);
  return Number.isFinite(n) ? { arg, current: n } : { arg, current: m[5] };
}

/**
 * Declares a durable queue of `type` (with {@link queueArgs}), adopting what an existing queue
 * was declared with: each refusal names one argument and its current value, which is taken over
 * (a type taken over brings that type's own arguments), and the declare is tried again on a new
 * channel. A refusal whose text does not say what the queue has ends in a passive declare: the
 * queue is used as it is. Other failures are thrown.
 */
export async function declareQueue(
  model: ChannelModel,
  ch: ConfirmChannel,
  name: string,
  type: QueueType,
  deliveryLimit: number,
  deadLetterQueue: string | null,
): Promise<DeclaredQueue> {
  let args = queueArgs(type, deliveryLimit, deadLetterQueue);
  const changes: string[] = [];
  // Each round settles one argument; a queue has few, and a loop must not be endless.
  for (let round = 0; round < 12; round++) {
    try {
      await ch.assertQueue(name, { durable: true, arguments: args });
      const actual = typeof args['x-queue-type'] === 'string' ? (args['x-queue-type'] as string) : 'classic';
      return { ch, type: actual, args, adapted: changes.length === 0 ? null : changes.join(', ') };
    } catch (err) {
      if ((err as { code?: unknown }).code !== 406) throw err;
      ch = await model.createConfirmChannel();
      ch.on('error', () => {});
      const said = parseInequivalent(String((err as Error).message));
      if (said === null) {
        await ch.checkQueue(name);
        changes.push(`other arguments (${String((err as Error).message).replace(/^.*PRECONDITION_FAILED - /, '')})`);
        return { ch, type: 'unknown', args: {}, adapted: changes.join(', ') };
      }
      if (said.arg === 'x-queue-type') {
        const current = typeof said.current === 'string' ? said.current : 'classic';
        // Another type brings its own arguments: what was learnt of the others no longer applies.
        changes.length = 0;
        changes.push(`type ${current}`);
        args = queueArgs(current, deliveryLimit, deadLetterQueue);
      } else {
        changes.push(said.current === undefined ? `no ${said.arg}` : `${said.arg} ${JSON.stringify(said.current)}`);
        args = { ...args };
        if (said.current === undefined) delete args[said.arg];
        else args[said.arg] = said.current;
      }
    }
  }
  await ch.checkQueue(name);
  return { ch, type: 'unknown', args: {}, adapted: changes.join(', ') };
}

/** A warning of the set-up, for the logger: its fields and its message. */
export interface TopologyWarning {
  fields: Record<string, unknown>;
  message: string;
}

/**
 * Declares the collector's dead-letter queue, then its queue (whose delivery limit sends messages
 * to the first), each as asked or adopted as it exists. `said`: the queues already warned about;
 * a warning is made once per queue. Returns the channel to go on with, the queue's type and the
 * warnings to log.
 */
export async function declareQueues(
  model: ChannelModel,
  ch: ConfirmChannel,
  o: Pick<ResolvedCollectorOptions, 'queue' | 'deadLetterQueue' | 'queueType' | 'deliveryLimit'>,
  said: Set<string>,
): Promise<{ ch: ConfirmChannel; type: string; warnings: TopologyWarning[] }> {
  const dead = await declareQueue(model, ch, o.deadLetterQueue, o.queueType, 0, null);
  const main = await declareQueue(model, dead.ch, o.queue, o.queueType, o.deliveryLimit, o.deadLetterQueue);
  const warnings: TopologyWarning[] = [];
  for (const [name, d] of [
    [o.queue, main],
    [o.deadLetterQueue, dead],
  ] as const) {
    if (d.adapted === null || said.has(name)) continue;
    said.add(name);
    const limit =
      name === o.queue && d.type !== 'quorum' && o.deliveryLimit > 0
        ? '; it has no delivery limit (quorum queues only): a message that keeps failing is delivered again'
        : '';
    warnings.push({
      fields: { code: 'LC_QUEUE_ADOPTED', queue: name, found: d.adapted, declared: o.queueType },
      message: `queue "${name}" exists with ${d.adapted}, not as this collector declares it (${o.queueType}): used as it is${limit}`,
    });
  }
  return { ch: main.ch, type: main.type, warnings };
}

/**
 * A refusal by the broker of the collector's set-up, as a {@link CollectorError}, or null for any
 * other failure (a connection lost or taken while the queues were set up: worth trying again).
 * The broker refuses by closing the channel with a reply code, which amqplib keeps as a number in
 * `code` (socket errors have a string code): the exchange existing with another type or
 * durability (406 on ExchangeDeclare), the user's permissions (403 `access to … refused for user`),
 * anything else it refuses (a reserved `amq.` name, a queue another connection holds exclusively,
 * 404, 405, 530) as a declare that failed. Configuration, all of them: trying again cannot help.
 */
export function brokerRefusal(
  err: unknown,
  o: Pick<ResolvedCollectorOptions, 'exchange' | 'exchangeType'>,
  where: string,
): CollectorError | null {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'number' || code < 300) return null;
  const message = String((err as Error).message ?? err);
  // The broker's own words, without amqplib's preamble or the reply code's name.
  const said = /with message "(?:[A-Z_]+ - )?(.*)"$/s.exec(message)?.[1] ?? message;
  const cause = { cause: err };
  if (code === 406 && /ExchangeDeclare/.test(message))
    return new CollectorError(
      'LC_BROKER_EXCHANGE_MISMATCH',
      `exchange "${o.exchange}" on ${where} exists with another type or durability than the collector declares (durable ${o.exchangeType}): ${said}`,
      cause,
    );
  if (code === 403 && /\baccess to .* refused for user\b/.test(said))
    return new CollectorError('LC_BROKER_REFUSED', `the broker at ${where} refused access: ${said}`, cause);
  return new CollectorError('LC_BROKER_DECLARE_FAILED', `the broker at ${where} refused the set-up: ${said}`, cause);
}

/**
 * The collector's whole topology on a new connection: the exchange, the queue and its dead-letter
 * queue (see declareQueues()), the bindings (and the heartbeats' when a registry keeps them), and
 * the prefetch. Resolves with the channel to consume on, the queue's type and what to warn of.
 */
export async function setUpTopology(
  model: ChannelModel,
  o: ResolvedCollectorOptions,
  said: Set<string>,
): Promise<{ ch: ConfirmChannel; type: string; warnings: TopologyWarning[] }> {
  const first = await model.createConfirmChannel();
  first.on('error', () => {});
  await first.assertExchange(o.exchange, o.exchangeType, { durable: true });
  const topology = await declareQueues(model, first, o, said);
  const ch = topology.ch;
  for (const key of o.bindings) await ch.bindQueue(o.queue, o.exchange, key, o.bindingArgs);
  if (o.registry !== null && o.exchangeType === 'topic') await ch.bindQueue(o.queue, o.exchange, HEARTBEAT_RKEY);
  await ch.prefetch(o.prefetch);
  return topology;
}
