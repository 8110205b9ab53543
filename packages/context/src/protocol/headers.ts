/**
 * AMQP headers as readers keep and print them: plain JSON values. amqplib decodes a header table's
 * values into what the wire says: a byte array is a Buffer (JSON would print it as
 * `{"type":"Buffer","data":[…]}`), a timestamp `{ '!': 'timestamp', value }`, a decimal
 * `{ '!': 'decimal', value: { places, digits } }`, and a table whose key is `__proto__` becomes
 * the prototype of the object that holds it instead of one of its keys. The Python contexture's
 * producers send all of these (pika writes `bytes` as byte arrays, `datetime` as timestamps).
 */
import { isUtf8 } from 'node:buffer';
import { setOwn } from './own.js';

/**
 * `headers` (as amqplib decoded them) with every value plain: bytes as their UTF-8 text (as
 * `{ base64 }` when they are not UTF-8), a timestamp as its unix seconds, a decimal as its number,
 * a `__proto__` table as an own key. The object itself when nothing needs it (the usual case: text
 * and numbers); never throws (headers nested too deep to walk are kept as they are).
 */
export function plainHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  if (isPlain(headers)) return headers;
  try {
    return plainValue(headers) as Record<string, unknown>;
  } catch {
    return headers;
  }
}

/** True when `o` has the plain prototype and only text, numbers, booleans and null as values. */
function isPlain(o: Record<string, unknown>): boolean {
  if (Object.getPrototypeOf(o) !== Object.prototype) return false;
  for (const k in o) {
    const v = o[k];
    if (typeof v === 'object' && v !== null) return false;
  }
  return true;
}

function plainValue(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (v instanceof Uint8Array)
    return isUtf8(v) ? Buffer.from(v).toString('utf8') : { base64: Buffer.from(v).toString('base64') };
  if (Array.isArray(v)) return v.map(plainValue);
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 2 && keys[0] === '!' && keys[1] === 'value') {
    const value = o.value;
    if (o['!'] === 'timestamp' && typeof value === 'number') return value;
    if (o['!'] === 'decimal' && typeof value === 'object' && value !== null) {
      const { places, digits } = value as { places?: unknown; digits?: unknown };
      if (typeof places === 'number' && typeof digits === 'number') return digits / 10 ** places;
    }
  }
  const out: Record<string, unknown> = {};
  // A table amqplib assigned to a key `__proto__`: the prototype it gave the object.
  const proto = Object.getPrototypeOf(o) as object | null;
  if (proto !== Object.prototype && proto !== null) setOwn(out, '__proto__', plainValue(proto));
  for (const k of keys) setOwn(out, k, plainValue(o[k]));
  return out;
}
