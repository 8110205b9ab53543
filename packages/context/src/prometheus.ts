/**
 * `@contexture/context/prometheus`: a Handler's counters as prom-client metrics, for a program that
 * serves its own `/metrics`. prom-client is an optional peer dependency: only this module loads it.
 */
import { Counter, Gauge, type Registry, register as defaultRegistry } from 'prom-client';
import { ContextError } from './errors.js';
import type { HandlerStats } from './handler-stats.js';

/** What {@link handlerMetrics} reads: a `Handler` (or the process's, `getHandler()`). */
export interface StatsSource {
  stats(): HandlerStats;
}

/** Options of {@link handlerMetrics}. */
export interface HandlerMetricsOptions {
  /** The prom-client registry the metrics go to. @default prom-client's default registry (`register`) */
  registry?: Registry;
  /** Start of every metric's name; a second handler in one registry needs another one. @default 'contexture_handler_' */
  prefix?: string;
  /** Labels every sample carries, such as `{ service: 'api' }`. @default {} */
  labels?: Record<string, string>;
}

/** What {@link handlerMetrics} registered. */
export interface HandlerMetrics {
  /** The names of the metrics registered. */
  readonly names: readonly string[];
  /** Takes the metrics out of the registry. */
  unregister(): void;
}

/** Each metric: its name after the prefix, its help, and how it reads the stats. */
const COUNTERS: ReadonlyArray<[string, string, (s: HandlerStats) => number]> = [
  ['messages_enqueued_total', 'Messages accepted from contexts', (s) => s.enqueued],
  ['messages_published_total', 'Messages the broker (or the file) confirmed', (s) => s.published],
  [
    'messages_dropped_total',
    'Messages dropped: buffer overflow, refused by the broker three times, or left at close',
    (s) => s.dropped,
  ],
  [
    'messages_dropped_unconfirmed_total',
    'The part of the dropped messages that had been sent and never confirmed (they may have been delivered)',
    (s) => s.droppedUnconfirmed,
  ],
  ['reconnects_total', 'Successful connections to the broker after the first', (s) => s.reconnects],
  ['heartbeats_total', 'Heartbeats published', (s) => s.heartbeats],
];
const GAUGES: ReadonlyArray<[string, string, (s: HandlerStats) => number]> = [
  ['messages_queued', 'Messages waiting in the buffer', (s) => s.queued],
  ['messages_in_flight', 'Messages sent and not yet confirmed', (s) => s.inFlight],
  [
    'connected',
    '1 while the handler is connected (its status is connected), else 0',
    (s) => Number(s.status === 'connected'),
  ],
  ['blocked', '1 while the broker asks publishers to stop (a resource alarm), else 0', (s) => Number(s.blocked)],
];

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function invalid(message: string): ContextError {
  return new ContextError('LC_METRICS_INVALID_OPTION', `handlerMetrics: ${message}`);
}

/**
 * Registers a Handler's counters (`stats()`) as prom-client metrics, read at each scrape (nothing
 * is counted twice): `contexture_handler_messages_enqueued_total`, `…_published_total`,
 * `…_dropped_total`, `…_dropped_unconfirmed_total`, `…_reconnects_total`, `…_heartbeats_total`
 * (counters), and `…_messages_queued`, `…_messages_in_flight`, `…_connected`, `…_blocked` (gauges).
 *
 * @throws {ContextError} `LC_METRICS_INVALID_OPTION` for a wrong option, or when a metric of the
 * same name is already in the registry (nothing is registered then).
 * @example
 * import { Registry } from 'prom-client';
 * import { getHandler } from '@contexture/context';
 * import { handlerMetrics } from '@contexture/context/prometheus';
 *
 * const registry = new Registry();
 * handlerMetrics(getHandler(), { registry });
 * // in the /metrics route: res.type(registry.contentType).send(await registry.metrics())
 */
export function handlerMetrics(handler: StatsSource, options: HandlerMetricsOptions = {}): HandlerMetrics {
  if (typeof handler?.stats !== 'function') throw invalid('the handler must have a stats() method (a Handler)');
  const registry = options.registry ?? defaultRegistry;
  if (typeof registry?.registerMetric !== 'function' || typeof registry.getSingleMetric !== 'function')
    throw invalid('registry must be a prom-client Registry');
  const prefix = options.prefix ?? 'contexture_handler_';
  if (typeof prefix !== 'string' || !NAME.test(`${prefix}x`))
    throw invalid(
      `prefix must start a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), got ${JSON.stringify(prefix)}`,
    );
  const labels = options.labels ?? {};
  if (labels === null || typeof labels !== 'object') throw invalid('labels must be an object of strings');
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL.test(k) || k.startsWith('__')) throw invalid(`${JSON.stringify(k)} is not a label name`);
    if (typeof v !== 'string') throw invalid(`label ${k} must be a string, got ${typeof v}`);
  }
  const names = [...COUNTERS, ...GAUGES].map(([n]) => prefix + n);
  const taken = names.find((n) => registry.getSingleMetric(n) !== undefined);
  if (taken !== undefined)
    throw invalid(`a metric named ${taken} is already registered (give another prefix, or another registry)`);

  const labelNames = Object.keys(labels);
  // Each metric reads stats() when collected: a copy of a few counters, cheaper than any caching.
  for (const [name, help, read] of COUNTERS)
    new Counter({
      name: prefix + name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(labels, read(handler.stats()));
      },
    });
  for (const [name, help, read] of GAUGES)
    new Gauge({
      name: prefix + name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.set(labels, read(handler.stats()));
      },
    });
  return {
    names,
    unregister() {
      for (const n of names) registry.removeSingleMetric(n);
    },
  };
}
