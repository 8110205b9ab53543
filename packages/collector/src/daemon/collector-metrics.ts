import { Counter, Gauge, Histogram, type Registry as PromRegistry } from 'prom-client';
import type { Collector } from './collector.js';
import type { CollectorStats } from './collector-stats.js';
import type { StoreCall } from './store-applier.js';
import type { RegistryListOptions, RegistryRecord } from '../registry/registry.js';
import { within } from '../internal/within.js';

/** What {@link collectorMetrics} reads live entries from: a `Registry` fits. */
export interface EntryLister {
  list(options?: RegistryListOptions): Promise<RegistryRecord[]>;
}

/** Options of {@link collectorMetrics}. */
export interface CollectorMetricsOptions {
  /** The prom-client registry the metrics go to (one of your own: the daemon's never uses prom-client's global one). */
  registry: PromRegistry;
  /**
   * The registry of live handlers and collectors (what the collector keeps from heartbeats):
   * `contexture_registry_entries` counts its entries at each scrape. Null for none.
   * @default null
   */
  entries?: EntryLister | null;
  /**
   * How long a scrape waits for what it asks the broker (the queue's depth) and Redis (the
   * registry's entries); past it, the queue's last known depth is shown and the entries are left out.
   * @default 2000
   */
  timeout?: number;
}

/** What {@link collectorMetrics} returns: `close()` stops observing the collector (its metrics stay registered). */
export interface CollectorMetrics {
  close(): void;
}

/** Seconds buckets of the store call latency: from 1 ms to 10 s. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Deliveries per batch: 1 to 1024 (the largest `batchSize` in common use is 500). */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/**
 * Registers a collector's metrics on a prom-client registry: the counters of `stats()`, read at
 * each scrape (nothing is counted twice), a histogram of the store calls' latency and one of the
 * batches' sizes (from the collector's `storeCall` and `batch` events), the queue's depth (asked
 * of the broker at each scrape) and, with `entries`, the live handlers and collectors of the
 * registry. The names are listed in the package's README.
 *
 * @example
 * const registry = new PromRegistry();
 * collectorMetrics(collector, { registry, entries: heartbeatRegistry });
 * const text = await registry.metrics();
 */
export function collectorMetrics(collector: Collector, options: CollectorMetricsOptions): CollectorMetrics {
  const registers = [options.registry];
  const entries = options.entries ?? null;
  const timeout = options.timeout ?? 2000;
  // One reading of stats() per scrape would need a hook prom-client does not have: each metric reads
  // its own, which is cheap (a copy of a few counters).
  const stats = (): CollectorStats => collector.stats();

  const counter = (name: string, help: string, read: (s: CollectorStats) => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read(stats()));
      },
    });
  counter(
    'contexture_collector_deliveries_total',
    'AMQP deliveries received (heartbeats not counted)',
    (s) => s.deliveries,
  );
  counter(
    'contexture_collector_deliveries_redelivered_total',
    'Deliveries the broker marked as redelivered (not acknowledged before): their messages count again in messages_received_total; the store applies each once',
    (s) => s.redelivered,
  );
  counter(
    'contexture_collector_messages_received_total',
    'Messages read from the deliveries (a batch delivery holds several)',
    (s) => s.received,
  );
  counter('contexture_collector_messages_applied_total', 'Messages applied to the store', (s) => s.applied);
  counter('contexture_collector_deliveries_acked_total', 'Deliveries acknowledged', (s) => s.acked);
  counter(
    'contexture_collector_notes_total',
    "Messages without obj_id and obj (a publisher's notes): acknowledged, not stored",
    (s) => s.notes,
  );
  counter(
    'contexture_collector_dead_lettered_total',
    'Deliveries sent to the dead-letter queue',
    (s) => s.deadLettered,
  );
  counter('contexture_collector_store_errors_total', 'Store calls that failed (each is retried)', (s) => s.storeErrors);
  counter('contexture_collector_reconnects_total', 'Connections to the broker after the first', (s) => s.reconnects);
  counter(
    'contexture_collector_heartbeats_received_total',
    'Heartbeats of handlers and other collectors received',
    (s) => s.heartbeats.received,
  );
  counter(
    'contexture_collector_heartbeats_sent_total',
    "The collector's own heartbeats published",
    (s) => s.heartbeats.sent,
  );
  counter(
    'contexture_collector_registry_errors_total',
    'Writes to the registry of live handlers that failed',
    (s) => s.heartbeats.registryErrors,
  );
  new Counter({
    name: 'contexture_collector_dead_lettered_messages_total',
    help: 'Messages dead-lettered, by reason (malformed, or refused by the store)',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(stats().malformed)) this.inc({ reason }, n);
    },
  });
  new Gauge({
    name: 'contexture_collector_in_flight',
    help: 'Deliveries being applied now',
    registers,
    collect() {
      this.set(stats().inFlight);
    },
  });
  new Gauge({
    name: 'contexture_collector_lag_seconds',
    help: "Seconds from the newest applied message's time_in to its application (0 until one is applied)",
    registers,
    collect() {
      this.set(stats().lagSeconds ?? 0);
    },
  });
  new Gauge({
    name: 'contexture_collector_queue_depth',
    help: 'Ready messages in the queue, asked of the broker at each scrape (0 until known)',
    registers,
    async collect() {
      this.set((await within(collector.readQueueDepth(), timeout, stats().queueDepth)) ?? 0);
    },
  });
  if (entries !== null) {
    new Gauge({
      name: 'contexture_registry_entries',
      help: 'Live handlers and collectors in the registry (from their heartbeats), by kind and health',
      labelNames: ['kind', 'health'],
      registers,
      async collect() {
        const list = await within(entries.list(), timeout, null);
        // Counted apart, then set at once after the await: two scrapes at a time must not both add.
        this.reset();
        // Redis away: no value rather than a stale one (/healthz says why).
        if (list === null) return;
        const counts = new Map<string, { kind: string; health: string; n: number }>();
        for (const e of list) {
          const kind = e.kind ?? 'unknown';
          const health = e.healthy ? 'healthy' : 'unhealthy';
          const c = counts.get(`${kind}\u0000${health}`);
          if (c === undefined) counts.set(`${kind}\u0000${health}`, { kind, health, n: 1 });
          else c.n++;
        }
        for (const { kind, health, n } of counts.values()) this.set({ kind, health }, n);
      },
    });
  }
  const calls = new Histogram({
    name: 'contexture_collector_store_call_duration_seconds',
    help: 'Store calls (one per batch, or one per message for a store without applyMany), by method and outcome',
    labelNames: ['method', 'outcome'],
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const batches = new Histogram({
    name: 'contexture_collector_batch_size',
    help: 'Deliveries per batch (applied in one store call and acknowledged together)',
    buckets: BATCH_BUCKETS,
    registers,
  });
  const onCall = (c: StoreCall) => calls.observe({ method: c.method, outcome: c.outcome }, c.seconds);
  const onBatch = (n: number) => batches.observe(n);
  collector.on('storeCall', onCall);
  collector.on('batch', onBatch);
  return {
    close() {
      collector.off('storeCall', onCall);
      collector.off('batch', onBatch);
    },
  };
}
