/**
 * JSON as the Python contexture writes it. Python's `json.dumps` writes the floats NaN, Infinity and
 * -Infinity as the bare words `NaN`, `Infinity` and `-Infinity`, and integers with all their
 * digits, however large. JSON.parse refuses the words and rounds the integers to doubles; these
 * two functions read and write both losslessly:
 *
 * - `NaN`, `Infinity`, `-Infinity` are the JavaScript numbers NaN, Infinity and -Infinity;
 * - an integer written without fraction or exponent beyond Number.MAX_SAFE_INTEGER (2^53 - 1) in
 *   magnitude is a `bigint` with its exact digits;
 * - everything else is what JSON.parse gives (`__proto__` keys included: own data properties).
 *
 * A number (a double) beyond 2^53 - 1 in magnitude is written with an exponent (`1e+16`, as Python
 * writes such a float), never as the digits JSON.stringify writes (`10000000000000000`): read back,
 * those would be a `bigint`, and a value would change type going through a reader and a writer.
 *
 * JSON.parse and JSON.stringify stay the fast path: the slower lossless reader runs only on a text
 * that holds a run of 16 or more digits (where an integer may be too large for a double) or that
 * JSON.parse refused and that holds one of the words; the lossless writer runs only when
 * JSON.stringify refused a bigint, wrote a `null` that may stand for a non-finite number, or wrote
 * a run of 16 or more digits (maybe a number beyond 2^53 - 1).
 */
import { setOwn } from './own.js';

const WORDS = /NaN|Infinity/;

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * True when `text` holds a run of 16 or more digits not after a decimal point: maybe an integer
 * too large for a double (a string holding one only costs the slower reader or writer). It runs
 * on every text, so it looks at every 16th character only: any 16 characters in a row hold one
 * whose place is 15 modulo 16, and only when that one is a digit is its run measured. (A regular
 * expression for the same costs about twice as much.)
 */
function mayHoldLongInteger(text: string): boolean {
  const n = text.length;
  for (let i = 15; i < n; i += 16) {
    if (!isDigit(text.charCodeAt(i))) continue;
    let end = i + 1;
    while (end < n && isDigit(text.charCodeAt(end))) end++;
    let start = i;
    while (start > 0 && isDigit(text.charCodeAt(start - 1))) start--;
    if (end - start >= 16 && (start === 0 || text.charCodeAt(start - 1) !== 46)) return true;
    // On past this run (to the last place of the stride at or before its end).
    i += ((end - i) >> 4) << 4;
  }
  return false;
}

/**
 * Parses JSON text, also as Python writes it (see the module comment): bare `NaN`, `Infinity` and
 * `-Infinity` are read as those numbers, integers beyond 2^53 - 1 in magnitude as `bigint`s.
 * Throws a SyntaxError for text that is not JSON, a RangeError for nesting too deep to read.
 *
 * @example
 * parseJson('{"x": NaN, "n": 18446744073709551616}'); // { x: NaN, n: 18446744073709551616n }
 */
export function parseJson(text: string): unknown {
  if (mayHoldLongInteger(text)) return readLossless(text);
  try {
    return JSON.parse(text);
  } catch (err) {
    if (err instanceof SyntaxError && WORDS.test(text)) return readLossless(text);
    throw err;
  }
}

/**
 * Writes a value as JSON text, as Python's `json.dumps` writes it: what JSON.stringify writes, but
 * NaN, Infinity and -Infinity as the bare words and a `bigint` as its digits (unless a
 * `BigInt.prototype.toJSON` says otherwise, as for JSON.stringify). `indent` is JSON.stringify's
 * `space`. Undefined for what JSON leaves out (undefined, a function, a symbol).
 *
 * @example
 * stringifyJson({ x: NaN, n: 18446744073709551616n }); // '{"x":NaN,"n":18446744073709551616}'
 */
export function stringifyJson(value: unknown, indent?: number | string): string | undefined {
  try {
    const text = JSON.stringify(value, null, indent);
    if (text === undefined) return text;
    if (!needsLosslessWrite(value, text)) return text;
  } catch (err) {
    if (!(err instanceof TypeError) || !/BigInt/i.test(err.message)) throw err;
  }
  const gap =
    typeof indent === 'number'
      ? ' '.repeat(Math.max(0, Math.min(10, Math.trunc(indent))))
      : (indent ?? '').slice(0, 10);
  const stack: object[] = [];
  return write('', value, gap, '', stack);
}

/**
 * True when `text`, what JSON.stringify wrote for `value`, may differ from what
 * {@link stringifyJson} writes: JSON.stringify writes a non-finite number as null, and a double
 * past 2^53 - 1 as digits that would read back as a bigint; only then is there anything to write
 * otherwise. (Internal: for a writer that calls JSON.stringify itself.)
 */
export function needsLosslessWrite(value: unknown, text: string): boolean {
  return (text.includes('null') && mayHoldNonFinite(value)) || mayHoldLongInteger(text);
}

/**
 * True when `value` holds a non-finite number, or an object with a toJSON() (which might give
 * one). Only for a value JSON.stringify wrote: no cycles.
 */
function mayHoldNonFinite(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return true;
    } else if (typeof v === 'object' && v !== null) {
      if (typeof (v as { toJSON?: unknown }).toJSON === 'function' || v instanceof Number) return true;
      if (Array.isArray(v)) for (let i = 0; i < v.length; i++) stack.push(v[i]);
      else for (const k of Object.keys(v)) stack.push((v as Record<string, unknown>)[k]);
    }
  }
  return false;
}

// The lossless reader: a recursive descent over the text. Strings go to JSON.parse (it checks
// and decodes their escapes); nesting deep enough to exhaust the stack throws a RangeError.

let src = '';
let at = 0;

function readLossless(text: string): unknown {
  src = text;
  at = 0;
  try {
    const v = readValue();
    skipSpace();
    if (at < src.length) fail();
    return v;
  } finally {
    src = '';
  }
}

function fail(): never {
  const found = at < src.length ? `token ${JSON.stringify(src[at])}` : 'end of JSON input';
  throw new SyntaxError(`Unexpected ${found} at position ${at} in JSON`);
}

function skipSpace(): void {
  for (;;) {
    const c = src.charCodeAt(at);
    if (c === 32 || c === 10 || c === 13 || c === 9) at++;
    else return;
  }
}

function readWord(word: string, value: unknown): unknown {
  if (!src.startsWith(word, at)) fail();
  at += word.length;
  return value;
}

function readValue(): unknown {
  skipSpace();
  const c = src.charCodeAt(at);
  switch (c) {
    case 123:
      return readObject();
    case 91:
      return readArray();
    case 34:
      return readString();
    case 116:
      return readWord('true', true);
    case 102:
      return readWord('false', false);
    case 110:
      return readWord('null', null);
    case 78:
      return readWord('NaN', Number.NaN);
    case 73:
      return readWord('Infinity', Number.POSITIVE_INFINITY);
    case 45:
      if (src.charCodeAt(at + 1) === 73) return readWord('-Infinity', Number.NEGATIVE_INFINITY);
      return readNumber();
    default:
      if (c >= 48 && c <= 57) return readNumber();
      return fail();
  }
}

function readDigits(): number {
  const from = at;
  for (let c = src.charCodeAt(at); c >= 48 && c <= 57; c = src.charCodeAt(++at));
  if (at === from) fail();
  return at - from;
}

function readNumber(): number | bigint {
  const from = at;
  if (src.charCodeAt(at) === 45) at++;
  let digits: number;
  if (src.charCodeAt(at) === 48) {
    at++;
    digits = 1;
  } else digits = readDigits();
  let integer = true;
  if (src.charCodeAt(at) === 46) {
    at++;
    readDigits();
    integer = false;
  }
  const e = src.charCodeAt(at);
  if (e === 101 || e === 69) {
    at++;
    const sign = src.charCodeAt(at);
    if (sign === 43 || sign === 45) at++;
    readDigits();
    integer = false;
  }
  const text = src.slice(from, at);
  const n = Number(text);
  if (integer && digits >= 16 && !Number.isSafeInteger(n)) return BigInt(text);
  return n;
}

function readString(): string {
  const from = at;
  let escaped = false;
  for (at++; ; at++) {
    const c = src.charCodeAt(at);
    if (c === 34) break;
    if (c === 92) {
      escaped = true;
      at++;
    } else if (c < 32 || Number.isNaN(c)) {
      // A raw control character, or the end of the text.
      fail();
    }
  }
  at++;
  return escaped ? (JSON.parse(src.slice(from, at)) as string) : src.slice(from + 1, at - 1);
}

function readArray(): unknown[] {
  at++;
  const out: unknown[] = [];
  skipSpace();
  if (src.charCodeAt(at) === 93) {
    at++;
    return out;
  }
  for (;;) {
    out.push(readValue());
    skipSpace();
    const c = src.charCodeAt(at++);
    if (c === 93) return out;
    if (c !== 44) {
      at--;
      fail();
    }
  }
}

function readObject(): Record<string, unknown> {
  at++;
  const out: Record<string, unknown> = {};
  skipSpace();
  if (src.charCodeAt(at) === 125) {
    at++;
    return out;
  }
  for (;;) {
    skipSpace();
    if (src.charCodeAt(at) !== 34) fail();
    const key = readString();
    skipSpace();
    if (src.charCodeAt(at) !== 58) fail();
    at++;
    // As JSON.parse: every key an own data property, `__proto__` too; the last of a repeated key wins.
    setOwn(out, key, readValue());
    skipSpace();
    const c = src.charCodeAt(at++);
    if (c === 125) return out;
    if (c !== 44) {
      at--;
      fail();
    }
  }
}

// The lossless writer: JSON.stringify's algorithm (toJSON, boxed primitives, what is left out,
// the indentation), with the numbers JSON.stringify cannot write.

function write(key: string, raw: unknown, gap: string, indent: string, stack: object[]): string | undefined {
  let v = raw;
  if ((typeof v === 'object' && v !== null) || typeof v === 'bigint') {
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') v = toJSON.call(v, key);
  }
  if (typeof v === 'object' && v !== null) {
    if (v instanceof Number) v = Number(v);
    else if (v instanceof String) v = String(v);
    else if (v instanceof Boolean || v instanceof BigInt) v = v.valueOf();
  }
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      if (!Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
      // Past 2^53 - 1 every double is an integer: with an exponent it reads back as a number (the
      // shortest digits that give the same double).
      return Math.abs(v) > Number.MAX_SAFE_INTEGER ? v.toExponential() : JSON.stringify(v);
    case 'bigint':
      return v.toString();
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object':
      if (v === null) return 'null';
      break;
    default:
      // undefined, a function, a symbol.
      return undefined;
  }
  const obj = v as object;
  if (stack.includes(obj)) throw new TypeError('Converting circular structure to JSON');
  stack.push(obj);
  const inner = indent + gap;
  const parts: string[] = [];
  let open: string;
  let close: string;
  if (Array.isArray(obj)) {
    for (let i = 0; i < obj.length; i++) parts.push(write(String(i), obj[i], gap, inner, stack) ?? 'null');
    open = '[';
    close = ']';
  } else {
    const colon = gap === '' ? ':' : ': ';
    for (const k of Object.keys(obj)) {
      const s = write(k, (obj as Record<string, unknown>)[k], gap, inner, stack);
      if (s !== undefined) parts.push(JSON.stringify(k) + colon + s);
    }
    open = '{';
    close = '}';
  }
  stack.pop();
  if (parts.length === 0) return open + close;
  if (gap === '') return open + parts.join(',') + close;
  return `${open}\n${inner}${parts.join(`,\n${inner}`)}\n${indent}${close}`;
}
