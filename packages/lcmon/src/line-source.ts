import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import {
  envelopeLine,
  isMalformed,
  isPlainObject,
  isReservedRkey,
  parseJson,
  parseLine,
  type Malformed,
  stringifyJson,
  Utf8Lines,
  validateMessage,
  type LineInfo,
  type MessageMeta,
  type ParsedLine,
} from '@contexture/context/protocol';
import { nestedDeeper } from './depth.js';
import type { InputSink } from './input-sink.js';

/** Lines longer than this are refused as `too large` (the broker's body limit is the same). */
export const MAX_LINE = 16 * 1024 * 1024;

/** For the chunked readers: drops the rest of a line too large to keep, up to its newline. */
export class LineSkipper {
  /** Inside a line too large to keep. */
  skipping = false;

  /** `buf` without what belongs to the skipped line; null when all of it does. */
  rest(buf: Buffer): Buffer | null {
    if (!this.skipping) return buf;
    const nl = buf.indexOf(10);
    if (nl === -1) return null;
    this.skipping = false;
    return buf.subarray(nl + 1);
  }
}

/**
 * The per-line step shared by every reader of saved lines: parse (an envelope or a plain body),
 * hand the message to the sink with its body's JSON text when the line carries it as it is, or
 * report the line as malformed. Blank lines are skipped.
 *
 * With `shareMeta`, the messages of consecutive envelopes with the same routing key and headers
 * share one meta object, which the sink must then only read (collating, for one).
 *
 * A message nested deeper than `maxDepth` levels (its body; in an envelope, its body and headers,
 * the envelope itself not counted) is reported as `too deep`; 0 turns the check off. An envelope
 * of the project's own traffic (a reserved routing key: heartbeats) is skipped, as lcmon skips it
 * live.
 */
export function lineHandler(
  sink: Pick<InputSink, 'message' | 'malformed'>,
  wantText = true,
  shareMeta = false,
  maxDepth = 0,
): (line: string, lineNo: number) => void {
  const tooDeep: Malformed = { kind: 'too deep', detail: `more than ${maxDepth} levels` };
  const info: LineInfo = { envelope: false };
  // Never a prefix of a line (no line starts with a newline), until the first envelope sets it.
  let prefix = '\n';
  /**
   * The meta of the envelope `prefix` was made from when that line started with it (the prefix is
   * then the canonical text of its rkey and headers), with the headers' JSON text; else undefined.
   */
  let known: MessageMeta | undefined;
  let knownHeaders = '';
  return (line, lineNo) => {
    // Blank lines (and a trailing CR of CRLF files) are not input.
    const first = line.charCodeAt(0);
    if (first <= 32 && line.trim().length === 0) return;
    // (lastIndexOf from 0 is startsWith, several times faster on V8 for a freshly decoded line.)
    if (
      known !== undefined &&
      line.length > prefix.length + 1 &&
      line.charCodeAt(line.length - 1) === 125 &&
      line.lastIndexOf(prefix, 0) === 0
    ) {
      // `prefix` + BODY + `}`: when BODY parses on its own, the line is that envelope, with the
      // known rkey and headers, and BODY its object; the envelope around it need not be parsed.
      const body = line.slice(prefix.length, line.length - 1);
      let value: unknown;
      try {
        value = parseJson(body);
      } catch {
        value = undefined;
      }
      if (isPlainObject(value)) {
        if (maxDepth > 0 && nestedDeeper(body, maxDepth)) {
          sink.malformed(tooDeep, { line: lineNo });
          return;
        }
        const message = validateMessage(value);
        if (isMalformed(message)) {
          sink.malformed(message, { line: lineNo });
          return;
        }
        let meta = known;
        if (!shareMeta) {
          meta = {};
          if (known.rkey !== undefined) meta.rkey = known.rkey;
          if (known.headers !== undefined) meta.headers = parseJson(knownHeaders) as Record<string, unknown>;
        }
        // BODY parsed as one object: when it starts and ends with its braces, it is that object's text.
        const text =
          wantText && body.charCodeAt(0) === 123 && body.charCodeAt(body.length - 1) === 125 ? body : undefined;
        sink.message(message, meta, text);
        return;
      }
      // Anything else (BODY not JSON by itself, or not an object) is read the ordinary way.
    }
    const parsed = parseLine(line, info);
    if ((parsed as ParsedLine).message === undefined) {
      sink.malformed(parsed as Exclude<typeof parsed, ParsedLine>, { line: lineNo });
      return;
    }
    // Before anything recurses into it: the headers are serialised just below.
    if (maxDepth > 0 && nestedDeeper(line, info.envelope ? maxDepth + 1 : maxDepth)) {
      sink.malformed(tooDeep, { line: lineNo });
      return;
    }
    const { message, meta } = parsed as ParsedLine;
    // The project's own traffic saved with its routing key (heartbeats): no context, as when live.
    if (meta.rkey !== undefined && isReservedRkey(meta.rkey)) return;
    let text: string | undefined;
    if (!wantText) {
      // Collating or yielding parsed values: the text is not printed.
    } else if (!info.envelope) {
      text = line;
    }
    if (info.envelope) {
      // A line lcmon (or the jsonl transport) wrote: `{"rkey":…,"headers":…,"object":BODY}`. Its
      // body is reused as it is when the line has exactly that layout and BODY is one value.
      // The previous line's prefix is tried first: consecutive lines mostly share rkey and headers,
      // and an equal prefix text means equal rkey and headers.
      if (!line.startsWith(prefix)) {
        const headers = stringifyJson(meta.headers ?? {})!;
        prefix = envelopeLine(meta.rkey ?? null, headers, '').slice(0, -1);
        // (Unless shared, a copy: the sink may change the meta it was given.)
        known = !line.startsWith(prefix) ? undefined : shareMeta ? meta : { ...meta };
        knownHeaders = headers;
      }
      if (
        wantText &&
        line.length > prefix.length + 1 &&
        line.charCodeAt(line.length - 1) === 125 &&
        line.startsWith(prefix)
      ) {
        const body = line.slice(prefix.length, line.length - 1);
        if (isSingleObject(body)) text = body;
      }
    }
    sink.message(message, meta, text);
  };
}

/**
 * True when `text` (a fragment of a line that parsed as JSON) is exactly one object: its first
 * `{` closes at its last character. Strings are skipped with their escapes.
 */
function isSingleObject(text: string): boolean {
  if (text.charCodeAt(0) !== 123) return false;
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      // Skip the string.
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 92) i++;
        else if (d === 34) break;
      }
    } else if (c === 123 || c === 91) {
      depth++;
    } else if (c === 125 || c === 93) {
      if (--depth === 0) return i === n - 1;
    }
  }
  return false;
}

/**
 * Reads lines from a stream (saved `lcmon -v` envelopes, or plain message bodies, one JSON per line)
 * and hands them to a sink, chunk by chunk, with no per-line promise: a chunk is split and parsed in
 * one synchronous loop, and the next chunk is read only when the sink is ready. Resolves at the end
 * of the stream, when the sink stops, or when `signal` aborts.
 */
export async function readLines(
  stream: Readable,
  sink: InputSink,
  signal?: AbortSignal,
  wantText = true,
  shareMeta = false,
  maxDepth = 0,
): Promise<void> {
  const decoder = new StringDecoder('utf8');
  // Lines whose bytes are not UTF-8 are reported, not read with U+FFFD in them.
  const utf8 = new Utf8Lines();
  let rest = '';
  let lineNo = 0;
  let skipping = false;
  let atStart = true;

  const handle = lineHandler(sink, wantText, shareMeta, maxDepth);

  const take = (chunk: string): void => {
    const text = rest.length === 0 ? chunk : rest + chunk;
    let start = 0;
    if (atStart && text.length > 0) {
      atStart = false;
      // A byte order mark at the start of the stream is not part of its first line.
      if (text.charCodeAt(0) === 0xfeff) start = 1;
    }
    let nl: number;
    while ((nl = text.indexOf('\n', start)) !== -1) {
      lineNo++;
      if (skipping) {
        skipping = false;
      } else {
        const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
        if (utf8.invalid(lineNo)) sink.malformed({ kind: 'not UTF-8' }, { line: lineNo });
        else if (end > start) handle(text.slice(start, end), lineNo);
      }
      start = nl + 1;
      if (sink.stopped) return;
    }
    // Still in a line too large (no newline since it was reported): what came is dropped with it.
    if (skipping) {
      rest = '';
      return;
    }
    rest = start === 0 ? text : text.slice(start);
    if (rest.length > MAX_LINE) {
      sink.malformed({ kind: 'too large', detail: `more than ${MAX_LINE} bytes` }, { line: lineNo + 1 });
      rest = '';
      skipping = true;
    }
  };

  const onAbort = () => stream.destroy();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (signal?.aborted) return;
    for await (const chunk of stream) {
      if (typeof chunk === 'string') take(chunk);
      else {
        utf8.push(chunk as Buffer);
        take(decoder.write(chunk as Buffer));
      }
      if (sink.stopped) return;
      if (!sink.ready) await sink.whenReady();
      if (sink.stopped) return;
    }
    const tail = rest + decoder.end();
    rest = '';
    utf8.end();
    if (tail.length > 0 && !skipping) {
      lineNo++;
      if (utf8.invalid(lineNo)) sink.malformed({ kind: 'not UTF-8' }, { line: lineNo });
      else handle(tail.charCodeAt(tail.length - 1) === 13 ? tail.slice(0, -1) : tail, lineNo);
    }
  } catch (err) {
    if (signal?.aborted) return;
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
