/**
 * When a web request's context is made: requests that end within `bornAfter` ms are sent as one
 * `transient` message, those still open then get their context (`born`) while they run. One timer
 * per middleware serves all its requests; a request costs two array places, not a timer.
 */

/** A request waiting for its context. */
export interface Waiting {
  /** It has been open `bornAfter` ms. */
  due(): void;
}

/**
 * The requests of one middleware whose context is not made yet, in the order they arrived: each
 * still open `after` ms after it arrived is told so ({@link Waiting.due}), by one timer for all
 * of them. A request that ends first leaves its place empty.
 */
export class Births {
  private reqs: Array<Waiting | null> = [];
  private starts: number[] = [];
  /** The place of reqs[0] since the first request. */
  private base = 0;
  /** Where the requests not yet due begin. */
  private head = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly after: number) {}

  /** Waits for `w`, which arrived at `start` (`performance.now()`); returns its place. */
  add(w: Waiting, start: number): number {
    const place = this.base + this.reqs.length;
    this.reqs.push(w);
    this.starts.push(start);
    if (this.timer === null) this.arm(start + this.after - performance.now());
    return place;
  }

  /** Forgets the request at `place`: it ended, or its context was made. */
  remove(place: number): void {
    const i = place - this.base;
    if (i >= this.head && i < this.reqs.length) this.reqs[i] = null;
  }

  private arm(delay: number): void {
    this.timer = setTimeout(() => this.tick(), Math.max(1, Math.ceil(delay)));
    this.timer.unref();
  }

  private tick(): void {
    this.timer = null;
    const now = performance.now();
    const reqs = this.reqs;
    let i = this.head;
    for (; i < reqs.length; i++) {
      const w = reqs[i];
      if (w === null) continue;
      if (this.starts[i]! + this.after > now) break;
      reqs[i] = null;
      w.due();
    }
    if (i === reqs.length) {
      this.base += reqs.length;
      this.reqs = [];
      this.starts = [];
      this.head = 0;
      return;
    }
    this.head = i;
    // The places passed are cut off now and then, not at every tick.
    if (i >= 1024) {
      this.reqs = reqs.slice(i);
      this.starts = this.starts.slice(i);
      this.base += i;
      this.head = 0;
    }
    this.arm(this.starts[this.head]! + this.after - now);
  }
}
