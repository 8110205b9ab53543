import type { MessageMeta, WireMessage } from '@contexture/context/protocol';
import type { HeartbeatRegistry } from './heartbeats.js';

/**
 * What the collector needs of a store: an atomic, idempotent apply per message, and optionally
 * `applyMany()`, the same for several messages in one call (what the collector then uses).
 */
export interface ApplyTarget {
  apply(message: WireMessage, meta?: MessageMeta): Promise<unknown>;
  applyMany?(items: ReadonlyArray<{ message: WireMessage; meta?: MessageMeta }>): Promise<unknown>;
}

/** Where the collector reports (outages, recoveries, stats lines). */
export interface CollectorLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** Options of {@link Collector}. */
export interface CollectorOptions {
  /** The store every message is applied to. */
  store: ApplyTarget;
  /** @default 'amqp://guest:guest@127.0.0.1:5672/%2F' */
  url?: string;
  /** @default 'lc-topic' */
  exchange?: string;
  /** @default 'topic' */
  exchangeType?: 'topic' | 'headers';
  /** The durable queue to consume; several collectors on one queue share the work. @default 'contexture.collector' */
  queue?: string;
  /** @default 'classic' */
  queueType?: 'classic' | 'quorum';
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
  /** Backoff of store retries and AMQP reconnects (ms). @default { initialDelay: 100, maxDelay: 5000 } */
  retry?: { initialDelay?: number; maxDelay?: number };
  /** Longest wait (ms) for in-flight messages at close; the rest is redelivered to another collector. @default 10000 */
  shutdownTimeout?: number;
  /** @default lines on stderr */
  logger?: CollectorLogger | null;
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
  Omit<CollectorOptions, 'bindingArgs' | 'deadLetterQueue' | 'retry' | 'logger' | 'registry'>
> & {
  registry: HeartbeatRegistry | null;
  bindingArgs: Record<string, unknown> | undefined;
  deadLetterQueue: string;
  retry: { initialDelay: number; maxDelay: number };
  logger: CollectorLogger | null;
};

export const COLLECTOR_DEFAULTS = Object.freeze({
  url: 'amqp://guest:guest@127.0.0.1:5672/%2F',
  exchange: 'lc-topic',
  exchangeType: 'topic' as const,
  queue: 'contexture.collector',
  queueType: 'classic' as const,
  bindings: Object.freeze(['#']) as unknown as string[],
  prefetch: 1000,
  batchSize: 500,
  maxBytes: 1024 * 1024,
  maxDepth: 64,
  retry: Object.freeze({ initialDelay: 100, maxDelay: 5000 }),
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
