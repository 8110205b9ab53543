import { isMalformed, validateMessage, type Malformed, type MessageMeta, type WireMessage } from './message.js';

/**
 * The `lcmon -v` line and the `jsonl` transport's line: a message with the routing key and the
 * headers it travelled with. `lcmon -s` reads these back, and plain bodies too.
 */
export interface Envelope {
  rkey: string;
  headers: Record<string, unknown>;
  object: WireMessage;
}

/** A line read back: the message and what it arrived with. */
export interface ParsedLine {
  message: WireMessage;
  meta: MessageMeta;
}

/** Builds the JSON text of an envelope from an already encoded body (no re-serialisation of the body). */
export function envelopeLine(rkey: string, headersJson: string, bodyJson: string): string {
  return `{"rkey":${JSON.stringify(rkey)},"headers":${headersJson},"object":${bodyJson}}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses one saved line: an envelope (`{"rkey", "headers", "object"}`) or a plain message body.
 * Never throws; bad input comes back as a {@link Malformed}.
 */
export function parseLine(line: string): ParsedLine | Malformed {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    return { kind: err instanceof RangeError ? 'too deep' : 'not JSON' };
  }
  if (isObject(value) && isObject(value.object) && value.obj_id === undefined) {
    const message = validateMessage(value.object);
    if (isMalformed(message)) return message;
    const meta: MessageMeta = {};
    if (typeof value.rkey === 'string') meta.rkey = value.rkey;
    if (isObject(value.headers)) meta.headers = value.headers;
    return { message, meta };
  }
  const message = validateMessage(value);
  if (isMalformed(message)) return message;
  return { message, meta: {} };
}
