/**
 * Field values are kept as JSON text, encoded one way by both stores: object keys sorted, so that
 * "the same value again" is the same text and changes nothing, and the text is what Redis stores
 * (Lua never decodes or re-encodes a value, so `{}` stays an object and `[]` an array).
 */

/** The canonical JSON text of a value (object keys sorted); undefined for what JSON drops. */
export function encodeValue(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  return canonical(value);
}

function canonical(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const withToJSON = value as { toJSON?: unknown };
  if (typeof withToJSON.toJSON === 'function') return canonical((withToJSON.toJSON as () => unknown).call(value));
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += canonical(value[i]) ?? 'null';
    }
    return out + ']';
  }
  const keys = Object.keys(value).sort();
  let out = '{';
  let first = true;
  for (const k of keys) {
    const s = canonical((value as Record<string, unknown>)[k]);
    if (s === undefined) continue;
    if (!first) out += ',';
    first = false;
    out += JSON.stringify(k) + ':' + s;
  }
  return out + '}';
}

/** True when two values encode to the same canonical JSON. */
export function sameValue(a: unknown, b: unknown): boolean {
  return encodeValue(a) === encodeValue(b);
}

/**
 * Parses stored JSON text. JSON.parse defines every key (`__proto__` included) as an own data
 * property, so untrusted keys stay plain data.
 */
export function decodeValue(text: string): unknown {
  return JSON.parse(text);
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
  return JSON.parse(encodeValue(value)!) as T;
}

/**
 * `partial` deep-merged over a copy of `base`: where both sides hold a plain object the merge
 * recurses, anything else is replaced; keys whose value JSON drops (undefined) are skipped.
 */
export function deepMerge(base: unknown, partial: Record<string, unknown>): Record<string, unknown> {
  const out = (isObject(base) ? cloneValue(base) : {}) as Record<string, unknown>;
  for (const k of Object.keys(partial)) {
    const v = partial[k];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    const cur = Object.prototype.hasOwnProperty.call(out, k) ? out[k] : undefined;
    const next = isObject(v) && isObject(cur) ? deepMerge(cur, v) : cloneValue(v);
    if (k === '__proto__') Object.defineProperty(out, k, { value: next, writable: true, enumerable: true, configurable: true });
    else out[k] = next;
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
