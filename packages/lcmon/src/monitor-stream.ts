import type { Channel } from 'amqplib';
import {
  Collator,
  type BusMessage,
  type CollatedObject,
  type Malformed,
  type MessageMeta,
} from '@contexture/context/protocol';
import { AmqpSource, type HeldDelivery } from './amqp-source.js';
import { LcmonError } from './errors.js';
import { HeldObjects } from './held-objects.js';
import type { InputSink } from './input-sink.js';
import { readLines } from './line-source.js';
import type { InputPlace, ResolvedOptions } from './options.js';
import { plainObject, verboseObject, type MonitorMessage } from './shapes.js';

/** Lifecycle of a {@link MonitorStream}. */
export type MonitorStatus = 'idle' | 'opening' | 'open' | 'closing' | 'closed';

/** Counters of a {@link MonitorStream}. */
export interface MonitorStats {
  /** Valid messages read. */
  messages: number;
  /** Malformed lines or messages, by kind. */
  malformed: Record<string, number>;
  /** Collated objects given out (objects() only). */
  objects: number;
  /** Objects still open (objects() only). */
  open: number;
  /** Duplicate or late messages ignored by collation (objects() only). */
  duplicates: number;
  /**
   * Open objects forced out because their messages, unacknowledged, held the whole prefetch
   * (objects() from a named `queue` only): given out incomplete with `flushIncomplete`, else
   * dropped.
   */
  forced: number;
}

/** How often a live objects() stream gives out finished objects whose missing messages never came. */
const EXPIRE_EVERY_MS = 1000;

/**
 * An async iterable over the stream of messages (or of collated objects), from the broker or from
 * a stream of lines. Iterating opens it; leaving a `for await` loop (`break`, `return`, a throw)
 * closes it, and so does `await using`. While nobody reads, at most about `prefetch` items wait in
 * memory: the rest stays on the broker, unacknowledged.
 *
 * @example
 * for await (const m of messages({ bindingKeys: ['web.#'] })) {
 *   console.log(m.rkey, m.object.obj);
 *   if (m.object.status === 'finished') break;
 * }
 */
export class MonitorStream<T> implements AsyncIterable<T>, AsyncDisposable {
  private state: MonitorStatus = 'idle';
  private source: AmqpSource | undefined;
  private opening: Promise<this> | undefined;
  private closing: Promise<void> | undefined;
  private readonly items: T[] = [];
  /**
   * From a named queue, what each item lets go of when the reader takes it: with messages() its
   * delivery (acknowledged once every message it carried is taken), with objects() its object's id
   * (see {@link held}). Null when nothing is held (no named queue).
   */
  private holds: Array<HeldDelivery | string | undefined> | null = null;
  /** objects() from a named queue: the ids of the objects given out and not yet taken by the reader. */
  private readonly waiting = new Set<string>();
  /** objects() from a named queue: deliveries acknowledged once their objects are out (see HeldObjects). */
  private held: HeldObjects | undefined;
  private head = 0;
  private waiter: { resolve: () => void } | undefined;
  private readyWaiters: Array<() => void> = [];
  private ended = false;
  private error: Error | undefined;
  private readonly abort = new AbortController();
  private readonly collator: Collator | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly highWater: number;
  private counts = { messages: 0, malformed: {} as Record<string, number> };

  /** @internal Use {@link messages} or {@link objects}. */
  constructor(
    private readonly options: ResolvedOptions,
    mode: 'messages' | 'objects',
  ) {
    this.highWater = options.prefetch;
    if (mode === 'objects') {
      const verbose = options.verbose;
      this.collator = new Collator({
        onObject: (o: CollatedObject) => {
          if (this.holds !== null) {
            this.holds.push(o.id);
            this.waiting.add(o.id);
          }
          this.push((verbose ? verboseObject(o) : plainObject(o)) as T);
        },
        onDrop: (id: string) => this.held?.out(id, true),
        gapTimeout: options.gapTimeout,
        captureMessages: options.captureMessages,
        flushIncomplete: options.flushIncomplete,
      });
    }
  }

  /** Where the stream is in its life. */
  get status(): MonitorStatus {
    return this.state;
  }

  /**
   * The AMQP channel messages are consumed on, for publishing (results, say) on the same
   * connection. Available once {@link open} has resolved; undefined when reading a stream.
   */
  get channel(): Channel | undefined {
    if (this.state === 'closed') throw new LcmonError('LC_MONITOR_CLOSED', 'the stream is closed');
    return this.source?.channel;
  }

  /** Name of the queue consumed (broker-generated for the anonymous queue), once open. */
  get queue(): string | undefined {
    return this.source?.queue;
  }

  /** The node consumed from, as `host:port` (with a URL list, the first that answered), once open. */
  get where(): string | undefined {
    return this.source?.where;
  }

  /** Counters since the stream was opened. */
  stats(): MonitorStats {
    const c = this.collator?.stats();
    return {
      messages: this.counts.messages,
      malformed: { ...this.counts.malformed },
      objects: c?.objects ?? 0,
      open: c?.open ?? 0,
      duplicates: (c?.duplicates ?? 0) + (c?.late ?? 0),
      forced: this.held?.forced ?? 0,
    };
  }

  /**
   * Connects, declares and binds (or starts reading the stream); resolves when messages flow.
   * Iterating calls it; call it first to use {@link channel} before the first message.
   * Idempotent. Rejects with an {@link LcmonError} (`LC_BROKER_UNREACHABLE`, `LC_BROKER_NO_QUEUE`, ...).
   */
  open(): Promise<this> {
    if (this.state === 'closing' || this.state === 'closed')
      return Promise.reject(new LcmonError('LC_MONITOR_CLOSED', 'the stream is closed'));
    this.opening ??= this.doOpen();
    return this.opening;
  }

  /** Stops consuming and closes the connection; unread items are dropped. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  /** Drops the connection at once. */
  destroy(): void {
    this.state = 'closed';
    this.stopTimer();
    this.abort.abort();
    this.source?.destroy();
    this.finish();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  private async next(): Promise<IteratorResult<T>> {
    if (this.state === 'idle' || this.state === 'opening') {
      try {
        await this.open();
      } catch (err) {
        await this.close();
        throw err;
      }
    }
    for (;;) {
      if (this.head < this.items.length) {
        const value = this.items[this.head]!;
        const holds = this.holds;
        const hold = holds?.[this.head];
        if (holds !== null) holds[this.head] = undefined;
        this.items[this.head++] = undefined as T;
        if (this.head === this.items.length) {
          this.items.length = 0;
          if (holds !== null) holds.length = 0;
          this.head = 0;
        }
        // In the reader's hands: the deliveries of its messages are acknowledged.
        if (typeof hold === 'string') {
          this.waiting.delete(hold);
          this.held?.out(hold);
        } else if (hold !== undefined) this.source?.release(hold);
        if (this.items.length - this.head <= this.highWater >> 1) this.wakeReady();
        return { done: false, value };
      }
      if (this.error !== undefined) {
        const err = this.error;
        this.error = undefined;
        await this.close();
        throw err;
      }
      if (this.ended || this.state === 'closing' || this.state === 'closed') return { done: true, value: undefined };
      await new Promise<void>((resolve) => {
        this.waiter = { resolve };
      });
    }
  }

  private push(item: T): void {
    this.items.push(item);
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      w.resolve();
    }
  }

  private wakeReady(): void {
    if (this.readyWaiters.length === 0) return;
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w();
  }

  private finish(): void {
    this.ended = true;
    this.wakeReady();
    this.wake();
  }

  private sink(): InputSink {
    const self = this;
    const collator = this.collator;
    const onMalformed = this.options.onMalformed;
    return {
      message(message: BusMessage, meta: MessageMeta): void {
        self.counts.messages++;
        if (collator !== undefined) {
          collator.add(message, meta);
          // A note (no obj_id) has no object to wait for: nothing holds its delivery.
          const id = message.obj_id;
          if (id !== undefined) self.held?.added(id, self.waiting.has(id));
        } else {
          if (self.holds !== null) {
            // Held until the reader takes it (a delivery may carry several messages: each holds it).
            const d = self.source?.current;
            if (d !== undefined) self.source!.hold(d);
            self.holds.push(d);
          }
          self.push({
            rkey: meta.rkey ?? null,
            headers: meta.headers ?? {},
            object: message,
          } satisfies MonitorMessage as T);
        }
      },
      malformed(problem: Malformed, place: InputPlace): void {
        self.counts.malformed[problem.kind] = (self.counts.malformed[problem.kind] ?? 0) + 1;
        onMalformed?.(problem, place);
      },
      get ready() {
        return self.items.length - self.head < self.highWater;
      },
      whenReady(): Promise<void> {
        if (this.ready || self.ended) return Promise.resolve();
        return new Promise((resolve) => self.readyWaiters.push(resolve));
      },
      get stopped() {
        return self.state === 'closing' || self.state === 'closed';
      },
    };
  }

  private async doOpen(): Promise<this> {
    this.state = 'opening';
    const stdin = this.options.stdin;
    if (stdin !== undefined) {
      this.state = 'open';
      readLines(stdin, this.sink(), this.abort.signal, false, false, this.options.maxDepth).then(
        () => {
          this.collator?.flush(this.options.flushIncomplete);
          this.finish();
        },
        (err: Error) => {
          this.error = err;
          this.finish();
        },
      );
      return this;
    }
    const source = await AmqpSource.open(this.options);
    if (this.state !== 'opening') {
      await source.close();
      throw new LcmonError('LC_MONITOR_CLOSED', 'the stream was closed while opening');
    }
    this.source = source;
    this.state = 'open';
    if (this.options.queue !== undefined && !this.options.noAck) {
      // From a named queue, a delivery is acknowledged once what it carried is in the reader's hands.
      this.holds = [];
      if (this.collator === undefined) source.holdDeliveries(() => {});
      // Forcing open objects out frees nothing while the reader has objects to take: taking them does.
      else
        this.held = new HeldObjects(
          source,
          this.collator,
          () => {},
          () => this.waiting.size === 0,
        );
    }
    if (this.collator !== undefined) {
      const collator = this.collator;
      this.timer = setInterval(() => collator.expire(), EXPIRE_EVERY_MS);
      this.timer.unref();
    }
    await source.start(this.sink());
    source.finished.then(
      () => this.finish(),
      (err: Error) => {
        this.error = err;
        this.finish();
      },
    );
    return this;
  }

  private async doClose(): Promise<void> {
    const wasOpening = this.opening;
    this.state = 'closing';
    this.stopTimer();
    this.abort.abort();
    if (wasOpening !== undefined) await wasOpening.catch(() => {});
    await this.source?.close();
    this.state = 'closed';
    this.items.length = 0;
    if (this.holds !== null) this.holds.length = 0;
    this.head = 0;
    this.finish();
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}
