/**
 * OpenTelemetry, when the program has it: the active span's ids for a new Context (fields
 * `trace_id` and `span_id`, the W3C `traceparent` header), and tracing suppressed around the
 * handler's own publishing. `@opentelemetry/api` is an optional peer dependency, loaded on first
 * use with `require` (it keeps its state in one global, shared by its CommonJS and ESM builds and
 * by every copy of it): without it nothing here does anything, and nothing fails.
 */
import { createRequire } from 'node:module';
import type * as OtelApi from '@opentelemetry/api';

type Api = typeof OtelApi;

/** The active span, as a Context carries it. */
export interface ActiveTrace {
  /** 32 hex digits. */
  readonly traceId: string;
  /** 16 hex digits. */
  readonly spanId: string;
  /** `traceparent` (W3C Trace Context), and `tracestate` when the span has one. */
  readonly headers: Readonly<Record<string, string>>;
}

let api: Api | null | undefined;

/** `@opentelemetry/api`, or null when the program does not have it (looked up once). */
export function otelApi(): Api | null {
  if (api === undefined) {
    try {
      api = createRequire(import.meta.url)('@opentelemetry/api') as Api;
    } catch {
      api = null;
    }
  }
  return api;
}

/** The active span's ids, or null without OpenTelemetry, without a span, or with an invalid one. */
export function activeTrace(): ActiveTrace | null {
  const a = otelApi();
  if (a === null) return null;
  try {
    const span = a.trace.getSpan(a.context.active());
    if (span === undefined) return null;
    const sc = span.spanContext();
    if (!a.isSpanContextValid(sc)) return null;
    const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, '0');
    const headers: Record<string, string> = { traceparent: `00-${sc.traceId}-${sc.spanId}-${flags}` };
    const state = sc.traceState?.serialize();
    if (state) headers.tracestate = state;
    return { traceId: sc.traceId, spanId: sc.spanId, headers };
  } catch {
    // A context manager or span of the program's that throws must not break the context.
    return null;
  }
}

/** The active OpenTelemetry context, to make a Context in it later ({@link inTraceContext}); undefined without OpenTelemetry. */
export function captureTraceContext(): unknown {
  const a = otelApi();
  if (a === null) return undefined;
  try {
    return a.context.active();
  } catch {
    return undefined;
  }
}

/** Runs `fn` with `captured` (from {@link captureTraceContext}) as the active OpenTelemetry context. */
export function inTraceContext<R>(captured: unknown, fn: () => R): R {
  const a = otelApi();
  if (a === null || captured === undefined) return fn();
  return a.context.with(captured as OtelApi.Context, fn);
}

// The key `suppressTracing()` of @opentelemetry/core sets, which every SDK tracer and propagator
// checks: `createContextKey` makes it with Symbol.for, so it is the same key in every copy and
// version of the API and the SDK, without depending on @opentelemetry/core.
const SUPPRESS_TRACING = 'OpenTelemetry SDK Context Key SUPPRESS_TRACING';
let untracedContext: OtelApi.Context | undefined;

/**
 * Runs `fn` with tracing suppressed, in an otherwise empty OpenTelemetry context: an instrumented
 * amqplib makes no span of the handler's publishing (which would otherwise hang under whichever
 * request's span was active when the publish was scheduled) and injects no headers into it.
 */
export function untraced<R>(fn: () => R): R {
  const a = otelApi();
  if (a === null) return fn();
  untracedContext ??= a.ROOT_CONTEXT.setValue(a.createContextKey(SUPPRESS_TRACING), true);
  return a.context.with(untracedContext, fn);
}
