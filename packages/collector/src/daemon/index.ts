/**
 * `@contexture/collector/daemon`: the `Collector` that feeds a context store from RabbitMQ, and the
 * `contexture-collector` program (`createProgram`). The only part of the package that loads
 * amqplib and commander.
 */
export { CollectorError } from '../internal/errors.js';
export type { CollectorErrorCode } from '../internal/errors.js';
export { createProgram, EXIT } from './cli.js';
export type { ProgramIO } from './cli.js';
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
