/**
 * The watches of the Redis store: one subscriber connection, made at the first watch(), one
 * subscription per context's channel shared by its watches, and what the scripts publish read
 * into watch() events. On a cluster the scripts publish with SPUBLISH and the subscriber takes
 * sharded subscriptions (SSUBSCRIBE): a change goes only to the shard that owns the context.
 */
import { isCluster, type RedisClient, subscriberOf } from '../internal/cluster.js';
import { closeClient, scrubAuth } from '../internal/redis-client.js';
import { parseRecord, recordEvent } from './delta.js';
import { failure, label } from './redis-failure.js';
import type { ContextEvent, ContextWatch } from './types.js';
import { WatchQueue } from './watch-queue.js';

/** The watches of one context's channel: one subscription for all of them. */
interface WatchEntry {
  id: string;
  queues: Set<WatchQueue>;
  ready: Promise<void>;
  /** The context's incarnation, as its last message said. */
  incarnation: string;
}

/** The watches of a Redis store, on a subscriber connection of their own. */
export class RedisWatchers {
  private subscriber: RedisClient | null = null;
  /** Per channel: its id, its watchers, and the incarnation its last message named. */
  private readonly watchers = new Map<string, WatchEntry>();
  /** Sharded pub/sub: the store's client is a cluster's. */
  private readonly sharded: boolean;

  /**
   * `redis`: the store's client, whose duplicate subscribes; `at`: where Redis is, as errors say
   * it.
   */
  constructor(
    private readonly redis: RedisClient,
    private readonly at: string,
  ) {
    this.sharded = isCluster(redis);
  }

  /** A watch of the context `id`, whose changes are published on `channel`. */
  watch(id: string, channel: string, maxQueue: number, keepAlive: boolean): ContextWatch {
    let entry = this.watchers.get(channel);
    if (entry === undefined) {
      const sub = this.subscriberClient();
      const made: WatchEntry = { id, queues: new Set(), ready: Promise.resolve(), incarnation: '' };
      made.ready = (this.sharded ? sub.ssubscribe(channel) : sub.subscribe(channel)).then(
        () => undefined,
        (err: unknown) => {
          // The watches that share it fail; the next watch() of the id subscribes anew.
          if (this.watchers.get(channel) === made) this.watchers.delete(channel);
          throw failure(`watch of ${label(id)}`, err, this.at);
        },
      );
      entry = made;
      this.watchers.set(channel, entry);
    }
    const watched = entry;
    const q: WatchQueue = new WatchQueue(
      maxQueue,
      watched.ready,
      async () => {
        watched.queues.delete(q);
        if (watched.queues.size === 0 && this.watchers.get(channel) === watched) {
          this.watchers.delete(channel);
          // Not waited for: with Redis away it would wait for Redis (close() then quits after it).
          const sub = this.subscriber;
          if (sub !== null) void (this.sharded ? sub.sunsubscribe(channel) : sub.unsubscribe(channel)).catch(() => {});
        }
      },
      keepAlive,
    );
    watched.queues.add(q);
    return q;
  }

  /** Ends every watch, then closes the subscriber connection. */
  async close(): Promise<void> {
    for (const entry of [...this.watchers.values()]) for (const q of [...entry.queues]) await q.close();
    if (this.subscriber !== null) {
      await closeClient(this.subscriber);
      this.subscriber = null;
    }
  }

  private subscriberClient(): RedisClient {
    if (this.subscriber === null) {
      // A client of the caller's made without an offline queue would fail the first subscribe, made
      // before this connection is up.
      const sub = subscriberOf(this.redis, { enableOfflineQueue: true }, this.sharded);
      sub.on('error', (err: unknown) => {
        // ioredis reconnects by itself; a watcher sees a gap in versions and syncs.
        scrubAuth(err);
      });
      sub.on(this.sharded ? 'smessage' : 'message', (channel: string, text: string) => this.onMessage(channel, text));
      this.subscriber = sub;
    }
    return this.subscriber;
  }

  private onMessage(channel: string, text: string): void {
    const entry = this.watchers.get(channel);
    if (entry === undefined) return;
    // The scripts publish the context's incarnation, then the records of one call, one a line (in
    // one message or several: the incarnation holds for the records after it).
    for (const line of text.split('\n')) {
      let event: ContextEvent;
      try {
        if (line.startsWith('{"in":')) {
          const inc = (JSON.parse(line) as { in?: unknown }).in;
          entry.incarnation = typeof inc === 'string' ? inc : '';
          continue;
        }
        if (line.startsWith('{"v":')) event = changeEvent(entry.id, line, entry.incarnation);
        else if (line.startsWith('{"reset":'))
          event = { type: 'reset', id: entry.id, version: Number(JSON.parse(line).reset) };
        else if (line === '{"deleted":true}') event = { type: 'deleted', id: entry.id };
        else continue;
      } catch {
        continue;
      }
      for (const q of entry.queues) q.push(event);
    }
  }
}

/**
 * The `change` event of a published delta record; a `reset` of its version when the record cannot
 * be read (a value nested too deep for the reader, written by something other than this store):
 * a watcher then syncs, rather than missing the change without a word.
 */
function changeEvent(id: string, line: string, incarnation: string): ContextEvent {
  try {
    return recordEvent(id, parseRecord(line), incarnation);
  } catch (err) {
    const version = /^\{"v":(\d+)[,}]/.exec(line);
    if (version === null) throw err;
    return { type: 'reset', id, version: Number(version[1]) };
  }
}
