import { parseJson, stringifyJson } from './json.js';
import { invalidUtf8Lines } from './utf8.js';

/**
 * The wire format, version 1 (see DESIGN.md): one JSON body per context message.
 * Field names follow the original Python contexture so that streams from either side read the same.
 */

/** Lifecycle of a context as carried by `status`; plain updates carry none. */
export type MessageStatus = 'born' | 'transient' | 'finished';

/** One context message as it travels on the bus. */
export interface WireMessage {
  /** The context's id (uuid v4, or the `guid` the user gave). */
  obj_id: string;
  /** The fields set by this message (only those). With `action: 'delete'`, the deleted fields with `null`. */
  obj: Record<string, unknown>;
  status?: MessageStatus;
  action?: 'delete';
  /** The formatted log line of `ctx.log.*` (what another value a producer sent is, as JSON text). */
  message?: string;
  level?: string;
  /** Seconds since born, on `finished`. */
  elapsed?: number;
  /** Per-context sequence number: born = 0, then +1 per message. Absent in streams of the Python contexture. */
  seq?: number;
  handler_id?: string;
  /** Unix seconds when the change happened. */
  time_in?: number;
  /** Unix seconds when it was published. */
  time_out?: number;
  qtime?: number;
  qlen?: number;
}

/**
 * A body with neither `obj_id` nor `obj`: a message about its publisher rather than a context's.
 * The Python contexture's handler publishes such bodies on routing key `default`: when it starts
 * (`{"host", "pid", "argv", "tid", "contexture", "time_in", "time_out", "qtime", "qlen",
 * "handler_id"}`), and `{"stopping": true}` / `{"recovered": n}`. Readers of messages print it as it
 * is; collation and the store have no object to fold it into and skip it, counted as a note.
 */
export interface NoteMessage {
  obj_id?: undefined;
  obj?: undefined;
  [field: string]: unknown;
}

/** What a body can validly be: a context's message, or a {@link NoteMessage}. */
export type BusMessage = WireMessage | NoteMessage;

/** Routing key and headers a message arrived with. */
export interface MessageMeta {
  rkey?: string;
  headers?: Record<string, unknown>;
}

export const WIRE_VERSION = 1;
export const CONTENT_TYPE_JSON = 'application/json';
export const CONTENT_TYPE_NDJSON = 'application/x-ndjson';
export const APP_ID = 'contexture';
export const DEFAULT_EXCHANGE = 'lc-topic';
/** The routing key prefix reserved for the project's own traffic (heartbeats and the like). */
export const RESERVED_RKEY_PREFIX = 'contexture.';

const STATUSES: ReadonlySet<string> = new Set(['born', 'transient', 'finished']);

/** Why a value is not a wire message; one short phrase per kind so readers can count them by kind. */
export type MalformedKind =
  | 'not JSON'
  | 'not an object'
  | 'obj_id missing'
  | 'obj not an object'
  | 'bad status'
  | 'bad action'
  | 'bad seq'
  | 'bad time'
  | 'too large'
  | 'too deep'
  | 'not UTF-8'
  | 'empty';

/** A value that failed to decode or validate. */
export interface Malformed {
  kind: MalformedKind;
  /** A short detail for the report (never the whole input). */
  detail?: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** The notes {@link validateMessage} let through, so that {@link isMalformed} never takes one for a problem. */
const notes = new WeakSet<object>();

/** True when a valid message is a {@link NoteMessage} (no context: nothing to collate or store). */
export function isNote(message: BusMessage): message is NoteMessage {
  return message.obj_id === undefined;
}

/**
 * Checks that a parsed JSON value is a wire message. Returns the message (the same object, with
 * `obj` defaulted to `{}` and a legacy `id` copied to `obj_id`), a {@link NoteMessage} (an object
 * with neither `obj_id`, `id` nor `obj`, as it is), or a {@link Malformed}.
 */
export function validateMessage(value: unknown): BusMessage | Malformed {
  if (!isObject(value)) return { kind: 'not an object' };
  let id = value.obj_id;
  if (id === undefined && typeof value.id === 'string') {
    // Early Python contexture streams named the field `id`.
    id = value.id;
    value.obj_id = id;
  }
  if (id === undefined && value.obj === undefined) {
    // What a Python handler says of itself (its start-up announcement, say): no context in it.
    notes.add(value);
    return value as NoteMessage;
  }
  if (typeof id !== 'string' || id.length === 0) return { kind: 'obj_id missing' };
  const obj = value.obj;
  if (obj === undefined || obj === null) value.obj = {};
  else if (!isObject(obj)) return { kind: 'obj not an object' };
  const status = value.status;
  if (status !== undefined && status !== null && (typeof status !== 'string' || !STATUSES.has(status))) {
    return { kind: 'bad status', detail: typeof status === 'string' ? status.slice(0, 40) : typeof status };
  }
  if (status === null) delete value.status;
  const action = value.action;
  if (action !== undefined && action !== null && action !== 'delete') return { kind: 'bad action' };
  const seq = value.seq;
  if (seq !== undefined && seq !== null && !(Number.isSafeInteger(seq) && (seq as number) >= 0))
    return { kind: 'bad seq' };
  if (seq === null) delete value.seq;
  for (const key of ['time_in', 'time_out', 'elapsed', 'qtime', 'qlen'] as const) {
    const t = value[key];
    if (t !== undefined && t !== null && !isNumber(t)) return { kind: 'bad time', detail: key };
  }
  // The Python contexture sends what its log call was given (`ctx.log.info({'status': 200},
  // user='bob')`): a value other than text is kept as its JSON text, the message's fields with it.
  const message = value.message;
  if (message !== undefined && message !== null && typeof message !== 'string') {
    try {
      value.message = stringifyJson(message) ?? String(message);
    } catch {
      return { kind: 'too deep' };
    }
  }
  return value as unknown as WireMessage;
}

/** True when `value` is a {@link Malformed} rather than a message. */
export function isMalformed(value: BusMessage | Malformed): value is Malformed {
  return (value as Malformed).kind !== undefined && (value as WireMessage).obj_id === undefined && !notes.has(value);
}

/** Options of {@link decodeBody}. */
export interface DecodeOptions {
  /**
   * Bodies larger than this many bytes are refused as `too large`.
   * @default 16777216 (16 MiB)
   */
  maxBytes?: number;
  /**
   * Values nested deeper than this are refused as `too deep`; 0 turns the check off.
   * @default 0
   */
  maxDepth?: number;
}

/** Depth of nesting of a JSON value, stopping as soon as it exceeds `limit`. */
export function depthExceeds(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (d > limit) return true;
    if (Array.isArray(v)) for (const x of v) stack.push([x, d + 1]);
    else for (const k in v) stack.push([(v as Record<string, unknown>)[k], d + 1]);
  }
  return false;
}

function parseOne(text: string, opts: DecodeOptions | undefined): BusMessage | Malformed {
  let value: unknown;
  try {
    // JSON as the Python contexture writes it too (NaN, Infinity, integers beyond 2^53): see json.ts.
    value = parseJson(text);
  } catch (err) {
    // A very deep document overflows the parser's stack: that is a `too deep`, not a crash.
    if (err instanceof RangeError) return { kind: 'too deep' };
    return { kind: 'not JSON' };
  }
  const maxDepth = opts?.maxDepth ?? 0;
  if (maxDepth > 0 && depthExceeds(value, maxDepth)) return { kind: 'too deep' };
  return validateMessage(value);
}

/**
 * Decodes one AMQP body into wire messages: a JSON body gives one, an `application/x-ndjson` body
 * (batch mode) one per non-empty line. Every element is a message (a context's, or a
 * {@link NoteMessage}) or a {@link Malformed}; a body, or a line of a batch, whose bytes are not
 * UTF-8 is `not UTF-8`.
 */
export function decodeBody(
  body: Buffer | string,
  contentType?: string,
  opts?: DecodeOptions,
): Array<BusMessage | Malformed> {
  const size = typeof body === 'string' ? body.length : body.byteLength;
  const maxBytes = opts?.maxBytes ?? 16 * 1024 * 1024;
  if (size > maxBytes) return [{ kind: 'too large', detail: `${size} bytes` }];
  const text = typeof body === 'string' ? body : body.toString('utf8');
  const bad = typeof body === 'string' ? null : invalidUtf8Lines(body);
  if (contentType === CONTENT_TYPE_NDJSON || (contentType !== undefined && isNdjson(contentType))) {
    const out: Array<BusMessage | Malformed> = [];
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (line.trim().length === 0) continue;
      out.push(bad?.has(i) ? { kind: 'not UTF-8' } : parseOne(line, opts));
    }
    if (out.length === 0) out.push({ kind: 'empty' });
    return out;
  }
  if (bad !== null) return [{ kind: 'not UTF-8' }];
  if (text.trim().length === 0) return [{ kind: 'empty' }];
  return [parseOne(text, opts)];
}

/**
 * True for a content type naming ndjson with parameters or in another case
 * (`application/x-ndjson; charset=utf-8`, `Application/X-NDJSON`): media types are case-blind.
 */
function isNdjson(contentType: string): boolean {
  if (contentType === 'application/json') return false;
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase() === CONTENT_TYPE_NDJSON;
}

/** Serialises a message for the bus. */
export function encodeMessage(message: WireMessage): string {
  return JSON.stringify(message);
}

/** Packs several encoded bodies into one batch body (`application/x-ndjson`). */
export function encodeBatch(bodies: readonly string[]): Buffer {
  return Buffer.from(`${bodies.join('\n')}\n`, 'utf8');
}
