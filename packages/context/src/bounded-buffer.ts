/**
 * Step 2 of a message's way out: Context → **BoundedBuffer** → Publisher → Transport → broker.
 * A context's change waits here, in order, until the publisher sends it; the Handler owns one.
 */
import { ContextError } from './errors.js';

/** What a full {@link BoundedBuffer} does with one more item. */
export type OverflowPolicy = 'drop-oldest' | 'drop-newest' | 'block';

/**
 * A FIFO ring buffer with a capacity. When full, `drop-oldest` drops the head to make room,
 * `drop-newest` refuses the new item, and `block` accepts it (the buffer grows past its capacity
 * and the owner applies backpressure by awaiting space). Dropped items are returned to the caller,
 * which counts them. A capacity that is not a positive integer throws a `ContextError`
 * (`LC_BUFFER_INVALID_CAPACITY`).
 */
export class BoundedBuffer<T> {
  private items: Array<T | undefined>;
  private head = 0;
  private size = 0;

  constructor(
    readonly capacity: number,
    readonly policy: OverflowPolicy = 'drop-oldest',
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1)
      throw new ContextError('LC_BUFFER_INVALID_CAPACITY', `capacity must be a positive integer, got ${capacity}`);
    this.items = new Array(Math.min(capacity, 1024));
  }

  get length(): number {
    return this.size;
  }

  /** True when the buffer holds `capacity` items or more. */
  get full(): boolean {
    return this.size >= this.capacity;
  }

  /**
   * Appends an item. Returns the item dropped to respect the capacity (the old head with
   * `drop-oldest`, the new item itself with `drop-newest`), or undefined when nothing was dropped.
   */
  push(item: T): T | undefined {
    let dropped: T | undefined;
    if (this.size >= this.capacity) {
      if (this.policy === 'drop-newest') return item;
      if (this.policy === 'drop-oldest') dropped = this.shift();
    }
    if (this.size === this.items.length) this.grow();
    this.items[(this.head + this.size) % this.items.length] = item;
    this.size++;
    return dropped;
  }

  /** Removes and returns the oldest item. */
  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.items.length;
    this.size--;
    return item;
  }

  /** The oldest item, left in place. */
  peek(): T | undefined {
    return this.size === 0 ? undefined : this.items[this.head];
  }

  /** The item `i` places after the oldest, left in place. */
  at(i: number): T | undefined {
    return i < 0 || i >= this.size ? undefined : this.items[(this.head + i) % this.items.length];
  }

  /**
   * Puts items back at the front, in their order (they are older than everything buffered). Over
   * capacity, `drop-oldest` drops from the front and `drop-newest` from the back; `block` keeps all.
   * Returns the dropped items.
   */
  unshiftAll(front: readonly T[]): T[] {
    for (let i = front.length - 1; i >= 0; i--) {
      if (this.size === this.items.length) this.grow();
      this.head = (this.head - 1 + this.items.length) % this.items.length;
      this.items[this.head] = front[i];
      this.size++;
    }
    const dropped: T[] = [];
    if (this.policy === 'block') return dropped;
    while (this.size > this.capacity) {
      if (this.policy === 'drop-oldest') dropped.push(this.shift() as T);
      else dropped.push(this.pop() as T);
    }
    return dropped;
  }

  /** Removes everything; returns what was there, oldest first. */
  drain(): T[] {
    const out: T[] = [];
    while (this.size > 0) out.push(this.shift() as T);
    return out;
  }

  private pop(): T | undefined {
    if (this.size === 0) return undefined;
    const i = (this.head + this.size - 1) % this.items.length;
    const item = this.items[i];
    this.items[i] = undefined;
    this.size--;
    return item;
  }

  private grow(): void {
    const next: Array<T | undefined> = new Array(Math.max(16, this.items.length * 2));
    for (let i = 0; i < this.size; i++) next[i] = this.items[(this.head + i) % this.items.length];
    this.items = next;
    this.head = 0;
  }
}
