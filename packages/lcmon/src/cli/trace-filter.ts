/**
 * `--trace ID`: what belongs to one OpenTelemetry trace. A message does when its `obj` sets
 * `trace_id` to it (a context's `born`) or its W3C `traceparent` header names it (every message of
 * a context made in a span, live or saved with `-v`); with `-c`, an object does when any of its
 * messages does.
 */

/** `ID` as `--trace` takes it: 32 hex digits, not all zero (W3C Trace Context); lower-cased. */
export function parseTraceId(value: string): string | undefined {
  const id = value.toLowerCase();
  return /^[0-9a-f]{32}$/.test(id) && !/^0+$/.test(id) ? id : undefined;
}

/** The trace id a `traceparent` header names (`00-<trace id>-<span id>-<flags>`), lower-cased. */
function traceOfParent(header: unknown): string | undefined {
  if (typeof header !== 'string') return undefined;
  const parts = header.split('-');
  return parts.length >= 4 ? parts[1]!.toLowerCase() : undefined;
}

/** True when a message with these fields (`obj`) and headers belongs to trace `id`. */
export function inTrace(id: string, obj: unknown, headers: Record<string, unknown> | undefined): boolean {
  if (headers !== undefined && traceOfParent(headers.traceparent) === id) return true;
  if (typeof obj !== 'object' || obj === null || !Object.hasOwn(obj, 'trace_id')) return false;
  const field = (obj as { trace_id?: unknown }).trace_id;
  return typeof field === 'string' && field.toLowerCase() === id;
}
