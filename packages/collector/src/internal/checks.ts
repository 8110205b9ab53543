import { CollectorError, type CollectorErrorCode } from './errors.js';

/** A name or id: a string of 1 to `max` characters without control characters; else `code`. */
export function checkText(code: CollectorErrorCode, what: string, v: unknown, max: number): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max || /[\u0000-\u001f]/.test(v)) {
    throw new CollectorError(
      code,
      `${what} must be a string of 1 to ${max} characters without control characters, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

/**
 * True when `text` holds a lone UTF-16 surrogate: Redis keeps text as UTF-8, where it becomes
 * U+FFFD, so two such names would be one there.
 */
export function holdsLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}

/**
 * True when the key `key` (up to its hash tag, `<prefix><kind>:{<name>}`) has an empty hash tag:
 * Redis Cluster takes the tag between a key's first `{` and the first `}` after it, and hashes a
 * key whose tag is empty whole, so the keys of one object (`…}`, `…}:d`) land in different slots.
 * That is a name starting with `}`, or a prefix holding `{` right before `}`.
 */
export function emptyHashTag(key: string): boolean {
  const open = key.indexOf('{');
  return open !== -1 && key.charCodeAt(open + 1) === 0x7d;
}

/**
 * Why the keys `<prefix><kind>:{<name>}…` of a namespace would not share one Redis Cluster slot
 * (an empty hash tag, see {@link emptyHashTag}), said of `what` (`namespace`); null when they do.
 */
export function hashTagRefusal(prefix: string, kind: string, what: string, name: string): string | null {
  if (emptyHashTag(`${prefix}${kind}:{x}`))
    return 'prefix must not hold { right before } (an empty hash tag: its keys would be in several Redis Cluster slots)';
  if (emptyHashTag(`{${name}}`))
    return `${what} must not start with } (it would end the hash tag that keeps its keys in one Redis Cluster slot)`;
  return null;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A positive integer (`unit` is said in the message, e.g. ' (ms)'); else `code`. */
export function checkPositive(code: CollectorErrorCode, what: string, v: unknown, unit = ''): number {
  if (!Number.isSafeInteger(v) || (v as number) < 1)
    throw new CollectorError(code, `${what} must be a positive integer${unit}, got ${String(v)}`);
  return v as number;
}

/**
 * An `AbortSignal` option, or undefined; else `code`. Checked before it is listened to: an object
 * that is no signal would otherwise throw from a timer or a listener later, out of the caller's reach.
 */
export function checkSignal(code: CollectorErrorCode, what: string, v: unknown): AbortSignal | undefined {
  if (v === undefined) return undefined;
  const s = v as Partial<AbortSignal> | null;
  if (
    typeof s !== 'object' ||
    s === null ||
    typeof s.aborted !== 'boolean' ||
    typeof s.addEventListener !== 'function' ||
    typeof s.removeEventListener !== 'function'
  )
    throw new CollectorError(code, `${what} must be an AbortSignal, got ${describeValue(v)}`);
  return v as AbortSignal;
}

/** A non-negative integer (`unit` is said in the message); else `code`. */
export function checkCount(code: CollectorErrorCode, what: string, v: unknown, unit = ''): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0)
    throw new CollectorError(code, `${what} must be an integer >= 0${unit}, got ${describeValue(v)}`);
  return v as number;
}

/** A function option, or undefined; else `code`. */
export function checkFunction<F>(code: CollectorErrorCode, what: string, v: F | undefined): F | undefined {
  if (v !== undefined && typeof v !== 'function')
    throw new CollectorError(code, `${what} must be a function, got ${describeValue(v)}`);
  return v;
}

/** A short description of a wrong value for an error message: its type, and a number or short text as it is. */
function describeValue(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (typeof v === 'string') return v.length <= 40 ? JSON.stringify(v) : 'a string';
  return Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

/**
 * Refuses an option that is not one of `known` with `code` (a misspelt `ttl` would otherwise
 * leave the default in place without a word), or options that are no object.
 */
export function checkOptionNames(
  code: CollectorErrorCode,
  what: string,
  options: unknown,
  known: Iterable<string>,
): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new CollectorError(code, `${what} options must be an object`);
  const names = new Set(known);
  for (const k of Object.keys(options))
    if (!names.has(k)) throw new CollectorError(code, `${what}: unknown option ${JSON.stringify(k.slice(0, 60))}`);
}
