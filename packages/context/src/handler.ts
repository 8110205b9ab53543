import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { BoundedBuffer } from './bounded-buffer.js';
import type { Entry, Route } from './entry.js';
import { redactText, redactUrl } from './redact.js';
import { ContextError } from './errors.js';
import { AmqpTransport } from './transports/amqp-transport.js';
import { JsonlTransport } from './transports/jsonl-transport.js';
import type { Transport } from './transports/transport.js';
import {
  HEARTBEAT_RKEY,
  HEARTBEAT_TYPE,
  encodeHeartbeat,
  isReservedRkey,
  type Heartbeat,
} from './protocol/heartbeat.js';
import { RESERVED_RKEY_PREFIX } from './protocol/message.js';
import {
  HANDLER_DEFAULTS,
  validateHandlerOptions,
  type HandlerOptions,
  type ResolvedHandlerOptions,
} from './handler-options.js';

/** Lifecycle of a {@link Handler}. */
export type HandlerStatus = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'closing' | 'closed';

/** Counters of a {@link Handler}; `enqueued = published + dropped + queued + inFlight` at every moment. */
export interface HandlerStats {
  status: HandlerStatus;
  /** Messages accepted from contexts. */
  enqueued: number;
  /** Messages the broker (or the file) confirmed. */
  published: number;
  /** Messages dropped: buffer overflow, refused by the broker three times, or left at close. */
  dropped: number;
  /** Messages waiting in the buffer. */
  queued: number;
  /** Messages sent and not yet confirmed. */
  inFlight: number;
  /** Successful connections after the first. */
  reconnects: number;
  /** The last connection or publish error (passwords masked), or null. */
  lastError: string | null;
  /** True while the broker asks publishers to stop (resource alarm). */
  blocked: boolean;
  /** Heartbeats published (see `heartbeatInterval`). */
  heartbeats: number;
}

interface Unit {
  readonly entries: Entry[];
  readonly gen: number;
}

const live = new Set<Handler>();
let exitHooks = false;

function installExitHooks(): void {
  if (exitHooks) return;
  exitHooks = true;
  // `wait: true`: when the program has nothing left to do, drain before letting it exit.
  process.on('beforeExit', () => {
    for (const h of live) h._beforeExit();
  });
  // Nothing is lost silently: what is still buffered when the process exits is said on stderr.
  process.on('exit', () => {
    for (const h of live) h._atExit();
  });
}

/**
 * The publisher: a bounded buffer of context messages, flushed in the background to a transport
 * (AMQP or JSON lines) that reconnects by itself. It never throws into the program and never keeps
 * the process alive on its own.
 *
 * @example
 * const handler = new Handler({ url: 'amqp://guest:guest@127.0.0.1:5672/%2F', bufferSize: 10000 });
 * const ctx = new Context({ name: 'jobs.import', handler });
 * await handler.close();
 */
export class Handler extends EventEmitter {
  /** This handler's uuid, carried by every message as `handler_id`. */
  readonly id: string = randomUUID();
  /** The resolved options; `url` with its password masked (what is printed and logged). */
  readonly options: Readonly<ResolvedHandlerOptions>;
  /** The URL with its password: only the transport gets it. */
  readonly #url: string;
  private readonly idJson: string;
  private readonly buffer: BoundedBuffer<Entry>;
  private readonly inflight = new Set<Unit>();
  private inflightEntries = 0;
  private gen = 0;
  private transport: Transport | null = null;
  private _status: HandlerStatus = 'idle';
  private flushTimer: NodeJS.Timeout | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private waitingDrain = false;
  private blocked = false;
  private connectedOnce = false;
  private outage: { since: number; dropped: number } | null = null;
  /** flush() calls waiting: told true once everything is confirmed, false when the handler closed with messages left. */
  private idleWaiters: Array<(ok: boolean) => void> = [];
  private spaceWaiters: Array<() => void> = [];
  private closePromise: Promise<void> | null = null;
  private exitFlushed = false;
  private readonly routes = new Map<string, Route>();
  private readonly baseHeaders: Record<string, unknown>;
  private counts = { enqueued: 0, published: 0, dropped: 0, reconnects: 0 };
  private lastError: string | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private readonly startedAt = Date.now() / 1000;
  private lastBeat: { at: number; published: number } | null = null;
  private heartbeatsSent = 0;
  /** Messages the client library refused since the last warning about them, and when that was. */
  private refused = { at: -Infinity, count: 0 };

  constructor(options: HandlerOptions = {}) {
    super();
    const resolved = validateHandlerOptions({ ...HANDLER_DEFAULTS, ...stripUndefined(options) }, 'Handler options');
    this.#url = resolved.url;
    this.options = Object.freeze({ ...resolved, url: redactUrl(resolved.url) });
    this.idJson = JSON.stringify(this.id);
    this.buffer = new BoundedBuffer<Entry>(this.options.bufferSize, this.options.overflow);
    this.baseHeaders = { hostname: os.hostname(), ...this.options.headers };
    live.add(this);
    installExitHooks();
  }

  get status(): HandlerStatus {
    return this._status;
  }

  /** Counters; see {@link HandlerStats}. */
  stats(): HandlerStats {
    return {
      status: this._status,
      enqueued: this.counts.enqueued,
      published: this.counts.published,
      dropped: this.counts.dropped,
      queued: this.buffer.length,
      inFlight: this.inflightEntries,
      reconnects: this.counts.reconnects,
      lastError: this.lastError,
      blocked: this.blocked,
      heartbeats: this.heartbeatsSent,
    };
  }

  /**
   * The heartbeat this handler publishes every `heartbeatInterval` ms while connected to a broker:
   * who it is and its counters, with the publish rate since the previous one.
   */
  heartbeat(state: Heartbeat['state'] = 'running'): Heartbeat {
    const now = Date.now();
    const published = this.counts.published;
    const last = this.lastBeat;
    const rate = last === null || now <= last.at ? 0 : ((published - last.published) * 1000) / (now - last.at);
    return {
      type: HEARTBEAT_TYPE,
      id: this.id,
      kind: 'handler',
      name: programName(),
      host: os.hostname(),
      pid: process.pid,
      state,
      interval: this.options.heartbeatInterval,
      started_at: this.startedAt,
      time: now / 1000,
      stats: {
        queued: this.buffer.length,
        in_flight: this.inflightEntries,
        enqueued: this.counts.enqueued,
        published,
        dropped: this.counts.dropped,
        published_per_s: Math.round(rate * 10) / 10,
        reconnects: this.counts.reconnects,
        blocked: this.blocked ? 1 : 0,
      },
    };
  }

  /**
   * The route (routing key and merged headers) of a context. The handler's headers (always
   * `hostname`) are merged with the context's own, which win.
   */
  route(rkey: string, headers?: Readonly<Record<string, unknown>>): Route {
    if (headers === undefined) {
      let r = this.routes.get(rkey);
      if (r === undefined) {
        r = makeRoute(rkey, this.baseHeaders);
        if (this.routes.size < 10_000) this.routes.set(rkey, r);
      }
      return r;
    }
    return makeRoute(rkey, { ...this.baseHeaders, ...headers });
  }

  /**
   * Queues one message. Never throws; after close the message is counted as dropped.
   * @internal used by Context
   */
  enqueue(entry: Entry): void {
    this.counts.enqueued++;
    if (this._status === 'closing' || this._status === 'closed') {
      this.drop(1);
      return;
    }
    const dropped = this.buffer.push(entry);
    if (dropped !== undefined) this.drop(1);
    if (this._status === 'idle') this.start();
    else if (this.flushTimer === null && this._status === 'connected') this.scheduleFlush();
  }

  /**
   * Resolves when the buffer is below its capacity: the backpressure of the `block` policy.
   * Resolves at once when there is room (and always with the drop policies).
   */
  ready(): Promise<void> {
    if (!this.buffer.full || this.options.overflow !== 'block' || this._status === 'closed') return Promise.resolve();
    return new Promise((resolve) => this.spaceWaiters.push(resolve));
  }

  /**
   * Publishes what is buffered now and waits for the broker to confirm it all. Resolves true once
   * nothing is queued or in flight, false if `timeout` ms pass first (or the handler closes).
   * Keeps the process alive while it waits.
   */
  flush(timeout = Infinity): Promise<boolean> {
    if (this.isIdle()) return Promise.resolve(true);
    if (this._status === 'closed') return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout;
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve(ok);
      };
      // A ref'ed timer: the program awaiting this stays alive though the socket is unref'ed.
      timer = setTimeout(() => done(false), Math.min(timeout, 2 ** 31 - 1));
      this.idleWaiters.push(done);
      // Sending may settle everything at once (a message refused as it is sent): waited for first.
      if (this._status === 'idle') this.start();
      else if (this._status === 'connected') this.pump();
      if (this.isIdle()) done(true);
    });
  }

  /**
   * Flushes (up to `closeTimeout` ms), then closes the connection. What could not be published by
   * then is counted as dropped. Idempotent: every caller gets the same promise.
   */
  close(): Promise<void> {
    if (this.closePromise !== null) return this.closePromise;
    this.closePromise = (async () => {
      // One deadline for flushing and closing the connection both.
      const deadline = performance.now() + this.options.closeTimeout;
      // Flushing leaves some of it for the connection to close in good order.
      const grace = Math.min(500, this.options.closeTimeout / 4);
      if (this._status !== 'idle' || !this.isIdle()) await this.flush(this.options.closeTimeout - grace);
      // The last heartbeat says it is going, so registries drop it now rather than at its timeout.
      if (this._status === 'connected') this.beat('stopped');
      this.shutdown();
      const t = this.transport;
      // The socket is unref'ed: hold the process open (bounded) while the connection closes, and
      // cut it if it has not closed by the deadline (a broker that stopped answering).
      if (
        t !== null &&
        !(await keepAlive(
          t.close().catch(() => {}),
          deadline - performance.now(),
        ))
      )
        t.destroy();
    })();
    return this.closePromise;
  }

  /** Closes at once; whatever is queued or in flight is counted as dropped. */
  destroy(): void {
    this.shutdown();
    this.transport?.destroy();
    if (this.closePromise === null) this.closePromise = Promise.resolve();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal */
  _beforeExit(): void {
    if (!this.options.wait || this.exitFlushed || this.isIdle() || this._status === 'closed') return;
    this.exitFlushed = true;
    void this.flush(this.options.waitTimeout);
  }

  /** @internal */
  _atExit(): void {
    const left = this.buffer.length + this.inflightEntries;
    if (left > 0 && this._status !== 'closed') {
      this.warn(
        `${left} message(s) not published before the process exited${this.options.wait ? '' : ' (wait: true drains before exit)'}`,
      );
    }
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    // A throwing listener must not break the publisher.
    try {
      return super.emit(event, ...args);
    } catch (err) {
      this.lastError = `listener of '${String(event)}' threw: ${redactText(String((err as Error)?.message ?? err))}`;
      return true;
    }
  }

  private isIdle(): boolean {
    return this.buffer.length === 0 && this.inflightEntries === 0;
  }

  private shutdown(): void {
    if (this._status === 'closed') return;
    this._status = 'closed';
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.flushTimer = this.reconnectTimer = this.heartbeatTimer = null;
    const left = this.buffer.length + this.inflightEntries;
    if (left > 0) {
      this.buffer.drain();
      this.inflight.clear();
      this.inflightEntries = 0;
      this.drop(left);
      this.warn(`closed with ${left} message(s) unpublished; counted as dropped`);
    }
    live.delete(this);
    for (const w of this.spaceWaiters.splice(0)) w();
    for (const w of this.idleWaiters.splice(0)) w(left === 0);
  }

  private drop(n: number): void {
    this.counts.dropped += n;
    if (this.listenerCount('drop') > 0) this.emit('drop', n);
  }

  private warn(message: string): void {
    const logger = this.options.logger;
    if (logger === null) return;
    try {
      logger.warn(`contexture: ${message}`);
    } catch {
      /* a broken logger must not break the publisher */
    }
  }

  private start(): void {
    if (this.transport === null) this.transport = this.createTransport();
    void this.connect();
  }

  private createTransport(): Transport {
    const o = this.options;
    const t: Transport = this.#url.startsWith('jsonl:')
      ? new JsonlTransport(this.#url)
      : new AmqpTransport({
          url: this.#url,
          exchange: o.exchange,
          exchangeType: o.exchangeType,
          batch: o.batch,
          persistent: o.persistent,
          connectTimeout: o.connectTimeout,
          connectionName: `contexture ${os.hostname()} pid ${process.pid}`,
        });
    t.on('close', (err?: Error) => this.onLost(err));
    t.on('drain', () => {
      this.waitingDrain = false;
      this.pump();
    });
    t.on('blocked', () => {
      this.blocked = true;
    });
    t.on('unblocked', () => {
      this.blocked = false;
      this.pump();
    });
    return t;
  }

  private async connect(): Promise<void> {
    if (this._status === 'closed' || this._status === 'connecting' || this._status === 'connected') return;
    this._status = 'connecting';
    const t = this.transport!;
    try {
      await t.connect();
    } catch (err) {
      if ((this._status as HandlerStatus) === 'closed') return;
      this._status = 'disconnected';
      this.noteError(err);
      this.beginOutage();
      this.scheduleReconnect();
      return;
    }
    if ((this._status as HandlerStatus) === 'closed') {
      await t.close().catch(() => {});
      return;
    }
    this._status = 'connected';
    this.attempt = 0;
    this.waitingDrain = false;
    this.blocked = false;
    if (this.connectedOnce) this.counts.reconnects++;
    this.connectedOnce = true;
    this.endOutage();
    this.emit('connect');
    this.startHeartbeats();
    this.pump();
  }

  /** Publishes a heartbeat now and every `heartbeatInterval` ms after (on brokers only). */
  private startHeartbeats(): void {
    const every = this.options.heartbeatInterval;
    if (every === 0 || this.transport?.sendControl === undefined) return;
    this.beat('running');
    if (this.heartbeatTimer !== null) return;
    this.heartbeatTimer = setInterval(() => {
      // Not while the broker blocks publishers: it would stop reading this connection altogether.
      if (this._status === 'connected' && !this.blocked) this.beat('running');
    }, every);
    this.heartbeatTimer.unref();
  }

  private beat(state: Heartbeat['state']): void {
    const t = this.transport;
    if (t?.sendControl === undefined || this.options.heartbeatInterval === 0) return;
    const h = this.heartbeat(state);
    // Three missed intervals make a heartbeat stale: queues drop it by themselves then.
    if (t.sendControl(HEARTBEAT_RKEY, encodeHeartbeat(h), HEARTBEAT_TYPE, 3 * this.options.heartbeatInterval)) {
      this.heartbeatsSent++;
      this.lastBeat = { at: h.time * 1000, published: h.stats.published! };
    }
  }

  private onLost(err?: Error): void {
    if (this._status === 'closed') return;
    if ((err as { permanent?: boolean } | undefined)?.permanent === true) {
      // Nothing to reconnect to (the reader of standard output is gone): stop, counting what is left.
      this.noteError(err);
      this.warn(`stopped publishing: ${this.lastError}`);
      this.shutdown();
      this.transport?.destroy();
      return;
    }
    this.gen++;
    // Unconfirmed messages go back to the front of the buffer: an outage shorter than the buffer loses nothing.
    if (this.inflight.size > 0) {
      const back: Entry[] = [];
      for (const u of this.inflight) for (const e of u.entries) back.push(e);
      this.inflight.clear();
      this.inflightEntries = 0;
      const dropped = this.buffer.unshiftAll(back);
      if (dropped.length > 0) this.drop(dropped.length);
    }
    this._status = 'disconnected';
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.noteError(err ?? new Error('connection closed'));
    this.emit('disconnect', this.lastError);
    this.beginOutage();
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer !== null || this._status === 'closed') return;
    const r = this.options.reconnect;
    this.attempt++;
    const cappedBase = r.maxDelay / (1 + r.jitter);
    const base = Math.min(cappedBase, r.initialDelay * r.factor ** (this.attempt - 1));
    const delay = Math.max(0, Math.round(base + (Math.random() * 2 - 1) * base * r.jitter));
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect();
    }, delay);
    this.reconnectTimer.unref();
  }

  private beginOutage(): void {
    if (this.outage !== null) return;
    this.outage = { since: Date.now(), dropped: this.counts.dropped };
    this.warn(
      `cannot publish to ${this.options.url} (${this.lastError}); buffering up to ${this.options.bufferSize} messages (${this.options.overflow}) and reconnecting`,
    );
  }

  private endOutage(): void {
    const o = this.outage;
    if (o === null) return;
    this.outage = null;
    const secs = ((Date.now() - o.since) / 1000).toFixed(1);
    this.warn(
      `publishing to ${this.options.url} again after ${secs} s; ${this.counts.dropped - o.dropped} message(s) dropped during the outage`,
    );
  }

  private noteError(err: unknown): void {
    const e = err as { message?: string; code?: string } | undefined;
    const text = e?.message || e?.code || String(err);
    this.lastError = redactText(text);
  }

  private scheduleFlush(): void {
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.pump();
    }, this.options.flushInterval);
    this.flushTimer.unref();
  }

  /** Sends as much as the transport and the in-flight limit allow. */
  private pump(): void {
    if (this.flushTimer !== null) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    const t = this.transport;
    if (this._status !== 'connected' || t === null || this.waitingDrain || this.blocked) return;
    this.sendAll(t, this.options.maxInFlight);
    this.wakeSpaceWaiters();
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
        if (this._status !== 'connected') return;
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
        this.noteError(err);
        this.drop(unit.entries.length);
        this.warnRefused(unit.entries.length);
        this.wakeIfIdle();
        return true;
      }
      // The channel died under us before its close event: treat it as the connection loss it is.
      this.noteError(err);
      t.destroy();
      this.onLost(err as Error);
      return false;
    }
    if (!more) this.waitingDrain = true;
    return more;
  }

  /** Says on the logger that messages were refused: at once, then at most every 10 s with the count since. */
  private warnRefused(n: number): void {
    const now = Date.now();
    this.refused.count += n;
    if (now - this.refused.at < 10_000) return;
    this.warn(`${this.refused.count} message(s) could not be sent and were dropped (${this.lastError})`);
    this.refused = { at: now, count: 0 };
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
      this.counts.published += unit.entries.length;
      if (this.buffer.length > 0) {
        if (this.flushTimer === null && !this.waitingDrain) this.pump();
      } else {
        this.wakeIfIdle();
      }
      return;
    }
    // An error while the connection stays up is a nack; one that comes with a connection loss is
    // handled by onLost, which requeues every unconfirmed unit in order.
    setImmediate(() => {
      if (!this.inflight.has(unit) || unit.gen !== this.gen || !this.transport?.open) return;
      this.inflight.delete(unit);
      this.inflightEntries -= unit.entries.length;
      this.noteError(err);
      const retry = unit.entries.filter((e) => ++e.attempts < 3);
      const refused = unit.entries.length - retry.length;
      const dropped = this.buffer.unshiftAll(retry).length + refused;
      if (dropped > 0) this.drop(dropped);
      this.pump();
      this.wakeIfIdle();
    });
  }

  /** Tells flush() (and close()) that nothing is queued or in flight any more. */
  private wakeIfIdle(): void {
    if (this.isIdle()) for (const w of this.idleWaiters.splice(0)) w(true);
  }

  private wakeSpaceWaiters(): void {
    if (this.spaceWaiters.length > 0 && !this.buffer.full) for (const w of this.spaceWaiters.splice(0)) w();
  }
}

/** The program's name for heartbeats: its main module's file name. */
function programName(): string {
  const main = process.argv[1];
  return main ? path.basename(main) : process.title;
}

/** Waits for `promise`, keeping the event loop alive until it settles (true) or `ms` pass (false). */
function keepAlive(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(1, Math.min(ms, 2 ** 31 - 1)));
  });
  return Promise.race([promise.then(() => true), bound]).finally(() => clearTimeout(timer));
}

function makeRoute(rkey: string, headers: Record<string, unknown>): Route {
  if (isReservedRkey(rkey)) {
    throw new ContextError(
      'LC_INVALID_OPTION',
      `routing key "${rkey}" is reserved: keys starting "${RESERVED_RKEY_PREFIX}" carry contexture's own traffic (heartbeats), which readers do not take for data`,
    );
  }
  // AMQP carries a routing key and each header name in at most 255 bytes: a longer one would make
  // every publish of the connection fail, not just this context's.
  if (Buffer.byteLength(rkey) > 255)
    throw new ContextError(
      'LC_INVALID_OPTION',
      `routing key "${rkey.slice(0, 40)}…" is ${Buffer.byteLength(rkey)} bytes; AMQP allows at most 255`,
    );
  let headersJson: string;
  try {
    headersJson = JSON.stringify(headers, (key, v: unknown) => {
      if (Buffer.byteLength(key) > 255) throw new TypeError(`the header name "${key.slice(0, 40)}…" is over 255 bytes`);
      if (typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint' || v === undefined)
        throw new TypeError(`${key === '' ? 'the headers' : `header "${key}"`} holds a ${typeof v}, not JSON`);
      return v;
    });
  } catch (err) {
    throw new ContextError(
      'LC_INVALID_OPTION',
      `headers must be JSON the broker can carry: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return { rkey, headers, headersJson, key: `${rkey}\u0000${headersJson}` };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
