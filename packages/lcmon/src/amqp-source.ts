import amqp from 'amqplib';
import { isUtf8 } from 'node:buffer';
import {
  amqpRefusal,
  hostPort as hostPortOf,
  redactText,
  watchSilence,
  withAmqpHeartbeat,
} from '@contexture/context/internal';
import {
  CONTENT_TYPE_NDJSON,
  decodeBody,
  plainHeaders,
  isMalformed,
  isReservedRkey,
  type Malformed,
  type MessageMeta,
} from '@contexture/context/protocol';
import { LcmonError } from './errors.js';
import type { InputSink } from './input-sink.js';
import type { ResolvedOptions } from './options.js';
import { ReleasedAcks } from './released-acks.js';

/** `host:port` of an AMQP URL, never the credentials. */
const hostPort = (url: string): string => hostPortOf(url, url.startsWith('amqps:') ? 5671 : 5672);

/** What a broker error carries besides its message. */
interface AmqpFailure extends Error {
  code?: number | string;
}

function describeFailure(err: unknown): string {
  const e = err as AmqpFailure;
  const text = redactText(String(e?.message ?? err));
  // Socket errors read best by their code alone (ECONNREFUSED, ENOTFOUND, ...).
  if (typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code)) return e.code;
  return text.split('\n')[0]!;
}

/** The vhost a URL names ('/' when it names none). */
function vhostOf(url: string): string {
  try {
    const path = new URL(url).pathname.slice(1);
    return path === '' ? '/' : decodeURIComponent(path);
  } catch {
    return '?';
  }
}

/** Maps a failure of `connect()` to an {@link LcmonError}: unreachable or refused. */
function connectError(url: string, err: unknown): LcmonError {
  const where = hostPort(url);
  const reason = describeFailure(err);
  const refused = amqpRefusal(reason);
  if (refused === 'login') {
    return new LcmonError('LC_BROKER_REFUSED', `RabbitMQ at ${where} refused the login: ${reason}`, { cause: err });
  }
  if (refused === 'vhost') {
    return new LcmonError(
      'LC_BROKER_REFUSED',
      `RabbitMQ at ${where} refused to open the vhost ${JSON.stringify(vhostOf(url))} for this user (does it exist, and may the user open it?)`,
      { cause: err },
    );
  }
  return new LcmonError('LC_BROKER_UNREACHABLE', `cannot reach RabbitMQ at ${where}: ${reason}`, { cause: err });
}

/**
 * The error of a connect that failed on every node: the one failure itself for a single node; for
 * several, a refusal (the broker answered: login or vhost) wins, else one line naming every node.
 */
function failedNodes(failures: LcmonError[]): LcmonError {
  if (failures.length === 1) return failures[0]!;
  const refused = failures.find((f) => f.code === 'LC_BROKER_REFUSED');
  if (refused !== undefined) return refused;
  const each = failures.map((f) => `${f.message.replace(/^cannot reach RabbitMQ at /, '').replace(/: /, ' (')})`);
  return new LcmonError(
    'LC_BROKER_UNREACHABLE',
    `cannot reach RabbitMQ at any of ${failures.length} nodes: ${each.join(', ')}`,
    {
      cause: failures[0]!.cause,
    },
  );
}

/**
 * A delivery whose acknowledgement waits for what it carried to be out (see
 * {@link AmqpSource.holdDeliveries}).
 */
export interface HeldDelivery {
  readonly msg: amqp.ConsumeMessage;
  /** Holders (open objects) not yet released. */
  holders: number;
  /** Still being handed to the sink. */
  inProgress: boolean;
  /** The sink stopped before all of its messages were handed on: never acknowledged. */
  cut: boolean;
}

/**
 * Consumes from RabbitMQ into an {@link InputSink}: an anonymous exclusive queue bound to the
 * exchange (or an existing queue, checked passively), a prefetch window, and acknowledgements sent
 * in one `multiple` ack per batch once the sink is ready, so a slow reader holds messages on the
 * broker (bounded by the queue's TTL), not in memory. With `noAck` (anonymous queue only) the
 * broker streams without waiting for acks.
 */
export class AmqpSource {
  /** Name of the queue consumed (the broker-generated name of the anonymous queue). */
  readonly queue: string;
  /** The broker, as `host:port`. */
  readonly where: string;
  private consumerTag: string | undefined;
  private lastProcessed: amqp.ConsumeMessage | undefined;
  private lastAckedTag = 0;
  private settleScheduled = false;
  private closing: Promise<void> | undefined;
  private stopped = false;
  private sink: InputSink | undefined;
  private ended!: { resolve: () => void; reject: (err: Error) => void };
  private failure: LcmonError | undefined;
  /** Per-delivery acknowledgement (see {@link holdDeliveries}): called when held deliveries fill the prefetch. */
  private onFull: (() => void) | undefined;
  private heldCount = 0;
  private delivering: HeldDelivery | undefined;
  /** Released deliveries, acknowledged at the next settle. */
  private released: amqp.ConsumeMessage[] = [];
  private readonly releasedAcks = new ReleasedAcks();

  private constructor(
    private readonly conn: amqp.ChannelModel,
    /** The channel consumed on; usable for publishing too. */
    readonly channel: amqp.Channel,
    queue: string,
    where: string,
    private readonly noAck: boolean,
    private readonly maxDepth: number,
    /** Unacknowledged deliveries the broker sends ahead at most. */
    readonly prefetch: number,
  ) {
    this.queue = queue;
    this.where = where;
    this.finished = new Promise<void>((resolve, reject) => {
      this.ended = { resolve, reject };
    });
    // Whoever starts the source awaits `finished`; a failure before that is not unhandled.
    this.finished.catch(() => {});
    const lost = (err?: Error) => {
      if (this.stopped) return;
      const reason = err === undefined ? 'closed by the broker' : describeFailure(err);
      this.fail(
        new LcmonError('LC_BROKER_CONNECTION_LOST', `connection to RabbitMQ at ${where} lost: ${reason}`, {
          cause: err,
        }),
      );
    };
    // The connection's error comes first; the channel's close that follows it carries none.
    let connError: Error | undefined;
    conn.on('error', (err: Error) => (connError ??= err));
    conn.on('close', lost);
    channel.on('error', () => {});
    channel.on('close', () => lost(connError ?? new Error('channel closed')));
  }

  /**
   * Connects (to the first of the nodes that answers, trying each in turn from the one after the
   * last used), declares and binds; throws an {@link LcmonError} naming host and port only.
   */
  static async open(options: ResolvedOptions): Promise<AmqpSource> {
    const nodes = options.nodes;
    let conn: amqp.ChannelModel | undefined;
    let where = nodes.where;
    const failures: LcmonError[] = [];
    for (let i = 0; i < nodes.size && conn === undefined; i++) {
      const url = nodes.current;
      where = nodes.where;
      try {
        // A heartbeat: a broker that stops answering is found out in seconds, not minutes.
        conn = await amqp.connect(withAmqpHeartbeat(url), {
          timeout: options.connectTimeout,
          clientProperties: { connection_name: 'lcmon' },
        });
      } catch (err) {
        failures.push(connectError(url, err));
        nodes.advance();
      }
    }
    if (conn === undefined) throw failedNodes(failures);
    conn.on('error', () => {});
    // amqplib's own check takes two to three heartbeats to give up on a silent broker; this, two
    watchSilence(conn);
    try {
      const channel = await conn.createChannel();
      channel.on('error', () => {});
      let queue: string;
      if (options.queue !== undefined) {
        try {
          queue = (await channel.checkQueue(options.queue)).queue;
        } catch (err) {
          const code = (err as AmqpFailure).code;
          if (code === 404)
            throw new LcmonError('LC_BROKER_NO_QUEUE', `queue "${options.queue}" does not exist on ${where}`, {
              cause: err,
            });
          throw new LcmonError(
            'LC_BROKER_DECLARE_FAILED',
            `cannot use queue "${options.queue}" on ${where}: ${describeFailure(err)}`,
            {
              cause: err,
            },
          );
        }
      } else {
        try {
          await channel.assertExchange(options.exchange, options.exchangeType, { durable: true });
        } catch (err) {
          if ((err as AmqpFailure).code === 406) {
            throw new LcmonError(
              'LC_BROKER_EXCHANGE_MISMATCH',
              `exchange "${options.exchange}" on ${where} exists with another type or durability than lcmon's (durable ${options.exchangeType}): ${describeFailure(err)}`,
              { cause: err },
            );
          }
          throw new LcmonError(
            'LC_BROKER_DECLARE_FAILED',
            `cannot declare exchange "${options.exchange}" on ${where}: ${describeFailure(err)}`,
            { cause: err },
          );
        }
        try {
          const q = await channel.assertQueue('', {
            exclusive: true,
            autoDelete: true,
            durable: false,
            arguments: options.queueArgs,
          });
          queue = q.queue;
          const keys = options.exchangeType === 'headers' ? options.bindingKeys.slice(0, 1) : options.bindingKeys;
          for (const key of keys) await channel.bindQueue(queue, options.exchange, key, options.bindingArgs);
        } catch (err) {
          throw new LcmonError(
            'LC_BROKER_DECLARE_FAILED',
            `cannot declare or bind the queue on ${where}: ${describeFailure(err)}`,
            {
              cause: err,
            },
          );
        }
      }
      await channel.prefetch(options.prefetch);
      return new AmqpSource(conn, channel, queue, where, options.noAck, options.maxDepth, options.prefetch);
    } catch (err) {
      await conn.close().catch(() => {});
      if (err instanceof LcmonError) throw err;
      throw new LcmonError('LC_BROKER_DECLARE_FAILED', `RabbitMQ at ${where}: ${describeFailure(err)}`, { cause: err });
    }
  }

  /**
   * Settles when consuming ends: resolves once {@link close} has run, rejects with
   * `LC_BROKER_CONNECTION_LOST` if the broker or the connection goes away first.
   */
  readonly finished: Promise<void>;

  /**
   * Acknowledges each delivery once nothing holds it, instead of every delivery once handed on
   * (see ReleasedAcks): while the sink handles a delivery, {@link hold} keeps it unacknowledged
   * until as many {@link release} calls. Deliveries held when consuming stops are never
   * acknowledged: the broker gives them out again. `onFull` is called after a delivery whenever
   * the held ones reach the prefetch (the broker then sends no more until some are released).
   * Call before {@link start}; never with `noAck`.
   */
  holdDeliveries(onFull: () => void): void {
    if (!this.noAck) this.onFull = onFull;
  }

  /** Deliveries held now. */
  get held(): number {
    return this.heldCount;
  }

  /** The delivery being handed to the sink, in hold mode; undefined otherwise. */
  get current(): HeldDelivery | undefined {
    return this.delivering;
  }

  /** Keeps `d` (the {@link current} delivery) unacknowledged until a matching {@link release}. */
  hold(d: HeldDelivery): void {
    if (d.holders++ === 0) this.heldCount++;
  }

  /** Lets go of one hold on `d`; the last one queues its acknowledgement. */
  release(d: HeldDelivery): void {
    if (d.holders <= 0) return;
    if (--d.holders > 0) return;
    this.heldCount--;
    if (!d.inProgress && !d.cut) this.queueAck(d.msg);
  }

  private queueAck(msg: amqp.ConsumeMessage): void {
    this.released.push(msg);
    if (!this.settleScheduled && !this.stopped) {
      this.settleScheduled = true;
      setImmediate(this.settle);
    }
  }

  /** Starts consuming into `sink`; resolves once the broker has registered the consumer. */
  async start(sink: InputSink): Promise<void> {
    this.sink = sink;
    if (this.failure !== undefined) throw this.failure;
    try {
      const reply = await this.channel.consume(this.queue, (msg) => this.onDelivery(msg), { noAck: this.noAck });
      this.consumerTag = reply.consumerTag;
    } catch (err) {
      if (this.failure !== undefined) throw this.failure;
      throw new LcmonError(
        'LC_BROKER_DECLARE_FAILED',
        `cannot consume from "${this.queue}" on ${this.where}: ${describeFailure(err)}`,
        {
          cause: err,
        },
      );
    }
  }

  /**
   * Cancels the consumer, acknowledges what was handed on, closes the connection. Messages not yet
   * handed on go back to the queue. Idempotent; every caller gets the same promise.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  /** Drops the connection at once. */
  destroy(): void {
    this.stopped = true;
    void this.conn.close().catch(() => {});
    this.ended.resolve();
  }

  private async doClose(): Promise<void> {
    this.stopped = true;
    try {
      if (this.consumerTag !== undefined) await this.channel.cancel(this.consumerTag);
      this.ackProcessed();
      // Closing the channel first makes sure the ack went out: amqplib may write the connection's
      // close frame ahead of frames still queued on a channel, and the broker drops those.
      await this.channel.close();
    } catch {
      /* the channel or connection is gone already */
    }
    await this.conn.close().catch(() => {});
    this.ended.resolve();
  }

  private fail(err: LcmonError): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.stopped = true;
    this.ended.reject(err);
  }

  private onDelivery(msg: amqp.ConsumeMessage | null): void {
    if (msg === null) {
      this.fail(
        new LcmonError(
          'LC_BROKER_CONNECTION_LOST',
          `the broker at ${this.where} cancelled the consumer (queue "${this.queue}" deleted?)`,
        ),
      );
      return;
    }
    const sink = this.sink!;
    // After the sink has had enough, messages are left unacknowledged: they go back to the queue.
    if (this.stopped || sink.stopped) return;
    if (this.onFull !== undefined) {
      const d: HeldDelivery = { msg, holders: 0, inProgress: true, cut: false };
      this.delivering = d;
      try {
        if (!isReservedRkey(msg.fields.routingKey)) d.cut = !this.deliver(msg, sink);
      } finally {
        this.delivering = undefined;
        d.inProgress = false;
      }
      // A batch cut short goes back whole: some of it is given out again rather than the rest lost.
      if (d.holders === 0 && !d.cut) this.queueAck(msg);
      if (this.heldCount >= this.prefetch) this.onFull();
      return;
    }
    // Heartbeats and the like (reserved routing keys) are the project's own traffic, not data.
    if (!isReservedRkey(msg.fields.routingKey)) this.deliver(msg, sink);
    if (this.noAck) return;
    this.lastProcessed = msg;
    if (!this.settleScheduled) {
      this.settleScheduled = true;
      setImmediate(this.settle);
    }
  }

  /** Hands the messages of a delivery on; false when the sink stopped before the last of them. */
  private deliver(msg: amqp.ConsumeMessage, sink: InputSink): boolean {
    const contentType = msg.properties.contentType as string | undefined;
    const text = msg.content.toString('utf8');
    // Bytes that are not UTF-8 are reported (see decodeBody()), never read as U+FFFD.
    const parts = decodeBody(isUtf8(msg.content) ? text : msg.content, contentType, { maxDepth: this.maxDepth });
    const meta: MessageMeta = {
      rkey: msg.fields.routingKey,
      // Plain values (bytes as text, timestamps as seconds, a `__proto__` table as a key: see plainHeaders()).
      headers: plainHeaders((msg.properties.headers as Record<string, unknown> | undefined) ?? {}),
    };
    if (parts.length === 1) {
      const m = parts[0]!;
      if (isMalformed(m)) sink.malformed(this.described(m), { rkey: meta.rkey });
      else sink.message(m, meta, contentType === CONTENT_TYPE_NDJSON ? undefined : text);
    } else {
      for (let i = 0; i < parts.length; i++) {
        const m = parts[i]!;
        if (isMalformed(m)) sink.malformed(this.described(m), { rkey: meta.rkey });
        else sink.message(m, meta, undefined);
        if (sink.stopped) return i === parts.length - 1;
      }
    }
    return true;
  }

  /** A `too deep` names the limit, as for saved lines. */
  private described(m: Malformed): Malformed {
    if (m.kind !== 'too deep' || m.detail !== undefined || this.maxDepth === 0) return m;
    return { kind: m.kind, detail: `more than ${this.maxDepth} levels` };
  }

  /** Once per batch of deliveries: acknowledge them all in one frame, when the sink keeps up. */
  private readonly settle = (): void => {
    const sink = this.sink!;
    if (this.stopped) {
      this.settleScheduled = false;
      return;
    }
    if (!sink.ready) {
      void sink.whenReady().then(this.settle);
      return;
    }
    this.settleScheduled = false;
    this.ackProcessed();
  };

  private ackProcessed(): void {
    if (this.released.length > 0) {
      const released = this.released;
      this.released = [];
      try {
        this.releasedAcks.ack(this.channel, released);
      } catch {
        // The channel closed under it: the loss is reported by its 'close' handler.
      }
    }
    const last = this.lastProcessed;
    if (last === undefined || last.fields.deliveryTag <= this.lastAckedTag) return;
    this.lastAckedTag = last.fields.deliveryTag;
    try {
      this.channel.ack(last, true);
    } catch {
      // The channel closed under it: the loss is reported by its 'close' handler, not thrown here.
    }
  }
}
