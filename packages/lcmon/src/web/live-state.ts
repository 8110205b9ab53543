import { Collator, setOwn, type BusMessage, type CollatedObject, type MessageMeta } from '@contexture/context/protocol';
import { type LiveStateOptions, LIVE_STATE_DEFAULTS } from './live-state-options.js';

/** One message of an object's change history, as the page shows it. */
export interface HistoryEntry {
  seq?: number;
  /** Unix seconds the change happened (`time_in`), else when it arrived. */
  time: number;
  status?: string;
  action?: string;
  fields: Record<string, unknown>;
}

/** What the page knows of one object. */
export interface ObjectView {
  id: string;
  rkey?: string;
  /** `open` while it folds messages; the collator's status once it gave the object out. */
  status: 'open' | 'finished' | 'transient';
  /** With status finished or transient: every message up to the last one arrived. */
  complete?: boolean;
  /** Unix seconds of its first message (born, or the first seen). */
  start: number;
  /** Unix seconds of its last change. */
  last: number;
  /** Its current fields. */
  fields: Record<string, unknown>;
  /** The fields the last message set or deleted. */
  changed: string[];
  /** Messages folded into it. */
  messages: number;
  /** Messages folded since the page was last told (coalesced into one update). */
  coalesced: number;
}

/** Counters the page shows. */
export interface LiveCounters {
  messages: number;
  malformed: number;
  open: number;
  /** Objects dropped to respect `maxObjects`. */
  droppedObjects: number;
  /** History entries dropped to respect `maxHistory`. */
  droppedHistory: number;
  /** Messages folded into an update that carried others too. */
  coalesced: number;
}

interface Field {
  value: unknown;
  seq: number;
  deleted: boolean;
}

class Entry {
  readonly fields = new Map<string, Field>();
  readonly history: HistoryEntry[] = [];
  /** Arrival counter for messages without seq. */
  auto = 0;
  view: ObjectView;
  /** When (ms) a finished object leaves. */
  leaveAt = 0;
  constructor(id: string, time: number) {
    this.view = { id, status: 'open', start: time, last: time, fields: {}, changed: [], messages: 0, coalesced: 0 };
  }
}

/**
 * The server side of `lcmon --web`: the open objects of the stream, each with its current fields
 * and a bounded change history, and the recently finished ones until they have faded. Completion
 * is decided by the protocol's {@link Collator} (sequence gaps, duplicates, late messages), as for
 * `lcmon -c`. Memory is bounded: at most `maxObjects` objects (the oldest go first, counted) and
 * `maxHistory` messages of history each (the oldest go first, counted). Changes are not pushed:
 * {@link takeDirty} hands out each changed object once, however many messages changed it since.
 */
export class LiveState {
  private readonly entries = new Map<string, Entry>();
  private readonly dirty = new Set<string>();
  /** Ids removed (dropped, or faded) since the last {@link takeDirty}. */
  private readonly gone = new Set<string>();
  private readonly collator: Collator;
  private readonly opts: Required<LiveStateOptions>;
  private readonly counts = { messages: 0, malformed: 0, droppedObjects: 0, droppedHistory: 0, coalesced: 0 };

  constructor(options: LiveStateOptions = {}) {
    this.opts = { ...LIVE_STATE_DEFAULTS, ...options };
    this.collator = new Collator({
      onObject: (o) => this.finished(o),
      onDrop: (id) => this.drop(id),
      maxOpen: this.opts.maxObjects,
      // Late messages of objects given out are recognised among the last this many; an older one
      // opens an object that is dropped in its turn. (The default, 100,000, costs more than the page.)
      rememberCompleted: this.opts.maxObjects,
      now: this.opts.now,
    });
  }

  /** Folds one valid message. */
  add(message: BusMessage, meta: MessageMeta): void {
    this.counts.messages++;
    const id = message.obj_id;
    if (id === undefined) return;
    const now = this.opts.now();
    const time = typeof message.time_in === 'number' ? message.time_in : now / 1000;
    let e = this.entries.get(id);
    const startsAnew =
      e !== undefined && e.view.status !== 'open' && (message.status === 'born' || message.status === 'transient');
    if (e === undefined || startsAnew) {
      if (e !== undefined) this.entries.delete(id);
      e = new Entry(id, time);
      this.entries.set(id, e);
      if (this.entries.size > this.opts.maxObjects) this.dropOldest();
    } else if (e.view.status !== 'open') {
      // A late or redelivered message of an object already given out: the collator ignores it too.
      this.collator.add(message, meta);
      return;
    }
    const v = e.view;
    if (v.rkey === undefined && meta.rkey !== undefined) v.rkey = meta.rkey;
    const seq = message.seq ?? e.auto++;
    const deleted = message.action === 'delete';
    const changed: string[] = [];
    for (const key in message.obj) {
      if (!Object.hasOwn(message.obj, key)) continue;
      changed.push(key);
      const f = e.fields.get(key);
      const value = deleted ? undefined : message.obj[key];
      if (f === undefined) e.fields.set(key, { value, seq, deleted });
      else if (seq >= f.seq) {
        f.value = value;
        f.seq = seq;
        f.deleted = deleted;
      }
    }
    if (message.status === 'born' && typeof message.time_in === 'number') v.start = message.time_in;
    v.last = Math.max(v.last, time);
    v.changed = changed;
    v.messages++;
    if (this.dirty.has(id)) {
      v.coalesced++;
      this.counts.coalesced++;
    } else this.dirty.add(id);
    const h: HistoryEntry = { time, fields: message.obj };
    if (message.seq !== undefined) h.seq = message.seq;
    if (message.status !== undefined) h.status = message.status;
    if (message.action !== undefined) h.action = message.action;
    e.history.push(h);
    if (e.history.length > this.opts.maxHistory) {
      e.history.shift();
      this.counts.droppedHistory++;
    }
    v.fields = this.fieldsOf(e);
    this.collator.add(message, meta);
    // The collator ignored it (a late message of an object given out and faded already): no object.
    if (v.status === 'open' && !this.collator.isOpen(id)) {
      this.entries.delete(id);
      this.dirty.delete(id);
    }
  }

  /** A body that is not a valid message. */
  malformed(): void {
    this.counts.malformed++;
  }

  /**
   * Gives out finished objects whose missing messages did not come in time, and removes the
   * finished objects that have faded.
   */
  tick(now: number = this.opts.now()): void {
    this.collator.expire(now);
    for (const e of this.entries.values()) {
      if (e.view.status !== 'open' && e.leaveAt <= now) this.remove(e.view.id);
    }
  }

  /** The objects changed since the last call, each once, and the ids removed since. */
  takeDirty(): { changed: ObjectView[]; gone: string[] } {
    const changed: ObjectView[] = [];
    for (const id of this.dirty) {
      const e = this.entries.get(id);
      if (e === undefined) continue;
      changed.push({ ...e.view });
      e.view.coalesced = 0;
    }
    this.dirty.clear();
    const gone = [...this.gone];
    this.gone.clear();
    return { changed, gone };
  }

  /** Every object known now (for a page that just connected). */
  snapshot(): ObjectView[] {
    return [...this.entries.values()].map((e) => ({ ...e.view }));
  }

  /** One object with its history, or undefined when it is not (or no longer) known. */
  detail(id: string): (ObjectView & { history: HistoryEntry[] }) | undefined {
    const e = this.entries.get(id);
    return e === undefined ? undefined : { ...e.view, history: [...e.history] };
  }

  counters(): LiveCounters {
    let open = 0;
    for (const e of this.entries.values()) if (e.view.status === 'open') open++;
    return { ...this.counts, open };
  }

  private fieldsOf(e: Entry): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, f] of e.fields) if (!f.deleted) setOwn(out, k, f.value);
    return out;
  }

  /** The collator gave an object out: finished (or transient), complete or not, or evicted open. */
  private finished(o: CollatedObject): void {
    const e = this.entries.get(o.id);
    if (e === undefined) return;
    if (o.status === 'open' || o.status === 'born') {
      this.counts.droppedObjects++;
      this.remove(o.id);
      return;
    }
    const v = e.view;
    v.status = o.status;
    v.complete = o.complete;
    v.fields = o.object;
    if (o.start !== undefined) v.start = o.start;
    if (o.end !== undefined) v.last = Math.max(v.last, o.end);
    e.leaveAt = this.opts.now() + this.opts.fadeMs;
    this.dirty.add(o.id);
  }

  private drop(id: string): void {
    if (!this.entries.has(id)) return;
    this.counts.droppedObjects++;
    this.remove(id);
  }

  private dropOldest(): void {
    // Finished objects go first: they are only fading.
    for (const e of this.entries.values()) {
      if (e.view.status !== 'open') {
        this.remove(e.view.id);
        this.counts.droppedObjects++;
        return;
      }
    }
    const first = this.entries.keys().next().value as string;
    // The collator evicts its oldest open object on its own (it has the same cap); here the view goes.
    this.remove(first);
    this.counts.droppedObjects++;
  }

  private remove(id: string): void {
    this.entries.delete(id);
    this.dirty.delete(id);
    this.gone.add(id);
  }
}
