/**
 * The subscriber connection that the waiters of `RedisLock.acquire()` hear releases on: one per
 * Redis client, shared by every `RedisLock` made on that client, made when a lock is first waited
 * for and closed as soon as no lock's channel is subscribed any more (the next wait makes a new
 * one). Each lock's channel is subscribed once, whatever the number of instances that listen to
 * it, and unsubscribed when the last of them stops; its messages go to each of them.
 *
 * On a cluster (the client's kind, not a choice) the subscriber is a duplicate of the cluster that
 * takes sharded subscriptions (SSUBSCRIBE), sent to the master of each channel's slot; the release
 * script publishes with SPUBLISH.
 */
import { isCluster, type RedisClient, subscriberOf } from '../internal/cluster.js';
import { unrefWhenIdle } from '../internal/keep-alive.js';
import { closeClient, scrubAuth } from '../internal/redis-client.js';

/** The suffix of a lock's channel: `<prefix>lock:{<name>}:free`. */
export const FREE = ':free';

/** The suffix of the subscriber's connection name, after the client's. */
const NAME_SUFFIX = ':locks';

/** What listens to a lock's channel: the waiters of one `RedisLock`. */
export interface LockListener {
  /** The lock `key` was released with fence `fence` (as the release script published it). */
  heard(key: string, fence: string): void;
}

/** One lock's channel on the subscriber. */
interface Channel {
  readonly listeners: Set<LockListener>;
  /** True once the subscription holds, false when it failed (never rejects). */
  subscribed: Promise<boolean>;
  /** The subscription failed: the next listener to come asks for it again. */
  failed: boolean;
}

/** The subscriber of each Redis client, while any lock's channel is subscribed on it. */
const subscribers = new WeakMap<RedisClient, LockSubscriber>();

/** The subscriber that the waiters of locks on `redis` listen on now (made when there is none). */
export function lockSubscriber(redis: RedisClient): LockSubscriber {
  let s = subscribers.get(redis);
  // One whose connection ended for good (something else closed it) is left to its listeners.
  if (s === undefined || s.ended) {
    s = new LockSubscriber(redis);
    subscribers.set(redis, s);
  }
  return s;
}

/** One subscriber connection and the channels subscribed on it, by lock key. */
export class LockSubscriber {
  private readonly sub: RedisClient;
  private readonly sharded: boolean;
  private readonly channels = new Map<string, Channel>();
  /** Set once no channel was left: the connection is closing, and this is out of the registry. */
  private closing: Promise<void> | null = null;

  constructor(private readonly redis: RedisClient) {
    this.sharded = isCluster(redis);
    // A client of the caller's made without an offline queue would fail the first subscribe, made
    // before this connection is up; one made not to send a command again after a lost reply (as
    // the README advises: a script must not run twice) would lose a subscription under way, and a
    // subscription sent twice is harmless. The connection is ours: it never keeps the process
    // alive by itself (a waiter's pause does while it waits).
    const name = isCluster(redis) ? redis.options.redisOptions?.connectionName : redis.options.connectionName;
    const sub = unrefWhenIdle(
      subscriberOf(
        redis,
        {
          enableOfflineQueue: true,
          autoResendUnfulfilledCommands: true,
          ...(name ? { connectionName: `${name}${NAME_SUFFIX}` } : {}),
        },
        this.sharded,
      ),
    );
    sub.on('error', (err: unknown) => {
      // ioredis reconnects and subscribes again by itself; meanwhile the pauses stand in.
      scrubAuth(err);
    });
    sub.on(this.sharded ? 'smessage' : 'message', (channel: string, fence: string) => {
      if (!channel.endsWith(FREE)) return;
      const key = channel.slice(0, -FREE.length);
      const listening = this.channels.get(key)?.listeners;
      if (listening !== undefined) for (const l of listening) l.heard(key, fence);
    });
    this.sub = sub;
  }

  /** Whether the connection ended without this closing it (ioredis gave up reconnecting). */
  get ended(): boolean {
    return this.closing === null && this.sub.status === 'end';
  }

  /**
   * `listener` hears the releases of `key` from now on. Resolves true once the subscription holds
   * (at once when it held already), false when it failed: the pauses stand in, and the next
   * listener to come subscribes anew.
   */
  listen(key: string, listener: LockListener): Promise<boolean> {
    let channel = this.channels.get(key);
    if (channel === undefined) {
      channel = { listeners: new Set(), subscribed: Promise.resolve(false), failed: true };
      this.channels.set(key, channel);
    }
    channel.listeners.add(listener);
    if (channel.failed && this.closing === null) {
      const c = channel;
      c.failed = false;
      const name = `${key}${FREE}`;
      c.subscribed = (this.sharded ? this.sub.ssubscribe(name) : this.sub.subscribe(name)).then(
        () => true,
        () => {
          c.failed = true;
          return false;
        },
      );
    }
    return channel.subscribed;
  }

  /**
   * `listener` stops listening to `key`. The last listener of a channel unsubscribes it; the last
   * channel closes the connection (resolves once it is closed).
   */
  unlisten(key: string, listener: LockListener): Promise<void> {
    const channel = this.channels.get(key);
    if (channel === undefined || !channel.listeners.delete(listener)) return Promise.resolve();
    if (channel.listeners.size > 0) return Promise.resolve();
    this.channels.delete(key);
    if (this.channels.size > 0) {
      const name = `${key}${FREE}`;
      void (this.sharded ? this.sub.sunsubscribe(name) : this.sub.unsubscribe(name)).catch(() => {});
      return Promise.resolve();
    }
    // Out of the registry before the connection closes: a wait that comes meanwhile makes a new one.
    if (subscribers.get(this.redis) === this) subscribers.delete(this.redis);
    this.closing ??= closeClient(this.sub).catch(() => {});
    return this.closing;
  }
}
