import { ContextError, type ContextErrorCode } from './errors.js';
import { isReservedRkey } from './protocol/heartbeat.js';
import { RESERVED_RKEY_PREFIX } from './protocol/message.js';

/** Where a context's messages go: routing key and headers, serialised once per context. */
export interface Route {
  readonly rkey: string;
  readonly headers: Readonly<Record<string, unknown>>;
  readonly headersJson: string;
  /** Identity for batching: messages of one route share one routing key and one set of headers. */
  readonly key: string;
}

/**
 * The route of a context, checked once when the context is made: a reserved or over-long routing
 * key is `LC_CONTEXT_INVALID_OPTION`, headers AMQP cannot carry are `headersCode` (the Handler says
 * whose headers are at fault).
 */
export function makeRoute(
  rkey: string,
  headers: Record<string, unknown>,
  headersCode: ContextErrorCode = 'LC_CONTEXT_INVALID_OPTION',
): Route {
  if (isReservedRkey(rkey)) {
    throw new ContextError(
      'LC_CONTEXT_INVALID_OPTION',
      `routing key "${rkey}" is reserved: keys starting "${RESERVED_RKEY_PREFIX}" carry contexture's own traffic (heartbeats), which readers do not take for data`,
    );
  }
  // AMQP carries a routing key and each header name in at most 255 bytes: a longer one would make
  // every publish of the connection fail, not just this context's.
  if (Buffer.byteLength(rkey) > 255)
    throw new ContextError(
      'LC_CONTEXT_INVALID_OPTION',
      `routing key "${rkey.slice(0, 40)}…" is ${Buffer.byteLength(rkey)} bytes; AMQP allows at most 255`,
    );
  let headersJson: string;
  try {
    headersJson = carriedJson(headers);
  } catch (err) {
    throw new ContextError(headersCode, `headers must be JSON the broker can carry: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return { rkey, headers, headersJson, key: `${rkey}\u0000${headersJson}` };
}

/**
 * `headers` as JSON; throws (a plain TypeError or JSON's own, caught by {@link makeRoute}) when a
 * header name is over 255 bytes, a value is not JSON, or the AMQP client would not send it as that
 * JSON: it fails on an integer below -2^63 or NaN, reads an object with a `!` key as a typed value,
 * and sends an object of a class (a Date) as the table of its own fields, not as its JSON.
 */
function carriedJson(headers: Record<string, unknown>): string {
  return JSON.stringify(headers, function (this: unknown, key, v: unknown) {
    if (Buffer.byteLength(key) > 255) throw new TypeError(`the header name "${key.slice(0, 40)}…" is over 255 bytes`);
    const what = key === '' ? 'the headers' : `header "${key}"`;
    if (typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint' || v === undefined)
      throw new TypeError(`${what} holds a ${typeof v}, not JSON`);
    if (typeof v === 'number' && !Number.isFinite(v)) throw new TypeError(`${what} holds ${v}, not JSON`);
    // Past 2^63 - 1 the client sends a double; below -2^63 it fails to encode a 64-bit integer.
    if (typeof v === 'number' && v < -(2 ** 63))
      throw new TypeError(`${what} holds ${v}, an integer below AMQP's 64-bit range: give it as a string`);
    // The value as given, before JSON's toJSON(): what the client encodes.
    const raw = (this as Record<string, unknown>)[key];
    if (typeof raw === 'object' && raw !== null) {
      const proto = Object.getPrototypeOf(raw);
      if (proto !== Object.prototype && proto !== null && !Array.isArray(raw))
        throw new TypeError(
          `${what} holds a ${(raw as object).constructor?.name ?? 'class instance'}, which AMQP would carry as a table of its own fields: give it as a string or a plain object`,
        );
      if (Object.hasOwn(raw, '!'))
        throw new TypeError(`${what} is an object with a "!" key, which the AMQP client reads as a typed value`);
    }
    return v;
  });
}
