/**
 * Step 3 of a message's way out: Context → BoundedBuffer → **Publisher** → Transport → broker.
 *
 * The publisher takes messages from the front of the Handler's buffer, sends them through the
 * transport in units (one message, or a window packed per route), keeps each unit in flight until
 * the transport confirms or refuses it, and settles it: counted as published, sent again after a
 * refusal (at most three times in all), put back at the front of the buffer when the connection is
 * lost, or dropped (larger than the broker takes, once the transport learned its limit). The
 * Handler around it owns the lifecycle: connecting, reconnecting, heartbeats, `flush()` and
 * `close()`.
 */
import type { BoundedBuffer } from './bounded-buffer.js';
import { countUnconfirmed, type Entry } from './entry.js';
import type { ResolvedHandlerOptions } from './handler-options.js';
import type { LogFields } from './logger.js';
import type { Transport } from './transports/transport.js';

/** Messages sent together, and the connection (its generation) they were sent on. */
interface Unit {
  readonly entries: Entry[];
  readonly gen: number;
}

/** What a {@link Publisher} asks of the Handler it works for. */
export interface PublisherHost {
  /** The transport, once the handler has made it. */
  transport(): Transport | null;
  /** True while the handler is connected: sending is allowed. */
  connected(): boolean;
  /** Counts `n` messages as dropped, `unconfirmed` of them sent and never confirmed (they may have been delivered). */
  drop(n: number, unconfirmed?: number): void;
  /** Keeps `err` as the handler's last error (passwords masked). */
  noteError(err: unknown): void;
  /** The handler's last error, as kept. */
  lastError(): string | null;
  /** Says something on the handler's logger, at warn level. */
  warn(fields: LogFields, message: string): void;
  /** The connection died under a send, before the transport said so. */
  lost(err: Error): void;
  /** Nothing is queued or in flight any more: `flush()` may resolve. */
  idle(): void;
  /** Sending made room in the buffer: `ready()` may resolve. */
  space(): void;
  /** The transport confirmed a send: the connection works. */
  delivered(): void;
}

/** The options a {@link Publisher} reads. */
export type PublisherOptions = Pick<ResolvedHandlerOptions, 'flushInterval' | 'maxInFlight' | 'batchSize'>;

/** Sends what the buffer holds through the transport and settles it. */
export class Publisher {
  /** Messages the transport confirmed. */
  published = 0;
  /** True while the broker asks publishers to stop (resource alarm). */
  blocked = false;
  private readonly inflight = new Set<Unit>();
  private inflightEntries = 0;
  /** Bumped at every connection loss: a refusal of a unit sent before it is that loss, not a nack. */
  private gen = 0;
  private flushTimer: NodeJS.Timeout | null = null;
  private waitingDrain = false;
  /** A message larger than the broker takes was dropped: said once. */
  private saidTooLarge = false;
  /**
   * Messages refused since the last warning about them, when that was, and the timer that says
   * them at the end of its 10 s should nothing more be refused by then.
   */
  private refused: { at: number; count: number; timer: NodeJS.Timeout | null } = {
    at: -Infinity,
    count: 0,
    timer: null,
  };

  constructor(
    private readonly buffer: BoundedBuffer<Entry>,
    private readonly options: Readonly<PublisherOptions>,
    /** The handler's id as JSON, carried by every message. */
    private readonly idJson: string,
    private readonly host: PublisherHost,
  ) {}

  /** Messages sent and not yet confirmed. */
  get inFlight(): number {
    return this.inflightEntries;
  }

  /** True when nothing is queued or in flight. */
  get idle(): boolean {
    return this.buffer.length === 0 && this.inflightEntries === 0;
  }

  /** Sends within `flushInterval` ms, unless a send is already due. */
  schedule(): void {
    if (this.flushTimer !== null) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.pump();
    }, this.options.flushInterval);
    this.flushTimer.unref();
  }

  /** Forgets a send that was due. */
  cancel(): void {
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
  }

  /** A new connection: no backpressure or alarm carries over from the last one. */
  connected(): void {
    this.waitingDrain = false;
    this.blocked = false;
  }

  /** The transport can take more after `send` returned false. */
  drained(): void {
    this.waitingDrain = false;
    this.pump();
  }

  /** The broker lifted its resource alarm. */
  unblocked(): void {
    this.blocked = false;
    this.pump();
  }

  /**
   * The connection is lost: unconfirmed messages go back to the front of the buffer, in order, so
   * an outage shorter than the buffer loses nothing. Late answers about them are ignored.
   */
  requeue(): void {
    this.gen++;
    if (this.inflight.size === 0) return;
    // A broker that closed the channel for a message too large said how large it takes: such a
    // message was refused, not delivered, and is dropped rather than sent again.
    const limit = this.host.transport()?.maxMessageSize ?? null;
    const back: Entry[] = [];
    let tooLarge = 0;
    for (const u of this.inflight)
      for (const e of u.entries) {
        if (limit !== null && surelyLarger(e, limit)) {
          tooLarge++;
          continue;
        }
        // The broker may have routed it and the confirm been lost with the connection.
        e.unconfirmed = true;
        back.push(e);
      }
    this.inflight.clear();
    this.inflightEntries = 0;
    if (tooLarge > 0) this.dropTooLarge(tooLarge, limit!);
    const dropped = this.buffer.unshiftAll(back);
    if (dropped.length > 0) this.host.drop(dropped.length, countUnconfirmed(dropped));
  }

  /**
   * Counts `n` messages larger than the broker's `limit` as dropped (never delivered: the broker
   * refuses them); the first time, says so, and that every later one that large is dropped too.
   */
  private dropTooLarge(n: number, limit: number): void {
    this.host.drop(n, 0);
    if (this.saidTooLarge) return;
    this.saidTooLarge = true;
    this.host.warn(
      { code: 'LC_MESSAGE_TOO_LARGE', dropped: n, maxMessageSize: limit },
      `${n} message(s) dropped: larger than the broker takes (max_message_size ${limit} bytes); so is every later one that large (counted in stats().dropped)`,
    );
  }

  /**
   * Empties the buffer and forgets what is in flight (the handler closed); returns how many that
   * was, and how many of them were sent and never confirmed (they may have been delivered).
   */
  discard(): { left: number; unconfirmed: number } {
    // Refusals not said yet are said now: the timer that would have said them dies with the handler.
    this.sayRefused();
    const left = this.buffer.length + this.inflightEntries;
    let unconfirmed = 0;
    if (left > 0) {
      unconfirmed = countUnconfirmed(this.buffer.drain()) + this.inflightEntries;
      this.inflight.clear();
      this.inflightEntries = 0;
    }
    return { left, unconfirmed };
  }

  /** Sends as much as the transport and the in-flight limit allow. */
  pump(): void {
    this.cancel();
    const t = this.host.transport();
    if (!this.host.connected() || t === null || this.waitingDrain || this.blocked) return;
    this.sendAll(t, this.options.maxInFlight);
    this.host.space();
  }

  private sendAll(t: Transport, max: number): void {
    if (t.grouping === 'single') {
      while (this.buffer.length > 0 && this.inflightEntries < max) {
        if (!this.transmit(t, this.track([this.buffer.shift()!]))) return;
      }
      return;
    }
    while (this.buffer.length > 0 && this.inflightEntries < max) {
      // Every unit of the window is in flight before the first is sent: a connection lost midway
      // puts them all back in the buffer, in order, rather than losing those not sent yet.
      const units = this.take(t.grouping).map((entries) => this.track(entries));
      for (const unit of units) {
        if (!this.host.connected()) return;
        this.transmit(t, unit);
      }
      if (this.waitingDrain) return;
    }
  }

  /** `entries` as a unit in flight. */
  private track(entries: Entry[]): Unit {
    const unit: Unit = { entries, gen: this.gen };
    this.inflight.add(unit);
    this.inflightEntries += entries.length;
    return unit;
  }

  /** Sends a unit in flight; false when sending must stop (backpressure or a dead channel). */
  private transmit(t: Transport, unit: Unit): boolean {
    let more: boolean;
    try {
      more = t.send(unit.entries, this.idJson, this.buffer.length, (err) => this.settle(unit, err));
    } catch (err) {
      if ((err as { tooLarge?: unknown } | null)?.tooLarge === true) return this.tooLarge(t, unit, err as Error);
      // amqplib says a channel or connection closing or closed with an IllegalOperationError;
      // anything else it throws is about this message (it could not encode it).
      const name = (err as Error)?.name;
      if (
        t.open &&
        name !== 'IllegalOperationError' &&
        !/clos(ed|ing)|ended|not connected/i.test(String((err as Error)?.message))
      ) {
        // Dropped, and counted; the connection and the messages after it go on.
        this.inflight.delete(unit);
        this.inflightEntries -= unit.entries.length;
        this.host.noteError(err);
        this.host.drop(unit.entries.length, countUnconfirmed(unit.entries));
        this.warnRefused(unit.entries.length);
        this.wakeIfIdle();
        return true;
      }
      // The channel died under us before its close event: treat it as the connection loss it is.
      this.host.noteError(err);
      t.destroy();
      this.host.lost(err as Error);
      return false;
    }
    if (!more) this.waitingDrain = true;
    return more;
  }

  /**
   * The transport refused a unit larger than the broker takes, before sending it. One message is
   * dropped; several packed together are sent one by one instead (each may fit on its own).
   */
  private tooLarge(t: Transport, unit: Unit, err: Error): boolean {
    this.inflight.delete(unit);
    this.inflightEntries -= unit.entries.length;
    if (unit.entries.length > 1) {
      const units = unit.entries.map((e) => this.track([e]));
      for (const u of units) {
        if (!this.host.connected()) return false;
        this.transmit(t, u);
      }
      return !this.waitingDrain;
    }
    this.host.noteError(err);
    this.dropTooLarge(1, t.maxMessageSize ?? 0);
    this.wakeIfIdle();
    return true;
  }

  /**
   * Says on the logger that messages were refused: at once, then at most every 10 s with the count
   * since (those refused within the 10 s are said at their end, or when the handler closes).
   */
  private warnRefused(n: number): void {
    const r = this.refused;
    r.count += n;
    const wait = r.at + 10_000 - Date.now();
    if (wait <= 0) {
      this.sayRefused();
      return;
    }
    if (r.timer === null) {
      r.timer = setTimeout(() => {
        r.timer = null;
        this.sayRefused();
      }, wait);
      r.timer.unref();
    }
  }

  private sayRefused(): void {
    const r = this.refused;
    if (r.timer !== null) {
      clearTimeout(r.timer);
      r.timer = null;
    }
    if (r.count === 0) return;
    this.host.warn(
      { code: 'LC_PUBLISH_REFUSED', dropped: r.count, lastError: this.host.lastError() },
      `${r.count} message(s) could not be sent and were dropped (${this.host.lastError()})`,
    );
    r.at = Date.now();
    r.count = 0;
  }

  /**
   * The next units to send, oldest first. `route` grouping takes a window of up to `batchSize`
   * messages and packs it per route (routing key and headers), keeping each route's order.
   */
  private take(grouping: Transport['grouping']): Entry[][] {
    const first = this.buffer.shift()!;
    if (grouping === 'single') return [[first]];
    const limit = this.options.batchSize;
    const window = [first];
    let bytes = first.objJson.length;
    while (window.length < limit && bytes < 262_144 && this.buffer.length > 0) {
      const next = this.buffer.shift()!;
      window.push(next);
      bytes += next.objJson.length;
    }
    if (grouping === 'any') return [window];
    const byRoute = new Map<string, Entry[]>();
    for (const e of window) {
      const list = byRoute.get(e.route.key);
      if (list === undefined) byRoute.set(e.route.key, [e]);
      else list.push(e);
    }
    return [...byRoute.values()];
  }

  private settle(unit: Unit, err?: Error): void {
    if (!this.inflight.has(unit)) return; // requeued by a connection loss already
    if (err === undefined) {
      this.inflight.delete(unit);
      this.inflightEntries -= unit.entries.length;
      this.published += unit.entries.length;
      this.host.delivered();
      if (this.buffer.length > 0) {
        if (this.flushTimer === null && !this.waitingDrain) this.pump();
      } else {
        this.wakeIfIdle();
      }
      return;
    }
    // An error while the connection stays up is a nack; one that comes with a connection loss is
    // handled by requeue(), which puts every unconfirmed unit back in order.
    setImmediate(() => {
      if (!this.inflight.has(unit) || unit.gen !== this.gen || !this.host.transport()?.open) return;
      this.inflight.delete(unit);
      this.inflightEntries -= unit.entries.length;
      this.host.noteError(err);
      const retry: Entry[] = [];
      const dropped: Entry[] = [];
      for (const e of unit.entries) (++e.attempts < 3 ? retry : dropped).push(e);
      dropped.push(...this.buffer.unshiftAll(retry));
      if (dropped.length > 0) {
        this.host.drop(dropped.length, countUnconfirmed(dropped));
        // Refused three times (a nack, a write that failed): said, not only counted.
        this.warnRefused(dropped.length);
      }
      this.pump();
      this.wakeIfIdle();
    });
  }

  /** Tells the handler when nothing is queued or in flight any more. */
  private wakeIfIdle(): void {
    if (this.idle) this.host.idle();
  }
}

/**
 * True when the body of `e` is certainly larger than `limit` bytes: its `obj` alone is (the rest
 * of a body is a few hundred bytes more, checked exactly when it is sent).
 */
function surelyLarger(e: Entry, limit: number): boolean {
  const n = e.objJson.length;
  // UTF-8 takes at least one byte and at most three per UTF-16 unit.
  if (n > limit) return true;
  return n * 3 > limit && Buffer.byteLength(e.objJson) > limit;
}
