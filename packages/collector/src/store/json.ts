import { parseJson, setOwn, stringifyJson } from '@contexture/context/protocol';
/**
 * Field values are kept as JSON text, encoded one way by both stores: object keys in one order (see
 * orderedKeys()), so that "the same value again" is the same text and changes nothing, and the
 * text is what Redis stores (Lua never decodes or re-encodes a value, so `{}` stays an object and
 * `[]` an array). The stores build their own values with their keys in that order (parsing the
 * text does too), so stringifyJson() of one is its canonical text.
 *
 * The text is JSON as the Python contexture writes it (see parseJson() / stringifyJson() of the
 * protocol): NaN, Infinity and -Infinity as the bare words, integers with all their digits (a
 * `bigint` beyond 2^53 - 1 in magnitude when read), so what a Python publisher sent is kept as sent.
 */

/**
 * The stores' own values (see ownValue()): deeply frozen, so the canonical text of one never
 * changes and is remembered once computed. A merge that keeps most of a large value shares the
 * parts it keeps and re-encodes only the parts it changed.
 */
const owned = new WeakSet<object>();
const texts = new WeakMap<object, string>();

/** The canonical JSON text of a value (object keys in orderedKeys() order); undefined for what JSON drops. */
export function encodeValue(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return primitiveText(value);
  return canonical(value);
}

/**
 * The canonical text of a value the store made (parsed from canonical text, or built by the
 * stores with their keys in order, as the values of delta records are): stringifyJson() itself.
 */
export function encodeOwn(value: unknown): string {
  return stringifyJson(value)!;
}

/** The text of a primitive: JSON.stringify's, but for the numbers it cannot write (see stringifyJson()). */
function primitiveText(value: unknown): string | undefined {
  // NaN and the infinities, and doubles past 2^53 - 1 (written with an exponent).
  if ((typeof value === 'number' && !(Math.abs(value) <= Number.MAX_SAFE_INTEGER)) || typeof value === 'bigint')
    return stringifyJson(value);
  return JSON.stringify(value);
}

function canonical(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return primitiveText(value);
  if (!owned.has(value)) return canonicalText(value);
  let text = texts.get(value);
  if (text === undefined) {
    text = stringifyJson(value)!;
    texts.set(value, text);
  }
  return text;
}

/**
 * The keys of an object in the stores' order: array-index keys ascending (where every JavaScript
 * object lists them whatever the order they came in), then the others sorted. An object that gets
 * its keys in this order lists them in this order.
 */
export function orderedKeys(value: object): string[] {
  const keys = Object.keys(value);
  let i = 0;
  while (i < keys.length && isIndexKey(keys[i]!)) i++;
  if (keys.length - i > 1) {
    if (i === 0) keys.sort();
    else {
      const rest = keys.slice(i).sort();
      for (let j = 0; j < rest.length; j++) keys[i + j] = rest[j]!;
    }
  }
  return keys;
}

/**
 * `value` with its keys in the stores' order (see orderedKeys()): `value` itself when they are in
 * it already, else a copy.
 */
export function inKeyOrder<T extends Record<string, unknown>>(value: T): T {
  const keys = orderedKeys(value);
  const now = Object.keys(value);
  if (keys.every((k, i) => k === now[i])) return value;
  const out: Record<string, unknown> = {};
  for (const k of keys) setOwn(out, k, value[k]);
  return out as T;
}

function isIndexKey(k: string): boolean {
  const c = k.charCodeAt(0);
  if (c < 48 || c > 57 || (c === 48 && k.length > 1) || k.length > 10) return false;
  for (let i = 1; i < k.length; i++) {
    const d = k.charCodeAt(i);
    if (d < 48 || d > 57) return false;
  }
  return Number(k) <= 4294967294;
}

function canonicalText(value: object): string | undefined {
  const withToJSON = value as { toJSON?: unknown };
  if (typeof withToJSON.toJSON === 'function') return canonical((withToJSON.toJSON as () => unknown).call(value));
  const v = unboxed(value);
  if (v !== value) return stringifyJson(v);
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += canonical(value[i]) ?? 'null';
    }
    return `${out}]`;
  }
  const keys = orderedKeys(value);
  let out = '{';
  let first = true;
  for (const k of keys) {
    const s = canonical((value as Record<string, unknown>)[k]);
    if (s === undefined) continue;
    if (!first) out += ',';
    first = false;
    out += `${JSON.stringify(k)}:${s}`;
  }
  return `${out}}`;
}

/**
 * What JSON.stringify() makes of a boxed primitive (`new Number(5)`, `new String('s')`,
 * `new Boolean(false)`, `Object(1n)`): the primitive; anything else as it is.
 */
export function unboxed(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (v instanceof Number) return Number(v);
  if (v instanceof String) return String(v);
  if (v instanceof Boolean || v instanceof BigInt) return v.valueOf();
  return v;
}

/**
 * True when `a` and `b` are both the store's own values (see ownValue()) and encode alike; false
 * otherwise (also when they might be equal but are not the store's: then only encoding them tells).
 */
export function sameOwnValue(a: object, b: object): boolean {
  if (!owned.has(a) || !owned.has(b)) return false;
  return canonical(a) === canonical(b);
}

/** True for one of the store's own values (see keepValue()): deeply frozen, never changed. */
export function isOwnValue(value: unknown): boolean {
  return typeof value === 'object' && value !== null && owned.has(value);
}

/** True when two values encode to the same canonical JSON. */
export function sameValue(a: unknown, b: unknown): boolean {
  return encodeValue(a) === encodeValue(b);
}

/**
 * Parses stored JSON text (see parseJson()). Every key (`__proto__` included) is an own data
 * property, so untrusted keys stay plain data.
 */
export function decodeValue(text: string): unknown {
  return parseJson(text);
}

/**
 * Parses a store's canonical text into a value the store keeps: deeply frozen and known as the
 * store's own (see encodeValue()), so it is handed out without copies and never changed in place.
 */
export function ownValue(text: string): unknown {
  return keepValue(parseJson(text), text);
}

/**
 * Makes `value` one of the store's own values (see ownValue()): freezes it deeply and remembers
 * `text`, its canonical text. The caller gives it up: nothing may change it afterwards.
 */
export function keepValue<T>(value: T, text?: string): T {
  if (typeof value === 'object' && value !== null && !owned.has(value)) {
    owned.add(value);
    freezeFresh(value);
    if (text !== undefined) texts.set(value, text);
  }
  return value;
}

/**
 * Makes `value` one of the store's own values (see keepValue()) when the stores built it deeply
 * frozen already (share(), diffAt() and mergeAt() in field-changes.ts freeze each object and array they
 * make, and take only frozen parts): no walk over it to freeze it again.
 */
export function keepFrozen<T>(value: T): T {
  if (typeof value === 'object' && value !== null) owned.add(value);
  return value;
}

/**
 * Freezes a value the store made (parsed, merged or copied) and what it holds, down to what is
 * frozen already: in such a value that is the store's own.
 */
function freezeFresh(value: object): void {
  Object.freeze(value);
  for (const k of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[k];
    if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) freezeFresh(v);
  }
}

/**
 * Freezes a value and everything it holds (objects and arrays), in place; returns it. What the
 * stores hand out read-only (see `ContextStore.sync()`) goes through this.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const k of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[k]);
  }
  return value;
}

/** A deep copy through JSON (own keys only, `__proto__` kept as data). */
export function cloneValue<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  return parseJson(encodeValue(value)!) as T;
}
