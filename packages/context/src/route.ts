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
 * header name is over 255 bytes or a value is not JSON.
 */
function carriedJson(headers: Record<string, unknown>): string {
  return JSON.stringify(headers, (key, v: unknown) => {
    if (Buffer.byteLength(key) > 255) throw new TypeError(`the header name "${key.slice(0, 40)}…" is over 255 bytes`);
    if (typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint' || v === undefined)
      throw new TypeError(`${key === '' ? 'the headers' : `header "${key}"`} holds a ${typeof v}, not JSON`);
    return v;
  });
}
