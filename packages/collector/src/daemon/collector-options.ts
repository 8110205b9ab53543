import type { MessageMeta, WireMessage } from '@contexture/context/protocol';
import { isLoggerOption, parseAmqpUrls, redactUrls, textLogger } from '@contexture/context/internal';
import type { Logger } from '@contexture/context';
import { CollectorError } from '../internal/errors.js';
import type { HeartbeatRegistry } from './heartbeats.js';

/**
 * What the collector needs of a store: an atomic, idempotent apply per message, and optionally
 * `applyMany()`, the same for several messages in one call (what the collector then uses).
 */
export interface ApplyTarget {
  apply(message: WireMessage, meta?: MessageMeta): Promise<unknown>;
  applyMany?(items: ReadonlyArray<{ message: WireMessage; meta?: MessageMeta }>): Promise<unknown>;
}

/**
 * A logger of messages only, as the `logger` option took before it took a pino-style
 * {@link Logger}: still accepted, it gets each message alone.
 */
export interface CollectorLogger {
  info(message: string): void;
  warn(message: string): void;
  /** Absent: an object with an `error` method too is taken for a pino-style {@link Logger}. */
  error?: undefined;
}

/**
 * Capped exponential backoff with jitter, of store retries and AMQP reconnects: the pause before
 * retry `n` is `initialDelay * factor ** (n - 1)`, ± `jitter` of it at random, never over `maxDelay`.
 */
export interface CollectorRetryOptions {
  /** Pause (ms) before the first retry, before jitter. @default 100 */
  initialDelay?: number;
  /** Longest pause (ms), jitter included. @default 5000 */
  maxDelay?: number;
  /** Each pause is this many times the one before (until the cap). @default 2 */
  factor?: number;
  /** Fraction (0–1) of the pause drawn at random either way. @default 0.2 */
  jitter?: number;
}

/** Options of {@link Collector}. */
export interface CollectorOptions {
  /** The store every message is applied to. */
  store: ApplyTarget;
  /**
   * The broker's URL; for a RabbitMQ cluster, its nodes' URLs as a comma-separated list or an
   * array: every (re)connect goes to the next node in turn (a comma inside a user or password must
   * be written `%2C`). Shown in `options` with the passwords masked.
   * @default 'amqp://guest:guest@127.0.0.1:5672/%2F'
   */
  url?: string | readonly string[];
  /** @default 'lc-topic' */
  exchange?: string;
  /** @default 'topic' */
  exchangeType?: 'topic' | 'headers';
  /** The durable queue to consume; several collectors on one queue share the work. @default 'contexture.collector' */
  queue?: string;
  /**
   * The type the queue (and the dead-letter queue) is declared with: a quorum queue is replicated
   * over a cluster's nodes and survives the loss of a minority of them. An existing queue of the
   * other type (or with other arguments) is used as it is, with one warning.
   * @default 'quorum'
   */
  queueType?: 'classic' | 'quorum';
  /**
   * On a quorum queue, a message delivered more than this many times (its collector dies on it,
   * again and again) goes to the dead-letter queue instead of being delivered again forever
   * (`x-delivery-limit`); 0 for no limit. Classic queues have none.
   * @default 20
   */
  deliveryLimit?: number;
  /** Routing keys the queue is bound with (like lcmon's -r). @default ['#'] */
  bindings?: string[];
  /** Binding arguments, for a headers exchange (with `x-match`). @default undefined */
  bindingArgs?: Record<string, unknown>;
  /** Unacknowledged messages at most: how many are applied concurrently. @default 1000 */
  prefetch?: number;
  /**
   * Deliveries applied together at most: what arrives while the store works on a batch is applied
   * in the next one (one store call, the messages of one context in one script call) and
   * acknowledged together.
   * @default 500
   */
  batchSize?: number;
  /** Where malformed messages go. @default `<queue>.dead` */
  deadLetterQueue?: string;
  /** Bodies larger than this are malformed. @default 1048576 */
  maxBytes?: number;
  /** Values nested deeper than this are malformed. @default 64 */
  maxDepth?: number;
  /**
   * Backoff of store retries and AMQP reconnects (ms).
   * @default { initialDelay: 100, maxDelay: 5000, factor: 2, jitter: 0.2 }
   */
  retry?: CollectorRetryOptions;
  /** Longest wait (ms) for in-flight messages at close; the rest is redelivered to another collector. @default 10000 */
  shutdownTimeout?: number;
  /**
   * Where the collector reports (outages and recoveries, queues adopted as they are, messages
   * dead-lettered): a pino-style logger, called `warn({ code, … }, message)` (and `info`), or an
   * object with `info(message)` and `warn(message)` only; null for none.
   * @default a logger writing `<ISO time> contexture-collector: <message>` lines on stderr
   * @example
   * new Collector({ store, logger: pino().child({ lib: 'contexture-collector' }) });
   */
  logger?: Logger | CollectorLogger | null;
  /**
   * Where the handlers' heartbeats (routing key `contexture.heartbeat`, which the queue is then
   * bound with too, on a topic exchange) and the collector's own go: a `Registry`. Null for none.
   * @default null
   */
  registry?: HeartbeatRegistry | null;
  /** ms between the collector's own heartbeats (on the bus, and into the registry); 0 for none. @default 5000 */
  heartbeatInterval?: number;
}

export type ResolvedCollectorOptions = Required<
  Omit<CollectorOptions, 'url' | 'bindingArgs' | 'deadLetterQueue' | 'retry' | 'logger' | 'registry'>
> & {
  /** The URL, or the nodes' URLs comma-separated, with their passwords masked. */
  url: string;
  registry: HeartbeatRegistry | null;
  bindingArgs: Record<string, unknown> | undefined;
  deadLetterQueue: string;
  retry: Required<CollectorRetryOptions>;
  logger: Logger | CollectorLogger | null;
};

export const COLLECTOR_DEFAULTS = Object.freeze({
  url: 'amqp://guest:guest@127.0.0.1:5672/%2F',
  exchange: 'lc-topic',
  exchangeType: 'topic' as const,
  queue: 'contexture.collector',
  queueType: 'quorum' as const,
  deliveryLimit: 20,
  bindings: Object.freeze(['#']) as unknown as string[],
  prefetch: 1000,
  batchSize: 500,
  maxBytes: 1024 * 1024,
  maxDepth: 64,
  retry: Object.freeze({ initialDelay: 100, maxDelay: 5000, factor: 2, jitter: 0.2 }),
  shutdownTimeout: 10_000,
  heartbeatInterval: 5000,
});

/** Every option name a Collector takes (one not among them is refused: a misspelt one would be ignored). */
export const COLLECTOR_OPTION_NAMES: ReadonlySet<string> = new Set([
  ...Object.keys(COLLECTOR_DEFAULTS),
  'store',
  'bindingArgs',
  'deadLetterQueue',
  'logger',
  'registry',
]);

/** A `CollectorError` `LC_DAEMON_INVALID_OPTION`. */
function invalid(message: string): CollectorError {
  return new CollectorError('LC_DAEMON_INVALID_OPTION', message);
}

const stderrLogger = textLogger(() => `${new Date().toISOString()} contexture-collector: `);

/**
 * The options of a {@link Collector} with their defaults, checked: a `CollectorError`
 * `LC_DAEMON_INVALID_OPTION` for one that is missing, unknown, out of range or of the wrong type.
 */
export function resolveCollectorOptions(options: CollectorOptions): Readonly<ResolvedCollectorOptions> {
  if (typeof options?.store?.apply !== 'function')
    throw invalid('Collector: options.store must have an apply(message, meta) method');
  for (const k of Object.keys(options))
    if (!COLLECTOR_OPTION_NAMES.has(k)) throw invalid(`Collector: unknown option ${JSON.stringify(k.slice(0, 60))}`);
  const o = { ...COLLECTOR_DEFAULTS, ...stripUndefined(options) } as CollectorOptions & typeof COLLECTOR_DEFAULTS;
  const urls = collectorUrls(o.url);
  const queueType: unknown = o.queueType;
  if (queueType !== 'classic' && queueType !== 'quorum')
    throw invalid(`Collector: queueType must be 'classic' or 'quorum', got ${JSON.stringify(String(queueType))}`);
  if (!Number.isSafeInteger(o.deliveryLimit) || o.deliveryLimit < 0)
    throw invalid(`Collector: deliveryLimit must be an integer >= 0 (0: no limit), got ${o.deliveryLimit}`);
  for (const k of ['prefetch', 'batchSize', 'maxBytes', 'maxDepth'] as const) {
    if (!Number.isSafeInteger(o[k]) || o[k] < 1)
      throw invalid(`Collector: ${k} must be a positive integer, got ${o[k]}`);
  }
  // AMQP's prefetch count is 16 bits: the broker would refuse more when the channel is set up.
  if (o.prefetch > 65535) throw invalid(`Collector: prefetch must be at most 65535, got ${o.prefetch}`);
  if (!Array.isArray(o.bindings) || o.bindings.length === 0)
    throw invalid('Collector: bindings must name at least one routing key');
  for (const k of ['queue', 'exchange'] as const) {
    if (typeof o[k] !== 'string' || o[k].length === 0) throw invalid(`Collector: ${k} must be a non-empty string`);
  }
  if (o.deadLetterQueue !== undefined && (typeof o.deadLetterQueue !== 'string' || o.deadLetterQueue.length === 0))
    throw invalid('Collector: deadLetterQueue must be a non-empty string');
  const every: number = o.heartbeatInterval;
  if (every !== 0 && (!Number.isSafeInteger(every) || every < 100)) {
    throw invalid(`Collector: heartbeatInterval must be an integer >= 100 (ms), or 0 for none, got ${every}`);
  }
  const registry = o.registry ?? null;
  if (registry !== null && (typeof registry.beat !== 'function' || typeof registry.unregister !== 'function')) {
    throw invalid('Collector: registry must have beat(entry, metrics) and unregister(id) methods (a Registry)');
  }
  const logger = o.logger === undefined ? stderrLogger : o.logger;
  if (logger !== null && !isLoggerOption(logger))
    throw invalid(
      'Collector: logger must be a pino-style logger (info, warn, error), an object with warn(message) (and info(message)), or null',
    );
  return Object.freeze({
    ...o,
    url: redactUrls(urls),
    bindings: [...o.bindings],
    bindingArgs: o.bindingArgs,
    deadLetterQueue: o.deadLetterQueue ?? `${o.queue}.dead`,
    retry: resolveRetry(o.retry),
    logger,
    registry,
  });
}

/**
 * The URLs of the `url` option (one, or a cluster's nodes), checked: a `CollectorError`
 * `LC_DAEMON_INVALID_OPTION` naming the entry that is not an AMQP URL by its position only.
 */
export function collectorUrls(url: unknown): string[] {
  const list = parseAmqpUrls(url ?? COLLECTOR_DEFAULTS.url);
  if (!list.ok) throw invalid(`Collector: url ${list.why}`);
  return list.urls;
}

/** The `retry` option with its defaults, checked. */
function resolveRetry(retry: CollectorRetryOptions | null | undefined): Required<CollectorRetryOptions> {
  if (retry !== undefined && retry !== null && typeof retry !== 'object')
    throw invalid('Collector: retry must be an object of initialDelay, maxDelay, factor and jitter');
  const r = { ...COLLECTOR_DEFAULTS.retry, ...stripUndefined(retry ?? {}) };
  for (const k of ['initialDelay', 'maxDelay'] as const) {
    if (typeof r[k] !== 'number' || !Number.isFinite(r[k]) || r[k] < 0)
      throw invalid(`Collector: retry.${k} must be a number of ms >= 0, got ${r[k]}`);
  }
  if (typeof r.factor !== 'number' || !Number.isFinite(r.factor) || r.factor < 1)
    throw invalid(`Collector: retry.factor must be a number >= 1, got ${r.factor}`);
  if (typeof r.jitter !== 'number' || !(r.jitter >= 0 && r.jitter <= 1))
    throw invalid(`Collector: retry.jitter must be a number from 0 to 1, got ${r.jitter}`);
  return r;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
