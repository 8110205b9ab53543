import { parseJson } from './json.js';
import { isMalformed, validateMessage, type BusMessage, type Malformed, type MessageMeta } from './message.js';

/**
 * The `lcmon -v` line and the `jsonl` transport's line: a message with the routing key and the
 * headers it travelled with. `lcmon -s` reads these back, and plain bodies too.
 */
export interface Envelope {
  rkey: string;
  headers: Record<string, unknown>;
  object: BusMessage;
}

/** A line read back: the message and what it arrived with. */
export interface ParsedLine {
  /** A context's message, or a note (no `obj_id`, no `obj`: see {@link BusMessage}). */
  message: BusMessage;
  meta: MessageMeta;
}

/** What {@link parseLine} can report about the shape of a line besides its message. */
export interface LineInfo {
  /** Set to true when the line was an envelope (`{"rkey", "headers", "object"}`), false for a plain body. */
  envelope: boolean;
}

/**
 * Builds the JSON text of an envelope from an already encoded body (no re-serialisation of the body).
 * `rkey` is null for a message whose routing key is unknown (a plain body read back from a file).
 */
export function envelopeLine(rkey: string | null, headersJson: string, bodyJson: string): string {
  return `{"rkey":${JSON.stringify(rkey)},"headers":${headersJson},"object":${bodyJson}}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses one saved line: an envelope (`{"rkey", "headers", "object"}`) or a plain message body.
 * Never throws; bad input comes back as a {@link Malformed}. When `info` is given, it is told
 * whether the line was an envelope (readers that print bodies as they are need to know).
 */
export function parseLine(line: string, info?: LineInfo): ParsedLine | Malformed {
  let value: unknown;
  try {
    value = parseJson(line);
  } catch (err) {
    return { kind: err instanceof RangeError ? 'too deep' : 'not JSON' };
  }
  if (isObject(value) && value.object !== undefined && value.obj_id === undefined) {
    if (info !== undefined) info.envelope = true;
    // (An envelope whose object is not an object is reported as such, not read as a note.)
    const message = validateMessage(value.object);
    if (isMalformed(message)) return message;
    const meta: MessageMeta = {};
    if (typeof value.rkey === 'string') meta.rkey = value.rkey;
    if (isObject(value.headers)) meta.headers = value.headers;
    return { message, meta };
  }
  if (info !== undefined) info.envelope = false;
  const message = validateMessage(value);
  if (isMalformed(message)) return message;
  return { message, meta: {} };
}
