import { ContextError } from './errors.js';
import { needsLosslessWrite, stringifyJson } from './protocol/json.js';

/**
 * JSON of one field value, taken now, as the wire format writes it (`stringifyJson`): NaN,
 * Infinity and -Infinity as the bare words, a number beyond 2^53 - 1 in magnitude with an exponent
 * (`1.7e+18`, which reads back as a number, where JSON.stringify's digits would read back as a
 * bigint). `undefined` becomes `null`; a function, a symbol, a BigInt or a circular structure
 * throws a `ContextError` (`LC_CONTEXT_NOT_SERIALIZABLE`) naming the field. Functions nested
 * inside objects are left out, as JSON.stringify does.
 */
export function fieldJson(field: string, value: unknown): string {
  const t = typeof value;
  if (t === 'number') {
    const n = value as number;
    // The common case in one call; the rest as stringifyJson() writes it.
    return Number.isFinite(n) && Math.abs(n) <= Number.MAX_SAFE_INTEGER ? JSON.stringify(n) : stringifyJson(n)!;
  }
  if (t === 'function' || t === 'symbol' || t === 'bigint') {
    throw new ContextError('LC_CONTEXT_NOT_SERIALIZABLE', `field '${field}': a ${t} cannot be sent as JSON`, { field });
  }
  if (value === undefined) return 'null';
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
    // Only an object may hold a number JSON.stringify writes otherwise than the wire format.
    if (t === 'object' && json !== undefined && needsLosslessWrite(value, json)) json = stringifyJson(value);
  } catch (err) {
    // What a getter or toJSON() threw may be anything (null, a string): said as it can be.
    const message = thrownMessage(err);
    const why = /circular/i.test(message) ? 'it is circular' : message;
    throw new ContextError('LC_CONTEXT_NOT_SERIALIZABLE', `field '${field}' cannot be sent as JSON: ${why}`, {
      field,
      cause: err,
    });
  }
  return json === undefined ? 'null' : json;
}

/** What was thrown, as text for a message: an Error's message, else {@link thrownText} (never throwing itself). */
export function thrownMessage(thrown: unknown): string {
  try {
    if (thrown instanceof Error) return String(thrown.message);
  } catch {
    /* a hostile Error: said as any thrown value */
  }
  return thrownText(thrown);
}

/** A thrown value that is no Error, as text for a message (never throwing itself). */
function thrownText(thrown: unknown): string {
  if (typeof thrown === 'string') return thrown;
  try {
    return `${String(thrown)} was thrown`;
  } catch {
    return `a ${typeof thrown} was thrown`;
  }
}

const SIMPLE_KEY = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** JSON of an object key. */
export function keyJson(key: string): string {
  return SIMPLE_KEY.test(key) ? `"${key}"` : JSON.stringify(key);
}
