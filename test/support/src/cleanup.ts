import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { uniqueName } from './names.js';
import { amqpUrl, clusterClient, redisUrl } from './services.js';

/** The names a collector under test works with, all removed by the clean-up that made them. */
export interface CollectorNames {
  exchange: string;
  /** Its queue; `<queue>.dead`, its dead-letter queue, is removed too. */
  queue: string;
  /** A Redis key prefix, `<tag>-xxxxxxxx:`; every key under it is removed. */
  prefix: string;
}

/**
 * Collects what a test created (exchanges, queues, Redis key patterns, closables) and removes it
 * all in `run()`, which a test calls from `afterEach` / `after`.
 */
export class Cleanup {
  private exchanges = new Set<string>();
  private queues = new Set<string>();
  private redisPatterns = new Set<string>();
  private clusterPatterns = new Set<string>();
  private closers: Array<() => unknown> = [];

  exchange(name: string): string {
    this.exchanges.add(name);
    return name;
  }

  queue(name: string): string {
    this.queues.add(name);
    return name;
  }

  /** A Redis key pattern (for SCAN MATCH) to delete, such as `test-1a2b3c4d:*`. */
  redisKeys(pattern: string): string {
    this.redisPatterns.add(pattern);
    return pattern;
  }

  /** A key pattern to delete on every master of the test Redis Cluster. */
  clusterKeys(pattern: string): string {
    this.clusterPatterns.add(pattern);
    return pattern;
  }

  /** A new exchange, queue (and its dead-letter queue) and Redis prefix for a collector, named after `tag`. */
  collectorNames(tag: string): CollectorNames {
    const exchange = this.exchange(uniqueName(`${tag}-x`));
    const queue = this.queue(uniqueName(`${tag}-q`));
    this.queue(`${queue}.dead`);
    const prefix = `${uniqueName(tag)}:`;
    this.redisKeys(`${prefix}*`);
    return { exchange, queue, prefix };
  }

  /** Anything with a close(), or a function, run first (before the broker and Redis clean-up). */
  defer(fn: () => unknown): void {
    this.closers.push(fn);
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (const fn of this.closers.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    }
    if (this.exchanges.size > 0 || this.queues.size > 0) {
      const conn = await amqp.connect(amqpUrl());
      try {
        for (const q of this.queues) {
          const ch = await conn.createChannel();
          ch.on('error', () => {});
          await ch.deleteQueue(q).catch(() => {});
          await ch.close().catch(() => {});
        }
        for (const x of this.exchanges) {
          const ch = await conn.createChannel();
          ch.on('error', () => {});
          await ch.deleteExchange(x).catch(() => {});
          await ch.close().catch(() => {});
        }
      } finally {
        await conn.close();
      }
      this.exchanges.clear();
      this.queues.clear();
    }
    if (this.redisPatterns.size > 0) {
      const redis = new Redis(redisUrl(), { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await redis.connect();
        for (const pattern of this.redisPatterns) {
          let cursor = '0';
          do {
            const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
            cursor = next;
            if (keys.length > 0) await redis.unlink(...keys);
          } while (cursor !== '0');
        }
      } finally {
        redis.disconnect();
      }
      this.redisPatterns.clear();
    }
    if (this.clusterPatterns.size > 0) {
      const cluster = clusterClient({ lazyConnect: true });
      cluster.on('error', () => {}); // a failure rejects connect() below, which fails the clean-up
      try {
        await cluster.connect();
        for (const node of cluster.nodes('master')) {
          for (const pattern of this.clusterPatterns) {
            let cursor = '0';
            do {
              const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
              cursor = next;
              // Keys of one node may be in many slots: one UNLINK each.
              await Promise.all(keys.map((k) => node.unlink(k)));
            } while (cursor !== '0');
          }
        }
      } finally {
        cluster.disconnect();
      }
      this.clusterPatterns.clear();
    }
    if (errors.length > 0) throw errors[0];
  }
}
