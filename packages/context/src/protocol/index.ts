/**
 * The wire protocol shared by every package: message types, decoding and validation, the saved-line
 * format, collation into whole objects, and key extraction.
 */
export {
  APP_ID,
  CONTENT_TYPE_JSON,
  CONTENT_TYPE_NDJSON,
  DEFAULT_EXCHANGE,
  RESERVED_RKEY_PREFIX,
  WIRE_VERSION,
  decodeBody,
  depthExceeds,
  encodeBatch,
  encodeMessage,
  isMalformed,
  isNote,
  validateMessage,
} from './message.js';
export type {
  BusMessage,
  DecodeOptions,
  Malformed,
  MalformedKind,
  MessageMeta,
  MessageStatus,
  NoteMessage,
  WireMessage,
} from './message.js';
export { envelopeLine, parseLine } from './envelope.js';
export { parseJson, stringifyJson } from './json.js';
export type { Envelope, LineInfo, ParsedLine } from './envelope.js';
export { Collator } from './collator.js';
export type { CollatedObject, CollatorOptions, CollatorStats } from './collator.js';
export { extractKeys } from './extract.js';
export { MessageSpans, scanMessage } from './scan.js';
export { Utf8Lines, invalidUtf8Lines } from './utf8.js';
export { plainHeaders } from './headers.js';
export { isPlainObject, setOwn } from './own.js';
export { HEARTBEAT_RKEY, HEARTBEAT_TYPE, encodeHeartbeat, isReservedRkey, parseHeartbeat } from './heartbeat.js';
export type { Heartbeat } from './heartbeat.js';
