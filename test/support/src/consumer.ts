import amqp from 'amqplib';
import { amqpUrl } from './services.js';

/** A message as a plain amqplib consumer saw it. */
export interface Received {
  routingKey: string;
  properties: amqp.MessageProperties;
  body: Buffer;
  /** `body` parsed as JSON when the content type is JSON, else undefined. */
  json?: any;
}

/**
 * A plain amqplib consumer on its own exclusive queue bound to an exchange, used by the tests as the
 * independent witness of what reached the broker.
 */
export class TestConsumer {
  readonly received: Received[] = [];
  /** Messages on the project's reserved routing keys (`contexture.*`: heartbeats), kept apart from `received`. */
  readonly reserved: Received[] = [];
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  private constructor(
    private readonly conn: amqp.ChannelModel,
    readonly channel: amqp.Channel,
    readonly queue: string,
  ) {}

  /**
   * Declares `exchange` (durable, of `type`) and binds a fresh exclusive queue to it.
   * For a headers exchange, `binding` is the arguments table.
   */
  static async start(options: {
    exchange: string;
    type?: 'topic' | 'headers' | 'fanout' | 'direct';
    bindingKey?: string;
    bindingArgs?: Record<string, unknown>;
    url?: string;
    queue?: string;
  }): Promise<TestConsumer> {
    const conn = await amqp.connect(options.url ?? amqpUrl());
    const channel = await conn.createChannel();
    await channel.assertExchange(options.exchange, options.type ?? 'topic', { durable: true });
    const q = await channel.assertQueue(options.queue ?? '', {
      exclusive: options.queue === undefined,
      autoDelete: options.queue === undefined,
    });
    await channel.bindQueue(q.queue, options.exchange, options.bindingKey ?? '#', options.bindingArgs);
    const consumer = new TestConsumer(conn, channel, q.queue);
    await channel.consume(
      q.queue,
      (msg) => {
        if (msg === null) return;
        const r: Received = { routingKey: msg.fields.routingKey, properties: msg.properties, body: msg.content };
        if (msg.properties.contentType === 'application/json') {
          try {
            r.json = JSON.parse(msg.content.toString('utf8'));
          } catch {
            /* left undefined: the test asserts on it */
          }
        }
        // Heartbeats and the like are the project's own traffic, not what a test publishes.
        if (r.routingKey.startsWith('contexture.')) {
          consumer.reserved.push(r);
          return;
        }
        consumer.received.push(r);
        consumer.notify();
      },
      { noAck: true },
    );
    return consumer;
  }

  /** Resolves once at least `n` messages have arrived; rejects after `timeoutMs`. */
  waitFor(n: number, timeoutMs = 10_000): Promise<void> {
    if (this.received.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== resolve);
        reject(new Error(`waited ${timeoutMs} ms for ${n} messages, got ${this.received.length}`));
      }, timeoutMs);
      this.waiters.push({
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  private notify(): void {
    const n = this.received.length;
    this.waiters = this.waiters.filter((w) => {
      if (n >= w.n) {
        w.resolve();
        return false;
      }
      return true;
    });
  }

  async close(): Promise<void> {
    await this.conn.close().catch(() => {});
  }
}
