/**
 * A fast path for reading saved lines in bulk: checks, straight on the UTF-8 bytes and without
 * building any value, that a span is one JSON object that {@link validateMessage} would take as a
 * wire message, and says where its fields are. It answers yes only when it is sure; everything it
 * does not handle (non-ASCII bytes, CR, escapes in top-level keys, repeated top-level keys,
 * exponents in times, a legacy `id`, deep nesting, invalid JSON, invalid messages) is a no, and the
 * caller then takes the line through {@link parseLine}, which has the last word.
 */

/** Where the fields of an accepted message body are (byte offsets, end exclusive); -1 when absent. */
export class MessageSpans {
  objId = -1;
  objIdEnd = -1;
  obj = -1;
  objEnd = -1;
  seq = -1;
  seqEnd = -1;
  status = -1;
  statusEnd = -1;
  action = -1;
  actionEnd = -1;
  timeIn = -1;
  timeInEnd = -1;
  elapsed = -1;
  elapsedEnd = -1;

  reset(): void {
    this.objId = this.objIdEnd = this.obj = this.objEnd = this.seq = this.seqEnd = -1;
    this.status = this.statusEnd = this.action = this.actionEnd = -1;
    this.timeIn = this.timeInEnd = this.elapsed = this.elapsedEnd = -1;
  }
}

/** Deeper values are left to JSON.parse (which decides between a value and `too deep`). */
const MAX_DEPTH = 64;
/** Longer numbers are left to JSON.parse (a time must be finite). */
const MAX_NUMBER = 300;

const QUOTE = 34;
const BACKSLASH = 92;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;
const COMMA = 44;
const COLON = 58;
const MINUS = 45;
const DOT = 46;
const ZERO = 48;
const NINE = 57;

/** Set by the last {@link scanString}: the string held an escape. */
let sawEscape = false;
/** Set by the last {@link scanNumber}: the number was a plain non-negative integer. */
let plainInteger = false;
/** Set by the last {@link scanNumber}: the number had an exponent. */
let sawExponent = false;

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

function skipSpace(b: Uint8Array, i: number, end: number): number {
  // LF never occurs inside a line; CR is left to the slow path (it changes how a line is printed).
  while (i < end && (b[i] === 32 || b[i] === 9)) i++;
  return i;
}

/** `i` at the opening quote; the index after the closing one, or -1. */
function scanString(b: Uint8Array, i: number, end: number): number {
  sawEscape = false;
  i++;
  while (i < end) {
    const c = b[i++]!;
    // Most bytes are letters: one test for everything above the backslash.
    if (c > BACKSLASH) {
      if (c > 126) return -1;
      continue;
    }
    if (c === QUOTE) return i;
    if (c === BACKSLASH) {
      sawEscape = true;
      if (i >= end) return -1;
      const e = b[i++]!;
      if (e === 117) {
        if (i + 4 > end || !isHex(b[i]!) || !isHex(b[i + 1]!) || !isHex(b[i + 2]!) || !isHex(b[i + 3]!)) return -1;
        i += 4;
      } else if (
        e !== QUOTE &&
        e !== BACKSLASH &&
        e !== 47 &&
        e !== 98 &&
        e !== 102 &&
        e !== 110 &&
        e !== 114 &&
        e !== 116
      ) {
        return -1;
      }
    } else if (c < 32) {
      return -1;
    }
  }
  return -1;
}

function scanDigits(b: Uint8Array, i: number, end: number): number {
  const from = i;
  while (i < end && b[i]! >= ZERO && b[i]! <= NINE) i++;
  return i > from ? i : -1;
}

/** The index after a JSON number starting at `i`, or -1. */
function scanNumber(b: Uint8Array, i: number, end: number): number {
  const from = i;
  plainInteger = true;
  sawExponent = false;
  if (b[i] === MINUS) {
    plainInteger = false;
    i++;
  }
  if (i >= end) return -1;
  if (b[i] === ZERO) i++;
  else if ((i = scanDigits(b, i, end)) === -1) return -1;
  if (i < end && b[i] === DOT) {
    plainInteger = false;
    if ((i = scanDigits(b, i + 1, end)) === -1) return -1;
  }
  if (i < end && (b[i] === 101 || b[i] === 69)) {
    plainInteger = false;
    sawExponent = true;
    i++;
    if (i < end && (b[i] === 43 || b[i] === MINUS)) i++;
    if ((i = scanDigits(b, i, end)) === -1) return -1;
  }
  return i - from > MAX_NUMBER ? -1 : i;
}

function scanLiteral(b: Uint8Array, i: number, end: number, word: string): number {
  if (i + word.length > end) return -1;
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word.charCodeAt(k)) return -1;
  return i + word.length;
}

/** The index after the JSON value starting at `i`, or -1. */
function scanValue(b: Uint8Array, i: number, end: number, depth: number): number {
  if (i >= end) return -1;
  const c = b[i]!;
  if (c === QUOTE) return scanString(b, i, end);
  if (c === OPEN_BRACE) return scanObject(b, i, end, depth + 1);
  if (c === OPEN_BRACKET) return scanArray(b, i, end, depth + 1);
  if (c === MINUS || (c >= ZERO && c <= NINE)) return scanNumber(b, i, end);
  if (c === 116) return scanLiteral(b, i, end, 'true');
  if (c === 102) return scanLiteral(b, i, end, 'false');
  if (c === 110) return scanLiteral(b, i, end, 'null');
  return -1;
}

function scanObject(b: Uint8Array, i: number, end: number, depth: number): number {
  if (depth > MAX_DEPTH) return -1;
  i = skipSpace(b, i + 1, end);
  if (i < end && b[i] === CLOSE_BRACE) return i + 1;
  for (;;) {
    if (i >= end || b[i] !== QUOTE) return -1;
    if ((i = scanString(b, i, end)) === -1) return -1;
    i = skipSpace(b, i, end);
    if (i >= end || b[i] !== COLON) return -1;
    i = skipSpace(b, i + 1, end);
    if ((i = scanValue(b, i, end, depth)) === -1) return -1;
    i = skipSpace(b, i, end);
    if (i >= end) return -1;
    if (b[i] === CLOSE_BRACE) return i + 1;
    if (b[i] !== COMMA) return -1;
    i = skipSpace(b, i + 1, end);
  }
}

function scanArray(b: Uint8Array, i: number, end: number, depth: number): number {
  if (depth > MAX_DEPTH) return -1;
  i = skipSpace(b, i + 1, end);
  if (i < end && b[i] === CLOSE_BRACKET) return i + 1;
  for (;;) {
    if ((i = scanValue(b, i, end, depth)) === -1) return -1;
    i = skipSpace(b, i, end);
    if (i >= end) return -1;
    if (b[i] === CLOSE_BRACKET) return i + 1;
    if (b[i] !== COMMA) return -1;
    i = skipSpace(b, i + 1, end);
  }
}

/** The top-level keys {@link validateMessage} reads (its legacy `id` only when `obj_id` is absent, which is a no here). */
enum Key {
  Other = 0,
  ObjId = 1,
  Obj = 2,
  Status = 4,
  Action = 8,
  Seq = 16,
  TimeIn = 32,
  TimeOut = 64,
  Elapsed = 128,
  Qtime = 256,
  Qlen = 512,
  Message = 1024,
}

const OBJ_ID = bytesOf('obj_id');
const STATUS = bytesOf('status');
const ACTION = bytesOf('action');
const TIME_IN = bytesOf('time_in');
const TIME_OUT = bytesOf('time_out');
const ELAPSED = bytesOf('elapsed');
const MESSAGE = bytesOf('message');
const QTIME = bytesOf('qtime');
const QLEN = bytesOf('qlen');

function bytesOf(word: string): Uint8Array {
  return Uint8Array.from(word, (c) => c.charCodeAt(0));
}

/** True when the bytes at `at` are those of `word` (the caller checked the length). */
function bytesAre(b: Uint8Array, at: number, word: Uint8Array): boolean {
  for (let k = 0; k < word.length; k++) if (b[at + k] !== word[k]) return false;
  return true;
}

function keyIs(b: Uint8Array, at: number, word: string): boolean {
  for (let k = 0; k < word.length; k++) if (b[at + k] !== word.charCodeAt(k)) return false;
  return true;
}

/** Which key the (escape-free) key text between `from` and `to` names. */
function keyOf(b: Uint8Array, from: number, to: number): Key {
  const n = to - from;
  switch (b[from]) {
    case 111: // o
      if (n === 3) return b[from + 1] === 98 && b[from + 2] === 106 ? Key.Obj : Key.Other;
      return n === 6 && bytesAre(b, from, OBJ_ID) ? Key.ObjId : Key.Other;
    case 115: // s
      if (n === 3) return b[from + 1] === 101 && b[from + 2] === 113 ? Key.Seq : Key.Other;
      return n === 6 && bytesAre(b, from, STATUS) ? Key.Status : Key.Other;
    case 97: // a
      return n === 6 && bytesAre(b, from, ACTION) ? Key.Action : Key.Other;
    case 116: // t
      if (n === 7) return bytesAre(b, from, TIME_IN) ? Key.TimeIn : Key.Other;
      return n === 8 && bytesAre(b, from, TIME_OUT) ? Key.TimeOut : Key.Other;
    case 101: // e
      return n === 7 && bytesAre(b, from, ELAPSED) ? Key.Elapsed : Key.Other;
    case 109: // m
      return n === 7 && bytesAre(b, from, MESSAGE) ? Key.Message : Key.Other;
    case 113: // q
      if (n === 5) return bytesAre(b, from, QTIME) ? Key.Qtime : Key.Other;
      return n === 4 && bytesAre(b, from, QLEN) ? Key.Qlen : Key.Other;
    default:
      return Key.Other;
  }
}

function isNull(b: Uint8Array, from: number, to: number): boolean {
  return to - from === 4 && b[from] === 110;
}

/** True when the value between `from` and `to` (a string literal) is exactly `"word"`. */
function isWord(b: Uint8Array, from: number, to: number, word: string): boolean {
  return to - from === word.length + 2 && keyIs(b, from + 1, word);
}

/**
 * True when the bytes from `start` to `end` are exactly one JSON object (nothing before or after it)
 * that is a valid wire message with a non-empty string `obj_id`, by the rules of
 * {@link validateMessage}; `spans` then tells where its fields are. False means "not sure": parse
 * the line the ordinary way.
 */
export function scanMessage(b: Uint8Array, start: number, end: number, spans: MessageSpans): boolean {
  spans.reset();
  if (end - start < 2 || b[start] !== OPEN_BRACE || b[end - 1] !== CLOSE_BRACE) return false;
  let seen = 0;
  let i = skipSpace(b, start + 1, end);
  if (b[i] === CLOSE_BRACE) return false;
  for (;;) {
    if (i >= end || b[i] !== QUOTE) return false;
    const keyFrom = i + 1;
    if ((i = scanString(b, i, end)) === -1 || sawEscape) return false;
    const key = keyOf(b, keyFrom, i - 1);
    if ((seen & key) !== 0) return false;
    seen |= key;
    i = skipSpace(b, i, end);
    if (i >= end || b[i] !== COLON) return false;
    const from = skipSpace(b, i + 1, end);
    if (from >= end) return false;
    const first = b[from]!;
    if ((i = scanValue(b, from, end, 1)) === -1) return false;
    switch (key) {
      case Key.Other:
        break;
      case Key.ObjId:
        if (first !== QUOTE || i - from < 3) return false;
        spans.objId = from;
        spans.objIdEnd = i;
        break;
      case Key.Obj:
        if (first === OPEN_BRACE) {
          spans.obj = from;
          spans.objEnd = i;
        } else if (!isNull(b, from, i)) return false;
        break;
      case Key.Status:
        if (first === QUOTE) {
          if (!isWord(b, from, i, 'born') && !isWord(b, from, i, 'finished') && !isWord(b, from, i, 'transient'))
            return false;
          spans.status = from;
          spans.statusEnd = i;
        } else if (!isNull(b, from, i)) return false;
        break;
      case Key.Action:
        if (first === QUOTE) {
          if (!isWord(b, from, i, 'delete')) return false;
          spans.action = from;
          spans.actionEnd = i;
        } else if (!isNull(b, from, i)) return false;
        break;
      case Key.Seq:
        if (first === MINUS || (first >= ZERO && first <= NINE)) {
          // Safe integers only: at most 15 digits, no sign, fraction or exponent.
          if (!plainInteger || i - from > 15) return false;
          spans.seq = from;
          spans.seqEnd = i;
        } else if (!isNull(b, from, i)) return false;
        break;
      case Key.Message:
        if (first !== QUOTE && !isNull(b, from, i)) return false;
        break;
      default:
        // The times: numbers, finite (no exponent and not too long), or null.
        if (first === MINUS || (first >= ZERO && first <= NINE)) {
          if (sawExponent) return false;
          if (key === Key.TimeIn) {
            spans.timeIn = from;
            spans.timeInEnd = i;
          } else if (key === Key.Elapsed) {
            spans.elapsed = from;
            spans.elapsedEnd = i;
          }
        } else if (isNull(b, from, i)) {
          if (key === Key.TimeIn) {
            spans.timeIn = from;
            spans.timeInEnd = i;
          } else if (key === Key.Elapsed) {
            spans.elapsed = from;
            spans.elapsedEnd = i;
          }
        } else return false;
    }
    i = skipSpace(b, i, end);
    if (i >= end) return false;
    if (b[i] === CLOSE_BRACE) return (seen & Key.ObjId) !== 0 && i === end - 1;
    if (b[i] !== COMMA) return false;
    i = skipSpace(b, i + 1, end);
  }
}
