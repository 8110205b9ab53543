import { EventEmitter } from 'node:events';
import os from 'node:os';
import amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { redactText, redactUrl, withAmqpHeartbeat } from '@contexture/context';
import {
  HEARTBEAT_RKEY,
  decodeBody,
  isMalformed,
  isReservedRkey,
  setOwn,
  type Malformed,
  type MessageMeta,
  type WireMessage,
} from '@contexture/context/protocol';
import { CollectorHeartbeats, type HeartbeatStats } from './heartbeats.js';
import { CollectorError } from '../internal/errors.js';
import type { ApplyItem } from '../store/types.js';
import {
  COLLECTOR_DEFAULTS,
  COLLECTOR_OPTION_NAMES,
  type CollectorLogger,
  type CollectorOptions,
  type ResolvedCollectorOptions,
} from './collector-options.js';

/**
 * Why a delivery goes to the dead-letter queue: malformed, refused by the store (a message it
 * cannot take: a field name that is not well-formed Unicode, say), or its context cannot be read
 * in the store.
 */
type Refusal = { kind: Malformed['kind'] | 'store refused' | 'store corrupt'; detail?: string };

/** Lifecycle of a {@link Collector}. */
export type CollectorStatus = 'idle' | 'connecting' | 'consuming' | 'disconnected' | 'closing' | 'closed';

/** Counters of a {@link Collector}. */
export interface CollectorStats {
  status: CollectorStatus;
  /** AMQP deliveries received. */
  deliveries: number;
  /** Wire messages applied to the store (a batch delivery holds several). */
  applied: number;
  /** Deliveries acknowledged. */
  acked: number;
  /** Malformed messages by kind; each was dead-lettered and acknowledged. */
  malformed: Record<string, number>;
  /** Deliveries sent to the dead-letter queue. */
  deadLettered: number;
  /** Failed store calls (each retried). */
  storeErrors: number;
  /** Deliveries being applied now. */
  inFlight: number;
  /** Messages applied per second over the last stats interval. */
  rate: number;
  /** Seconds between the newest applied message's `time_in` and its application. */
  lagSeconds: number | null;
  /** Ready messages in the queue at the last check. */
  queueDepth: number | null;
  reconnects: number;
  lastError: string | null;
  /** Heartbeats received and sent (see the `registry` option). */
  heartbeats: HeartbeatStats;
}

/** Deliveries applied together (one store call), then acknowledged together. */
interface Batch {
  ch: ConfirmChannel;
  /** Deliveries of the project's own traffic (heartbeats): acknowledged in order, not counted as data. */
  reserved: number;
  msgs: ConsumeMessage[];
  /** Deliveries to leave unacknowledged (not dead-lettered), null when none. */
  failed: Set<ConsumeMessage> | null;
  done: boolean;
}

/** Batches applied at once: one being applied while the next gathers deliveries (and one more to hide the round trip). */
const MAX_BATCHES = 2;

const stderrLogger: CollectorLogger = {
  info: (m) => void process.stderr.write(`${new Date().toISOString()} contexture-collector: ${m}\n`),
  warn: (m) => void process.stderr.write(`${new Date().toISOString()} contexture-collector: ${m}\n`),
};

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

/**
 * Consumes a durable queue bound to the exchange, applies every message to the store and
 * acknowledges it only once the store has it (at least once). Malformed messages are counted, sent
 * to a dead-letter queue and acknowledged. Store failures are retried with backoff without
 * acknowledging; broker failures reconnect by themselves.
 *
 * @example
 * const collector = new Collector({ store: new RedisContextStore({ redis: 'redis://127.0.0.1:6379' }) });
 * await collector.start();
 * process.once('SIGTERM', () => collector.close());
 */
export class Collector extends EventEmitter {
  readonly options: Readonly<ResolvedCollectorOptions>;
  private model: ChannelModel | null = null;
  private channel: ConfirmChannel | null = null;
  private consumerTag: string | null = null;
  private _status: CollectorStatus = 'idle';
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private closePromise: Promise<void> | null = null;
  private idleWaiters: Array<() => void> = [];
  private storeDown = false;
  private brokerDown = false;
  private lastRateAt = Date.now();
  private lastRateApplied = 0;
  private counts = {
    deliveries: 0,
    applied: 0,
    acked: 0,
    deadLettered: 0,
    storeErrors: 0,
    inFlight: 0,
    reconnects: 0,
    rate: 0,
    lagSeconds: null as number | null,
    queueDepth: null as number | null,
  };
  private malformed: Record<string, number> = Object.create(null);
  /** When the last "store corrupt" warning was written (ms). */
  private corruptWarnedAt = 0;
  /** Deliveries not yet in a batch, in delivery order. */
  private pending: Array<{ ch: ConfirmChannel; msg: ConsumeMessage }> = [];
  /** Deliveries on reserved routing keys (the project's own traffic: heartbeats). */
  private readonly own = new WeakSet<ConsumeMessage>();
  private flushQueued = false;
  /** Batches started and not yet acknowledged, in delivery order. */
  private batches: Batch[] = [];
  private running = 0;
  /** Channels on which a message stays unacknowledged: no more acks with `multiple` there. */
  private holes = new WeakSet<ConfirmChannel>();
  private lastError: string | null = null;
  private readonly heartbeats: CollectorHeartbeats;

  constructor(options: CollectorOptions) {
    super();
    if (typeof options?.store?.apply !== 'function')
      throw new TypeError('Collector: options.store must have an apply(message, meta) method');
    for (const k of Object.keys(options))
      if (!COLLECTOR_OPTION_NAMES.has(k))
        throw new RangeError(`Collector: unknown option ${JSON.stringify(k.slice(0, 60))}`);
    const o = { ...COLLECTOR_DEFAULTS, ...stripUndefined(options) } as CollectorOptions & typeof COLLECTOR_DEFAULTS;
    for (const k of ['prefetch', 'batchSize', 'maxBytes', 'maxDepth'] as const) {
      if (!Number.isSafeInteger(o[k]) || o[k] < 1)
        throw new RangeError(`Collector: ${k} must be a positive integer, got ${o[k]}`);
    }
    if (!Array.isArray(o.bindings) || o.bindings.length === 0)
      throw new RangeError('Collector: bindings must name at least one routing key');
    for (const k of ['queue', 'exchange'] as const) {
      if (typeof o[k] !== 'string' || o[k].length === 0)
        throw new RangeError(`Collector: ${k} must be a non-empty string`);
    }
    if (o.deadLetterQueue !== undefined && (typeof o.deadLetterQueue !== 'string' || o.deadLetterQueue.length === 0))
      throw new RangeError('Collector: deadLetterQueue must be a non-empty string');
    const every: number = o.heartbeatInterval;
    if (every !== 0 && (!Number.isSafeInteger(every) || every < 100)) {
      throw new RangeError(`Collector: heartbeatInterval must be an integer >= 100 (ms), or 0 for none, got ${every}`);
    }
    const registry = o.registry ?? null;
    if (registry !== null && (typeof registry.beat !== 'function' || typeof registry.unregister !== 'function')) {
      throw new TypeError('Collector: registry must have beat(entry, metrics) and unregister(id) methods (a Registry)');
    }
    this.options = Object.freeze({
      ...o,
      bindings: [...o.bindings],
      bindingArgs: o.bindingArgs,
      deadLetterQueue: o.deadLetterQueue ?? `${o.queue}.dead`,
      retry: { ...COLLECTOR_DEFAULTS.retry, ...(o.retry ?? {}) },
      logger: o.logger === undefined ? stderrLogger : o.logger,
      registry,
    });
    this.heartbeats = new CollectorHeartbeats(
      registry,
      this.options.heartbeatInterval,
      this.options.queue,
      this.options.exchange,
    );
  }

  /** The id this collector announces itself with (registry and heartbeats). */
  get id(): string {
    return this.heartbeats.id;
  }

  get status(): CollectorStatus {
    return this._status;
  }

  stats(): CollectorStats {
    return {
      status: this._status,
      ...this.counts,
      malformed: { ...this.malformed },
      lastError: this.lastError,
      heartbeats: { ...this.heartbeats.counts },
    };
  }

  /**
   * Connects, declares the exchange, the queue (with its bindings) and the dead-letter queue, and
   * starts consuming. Resolves once consuming, or rejects if the first connection fails; later
   * failures reconnect by themselves.
   */
  async start(): Promise<void> {
    if (this._status !== 'idle') return;
    await this.connect(true);
  }

  /**
   * Stops consuming, lets the messages in flight finish (up to `shutdownTimeout`), then closes the
   * connection. Idempotent.
   */
  close(): Promise<void> {
    if (this.closePromise !== null) return this.closePromise;
    this.closePromise = (async () => {
      this._status = 'closing';
      if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
      this.stopStats();
      const ch = this.channel;
      if (ch !== null && this.consumerTag !== null) await ch.cancel(this.consumerTag).catch(() => {});
      if (this.counts.inFlight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.options.shutdownTimeout);
          this.idleWaiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      await this.heartbeats.stop(this.channel, this.heartbeatStats());
      this._status = 'closed';
      const model = this.model;
      this.model = null;
      this.channel = null;
      if (model !== null) await model.close().catch(() => {});
    })();
    return this.closePromise;
  }

  /** Closes at once; unacknowledged messages are redelivered. */
  destroy(): void {
    void this.heartbeats.stop(null, {});
    this._status = 'closed';
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.stopStats();
    const model = this.model as unknown as { connection?: { stream?: { destroy(): void } } } | null;
    model?.connection?.stream?.destroy();
    this.model = null;
    this.channel = null;
    if (this.closePromise === null) this.closePromise = Promise.resolve();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Emits a stats line every `seconds` (and the 'stats' event), refreshing the queue depth. */
  startStats(seconds: number, line?: (text: string) => void): void {
    this.stopStats();
    this.lastRateAt = Date.now();
    this.lastRateApplied = this.counts.applied;
    this.statsTimer = setInterval(() => void this.tickStats(line), seconds * 1000);
    this.statsTimer.unref();
  }

  stopStats(): void {
    if (this.statsTimer !== null) clearInterval(this.statsTimer);
    this.statsTimer = null;
  }

  private async tickStats(line?: (text: string) => void): Promise<void> {
    const now = Date.now();
    this.counts.rate = Math.round(
      ((this.counts.applied - this.lastRateApplied) * 1000) / Math.max(1, now - this.lastRateAt),
    );
    this.lastRateAt = now;
    this.lastRateApplied = this.counts.applied;
    const ch = this.channel;
    if (ch !== null) {
      try {
        this.counts.queueDepth = (await ch.checkQueue(this.options.queue)).messageCount;
      } catch {
        /* the next tick tries again */
      }
    }
    const s = this.stats();
    this.emit('stats', s);
    const malformed = Object.values(s.malformed).reduce((a, b) => a + b, 0);
    line?.(
      `${s.rate} msg/s, applied ${s.applied}, in flight ${s.inFlight}, queue ${s.queueDepth ?? '?'}, ` +
        `lag ${s.lagSeconds === null ? '?' : `${s.lagSeconds.toFixed(3)} s`}, malformed ${malformed}, ` +
        `store errors ${s.storeErrors}, reconnects ${s.reconnects}`,
    );
  }

  /** What the collector's heartbeats carry. */
  private heartbeatStats(): Record<string, number> {
    const c = this.counts;
    const stats: Record<string, number> = {
      deliveries: c.deliveries,
      applied: c.applied,
      acked: c.acked,
      dead_lettered: c.deadLettered,
      store_errors: c.storeErrors,
      in_flight: c.inFlight,
      rate: c.rate,
      reconnects: c.reconnects,
    };
    if (c.queueDepth !== null) stats.queue_depth = c.queueDepth;
    if (c.lagSeconds !== null) stats.lag_seconds = c.lagSeconds;
    return stats;
  }

  private log(level: 'info' | 'warn', message: string): void {
    try {
      this.options.logger?.[level](message);
    } catch {
      /* a broken logger must not stop the collector */
    }
  }

  private async connect(first: boolean): Promise<void> {
    if (this._status === 'closing' || this._status === 'closed') return;
    this._status = 'connecting';
    const o = this.options;
    let model: ChannelModel | null = null;
    try {
      // A timeout on the handshake (a broker that takes the connection and says nothing) and a
      // heartbeat (one that stops answering later): otherwise either would hang the collector.
      model = await amqp.connect(withAmqpHeartbeat(o.url), {
        timeout: 10_000,
        clientProperties: { connection_name: `contexture-collector ${os.hostname()} pid ${process.pid}` },
      } as Options.Connect);
      const ch = await model.createConfirmChannel();
      await ch.assertExchange(o.exchange, o.exchangeType, { durable: true });
      const args = o.queueType === 'quorum' ? { 'x-queue-type': 'quorum' } : undefined;
      await ch.assertQueue(o.queue, { durable: true, arguments: args });
      await ch.assertQueue(o.deadLetterQueue, { durable: true, arguments: args });
      for (const key of o.bindings) await ch.bindQueue(o.queue, o.exchange, key, o.bindingArgs);
      if (o.registry !== null && o.exchangeType === 'topic') await ch.bindQueue(o.queue, o.exchange, HEARTBEAT_RKEY);
      await ch.prefetch(o.prefetch);
      model.on('error', () => {});
      ch.on('error', () => {});
      const lost = (err?: Error) => this.onLost(model!, err);
      model.on('close', lost);
      ch.on('close', () => lost(new Error('channel closed by the broker')));
      this.model = model;
      this.channel = ch;
      const { consumerTag } = await ch.consume(o.queue, (msg) => {
        if (msg !== null) void this.onDelivery(ch, msg);
      });
      this.consumerTag = consumerTag;
    } catch (err) {
      this.lastError = redactText((err as Error)?.message ?? String(err));
      if (model !== null) await model.close().catch(() => {});
      this.model = null;
      this.channel = null;
      if (first) {
        this._status = 'idle';
        throw err;
      }
      this._status = 'disconnected';
      this.scheduleReconnect();
      return;
    }
    if ((this._status as CollectorStatus) === 'closing' || (this._status as CollectorStatus) === 'closed') {
      await model.close().catch(() => {});
      return;
    }
    this._status = 'consuming';
    this.attempt = 0;
    if (!first) this.counts.reconnects++;
    if (this.brokerDown) this.log('info', `consuming from ${redactUrl(o.url)} again`);
    this.brokerDown = false;
    this.heartbeats.start(
      () => this.channel,
      () => this.heartbeatStats(),
    );
    this.emit('consuming');
  }

  private onLost(model: ChannelModel, err?: Error): void {
    if (this.model !== model) return;
    this.model = null;
    this.channel = null;
    this.consumerTag = null;
    if (this._status === 'closing' || this._status === 'closed') return;
    this._status = 'disconnected';
    this.lastError = redactText(err?.message ?? 'connection closed');
    model.close().catch(() => {});
    if (!this.brokerDown)
      this.log(
        'warn',
        `lost ${redactUrl(this.options.url)} (${this.lastError}); unacknowledged messages will be redelivered; reconnecting`,
      );
    this.brokerDown = true;
    this.emit('disconnect', this.lastError);
    this.scheduleReconnect();
  }

  private backoff(attempt: number): number {
    const { initialDelay, maxDelay } = this.options.retry;
    const base = Math.min(maxDelay / 1.2, initialDelay * 2 ** Math.max(0, attempt - 1));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer !== null) return;
    this.attempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect(false);
    }, this.backoff(this.attempt));
  }

  private onDelivery(ch: ConfirmChannel, msg: ConsumeMessage): void {
    // Told apart once: heartbeats and the like (reserved routing keys) are not counted as data.
    if (isReservedRkey(msg.fields.routingKey)) this.own.add(msg);
    else this.counts.deliveries++;
    this.counts.inFlight++;
    this.pending.push({ ch, msg });
    if (this.pending.length >= this.options.batchSize) this.flush();
    else if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(() => {
        this.flushQueued = false;
        this.flush();
      });
    }
  }

  /**
   * Starts batches of the deliveries received so far, while fewer than {@link MAX_BATCHES} run:
   * while the store works on one, the next gathers what arrives, so batches grow with the load.
   */
  private flush(): void {
    while (this.pending.length > 0 && this.running < MAX_BATCHES) {
      const ch = this.pending[0]!.ch;
      let n = 1;
      while (n < this.pending.length && n < this.options.batchSize && this.pending[n]!.ch === ch) n++;
      const msgs = this.pending.splice(0, n).map((p) => p.msg);
      const reserved = msgs.reduce((k, m) => k + (this.own.has(m) ? 1 : 0), 0);
      const batch: Batch = { ch, msgs, reserved, failed: null, done: false };
      this.batches.push(batch);
      this.running++;
      void this.runBatch(batch).finally(() => {
        this.running--;
        this.flush();
      });
    }
  }

  /** Applies a batch's messages in one store call, dead-letters its malformed ones, then acknowledges in delivery order. */
  private async runBatch(batch: Batch): Promise<void> {
    try {
      const items: ApplyItem[] = [];
      const side: Array<Promise<void>> = [];
      const owner: number[] = [];
      const bad: Refusal[][] = batch.msgs.map(() => []);
      batch.msgs.forEach((msg, i) => {
        // Heartbeats and the like (reserved routing keys) are the project's own traffic, not contexts.
        if (this.own.has(msg)) {
          side.push(this.heartbeats.handle(msg));
          return;
        }
        const meta: MessageMeta = { rkey: msg.fields.routingKey, headers: copyHeaders(msg.properties.headers) };
        const decoded = decodeBody(msg.content, msg.properties.contentType, {
          maxBytes: this.options.maxBytes,
          maxDepth: this.options.maxDepth,
        });
        for (const d of decoded) {
          if (isMalformed(d)) bad[i]!.push(d);
          else {
            items.push({ message: d, meta });
            owner.push(i);
          }
        }
      });
      const refused = items.length === 0 ? [] : await this.applyItems(items);
      if (side.length > 0) await Promise.all(side);
      refused.forEach((r, j) => {
        if (r !== null) bad[owner[j]!]!.push(r);
      });
      await Promise.all(
        batch.msgs.map(async (msg, i) => {
          const b = bad[i]!;
          if (b.length === 0) return;
          for (const m of b) this.malformed[m.kind] = (this.malformed[m.kind] ?? 0) + 1;
          try {
            await this.deadLetter(batch.ch, msg, b);
          } catch {
            // Not in the dead-letter queue: it stays unacknowledged and is redelivered.
            (batch.failed ??= new Set()).add(msg);
          }
        }),
      );
    } catch {
      // We are being destroyed: nothing of the batch is acknowledged; it is redelivered.
      batch.failed = new Set(batch.msgs);
    } finally {
      batch.done = true;
      this.ackDone();
      this.counts.inFlight -= batch.msgs.length;
      if (this.counts.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /**
   * Acknowledges finished batches in delivery order. A whole batch goes in one ack with
   * `multiple`, which also covers everything delivered before it on the channel: safe because
   * earlier batches were acknowledged first, unless one of their messages had to stay
   * unacknowledged, after which that channel's acks go one by one.
   */
  private ackDone(): void {
    while (this.batches.length > 0 && this.batches[0]!.done) {
      const batch = this.batches.shift()!;
      const ch = batch.ch;
      if (this.channel !== ch) continue;
      try {
        if (batch.failed === null && !this.holes.has(ch)) {
          ch.ack(batch.msgs[batch.msgs.length - 1]!, true);
          this.counts.acked += batch.msgs.length - batch.reserved;
        } else {
          this.holes.add(ch);
          for (const msg of batch.msgs) {
            if (batch.failed?.has(msg) === true) continue;
            ch.ack(msg);
            if (!this.own.has(msg)) this.counts.acked++;
          }
        }
      } catch {
        // The channel is closing: what is unacknowledged is redelivered.
      }
    }
  }

  /**
   * Applies messages with one `applyMany()` (or `apply()` each when the store has no
   * `applyMany()`), retrying store failures; per message, a {@link Malformed} when the store
   * refuses the message itself, else null.
   */
  private async applyItems(items: ApplyItem[]): Promise<Array<Refusal | null>> {
    const store = this.options.store;
    if (typeof store.applyMany !== 'function')
      return Promise.all(items.map((it) => this.applyWithRetry(it.message, it.meta)));
    const applyMany = store.applyMany.bind(store);
    const ok = await this.retrying(false, async () => {
      await applyMany(items);
      this.counts.applied += items.length;
      for (let i = items.length - 1; i >= 0; i--) {
        const t = items[i]!.message.time_in;
        if (t !== undefined) {
          this.counts.lagSeconds = Math.max(0, Date.now() / 1000 - t);
          break;
        }
      }
    });
    // A message the store refuses fails the whole call: find it by applying them one by one.
    if (ok !== null) return Promise.all(items.map((it) => this.applyWithRetry(it.message, it.meta)));
    return items.map(() => null);
  }

  /** Applies one message, retrying store failures; resolves with a {@link Malformed} when the store refuses the message itself. */
  private async applyWithRetry(message: WireMessage, meta: MessageMeta | undefined): Promise<Refusal | null> {
    return this.retrying(true, async () => {
      await this.options.store.apply(message, meta);
      this.counts.applied++;
      if (message.time_in !== undefined) this.counts.lagSeconds = Math.max(0, Date.now() / 1000 - message.time_in);
    });
  }

  /**
   * Runs a store call until it succeeds (null) or the store refuses its input or cannot read the
   * context it goes to (a {@link Refusal}); throws only once destroyed. `single`: the call applies
   * one message.
   */
  private async retrying(single: boolean, call: () => Promise<void>): Promise<Refusal | null> {
    for (let attempt = 1; ; attempt++) {
      try {
        await call();
        if (this.storeDown) {
          this.storeDown = false;
          this.log('info', 'the store answers again');
        }
        return null;
      } catch (err) {
        if (err instanceof CollectorError && err.code === 'LC_STORE_INVALID_ARGUMENT')
          return { kind: 'store refused', detail: err.message.slice(0, 200) };
        if (err instanceof CollectorError && err.code === 'LC_STORE_CORRUPT') {
          // Retrying cannot help, and would hold up everything behind it: the message is kept in
          // the dead-letter queue, to be sent again once the context's keys are mended.
          // Said of the message, once in 10 s at most (a busy context would flood the log); stats()
          // counts every one. A batch's call is applied again message by message, which says it.
          if (single && Date.now() - this.corruptWarnedAt >= 10_000) {
            this.corruptWarnedAt = Date.now();
            this.log(
              'warn',
              `${redactText(err.message)}; its message goes to the dead-letter queue (such messages are counted as "store corrupt", one warning in 10 s)`,
            );
          }
          return { kind: 'store corrupt', detail: err.message.slice(0, 200) };
        }
        this.counts.storeErrors++;
        this.lastError = storeFailure(err);
        if (!this.storeDown) {
          this.storeDown = true;
          this.log('warn', `the store failed (${this.lastError}); retrying without acknowledging`);
        }
        if (this._status === 'closed') throw err;
        await sleep(this.backoff(attempt));
        if ((this._status as CollectorStatus) === 'closed') throw err;
      }
    }
  }

  private deadLetter(ch: ConfirmChannel, msg: ConsumeMessage, bad: Refusal[]): Promise<void> {
    const kinds = [...new Set(bad.map((b) => b.kind))].join(', ');
    const headers: Record<string, unknown> = copyHeaders(msg.properties.headers) ?? {};
    headers['x-contexture-error'] = kinds;
    headers['x-contexture-rkey'] = msg.fields.routingKey;
    headers['x-contexture-exchange'] = msg.fields.exchange;
    return new Promise((resolve, reject) => {
      ch.sendToQueue(
        this.options.deadLetterQueue,
        msg.content,
        { headers, contentType: msg.properties.contentType, messageId: msg.properties.messageId, persistent: true },
        (err: unknown) => {
          if (err) reject(err instanceof Error ? err : new Error(String(err)));
          else {
            this.counts.deadLettered++;
            resolve();
          }
        },
      );
    });
  }
}

/** AMQP headers as a plain object with own keys only (a `__proto__` header stays data). */
function copyHeaders(headers: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (headers === undefined || headers === null) return undefined;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(headers)) setOwn(out, k, headers[k]);
  return out;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/**
 * What an operator reads of a store failure: the client's error (a Redis store's LC_UNAVAILABLE
 * keeps it as `cause`; the call it failed in is left out, a batch names many), or the error itself.
 * ioredis fails the commands of a client that lost its connection with a note on its own retry
 * option; what matters to the reader is that Redis does not answer.
 */
function storeFailure(err: unknown): string {
  const origin =
    err instanceof CollectorError && err.code === 'LC_UNAVAILABLE' && err.cause !== undefined ? err.cause : err;
  if ((origin as Error)?.name === 'MaxRetriesPerRequestError') return 'no connection to Redis';
  return redactText((origin as Error)?.message ?? String(origin));
}
