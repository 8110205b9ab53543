/**
 * Step 4 of a message's way out: Context → BoundedBuffer → Publisher → **Transport** → broker.
 * The RabbitMQ transport: a confirm channel publishing to the exchange.
 */
import { EventEmitter } from 'node:events';
import os from 'node:os';
import amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel, Options } from 'amqplib';
import { encodeEntry, messageIdOf, publishTime, unixNow, type Entry } from '../entry.js';
import { APP_ID, CONTENT_TYPE_JSON, CONTENT_TYPE_NDJSON } from '../protocol/message.js';
import type { Grouping, Transport } from './transport.js';
import { AMQP_HEARTBEAT_SECONDS, withAmqpHeartbeat } from '../amqp-url.js';
import { watchSilence } from '../amqp-watchdog.js';
import { AmqpNodes } from '../amqp-nodes.js';
import { ContextError } from '../errors.js';
import { untraced } from '../trace-context.js';

/**
 * The AMQP heartbeat (seconds) the handler asks for unless the URL sets one: the broker then sends
 * something at least every 2.5 s, and a broker silent for twice this (10 s) is taken as lost.
 */
export const HANDLER_AMQP_HEARTBEAT_SECONDS = AMQP_HEARTBEAT_SECONDS;

/** Options of {@link AmqpTransport}. */
export interface AmqpTransportOptions {
  /** The broker's URL, or the URLs of a cluster's nodes (each connect goes to the next in turn). */
  url: string | readonly string[];
  exchange: string;
  exchangeType: 'topic' | 'headers';
  /** Pack messages of one route into one ndjson message. */
  batch: boolean;
  /** Delivery mode 2. */
  persistent: boolean;
  /** Socket connect timeout, ms. */
  connectTimeout: number;
  /** Shown in the broker's management UI. */
  connectionName: string;
}

/**
 * Publishes on a confirm channel to a durable exchange. The socket and the heartbeat timers are
 * unref'ed: an open connection never keeps the program alive on its own. Given several nodes, a
 * failed connect or a lost connection moves on to the next one, so the next connect goes there.
 */
export class AmqpTransport extends EventEmitter implements Transport {
  readonly grouping: Grouping;
  private model: ChannelModel | null = null;
  private channel: ConfirmChannel | null = null;
  private closing = false;
  /** The broker's `max_message_size`, once a channel was closed for a message larger than it. */
  private limit: number | null = null;

  private readonly options: Omit<AmqpTransportOptions, 'url'>;
  /** Not a property: printing the transport (or a handler holding it) must not show the password. */
  readonly #nodes: AmqpNodes;

  constructor(options: AmqpTransportOptions) {
    super();
    const { url, ...rest } = options;
    this.#nodes = new AmqpNodes(typeof url === 'string' ? [url] : url);
    this.options = rest;
    this.grouping = options.batch ? 'route' : 'single';
  }

  /** The broker's `max_message_size` (bytes), once learned; null before. */
  get maxMessageSize(): number | null {
    return this.limit;
  }

  get open(): boolean {
    return this.channel !== null;
  }

  /** `host:port` of the node connected to, or of the one the next connect goes to. */
  get where(): string {
    return this.#nodes.where;
  }

  /** How many nodes the transport takes turns at. */
  get nodes(): number {
    return this.#nodes.size;
  }

  async connect(): Promise<void> {
    this.closing = false;
    try {
      await this.connectTo(this.#nodes.current);
    } catch (err) {
      // The next connect tries the next node.
      this.#nodes.advance();
      throw err;
    }
  }

  private async connectTo(url: string): Promise<void> {
    const model = await amqp.connect(withAmqpHeartbeat(url, HANDLER_AMQP_HEARTBEAT_SECONDS), {
      timeout: this.options.connectTimeout,
      clientProperties: { connection_name: this.options.connectionName },
    } as Options.Connect);
    unrefConnection(model);
    coalesceWrites(model);
    // Errors arrive as 'error' then 'close'; the close is what ends the connection for us, and the
    // error is why (the broker's reason: a deleted exchange, a message too large, a missed heartbeat).
    // Listened to from the start: an 'error' nobody listens to (a channel the broker closes while
    // the exchange is declared) would be thrown into the program.
    let why: Error | undefined;
    model.on('error', (err: unknown) => (why ??= toError(err)));
    let channel: ConfirmChannel;
    try {
      channel = await model.createConfirmChannel();
      channel.on('error', (err: unknown) => (why ??= toError(err)));
      await channel.assertExchange(this.options.exchange, this.options.exchangeType, { durable: true });
    } catch (err) {
      await model.close().catch(() => {});
      throw declareError(err, this.options.exchange, this.options.exchangeType);
    }
    watchSilence(model);
    model.on('blocked', (reason: string) => this.emit('blocked', reason));
    model.on('unblocked', () => this.emit('unblocked'));
    channel.on('drain', () => this.emit('drain'));
    const lost = (err?: Error) => {
      if (this.model !== model) return;
      this.model = null;
      this.channel = null;
      // A node lost: the reconnect goes to the next one (to this one again with a single node).
      if (!this.closing) this.#nodes.advance();
      if (!this.closing) model.close().catch(() => {});
      // A message larger than the broker takes closes the channel: the limit is learned from its
      // reason, so that message and any later one that large are dropped rather than sent again.
      const max = maxSizeOf(why);
      if (max !== null) this.limit = this.limit === null ? max : Math.min(this.limit, max);
      this.emit('close', why ?? err ?? (this.closing ? undefined : new Error('connection closed')));
    };
    model.on('close', lost);
    channel.on('close', () => lost(new Error('channel closed by the broker')));
    this.model = model;
    this.channel = channel;
  }

  send(entries: readonly Entry[], handlerIdJson: string, qlen: number, done: (err?: Error) => void): boolean {
    // The handler's publishing is no part of the program's traces (see untraced).
    return untraced(() => this.publish(entries, handlerIdJson, qlen, done));
  }

  private publish(
    entries: readonly Entry[],
    handlerIdJson: string,
    qlen: number,
    done: (err?: Error) => void,
  ): boolean {
    const channel = this.channel;
    if (channel === null) {
      done(new Error('not connected'));
      return false;
    }
    const first = entries[0]!;
    const route = first.route;
    const now = publishTime();
    if (entries.length === 1) {
      const body = this.checked(Buffer.from(encodeEntry(first, handlerIdJson, now, qlen)));
      return channel.publish(
        this.options.exchange,
        route.rkey,
        body,
        {
          contentType: CONTENT_TYPE_JSON,
          messageId: messageIdOf(first),
          timestamp: Math.floor(first.timeIn),
          appId: APP_ID,
          headers: route.headers,
          persistent: this.options.persistent,
        },
        (err: unknown) => done(err ? toError(err) : undefined),
      );
    }
    let text = '';
    for (let i = 0; i < entries.length; i++) text += `${encodeEntry(entries[i]!, handlerIdJson, now, qlen)}\n`;
    return channel.publish(
      this.options.exchange,
      route.rkey,
      this.checked(Buffer.from(text)),
      {
        contentType: CONTENT_TYPE_NDJSON,
        messageId: `${messageIdOf(first)}+${entries.length - 1}`,
        timestamp: Math.floor(first.timeIn),
        appId: APP_ID,
        headers: route.headers,
        persistent: this.options.persistent,
      },
      (err: unknown) => done(err ? toError(err) : undefined),
    );
  }

  /** `body`, unless the broker is known to refuse a message that large: then throws (`tooLarge`). */
  private checked(body: Buffer): Buffer {
    if (this.limit !== null && body.length > this.limit)
      throw Object.assign(
        new Error(
          `a message of ${body.length} bytes is larger than the broker's max_message_size (${this.limit} bytes)`,
        ),
        { tooLarge: true },
      );
    return body;
  }

  sendControl(rkey: string, body: string, type: string, expiration: number): boolean {
    const channel = this.channel;
    if (channel === null) return false;
    try {
      untraced(() =>
        channel.publish(
          this.options.exchange,
          rkey,
          Buffer.from(body),
          // A heartbeat nobody read within a few intervals is stale: queues drop it by themselves.
          {
            contentType: CONTENT_TYPE_JSON,
            type,
            appId: APP_ID,
            timestamp: Math.floor(unixNow()),
            expiration: String(expiration),
            headers: { hostname: os.hostname() },
          },
          () => {},
        ),
      );
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    const model = this.model;
    if (model === null) return;
    try {
      await this.channel?.waitForConfirms();
    } catch {
      /* the handler already accounts for unconfirmed messages */
    }
    await model.close().catch(() => {});
  }

  destroy(): void {
    this.closing = true;
    // With an error: amqplib hears of a socket's end or error only, not of a plain destroy().
    streamOf(this.model)?.destroy(new Error('connection cut'));
  }
}

type Stream = { destroy(err?: Error): void };

function streamOf(model: ChannelModel | null): Stream | undefined {
  return (model as unknown as { connection?: { stream?: Stream } } | null)?.connection?.stream;
}

/**
 * A refused declaration of the exchange, as the handler reports it. The broker's 406
 * PRECONDITION_FAILED means the exchange exists with another type (or durability): no retry can
 * change that, so the error is permanent (`LC_HANDLER_EXCHANGE_MISMATCH`).
 */
function declareError(err: unknown, exchange: string, type: string): Error {
  if ((err as { code?: unknown } | null)?.code !== 406) return toError(err);
  const reason = String((err as Error).message)
    .replace(/^.*?PRECONDITION_FAILED - /, '')
    .replace(/"$/, '');
  return Object.assign(
    new ContextError(
      'LC_HANDLER_EXCHANGE_MISMATCH',
      `exchange '${exchange}' exists with other arguments than this handler's (a durable ${type} exchange): ${reason}`,
      { cause: err },
    ),
    { permanent: true },
  );
}

/**
 * The broker's `max_message_size` from the reason it closed a channel (406 PRECONDITION_FAILED,
 * `message size N is larger than configured max size M`), or null for any other reason.
 */
function maxSizeOf(err: Error | undefined): number | null {
  const m = /larger than configured max size (\d+)/.exec(String(err?.message ?? ''));
  if (m === null) return null;
  const max = Number(m[1]);
  return Number.isSafeInteger(max) && max > 0 ? max : null;
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * amqplib's muxer writes each frame it has queued to the socket in a loop, one system call per
 * message. Corking the socket around that loop sends them in one `writev` instead: about a fifth
 * less CPU per message, and no added latency (the loop already runs at once). Nothing happens if
 * the client library's shape is not the one known here.
 */
function coalesceWrites(model: ChannelModel): void {
  const conn = (
    model as unknown as {
      connection?: { stream?: { cork?: () => void; uncork?: () => void }; muxer?: { _readIncoming?: () => void } };
    }
  ).connection;
  const socket = conn?.stream;
  const muxer = conn?.muxer;
  const readIncoming = muxer?._readIncoming;
  if (typeof readIncoming !== 'function' || typeof socket?.cork !== 'function' || typeof socket.uncork !== 'function')
    return;
  muxer!._readIncoming = function corked(this: unknown) {
    socket.cork!();
    try {
      readIncoming.call(this);
    } finally {
      socket.uncork!();
    }
  };
}

/** Lets the process exit while a connection is open: the socket and heartbeat timers are unref'ed. */
function unrefConnection(model: ChannelModel): void {
  const conn = (
    model as unknown as {
      connection?: {
        stream?: { unref?: () => void };
        heartbeater?: { sendTimer?: NodeJS.Timeout; recvTimer?: NodeJS.Timeout };
      };
    }
  ).connection;
  conn?.stream?.unref?.();
  conn?.heartbeater?.sendTimer?.unref?.();
  conn?.heartbeater?.recvTimer?.unref?.();
}
