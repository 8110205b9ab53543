import { EventEmitter } from 'node:events';
import os from 'node:os';
import amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import {
  AmqpNodes,
  backoffDelay,
  redactText,
  toLogger,
  watchSilence,
  withAmqpHeartbeat,
} from '@contexture/context/internal';
import type { Logger } from '@contexture/context';
import {
  decodeBody,
  isMalformed,
  isNote,
  isReservedRkey,
  type MessageMeta,
  plainHeaders,
} from '@contexture/context/protocol';
import { CollectorHeartbeats } from './heartbeats.js';
import type { ApplyItem } from '../store/types.js';
import {
  type CollectorOptions,
  type ResolvedCollectorOptions,
  collectorUrls,
  resolveCollectorOptions,
} from './collector-options.js';
import { brokerRefusal, setUpTopology } from './queue-declare.js';
import { CollectorError } from '../internal/errors.js';
import {
  type CollectorCounts,
  type CollectorStats,
  type CollectorStatus,
  heartbeatMetrics,
  printForm,
  StatsTicker,
  statsLine,
  zeroCounts,
} from './collector-stats.js';
import { copyHeaders, deadLetter } from './dead-letter.js';
import { type Refusal, StoreApplier } from './store-applier.js';
import { printable } from '../internal/printable.js';
import { type Batch, MAX_BATCHES } from './batch.js';

/** Tries of start() again after a broker closed the connection while the queue was set up (RabbitMQ does so to a
 * consumer of a quorum queue that another collector declared a moment before, whose leader is not up yet). */
const SETUP_RETRIES = 5;

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
  /** The resolved options; `url` with its password(s) masked. */
  readonly options: Readonly<ResolvedCollectorOptions>;
  /** The broker's node(s), with their passwords: printed, `host:port` only. */
  readonly #nodes: AmqpNodes;
  /** `host:port` of the node consumed from last (what a loss reports as lost). */
  private peer: string | null = null;
  /** Queues already said to exist otherwise than asked for (said once each). */
  private readonly adaptedSaid = new Set<string>();
  /** The type the queue was found to have at the last connect. */
  private queueTypeFound: string | null = null;
  private model: ChannelModel | null = null;
  private channel: ConfirmChannel | null = null;
  private consumerTag: string | null = null;
  private _status: CollectorStatus = 'idle';
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private closePromise: Promise<void> | null = null;
  /** Aborted by close() and destroy(): ends a start() under way. */
  private readonly closing = new AbortController();
  private idleWaiters: Array<() => void> = [];
  private brokerDown = false;
  /** The last connect failed after the broker took the connection (while the queue was set up). */
  private setupLost = false;
  /**
   * Deliveries still to take one at a time (prefetch 1) after a connection loss, before the
   * prefetch goes back to its own: as many as the lost channel could hold unacknowledged. A
   * message that breaks the connection as it arrives (amqplib cannot decode it: headers nested
   * thousands deep run it out of stack) then comes alone, and it alone reaches the queue's
   * delivery limit, not the messages that were in flight beside it.
   */
  private alone = 0;
  private counts: CollectorCounts = zeroCounts();
  private malformed: Record<string, number> = Object.create(null);
  /** Where `startStats()` writes its line. */
  private statsOut: ((text: string, stats: CollectorStats) => void) | undefined;
  private readonly ticker = new StatsTicker(
    this.counts,
    async () => (this.channel === null ? null : (await this.channel.checkQueue(this.options.queue)).messageCount),
    () => {
      const s = this.stats();
      this.emit('stats', s);
      this.statsOut?.(statsLine(s), s);
    },
  );
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
  private readonly applier: StoreApplier;
  /** The `logger` option as a pino-style logger. */
  private readonly logger: Logger | null;

  /**
   * @throws {CollectorError} `LC_DAEMON_INVALID_OPTION` for an option that is missing, unknown, out
   * of range or of the wrong type.
   */
  constructor(options: CollectorOptions) {
    super();
    this.options = resolveCollectorOptions(options);
    this.logger = this.options.logger === null ? null : toLogger(this.options.logger);
    this.#nodes = new AmqpNodes(collectorUrls(options.url));
    this.heartbeats = new CollectorHeartbeats(
      this.options.registry,
      this.options.heartbeatInterval,
      this.options.queue,
      this.options.exchange,
    );
    this.applier = new StoreApplier(this.options.store, this.options.retry, {
      counts: this.counts,
      failed: (reason) => {
        this.lastError = reason;
      },
      log: (level, fields, message) => this.log(level, fields, message),
      isClosed: () => this._status === 'closed',
      called: (call) => this.tell('storeCall', call),
    });
  }

  /**
   * The queue's type as the broker has it ('quorum', 'classic', …), once consuming: the one asked
   * for, or the one an existing queue was found with; null before the first connect.
   */
  get queueType(): string | null {
    return this.queueTypeFound;
  }

  /** `host:port` of the node consumed from (or the one the next connect goes to). */
  get where(): string {
    return this.peer ?? this.#nodes.where;
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
    // close() ends start() at once: a handshake with a broker that does not answer is not waited out.
    const closed = new Promise<never>((_, reject) => {
      const fail = () => reject(new CollectorError('LC_DAEMON_CLOSED', 'the collector was closed before it consumed'));
      this.closing.signal.addEventListener('abort', fail, { once: true });
    });
    // One round of the nodes: the first that answers is used; when none does, start() fails. A node
    // that closed the connection while the queue was set up is tried again (see SETUP_RETRIES).
    const failures: string[] = [];
    let setupRetries = 0;
    for (let i = 0; i < this.#nodes.size; i++) {
      const where = this.#nodes.where;
      try {
        await Promise.race([this.connect(true), closed]);
        return;
      } catch (err) {
        // Closed, or a refusal of the set-up, which every node of a cluster would repeat.
        if (err instanceof CollectorError) throw err;
        if (this.setupLost && setupRetries < SETUP_RETRIES) {
          const delay = backoffDelay(++setupRetries, this.options.retry);
          await Promise.race([new Promise((r) => setTimeout(r, delay)), closed]);
          i--; // the same node again (connect() moved on: with one node, that is the node)
          continue;
        }
        if (this.#nodes.size === 1) throw err;
        failures.push(`${where}: ${redactText((err as Error)?.message ?? String(err))}`);
        if (i === this.#nodes.size - 1) throw new Error(failures.join('; '), { cause: err });
      }
    }
  }

  /**
   * Stops consuming, lets the messages in flight finish (up to `shutdownTimeout`), then closes the
   * connection. Idempotent.
   */
  close(): Promise<void> {
    if (this.closePromise !== null) return this.closePromise;
    this.closePromise = (async () => {
      this._status = 'closing';
      this.closing.abort();
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
      await this.heartbeats.stop(this.channel, heartbeatMetrics(this.counts));
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
    this.closing.abort();
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
  startStats(seconds: number, line?: (text: string, stats: CollectorStats) => void): void {
    this.statsOut = line;
    this.ticker.start(seconds);
  }

  stopStats(): void {
    this.ticker.stop();
  }

  /** Asks the broker for the queue's ready messages now (what `stats().queueDepth` then shows); the last known depth when it cannot. */
  readQueueDepth(): Promise<number | null> {
    return this.ticker.readDepth();
  }

  /** Emits an event whose listeners must not stop the collector (they only watch it). */
  private tell(event: 'storeCall' | 'batch', value: unknown): void {
    try {
      this.emit(event, value);
    } catch {
      /* a broken listener must not fail a store call nor a batch */
    }
  }

  private log(level: 'info' | 'warn', fields: Record<string, unknown>, message: string): void {
    try {
      this.logger?.[level](fields, message);
    } catch {
      /* a broken logger must not stop the collector */
    }
  }

  private async connect(first: boolean): Promise<void> {
    if (this._status === 'closing' || this._status === 'closed') return;
    this._status = 'connecting';
    const o = this.options;
    let model: ChannelModel | null = null;
    const where = this.#nodes.where;
    this.setupLost = false;
    try {
      // A timeout on the handshake (a broker that takes the connection and says nothing) and a
      // heartbeat (one that stops answering later): otherwise either would hang the collector.
      model = await amqp.connect(withAmqpHeartbeat(this.#nodes.current), {
        timeout: 10_000,
        clientProperties: { connection_name: `contexture-collector ${os.hostname()} pid ${process.pid}` },
      } as Options.Connect);
      // The connection's error comes first; the channel's close that follows it carries none.
      let connError: Error | undefined;
      model.on('error', (err: Error) => (connError ??= err));
      watchSilence(model);
      // Closed meanwhile (the handshake took long): nothing is declared, the connection is closed.
      if (this.closing.signal.aborted) throw new CollectorError('LC_DAEMON_CLOSED', 'closed while connecting');
      const topology = await setUpTopology(model, this.alone > 0 ? { ...o, prefetch: 1 } : o, this.adaptedSaid);
      const ch = topology.ch;
      this.queueTypeFound = topology.type;
      for (const w of topology.warnings) this.log('warn', w.fields, w.message);
      const lost = (err?: Error) => this.onLost(model!, err);
      model.on('close', lost);
      ch.on('close', () => lost(connError ?? new Error('channel closed by the broker')));
      this.model = model;
      this.channel = ch;
      const { consumerTag } = await ch.consume(o.queue, (msg) => {
        if (msg !== null) void this.onDelivery(ch, msg);
      });
      this.consumerTag = consumerTag;
    } catch (thrown) {
      // A refusal of the set-up is said as such (and not tried again at start).
      const err = (model === null ? null : brokerRefusal(thrown, o, where)) ?? thrown;
      this.lastError = redactText((err as Error)?.message ?? String(err));
      this.setupLost = model !== null && !(err instanceof CollectorError);
      // Forgotten before it is closed: its close must not count as a connection lost (onLost would
      // schedule a reconnect of its own beside the one decided here).
      this.model = null;
      this.channel = null;
      if (model !== null) await model.close().catch(() => {});
      // The next connect goes to the next node.
      this.#nodes.advance();
      const closing = this.closing.signal.aborted; // close() came meanwhile: no reconnect
      if (first) {
        if (!closing) this._status = 'idle';
        throw err;
      }
      if (closing) return;
      this._status = 'disconnected';
      this.scheduleReconnect();
      return;
    }
    if (this.closing.signal.aborted) return model.close().catch(() => {});
    this._status = 'consuming';
    this.attempt = 0;
    if (!first) this.counts.reconnects++;
    const lostNode = this.peer;
    this.peer = where;
    if (this.brokerDown) {
      const took = lostNode !== null && lostNode !== where ? ` (took over from ${lostNode})` : '';
      this.log(
        'info',
        { code: 'LC_BROKER_RECONNECTED', url: where, ...(took === '' ? {} : { lost: lostNode }) },
        `consuming from ${where}${took} again`,
      );
    }
    this.brokerDown = false;
    this.heartbeats.start(
      () => this.channel,
      () => heartbeatMetrics(this.counts),
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
    this.alone = this.options.prefetch;
    this.lastError = redactText(err?.message ?? 'connection closed');
    model.close().catch(() => {});
    // The reconnect goes to the next node (this one again when it is the only one).
    this.#nodes.advance();
    const nodes = this.#nodes.size;
    const next = nodes > 1 ? ` (next: ${this.#nodes.where}, one of ${nodes} nodes)` : '';
    if (!this.brokerDown)
      this.log(
        'warn',
        { code: 'LC_BROKER_LOST', url: this.peer ?? this.#nodes.where, lastError: this.lastError, nodes },
        `lost ${this.peer ?? this.#nodes.where} (${this.lastError}); unacknowledged messages will be redelivered; reconnecting${next}`,
      );
    this.brokerDown = true;
    this.emit('disconnect', this.lastError);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer !== null) return;
    this.attempt++;
    // The backoff grows once per full round of the nodes: after a loss the next node is tried at once.
    this.reconnectTimer = setTimeout(
      () => {
        this.reconnectTimer = null;
        void this.connect(false);
      },
      backoffDelay(this.#nodes.round(this.attempt), this.options.retry),
    );
  }

  private onDelivery(ch: ConfirmChannel, msg: ConsumeMessage): void {
    // Told apart once: heartbeats and the like (reserved routing keys) are not counted as data.
    if (isReservedRkey(msg.fields.routingKey)) this.own.add(msg);
    else {
      this.counts.deliveries++;
      if (msg.fields.redelivered) this.counts.redelivered++;
    }
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
      this.tell('batch', msgs.length);
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
        const raw = msg.properties.headers as Record<string, unknown> | undefined;
        // Plain values (bytes as text, timestamps as seconds: see plainHeaders()), own keys only.
        const headers = raw === undefined || raw === null ? undefined : copyHeaders(plainHeaders(raw));
        const meta: MessageMeta = { rkey: msg.fields.routingKey, headers };
        const decoded = decodeBody(msg.content, msg.properties.contentType, {
          maxBytes: this.options.maxBytes,
          maxDepth: this.options.maxDepth,
        });
        this.counts.received += decoded.length;
        for (const d of decoded) {
          if (isMalformed(d)) bad[i]!.push(d);
          // A publisher's note (no obj_id, no obj) has no context to store: counted, acknowledged.
          else if (isNote(d)) this.counts.notes++;
          else {
            items.push({ message: d, meta });
            owner.push(i);
          }
        }
      });
      const refused = items.length === 0 ? [] : await this.applier.applyItems(items);
      if (side.length > 0) await Promise.all(side);
      refused.forEach((r, j) => {
        if (r !== null) bad[owner[j]!]!.push(r);
      });
      await Promise.all(
        batch.msgs.map(async (msg, i) => {
          const b = bad[i]!;
          if (b.length === 0) return;
          try {
            await deadLetter(batch.ch, this.options.deadLetterQueue, msg, b);
            // Counted once in the dead-letter queue (a delivery that failed to go there comes again).
            for (const m of b) this.malformed[m.kind] = (this.malformed[m.kind] ?? 0) + 1;
            this.counts.deadLettered++;
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
        if (this.alone > 0) {
          this.alone -= batch.msgs.length;
          // Past what the lost channel could hold: the whole window again.
          if (this.alone <= 0) {
            this.alone = 0;
            ch.prefetch(this.options.prefetch).catch(() => {});
          }
        }
      } catch {
        // The channel is closing: what is unacknowledged is redelivered.
      }
    }
  }
}

printable(Collector, printForm);
