import type { ContextEvent, ContextWatch } from './types.js';

/** The longest a timer can wait; it is cleared long before. */
const HOLD_MS = 2 ** 31 - 1;

/**
 * The async iterator behind `watch()`: events pushed by the store's subscription are queued
 * (bounded, dropping the oldest) until the consumer pulls them; closing it, `break` in a
 * `for await` included, calls `onClose` once, which unsubscribes. With `keepAlive`, a `next()`
 * waiting for an event holds the process (the store's connections do not).
 */
export class WatchQueue implements ContextWatch {
  private readonly buffer: ContextEvent[] = [];
  private head = 0;
  private waiter: ((r: IteratorResult<ContextEvent>) => void) | null = null;
  private hold: NodeJS.Timeout | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;
  dropped = 0;
  readonly ready: Promise<void>;

  constructor(
    private readonly maxQueue: number,
    ready: Promise<void>,
    private readonly onClose: () => Promise<void>,
    private readonly keepAlive = true,
  ) {
    this.ready = ready;
    // A consumer that never awaits `ready` must not see an unhandled rejection.
    ready.catch(() => {});
  }

  push(event: ContextEvent): void {
    if (this.closed) return;
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      this.release();
      w({ value: event, done: false });
      return;
    }
    this.buffer.push(event);
    if (this.buffer.length - this.head > this.maxQueue) {
      this.head++;
      this.dropped++;
    }
    if (this.head > 1024 && this.head * 2 > this.buffer.length) {
      this.buffer.splice(0, this.head);
      this.head = 0;
    }
  }

  next(): Promise<IteratorResult<ContextEvent>> {
    if (this.head < this.buffer.length) {
      const value = this.buffer[this.head++]!;
      return Promise.resolve({ value, done: false });
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiter = resolve;
      if (this.keepAlive && this.hold === null) this.hold = setInterval(() => {}, HOLD_MS);
    });
  }

  async return(): Promise<IteratorResult<ContextEvent>> {
    await this.close();
    return { value: undefined, done: true };
  }

  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    this.closed = true;
    this.buffer.length = 0;
    this.head = 0;
    const w = this.waiter;
    this.waiter = null;
    this.release();
    w?.({ value: undefined, done: true });
    this.closing = this.onClose();
    return this.closing;
  }

  private release(): void {
    if (this.hold !== null) clearInterval(this.hold);
    this.hold = null;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
