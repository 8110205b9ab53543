import { type RedisClient, subscriberOf } from '../internal/cluster.js';
import { isPlainObject } from '@contexture/context/protocol';
import { closeClient, scrubAuth } from '../internal/redis-client.js';
import { type LongTimer, setLongInterval } from '../internal/timers.js';
import { taskFailure } from './task-error.js';

/** A query waiting for the outcome of a task. */
export interface Waiter {
  name: string;
  resolve(v: unknown): void;
  reject(e: Error): void;
  onProgress?: ((current: number, total: number) => void) | undefined;
}

/**
 * The task queue's one subscriber connection: its reply channel (outcomes and progress of the
 * tasks its queries wait for) and, once a listener asks for it, the wake-up channel (new tasks).
 * It waits for Redis however long it takes and, after a reconnect, reads back the outcomes told
 * meanwhile; while queries wait, it also reads their outcomes back every `recheckInterval` ms (a
 * cluster's subscriber moves to another node without a reconnect event of its own).
 */
export class TaskSubscriber {
  /** Queries waiting for an outcome, by task id. */
  readonly waiters = new Map<string, Set<Waiter>>();
  /** Called on every wake-up notification: the `listen()` loops waiting for tasks. */
  readonly wakers = new Set<() => void>();
  private sub: RedisClient | null = null;
  private subReady: Promise<void> | null = null;
  /** The subscriber has subscribed once: until then a query checks that Redis answers at all. */
  #subscribed = false;
  /** The wake-up channel's subscription, once a listener asked for it. */
  private wakeReady: Promise<void> | null = null;
  /** Reads the waiting queries' outcomes back while there are any (see the class). */
  private recheckTimer: LongTimer | null = null;
  private rechecking = false;

  /**
   * @param redis the queue's client: the subscriber is its duplicate, and outcomes are read back with it.
   * @param taskKey the key of a task's hash, by id.
   */
  constructor(
    private readonly redis: RedisClient,
    private readonly replyChannel: string,
    private readonly wakeChannel: string,
    private readonly taskKey: (id: string) => string,
    private readonly recheckInterval: number,
  ) {}

  /** Whether the reply channel was subscribed once. */
  get subscribed(): boolean {
    return this.#subscribed;
  }

  /** Adds a query waiting for task `id`; the returned function takes it out again. */
  wait(id: string, waiter: Waiter): () => void {
    let set = this.waiters.get(id);
    if (set === undefined) this.waiters.set(id, (set = new Set()));
    set.add(waiter);
    const waiting = set;
    if (this.recheckTimer === null) {
      this.recheckTimer = setLongInterval(
        () => {
          if (this.waiters.size === 0) this.stopRecheck();
          else if (!this.rechecking) {
            this.rechecking = true;
            void this.recheck().finally(() => {
              this.rechecking = false;
            });
          }
        },
        this.recheckInterval,
        false,
      );
    }
    return () => {
      waiting.delete(waiter);
      if (waiting.size === 0 && this.waiters.get(id) === waiting) this.waiters.delete(id);
      if (this.waiters.size === 0) this.stopRecheck();
    };
  }

  private stopRecheck(): void {
    this.recheckTimer?.clear();
    this.recheckTimer = null;
  }

  /** Rejects every waiting query with the error made for its task id, and forgets them. */
  rejectAll(error: (id: string) => Error): void {
    for (const [id, set] of this.waiters) for (const w of set) w.reject(error(id));
    this.waiters.clear();
    this.stopRecheck();
  }

  /** Closes the subscriber connection, if one was made. */
  async close(): Promise<void> {
    if (this.sub !== null) await closeClient(this.sub);
  }

  /**
   * One subscriber connection: this queue's reply channel (what queries wait for), and with `wake`
   * the wake-up channel too (what listen() waits for; its failure is listen()'s alone).
   */
  subscribe(wake = false): Promise<void> {
    if (this.subReady === null) {
      // Settings of its own, whatever the queue's client has: it waits for Redis however long it
      // takes, holding its commands meanwhile (no command timeout, no retry limit, an offline queue).
      const sub = subscriberOf(this.redis, {
        maxRetriesPerRequest: null,
        commandTimeout: undefined,
        enableOfflineQueue: true,
      });
      sub.on('error', (err: unknown) => {
        // ioredis reconnects and resubscribes by itself; missed outcomes are read back on 'ready'.
        scrubAuth(err);
      });
      sub.on('message', (channel: string, text: string) => {
        if (channel === this.wakeChannel) {
          for (const w of this.wakers) w();
          return;
        }
        this.onReply(text);
      });
      let first = true;
      sub.on('ready', () => {
        if (first) first = false;
        else void this.recheck();
      });
      this.sub = sub;
      this.subReady = this.whenSubscribed(sub, sub.subscribe(this.replyChannel));
    }
    if (!wake) return this.subReady;
    if (this.wakeReady === null) {
      const sub = this.sub!;
      const ready = this.subReady.then(() => sub.subscribe(this.wakeChannel)).then(() => undefined);
      this.wakeReady = ready;
      // Failed, the next listen() tries again (a failed reply subscription has dropped the subscriber).
      ready.catch(() => {
        if (this.wakeReady === ready) this.wakeReady = null;
      });
    }
    return this.wakeReady;
  }

  /**
   * `subscribing` on the subscriber `sub`, done; if it fails the subscriber is dropped, so that the
   * next call makes a new one instead of failing for good.
   */
  private whenSubscribed(sub: RedisClient, subscribing: Promise<unknown>): Promise<void> {
    return subscribing.then(
      () => {
        this.#subscribed = true;
      },
      (err: unknown) => {
        if (this.sub === sub) {
          this.sub = null;
          this.subReady = null;
          this.wakeReady = null;
          this.#subscribed = false;
          sub.disconnect();
        }
        throw err;
      },
    );
  }

  private onReply(text: string): void {
    let m: unknown;
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    if (!isPlainObject(m) || typeof m.id !== 'string') return;
    const set = this.waiters.get(m.id);
    if (set === undefined) return;
    if (m.type === 'progress') {
      const current = Number(m.current);
      const total = Number(m.total);
      for (const w of set) {
        try {
          w.onProgress?.(current, total);
        } catch {
          /* a throwing progress callback must not lose the result */
        }
      }
      return;
    }
    for (const w of [...set]) {
      if (m.type === 'done') {
        try {
          w.resolve(JSON.parse(String(m.result)));
        } catch (err) {
          w.reject(err as Error);
        }
      } else if (m.type === 'failed') {
        w.reject(taskFailure(m.id, w.name, String(m.error)));
      }
    }
  }

  /**
   * After a reconnect of the subscriber, and every `recheckInterval` while queries wait: outcomes
   * told meanwhile are read back from their tasks.
   */
  private async recheck(): Promise<void> {
    for (const id of [...this.waiters.keys()]) {
      try {
        const [status, result, error] = await this.redis.hmget(this.taskKey(id), 'status', 'result', 'error');
        if (status === 'done') this.onReply(JSON.stringify({ id, type: 'done', result }));
        else if (status === 'failed') this.onReply(JSON.stringify({ id, type: 'failed', error }));
      } catch {
        /* the next reconnect tries again; the query's timeout bounds the wait */
      }
    }
  }
}
