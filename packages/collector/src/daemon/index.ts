/**
 * `@contexture/collector/daemon`: the `Collector` that feeds a context store from RabbitMQ, the
 * `contexture-collector` program (`createProgram`) and its metrics (`collectorMetrics`,
 * `MetricsServer`), and the `contexture-store` program (`createStoreProgram`). The only part of the package that loads amqplib, commander and prom-client.
 */
export { CollectorError } from '../internal/errors.js';
export type { CollectorErrorCode } from '../internal/errors.js';
export { createProgram, EXIT } from './cli.js';
export type { ProgramIO } from './cli.js';
export { createStoreProgram } from './store-cli.js';
export type { StoreProgramIO } from './store-cli.js';
export { Collector } from './collector.js';
export type { CollectorStats, CollectorStatus } from './collector-stats.js';
export { COLLECTOR_DEFAULTS } from './collector-options.js';
export type {
  ApplyTarget,
  CollectorLogger,
  CollectorOptions,
  CollectorRetryOptions,
  ResolvedCollectorOptions,
} from './collector-options.js';
export type { HeartbeatRegistry, HeartbeatStats } from './heartbeats.js';
export { collectorMetrics } from './collector-metrics.js';
export type { CollectorMetrics, CollectorMetricsOptions, EntryLister } from './collector-metrics.js';
export { MetricsServer } from './metrics-server.js';
export type { MetricsServerOptions } from './metrics-server.js';
export { LinkHealth } from './link-health.js';
export type { HealthReport, LinkHealthOptions, LinkReport, PingableRedis } from './link-health.js';
export type { StoreCall } from './store-applier.js';
