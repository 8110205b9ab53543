import { ContextError } from '../errors.js';
import type { BusMessage, MessageMeta, MessageStatus, WireMessage } from './message.js';
import { setOwn } from './own.js';

/** A whole object folded from the messages of one `obj_id`. */
export interface CollatedObject {
  id: string;
  /** The object's fields: each from the message with the highest `seq` that set it. */
  object: Record<string, unknown>;
  rkey?: string;
  headers?: Record<string, unknown>;
  /** `open` when it never finished (only given out by a flush or an eviction). */
  status: MessageStatus | 'open';
  /** True when it finished (or was transient) and every message up to the last one arrived. */
  complete: boolean;
  /** How many messages before the last one never arrived (0 when complete or unknown). */
  missing: number;
  /** Unix seconds of `born` (or of the transient message). */
  start?: number;
  /** Unix seconds of `finished`. */
  end?: number;
  /** Seconds from born to finished. */
  elapsed?: number;
  /** The messages folded into it, in arrival order, when `captureMessages` is on. */
  messages?: WireMessage[];
}

/** Options of {@link Collator}. */
export interface CollatorOptions {
  /**
   * Called with every object the collator gives out. `position` places it in the input, so that the
   * objects of several collators, each fed the messages of a share of the `obj_id`s of one stream,
   * can be merged into the order one collator fed the whole stream gives: given out by {@link
   * Collator.add}, the position of that message; by {@link Collator.flush} or {@link
   * Collator.expire}, the position of the message that made it wait for missing messages, or for an
   * object that never finished, of the message that opened it. (A flush gives out every waiting
   * object before the open ones.) Positions are those passed to `add`, by default a count of the
   * messages added.
   */
  onObject: (object: CollatedObject, position: number) => void;
  /**
   * How long (ms) a finished object waits for messages that have not arrived yet before it is given
   * out with `complete: false`. Only applied by {@link Collator.expire}.
   * @default 5000
   */
  gapTimeout?: number;
  /**
   * The most objects kept open at once; past it the oldest is evicted (given out as `open` when
   * `flushIncomplete` is on, otherwise counted in `evicted`).
   * @default 100000
   */
  maxOpen?: number;
  /**
   * How many completed ids are remembered, so that a late or redelivered message of an object
   * already given out is recognised and ignored.
   * @default 100000
   */
  rememberCompleted?: number;
  /**
   * Keep the folded messages on each object (`messages`).
   * @default false
   */
  captureMessages?: boolean;
  /**
   * Give evicted objects out as `open` rather than only counting them.
   * @default false
   */
  flushIncomplete?: boolean;
  /**
   * Called with the id of an open object dropped without being given out (evicted without
   * `flushIncomplete`), so that whoever holds something for it can let it go.
   * @default undefined
   */
  onDrop?: (id: string) => void;
  /**
   * Clock in ms, for the gap timeout.
   * @default Date.now
   */
  now?: () => number;
}

/** Counters of a {@link Collator}. */
export interface CollatorStats {
  /** Objects given out. */
  objects: number;
  /** Objects open now. */
  open: number;
  /** Messages ignored because their `seq` had been folded already. */
  duplicates: number;
  /** Messages ignored because their object had been given out already. */
  late: number;
  /** Open objects dropped to respect `maxOpen`. */
  evicted: number;
  /** Messages without `obj_id` and `obj` (a publisher's notes, such as the Python handler's announcement) left out: no object to fold them into. */
  notes: number;
}

interface Field {
  value: unknown;
  /** Highest seq that set or deleted the field. */
  seq: number;
  deleted: boolean;
  /** Lowest seq that set it, then its place in that message: the output order. */
  firstSeq: number;
  firstPos: number;
}

class Pending {
  readonly fields = new Map<string, Field>();
  status: MessageStatus | undefined;
  /** seq of the last message (finished / transient), -1 while unknown. */
  finalSeq = -1;
  /** Every seq below `low` has arrived. */
  low = 0;
  /** seqs at or above `low` that have arrived. */
  above: Set<number> | null = null;
  /** Arrival counter for messages without seq (Python streams). */
  auto = 0;
  reordered = false;
  maxSeq = -1;
  start?: number;
  end?: number;
  elapsed?: number;
  time0?: number;
  meta?: MessageMeta;
  finishedAt = 0;
  /** Input position of the message that made it wait for missing messages. */
  waitedAt = 0;
  messages?: WireMessage[];

  constructor(
    readonly id: string,
    /** Input position of the message that opened it. */
    readonly openedAt: number,
  ) {}

  /** Records a seq; false when it had arrived before. */
  mark(seq: number): boolean {
    if (seq < this.low) return false;
    if (seq === this.low) {
      this.low++;
      const above = this.above;
      if (above !== null && above.size > 0) {
        while (above.delete(this.low)) this.low++;
      }
    } else {
      if (this.above === null) this.above = new Set();
      else if (this.above.has(seq)) return false;
      this.above.add(seq);
    }
    if (seq < this.maxSeq) this.reordered = true;
    else this.maxSeq = seq;
    return true;
  }

  complete(): boolean {
    return this.finalSeq >= 0 && this.low > this.finalSeq;
  }

  missing(): number {
    if (this.finalSeq < 0) return 0;
    let have = this.low;
    if (this.above !== null) for (const s of this.above) if (s <= this.finalSeq) have++;
    return Math.max(0, this.finalSeq + 1 - have);
  }
}

/**
 * Folds messages into whole objects, independent of arrival order and of duplicates: a field takes
 * the value of the highest `seq` that set it, and an object is given out once it finished and every
 * message before its last has arrived (or, after `gapTimeout`, marked incomplete). Messages without
 * `seq` fold in arrival order. An `onObject` that is not a function throws a `ContextError`
 * (`LC_PROTOCOL_INVALID_OPTION`).
 *
 * @example
 * const c = new Collator({ onObject: (o) => console.log(o.object) });
 * for (const m of messages) c.add(m);
 * c.flush(true);
 */
export class Collator {
  private readonly open = new Map<string, Pending>();
  private readonly waiting = new Set<Pending>();
  /** Completed ids → the time_in of their birth, with a ticket naming their place in `doneOrder`. */
  private readonly done = new Map<string, { time0: number | undefined; ticket: number }>();
  /**
   * Completed ids in the order they completed, for forgetting the oldest. (Deleting the first key of
   * a Map over and over is quadratic: the deleted slots pile up at the front of V8's table.)
   */
  private doneOrder: Array<{ id: string; ticket: number }> = [];
  private doneHead = 0;
  private doneTicket = 0;
  private readonly onObject: (object: CollatedObject, position: number) => void;
  /** Messages added: the default input position. */
  private added = 0;
  private readonly gapTimeout: number;
  private readonly maxOpen: number;
  private readonly rememberCompleted: number;
  private readonly captureMessages: boolean;
  private readonly flushIncomplete: boolean;
  private readonly now: () => number;
  private readonly onDrop: ((id: string) => void) | undefined;
  private counts = { objects: 0, duplicates: 0, late: 0, evicted: 0, notes: 0 };

  constructor(options: CollatorOptions) {
    if (typeof options?.onObject !== 'function')
      throw new ContextError('LC_PROTOCOL_INVALID_OPTION', 'Collator: onObject must be a function');
    this.onObject = options.onObject;
    this.gapTimeout = options.gapTimeout ?? 5000;
    this.maxOpen = options.maxOpen ?? 100_000;
    this.rememberCompleted = options.rememberCompleted ?? 100_000;
    this.captureMessages = options.captureMessages ?? false;
    this.flushIncomplete = options.flushIncomplete ?? false;
    this.now = options.now ?? Date.now;
    this.onDrop = options.onDrop;
  }

  /**
   * Folds one (validated) message. `position` is where it stands in the input (increasing from one
   * message to the next; a line number, say), handed back with the objects it gives out. A note
   * (no `obj_id`, no `obj`) belongs to no object: it is counted in `notes` and left out.
   */
  add(message: BusMessage, meta?: MessageMeta, position: number = this.added): void {
    this.added++;
    const id = message.obj_id;
    if (id === undefined) {
      this.counts.notes++;
      return;
    }
    let p = this.open.get(id);
    if (p === undefined) {
      if (this.done.has(id)) {
        // A completed object: a redelivered or late message is ignored, but a new birth under a
        // reused guid (a transient object published again, say) starts a new object.
        const startsAnew =
          (message.status === 'born' || message.status === 'transient') &&
          (message.seq === 0 || message.seq === undefined) &&
          message.time_in !== this.done.get(id)!.time0;
        if (!startsAnew) {
          this.counts.late++;
          return;
        }
        this.done.delete(id);
      }
      p = new Pending(id, position);
      this.open.set(id, p);
      if (this.open.size > this.maxOpen) this.evict(this.open.values().next().value as Pending, position);
    }
    let seq = message.seq;
    if (seq === undefined) {
      seq = p.auto++;
    } else if (!p.mark(seq)) {
      this.counts.duplicates++;
      return;
    }
    if (this.captureMessages) (p.messages ??= []).push(message);
    if (p.meta === undefined && meta !== undefined && (meta.rkey !== undefined || meta.headers !== undefined))
      p.meta = meta;

    const deleted = message.action === 'delete';
    const obj = message.obj;
    let pos = 0;
    for (const key in obj) {
      if (!Object.hasOwn(obj, key)) continue;
      const f = p.fields.get(key);
      if (f === undefined) {
        p.fields.set(key, {
          value: deleted ? undefined : obj[key],
          seq,
          deleted,
          firstSeq: deleted ? Infinity : seq,
          firstPos: pos,
        });
      } else {
        if (seq >= f.seq) {
          f.seq = seq;
          f.deleted = deleted;
          f.value = deleted ? undefined : obj[key];
        }
        if (!deleted && (seq < f.firstSeq || (seq === f.firstSeq && pos < f.firstPos))) {
          f.firstSeq = seq;
          f.firstPos = pos;
        }
      }
      pos++;
    }

    const status = message.status;
    if (status === 'born') {
      if (p.status === undefined) p.status = 'born';
      if (message.time_in !== undefined) p.start = message.time_in;
      if (seq === 0 || message.seq === undefined) p.time0 = message.time_in;
    } else if (status === 'finished' || status === 'transient') {
      p.status = status;
      p.finalSeq = seq;
      if (message.seq === undefined) p.finalSeq = -2; // no seq: complete on arrival
      if (status === 'transient') {
        p.start = message.time_in;
        p.end = message.time_in;
        p.elapsed = 0;
        p.time0 = message.time_in;
      } else {
        p.end = message.time_in;
        p.elapsed = message.elapsed ?? (p.start !== undefined && p.end !== undefined ? p.end - p.start : undefined);
      }
      p.finishedAt = this.now();
    }
    if (p.finalSeq === -2 || p.complete()) {
      this.give(p, true, position);
    } else if (p.finalSeq >= 0 && !this.waiting.has(p)) {
      p.waitedAt = position;
      this.waiting.add(p);
    }
  }

  /** Gives out the finished objects whose gap timeout has passed, marked `complete: false`. */
  expire(now: number = this.now()): void {
    for (const p of this.waiting) {
      if (now - p.finishedAt >= this.gapTimeout) this.give(p, false, p.waitedAt);
    }
  }

  /**
   * Gives out every finished object still waiting for missing messages (`complete: false`) and,
   * with `includeOpen`, the objects that never finished (`status: 'open'`). Used at end of input.
   */
  flush(includeOpen = false): void {
    for (const p of this.waiting) this.give(p, false, p.waitedAt);
    if (includeOpen) for (const p of [...this.open.values()]) this.give(p, false, p.openedAt);
  }

  /** True while the object of `id` is open (folding messages, not given out yet). */
  isOpen(id: string): boolean {
    return this.open.has(id);
  }

  /**
   * Forces out the oldest open object, as happens past `maxOpen`: given out marked incomplete when
   * it had finished or with `flushIncomplete`, otherwise dropped (counted in `evicted`, and passed
   * to `onDrop`). False when no object is open.
   */
  evictOldest(): boolean {
    const first = this.open.values().next().value as Pending | undefined;
    if (first === undefined) return false;
    this.evict(first, first.openedAt);
    return true;
  }

  /** Counters since creation. */
  stats(): CollatorStats {
    return { ...this.counts, open: this.open.size };
  }

  private remember(id: string, time0: number | undefined): void {
    const ticket = ++this.doneTicket;
    this.done.set(id, { time0, ticket });
    this.doneOrder.push({ id, ticket });
    while (this.done.size > this.rememberCompleted && this.doneHead < this.doneOrder.length) {
      const oldest = this.doneOrder[this.doneHead++]!;
      // Skip entries of ids that started anew (and completed again) since.
      if (this.done.get(oldest.id)?.ticket === oldest.ticket) this.done.delete(oldest.id);
    }
    if (this.doneHead > 1024 && this.doneHead * 2 > this.doneOrder.length) {
      this.doneOrder = this.doneOrder.slice(this.doneHead);
      this.doneHead = 0;
    }
  }

  private evict(p: Pending, position: number): void {
    if (p.finalSeq >= 0 || this.flushIncomplete) {
      this.give(p, false, position);
    } else {
      this.open.delete(p.id);
      this.waiting.delete(p);
      this.counts.evicted++;
      this.onDrop?.(p.id);
    }
  }

  private give(p: Pending, complete: boolean, position: number): void {
    this.open.delete(p.id);
    this.waiting.delete(p);
    if (p.status === 'finished' || p.status === 'transient') {
      this.remember(p.id, p.time0);
    }
    this.counts.objects++;
    this.onObject(this.build(p, complete), position);
  }

  private build(p: Pending, complete: boolean): CollatedObject {
    let entries: Iterable<[string, Field]> = p.fields;
    if (p.reordered) {
      entries = [...p.fields].sort((a, b) => a[1].firstSeq - b[1].firstSeq || a[1].firstPos - b[1].firstPos);
    }
    const object: Record<string, unknown> = {};
    for (const [key, f] of entries) if (!f.deleted) setOwn(object, key, f.value);
    const out: CollatedObject = {
      id: p.id,
      object,
      status: p.status === undefined || p.status === 'born' ? 'open' : p.status,
      complete,
      missing: complete ? 0 : p.missing(),
    };
    if (p.meta?.rkey !== undefined) out.rkey = p.meta.rkey;
    if (p.meta?.headers !== undefined) out.headers = p.meta.headers;
    if (p.start !== undefined) out.start = p.start;
    if (p.end !== undefined) out.end = p.end;
    if (p.elapsed !== undefined) out.elapsed = p.elapsed;
    if (p.messages !== undefined) out.messages = p.messages;
    return out;
  }
}
