/**
 * The waiters of `RedisLock.acquire()`, per lock: they queue in this process, first come first
 * served, and only the first of each queue asks Redis. It asks when the lock says it is free (the
 * release script publishes on the lock's channel when someone marked the lock as waited for, see
 * `lua/locks/`) or when its pause runs out, whichever comes first: a notification lost (a
 * subscriber reconnecting, a lock that expired instead of being released) costs one pause at most.
 * The others wait behind it without a command; a pause that passes behind it counts as one of
 * their attempts (the lock was taken, or about to be, through it).
 *
 * When a handle of this instance gives the lock back while a call of it waits first in line, that
 * call's attempt is sent right behind the release on the same connection, without waiting for the
 * release's word: the lock changes hands in one round trip. At most {@link HAND_OFF_STREAK} times
 * in a row, so that the waiters of other instances and processes (woken by the word, one round
 * trip later) get their turn to race for it.
 *
 * The releases are heard on the subscriber of the Redis client (see `lock-subscriber.ts`): one
 * connection per client, whatever the number of `RedisLock`s made on it, and one subscription per
 * lock that has waiters in any of them (kept a little after the last leaves, so that a lock waited
 * for again and again does not subscribe each time). Each instance keeps its own queues and
 * hand-offs; the connection closes by itself once no lock is waited for, `close()` or not. On a
 * cluster the release script publishes with SPUBLISH on a channel in the lock's slot and the
 * subscriber takes sharded subscriptions.
 */
import { isCluster, type RedisClient } from '../internal/cluster.js';
import { FREE, type LockListener, type LockSubscriber, lockSubscriber } from './lock-subscriber.js';

/** How long (ms) a lock's subscription outlives its last waiter. */
const LINGER_MS = 2_000;

/** Hand-offs in a row within one instance, at most, before a release open to every waiter. */
export const HAND_OFF_STREAK = 8;

/** One call of `acquire()` waiting for a lock. */
export class Waiter {
  /** Set while the waiter waits: ends the wait. */
  wake: (() => void) | null = null;
  /** A notification came while the waiter, first in line, was asking Redis: it asks again at once. */
  pending = false;
}

interface Entry {
  readonly queue: Waiter[];
  /** The subscriber this entry listens on (null: none, the pauses stand in). */
  via: LockSubscriber | null;
  linger: NodeJS.Timeout | null;
  /** Hand-offs in a row. */
  streak: number;
  /**
   * The fence of the last hand-off: the word of its release, or of any before it, is not news to
   * this instance (fences grow with every acquisition).
   */
  handedOff: number;
}

export class LockWaits implements LockListener {
  /** By lock key. */
  private readonly entries = new Map<string, Entry>();
  private readonly sharded: boolean;
  private closed = false;

  constructor(private readonly redis: RedisClient) {
    this.sharded = isCluster(redis);
  }

  /** What the release script takes to say `key` is free: 'P:' or 'S:' (sharded) and the channel. */
  publishTo(key: string): string {
    return `${this.sharded ? 'S' : 'P'}:${key}${FREE}`;
  }

  /** Whether calls of this instance wait for `key`. */
  waiting(key: string): boolean {
    return (this.entries.get(key)?.queue.length ?? 0) > 0;
  }

  /** Whether `w` is first in line for `key`. */
  first(key: string, w: Waiter): boolean {
    return this.entries.get(key)?.queue[0] === w;
  }

  /** Whether others wait behind the first in line for `key`. */
  others(key: string): boolean {
    return (this.entries.get(key)?.queue.length ?? 0) > 1;
  }

  /** A new waiter for `key`, last in line. */
  join(key: string): Waiter {
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = { queue: [], via: null, linger: null, streak: 0, handedOff: 0 };
      this.entries.set(key, entry);
      if (!this.closed) this.subscribe(key, entry);
    }
    if (entry.linger !== null) {
      clearTimeout(entry.linger);
      entry.linger = null;
    }
    const w = new Waiter();
    entry.queue.push(w);
    return w;
  }

  /** `w` waits no more; the next in line, if any, is first now. True when `w` was first. */
  leave(key: string, w: Waiter): boolean {
    const entry = this.entries.get(key);
    if (entry === undefined) return false;
    const at = entry.queue.indexOf(w);
    if (at !== -1) entry.queue.splice(at, 1);
    w.wake = null;
    if (entry.queue.length > 0 || entry.linger !== null) return at === 0;
    entry.linger = setTimeout(() => {
      entry.linger = null;
      if (entry.queue.length > 0 || this.entries.get(key) !== entry) return;
      this.entries.delete(key);
      const via = entry.via;
      entry.via = null;
      // The last channel on the subscriber closes it: not waited for here.
      if (via !== null) void via.unlisten(key, this);
    }, LINGER_MS);
    entry.linger.unref();
    return at === 0;
  }

  /**
   * A handle of this instance is about to give back `key` (acquisition `fence`): true when the first
   * in line waits and should ask right behind the release (the caller then calls notify()).
   */
  handOff(key: string, fence: number): boolean {
    const entry = this.entries.get(key);
    if (entry === undefined || entry.queue[0]?.wake == null) return false;
    if (entry.streak >= HAND_OFF_STREAK) {
      entry.streak = 0;
      return false;
    }
    entry.streak++;
    entry.handedOff = fence;
    return true;
  }

  /** The lock `key` may be free: the first in line asks Redis now. */
  notify(key: string): void {
    const head = this.entries.get(key)?.queue[0];
    if (head === undefined) return;
    if (head.wake !== null) head.wake();
    else head.pending = true;
  }

  /**
   * Waits `ms`, or (first in line) until the lock is said to be free, or until `signal` aborts.
   * Never rejects: the caller checks the signal and the time.
   */
  wait(key: string, w: Waiter, ms: number, signal?: AbortSignal): Promise<void> {
    // Aborted already (during the attempt before): no 'abort' event will come to end the pause.
    if (signal?.aborted) return Promise.resolve();
    if (w.pending && this.first(key, w)) {
      w.pending = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        w.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      w.wake = done;
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** The subscriber heard that `key` was released (acquisition `fence`). */
  heard(key: string, fence: string): void {
    const entry = this.entries.get(key);
    // The word of a release this instance handed off (or of one before): its first in line asked
    // after it already.
    if (entry !== undefined && Number(fence) <= entry.handedOff) return;
    this.notify(key);
  }

  /**
   * Stops listening to the locks' channels (the subscriber closes when no other instance listens
   * to any). Waiters go on with their pauses.
   */
  async close(): Promise<void> {
    this.closed = true;
    const closing: Array<Promise<void>> = [];
    for (const [key, entry] of this.entries) {
      if (entry.linger !== null) clearTimeout(entry.linger);
      entry.linger = null;
      if (entry.via !== null) closing.push(entry.via.unlisten(key, this));
      entry.via = null;
    }
    await Promise.all(closing);
  }

  private subscribe(key: string, entry: Entry): void {
    const via = lockSubscriber(this.redis);
    entry.via = via;
    void via.listen(key, this).then((holds) => {
      // Released while the subscription was on its way (or, held already, since this instance's
      // attempt before it joined): no one here heard it, so the first asks now. Without a
      // subscription the waiters ask at every pause, as with a notification lost.
      if (holds) this.notify(key);
    });
  }
}
