/**
 * `@contexture/context/otel`: a Handler's counters (`stats()`) as OpenTelemetry metrics. This
 * subpath loads `@opentelemetry/api` (an optional peer dependency); the rest of the package never
 * needs it.
 */
import {
  type Attributes,
  type BatchObservableCallback,
  type Meter,
  metrics,
  type Observable,
  type ObservableCounter,
  type ObservableGauge,
  type ObservableUpDownCounter,
} from '@opentelemetry/api';
import { ContextError } from './errors.js';
import { Handler } from './handler.js';
import type { HandlerStats } from './handler-stats.js';

/** Options of {@link registerHandlerMetrics}. */
export interface HandlerMetricsOptions {
  /**
   * The meter to make the instruments with.
   * @default `metrics.getMeter('@contexture/context')`, from the global MeterProvider
   */
  meter?: Meter;
  /**
   * Attributes of every data point: to tell apart several handlers of one process, say.
   * @default {}
   */
  attributes?: Attributes;
}

/** What {@link registerHandlerMetrics} returns: stops the reporting. */
export interface HandlerMetrics {
  /** Stops reporting this handler's counters (idempotent). */
  unregister(): void;
  [Symbol.dispose](): void;
}

/** The counters that only grow: observable counters, in `{message}` unless said. */
const COUNTERS = [
  ['enqueued', 'contexture.handler.enqueued', 'Messages accepted from contexts', '{message}'],
  ['published', 'contexture.handler.published', 'Messages the broker (or the file) confirmed', '{message}'],
  [
    'dropped',
    'contexture.handler.dropped',
    'Messages dropped: buffer overflow, refused three times, or left at close',
    '{message}',
  ],
  [
    'droppedUnconfirmed',
    'contexture.handler.dropped_unconfirmed',
    'The part of dropped sent and never confirmed: they may have been delivered',
    '{message}',
  ],
  ['reconnects', 'contexture.handler.reconnects', 'Successful connections after the first', '{reconnect}'],
  ['heartbeats', 'contexture.handler.heartbeats', 'Heartbeats published', '{heartbeat}'],
] as const satisfies ReadonlyArray<readonly [keyof HandlerStats, string, string, string]>;

/** What is there now: observable up-down counters (they add up across handlers). */
const LEVELS = [
  ['queued', 'contexture.handler.queued', 'Messages waiting in the buffer'],
  ['inFlight', 'contexture.handler.in_flight', 'Messages sent and not yet confirmed'],
] as const satisfies ReadonlyArray<readonly [keyof HandlerStats, string, string]>;

/**
 * Offers a Handler's counters (its `stats()`, read once per collection) as OpenTelemetry metrics:
 *
 * | metric | instrument | unit |
 * |---|---|---|
 * | `contexture.handler.enqueued`, `.published`, `.dropped`, `.dropped_unconfirmed` | counter | `{message}` |
 * | `contexture.handler.reconnects` | counter | `{reconnect}` |
 * | `contexture.handler.heartbeats` | counter | `{heartbeat}` |
 * | `contexture.handler.queued`, `.in_flight` | up-down counter | `{message}` |
 * | `contexture.handler.connected`, `.blocked` | gauge, 1 or 0 | `1` |
 *
 * A wrong argument throws a `ContextError` (`LC_HANDLER_INVALID_OPTION`).
 *
 * @example
 * import { registerHandlerMetrics } from '@contexture/context/otel';
 * const reporting = registerHandlerMetrics(getHandler()); // the global MeterProvider's meter
 * // later: reporting.unregister();
 */
export function registerHandlerMetrics(handler: Handler, options: HandlerMetricsOptions = {}): HandlerMetrics {
  if (!(handler instanceof Handler))
    throw new ContextError('LC_HANDLER_INVALID_OPTION', 'registerHandlerMetrics() takes a Handler');
  if (typeof options !== 'object' || options === null)
    throw new ContextError('LC_HANDLER_INVALID_OPTION', 'registerHandlerMetrics(): options must be an object');
  const meter = options.meter ?? metrics.getMeter('@contexture/context');
  if (typeof meter?.addBatchObservableCallback !== 'function')
    throw new ContextError(
      'LC_HANDLER_INVALID_OPTION',
      'registerHandlerMetrics(): meter must be an OpenTelemetry Meter',
    );
  const attributes: Attributes = { ...options.attributes };

  const counters = COUNTERS.map(
    ([key, name, description, unit]) => [key, meter.createObservableCounter(name, { description, unit })] as const,
  ) satisfies ReadonlyArray<readonly [keyof HandlerStats, ObservableCounter]>;
  const levels = LEVELS.map(
    ([key, name, description]) =>
      [key, meter.createObservableUpDownCounter(name, { description, unit: '{message}' })] as const,
  ) satisfies ReadonlyArray<readonly [keyof HandlerStats, ObservableUpDownCounter]>;
  const connected: ObservableGauge = meter.createObservableGauge('contexture.handler.connected', {
    description: '1 while the handler is connected to the broker (or its file), else 0',
    unit: '1',
  });
  const blocked: ObservableGauge = meter.createObservableGauge('contexture.handler.blocked', {
    description: '1 while the broker asks publishers to stop (resource alarm), else 0',
    unit: '1',
  });
  const observables: Observable[] = [...counters.map(([, o]) => o), ...levels.map(([, o]) => o), connected, blocked];

  const callback: BatchObservableCallback = (result) => {
    const s = handler.stats();
    for (const [key, o] of counters) result.observe(o, s[key], attributes);
    for (const [key, o] of levels) result.observe(o, s[key], attributes);
    result.observe(connected, s.status === 'connected' ? 1 : 0, attributes);
    result.observe(blocked, s.blocked ? 1 : 0, attributes);
  };
  meter.addBatchObservableCallback(callback, observables);
  let registered = true;
  const unregister = (): void => {
    if (!registered) return;
    registered = false;
    meter.removeBatchObservableCallback(callback, observables);
  };
  return { unregister, [Symbol.dispose]: unregister };
}
