/**
 * The Handler: the lifecycle around a message's way out, Context (context.ts) → BoundedBuffer
 * (bounded-buffer.ts) → Publisher (publisher.ts) → Transport (transports/) → broker. It owns the
 * buffer and the transport, connects and reconnects (backoff.ts), publishes heartbeats
 * (handler-heartbeats.ts) and keeps the promises of `flush()` and `close()`; the publisher does
 * the sending and settling.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { backoffDelay } from './backoff.js';
import { BoundedBuffer } from './bounded-buffer.js';
import type { Entry } from './entry.js';
import { unwatchExit, watchExit } from './exit-hooks.js';
import { HandlerHeartbeats } from './handler-heartbeats.js';
import { Publisher } from './publisher.js';
import { ContextError } from './errors.js';
import { redactText } from './redact.js';
import { errorFields, toLogger, type LogFields, type Logger } from './logger.js';
import { nodeRound, redactUrls } from './amqp-nodes.js';
import { makeRoute, type Route } from './route.js';
import { AmqpTransport } from './transports/amqp-transport.js';
import { JsonlTransport } from './transports/jsonl-transport.js';
import type { Transport } from './transports/transport.js';
import type { Heartbeat } from './protocol/heartbeat.js';
import {
  HANDLER_DEFAULTS,
  validateHandlerOptions,
  type HandlerOptions,
  type ResolvedHandlerOptions,
} from './handler-options.js';
import type { HandlerStats, HandlerStatus } from './handler-stats.js';

export type { HandlerStats, HandlerStatus } from './handler-stats.js';

/**
 * The handler of context messages: a bounded buffer, published in the background to a transport
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
  /** The resolved options; `url` with its password(s) masked (what is printed and logged). */
  readonly options: Readonly<ResolvedHandlerOptions>;
  /** The URL (or the nodes' URLs) with the password: only the transport gets it. */
  readonly #urls: readonly string[];
  /** Where contexts' messages wait for the publisher. */
  private readonly buffer: BoundedBuffer<Entry>;
  /** Sends what the buffer holds through the transport and settles it. */
  private readonly publisher: Publisher;
  /** The `logger` option as a pino-style logger (a message-only one gets `contexture: <message>`). */
  private readonly logger: Logger | null;
  private transport: Transport | null = null;
  private _status: HandlerStatus = 'idle';
  private reconnectTimer: NodeJS.Timeout | null = null;
  /**
   * Reconnection attempts since the last connection that worked: one that carried a message, or
   * held longer than `reconnect.maxDelay`. A connection that opens and fails again at once (a file
   * on a full device, a broker that closes each new connection) does not reset the backoff.
   */
  private attempt = 0;
  /** When the last connection was made (`performance.now()`). */
  private connectedAt = 0;
  private connectedOnce = false;
  /** `host:port` of the node connected to last (what a loss reports as lost). */
  private peer: string | null = null;
  private outage: { since: number; dropped: number; unconfirmed: number; lost: string | null } | null = null;
  /** flush() calls waiting: told true once everything is confirmed, false when the handler closed with messages left. */
  private idleWaiters: Array<(ok: boolean) => void> = [];
  private spaceWaiters: Array<() => void> = [];
  private closePromise: Promise<void> | null = null;
  private exitFlushed = false;
  private readonly routes = new Map<string, Route>();
  private readonly baseHeaders: Record<string, unknown>;
  /** False when the `headers` option holds something AMQP cannot carry: every route is refused then. */
  private counts = { enqueued: 0, dropped: 0, droppedUnconfirmed: 0, reconnects: 0 };
  private lastError: string | null = null;
  private readonly heartbeats: HandlerHeartbeats;

  constructor(options: HandlerOptions = {}) {
    super();
    const resolved = validateHandlerOptions({ ...HANDLER_DEFAULTS, ...stripUndefined(options) }, 'Handler options');
    // Validated: a list is AMQP URLs joined with commas (a jsonl: path is never split).
    this.#urls = resolved.url.startsWith('jsonl:') ? [resolved.url] : resolved.url.split(',');
    this.options = Object.freeze({ ...resolved, url: redactUrls(this.#urls) });
    // Headers of its own that AMQP cannot carry would fail every context made on it: refused now.
    this.baseHeaders = { hostname: os.hostname(), ...this.options.headers };
    makeRoute('', this.baseHeaders, 'LC_HANDLER_INVALID_OPTION');
    this.logger = this.options.logger === null ? null : toLogger(this.options.logger, 'contexture: ');
    this.buffer = new BoundedBuffer<Entry>(this.options.bufferSize, this.options.overflow);
    this.publisher = new Publisher(this.buffer, this.options, JSON.stringify(this.id), {
      transport: () => this.transport,
      connected: () => this._status === 'connected',
      drop: (n, unconfirmed) => this.drop(n, unconfirmed),
      noteError: (err) => this.noteError(err),
      lastError: () => this.lastError,
      warn: (fields, message) => this.warn(fields, message),
      lost: (err) => this.onLost(err),
      idle: () => {
        for (const w of this.idleWaiters.splice(0)) w(true);
      },
      space: () => {
        if (this.spaceWaiters.length > 0 && !this.buffer.full) for (const w of this.spaceWaiters.splice(0)) w();
      },
      delivered: () => {
        this.attempt = 0;
      },
    });
    this.heartbeats = new HandlerHeartbeats(this.id, this.options.heartbeatInterval, {
      transport: () => this.transport,
      heartbeat: (state) => this.heartbeat(state),
      mayBeat: () => this._status === 'connected' && !this.publisher.blocked,
    });
    watchExit(this);
  }

  /** `closing` from `close()` until it is done (messages are still published meanwhile), then `closed`. */
  get status(): HandlerStatus {
    return this.closePromise !== null && this._status !== 'closed' ? 'closing' : this._status;
  }

  /** Counters; see {@link HandlerStats}. */
  stats(): HandlerStats {
    return {
      status: this.status,
      enqueued: this.counts.enqueued,
      published: this.publisher.published,
      dropped: this.counts.dropped,
      droppedUnconfirmed: this.counts.droppedUnconfirmed,
      queued: this.buffer.length,
      inFlight: this.publisher.inFlight,
      reconnects: this.counts.reconnects,
      lastError: this.lastError,
      blocked: this.publisher.blocked,
      heartbeats: this.heartbeats.sent,
    };
  }

  /**
   * What `JSON.stringify(handler)` gives: its id, its options (the URL with its password masked,
   * the logger as whether there is one) and its stats. The handler itself holds sockets, timers and
   * its logger, which are no JSON (some are circular).
   */
  toJSON(): { id: string; options: Record<string, unknown>; stats: HandlerStats } {
    const { logger, ...options } = this.options;
    return { id: this.id, options: { ...options, logger: logger !== null }, stats: this.stats() };
  }

  /**
   * The heartbeat this handler publishes every `heartbeatInterval` ms while connected to a broker:
   * who it is and its counters, with the publish rate since the previous one.
   */
  heartbeat(state: Heartbeat['state'] = 'running'): Heartbeat {
    return this.heartbeats.build(state, this.stats());
  }

  /**
   * The route (routing key and merged headers) of a context. The handler's headers (always
   * `hostname`) are merged with the context's own, which win. Throws a `ContextError`
   * (`LC_CONTEXT_INVALID_OPTION`) when AMQP cannot carry them (the handler's own were checked
   * when it was made: `LC_HANDLER_INVALID_OPTION`).
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
      if (!this.saidClosedDrops) {
        this.saidClosedDrops = true;
        this.warn(
          { code: 'LC_HANDLER_CLOSED' },
          'a message came after close(): dropped, as is every later one (counted in stats().dropped)',
        );
      }
      return;
    }
    const dropped = this.buffer.push(entry);
    if (dropped !== undefined) {
      this.drop(1, dropped.unconfirmed === true ? 1 : 0);
      this.overflowed();
    }
    if (this._status === 'idle') this.start();
    else if (this._status === 'connected') this.publisher.schedule();
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
    if (this.publisher.idle) return Promise.resolve(true);
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
      else if (this._status === 'connected') this.publisher.pump();
      if (this.publisher.idle) done(true);
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
      if (this._status !== 'idle' || !this.publisher.idle) await this.flush(this.options.closeTimeout - grace);
      // The last heartbeat says it is going, so registries drop it now rather than at its timeout.
      if (this._status === 'connected') this.heartbeats.beat('stopped');
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
    if (!this.options.wait || this.exitFlushed || this.publisher.idle || this._status === 'closed') return;
    this.exitFlushed = true;
    void this.flush(this.options.waitTimeout);
  }

  /** @internal */
  _atExit(): void {
    const left = this.buffer.length + this.publisher.inFlight;
    // What was dropped and not said yet, before the line of what is left.
    this.sayOverflow();
    if (this._status !== 'closed') this.sayOutageDrops(0);
    if (left > 0 && this._status !== 'closed') {
      this.warn(
        { code: 'LC_HANDLER_EXIT_UNPUBLISHED', unpublished: left, wait: this.options.wait },
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

  /**
   * Nothing to reconnect to (the reader of standard output is gone, the exchange exists with another
   * type): stops for good, counting what is left and all that comes after as dropped. Said once: one
   * warning, `lastError`, and an `error` event when someone listens (an unheard one would throw).
   */
  private stop(err: Error): void {
    this.noteError(err);
    // Its warning says every later message is dropped: no other line for them.
    this.saidClosedDrops = true;
    const left = this.shutdown(true);
    this.transport?.destroy();
    const code = err instanceof ContextError ? err.code : 'LC_TRANSPORT_FAILED';
    this.warn(
      { code, err: errorFields(err), unpublished: left },
      `stopped publishing: ${this.lastError}; ${left} message(s) left unpublished are counted as dropped, and so is every later one`,
    );
    if (this.listenerCount('error') === 0) return;
    this.emit('error', new ContextError(code, this.lastError ?? 'stopped publishing', { cause: err }));
  }

  /** Closes without a word but for what is left unpublished (unless `quiet`); returns how many that was. */
  private shutdown(quiet = false): number {
    if (this._status === 'closed') return 0;
    this._status = 'closed';
    this.publisher.cancel();
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.heartbeats.stop();
    const { left, unconfirmed } = this.publisher.discard();
    this.sayOverflow();
    if (left > 0) this.drop(left, unconfirmed);
    this.sayOutageDrops(left);
    if (left > 0) {
      if (!quiet)
        this.warn(
          { code: 'LC_HANDLER_CLOSE_UNPUBLISHED', dropped: left, droppedUnconfirmed: unconfirmed },
          `closed with ${left} message(s) unpublished${maybeDelivered(unconfirmed)}; counted as dropped`,
        );
    }
    unwatchExit(this);
    for (const w of this.spaceWaiters.splice(0)) w();
    for (const w of this.idleWaiters.splice(0)) w(left === 0);
    return left;
  }

  private drop(n: number, unconfirmed = 0): void {
    this.counts.dropped += n;
    this.counts.droppedUnconfirmed += unconfirmed;
    if (this.listenerCount('drop') > 0) this.emit('drop', n, unconfirmed);
  }

  /**
   * Overflow drops not said yet, when the last warning of them was (0: none yet), and the timer
   * that says the rest of a 10 s window's drops when it ends.
   */
  private overflow: { since: number; at: number; timer: NodeJS.Timeout | null } = { since: 0, at: 0, timer: null };
  /** A message came after close(): said once. */
  private saidClosedDrops = false;

  /**
   * A message dropped because the buffer was full outside an outage (connected, or before the
   * first connection; an outage's drops are said when it ends or the handler closes): said at once,
   * then at most once per 10 s with how many since, the last of them when the window ends.
   */
  private overflowed(): void {
    if (this.outage !== null) return;
    this.overflow.since++;
    const wait = 10_000 - (Date.now() - this.overflow.at);
    if (wait <= 0) this.sayOverflow();
    else if (this.overflow.timer === null) {
      this.overflow.timer = setTimeout(() => {
        this.overflow.timer = null;
        this.sayOverflow();
      }, wait);
      this.overflow.timer.unref();
    }
  }

  /** Says the overflow drops not said yet, if any. */
  private sayOverflow(): void {
    if (this.overflow.timer !== null) clearTimeout(this.overflow.timer);
    const n = this.overflow.since;
    this.overflow = { since: 0, at: n > 0 ? Date.now() : this.overflow.at, timer: null };
    if (n === 0) return;
    const o = this.options;
    this.warn(
      { code: 'LC_BUFFER_OVERFLOW', dropped: n, bufferSize: o.bufferSize, overflow: o.overflow },
      `${n} message(s) dropped: the buffer of ${o.bufferSize} was full (overflow: ${o.overflow}); messages come faster than the broker takes them`,
    );
  }

  /**
   * Says the drops of an outage that ends without a reconnect (the handler closes, the process
   * exits), but for the `left` messages the closing line says itself.
   */
  private sayOutageDrops(left: number): void {
    const o = this.outage;
    if (o === null) return;
    this.outage = null;
    const dropped = this.counts.dropped - o.dropped - left;
    if (dropped <= 0) return;
    this.warn(
      { code: 'LC_BROKER_OUTAGE_DROPPED', dropped, outageSeconds: Number(((Date.now() - o.since) / 1000).toFixed(1)) },
      `${dropped} message(s) dropped during the outage (the buffer was full), which ended with the handler`,
    );
  }

  private warn(fields: LogFields, message: string): void {
    const logger = this.logger;
    if (logger === null) return;
    try {
      logger.warn(fields, message);
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
    const t: Transport = this.#urls[0]!.startsWith('jsonl:')
      ? new JsonlTransport(this.#urls[0]!)
      : new AmqpTransport({
          url: this.#urls,
          exchange: o.exchange,
          exchangeType: o.exchangeType,
          batch: o.batch,
          persistent: o.persistent,
          connectTimeout: o.connectTimeout,
          connectionName: `contexture ${os.hostname()} pid ${process.pid}`,
        });
    t.on('close', (err?: Error) => this.onLost(err));
    t.on('drain', () => this.publisher.drained());
    t.on('blocked', () => {
      this.publisher.blocked = true;
    });
    t.on('unblocked', () => this.publisher.unblocked());
    return t;
  }

  private async connect(): Promise<void> {
    if (this._status === 'closed' || this._status === 'connecting' || this._status === 'connected') return;
    this._status = 'connecting';
    const t = this.transport!;
    const tried = t.where;
    try {
      await t.connect();
    } catch (err) {
      if ((this._status as HandlerStatus) === 'closed') return;
      if ((err as { permanent?: boolean } | undefined)?.permanent === true) {
        this.stop(err as Error);
        return;
      }
      this._status = 'disconnected';
      this.noteError(err);
      this.beginOutage(null, tried);
      this.scheduleReconnect();
      return;
    }
    if ((this._status as HandlerStatus) === 'closed') {
      await t.close().catch(() => {});
      return;
    }
    this._status = 'connected';
    this.connectedAt = performance.now();
    this.peer = t.where ?? null;
    this.publisher.connected();
    if (this.connectedOnce) this.counts.reconnects++;
    this.connectedOnce = true;
    this.endOutage();
    this.emit('connect');
    this.heartbeats.start();
    this.publisher.pump();
  }

  private onLost(err?: Error): void {
    if (this._status === 'closed') return;
    if ((err as { permanent?: boolean } | undefined)?.permanent === true) {
      this.stop(err!);
      return;
    }
    this._status = 'disconnected';
    if (performance.now() - this.connectedAt >= this.options.reconnect.maxDelay) this.attempt = 0;
    this.publisher.cancel();
    this.noteError(err ?? new Error('connection closed'));
    this.beginOutage(this.peer);
    // After the outage began: what the requeue drops is a loss of this outage, said at its end.
    this.publisher.requeue();
    this.emit('disconnect', this.lastError);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer !== null || this._status === 'closed') return;
    this.attempt++;
    const round = nodeRound(this.attempt, this.transport?.nodes ?? 1);
    const delay = backoffDelay(round, this.options.reconnect);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect();
    }, delay);
    this.reconnectTimer.unref();
    if (this.listenerCount('reconnecting') > 0) this.emit('reconnecting', delay, this.attempt);
  }

  /** `lost`: the node lost, or null when a connect failed (`tried` then names the node tried). */
  private beginOutage(lost: string | null, tried?: string): void {
    if (this.outage !== null) return;
    // Drops before it are said first: the outage's own are counted from here.
    this.sayOverflow();
    const t = this.transport;
    const nodes = t?.nodes ?? 1;
    // Named by host:port, never by a URL with its password.
    const where = lost ?? tried ?? this.options.url;
    this.outage = {
      since: Date.now(),
      dropped: this.counts.dropped,
      unconfirmed: this.counts.droppedUnconfirmed,
      lost,
    };
    const next = nodes > 1 && t?.where !== undefined ? ` (next: ${t.where}, one of ${nodes} nodes)` : '';
    this.warn(
      {
        code: lost === null ? 'LC_BROKER_UNREACHABLE' : 'LC_BROKER_LOST',
        url: where,
        lastError: this.lastError,
        bufferSize: this.options.bufferSize,
        overflow: this.options.overflow,
        nodes,
      },
      `cannot publish to ${where} (${this.lastError}); buffering up to ${this.options.bufferSize} messages (${this.options.overflow}) and reconnecting${next}`,
    );
  }

  private endOutage(): void {
    const o = this.outage;
    if (o === null) return;
    this.outage = null;
    const secs = ((Date.now() - o.since) / 1000).toFixed(1);
    const now = this.peer ?? this.options.url;
    const took = o.lost !== null && o.lost !== now ? ` (took over from ${o.lost})` : '';
    const unconfirmed = maybeDelivered(this.counts.droppedUnconfirmed - o.unconfirmed);
    this.warn(
      {
        code: 'LC_BROKER_RECONNECTED',
        url: now,
        ...(took === '' ? {} : { lost: o.lost }),
        outageSeconds: Number(secs),
        dropped: this.counts.dropped - o.dropped,
        droppedUnconfirmed: this.counts.droppedUnconfirmed - o.unconfirmed,
      },
      `publishing to ${now}${took} again after ${secs} s; ${this.counts.dropped - o.dropped} message(s) dropped during the outage${unconfirmed}`,
    );
  }

  private noteError(err: unknown): void {
    const e = err as { message?: string; code?: string } | undefined;
    const text = e?.message || e?.code || String(err);
    this.lastError = redactText(text);
  }
}

/** What a warning about drops adds when `n` of them were sent and never confirmed. */
function maybeDelivered(n: number): string {
  return n > 0 ? ` (${n} of them sent and never confirmed: they may have been delivered)` : '';
}

/** Waits for `promise`, keeping the event loop alive until it settles (true) or `ms` pass (false). */
function keepAlive(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(1, Math.min(ms, 2 ** 31 - 1)));
  });
  return Promise.race([promise.then(() => true), bound]).finally(() => clearTimeout(timer));
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
