import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { envelopeLine, parseLine, type LineInfo, type ParsedLine } from '@contexture/context/protocol';
import type { InputSink } from './input-sink.js';

/** Lines longer than this are refused as `too large` (the broker's body limit is the same). */
const MAX_LINE = 16 * 1024 * 1024;

/**
 * Reads lines from a stream (saved `lcmon -v` envelopes, or plain message bodies, one JSON per line)
 * and hands them to a sink, chunk by chunk, with no per-line promise: a chunk is split and parsed in
 * one synchronous loop, and the next chunk is read only when the sink is ready. Resolves at the end
 * of the stream, when the sink stops, or when `signal` aborts.
 */
export async function readLines(stream: Readable, sink: InputSink, signal?: AbortSignal): Promise<void> {
  const decoder = new StringDecoder('utf8');
  const info: LineInfo = { envelope: false };
  let rest = '';
  let lineNo = 0;
  let skipping = false;

  const handle = (line: string): void => {
    // Blank lines (and a trailing CR of CRLF files) are not input.
    const first = line.charCodeAt(0);
    if (first <= 32 && line.trim().length === 0) return;
    const parsed = parseLine(line, info);
    if ((parsed as ParsedLine).message === undefined) {
      sink.malformed(parsed as Exclude<typeof parsed, ParsedLine>, { line: lineNo });
      return;
    }
    const { message, meta } = parsed as ParsedLine;
    let text: string | undefined;
    if (!info.envelope) {
      text = line;
    } else {
      // A line lcmon (or the jsonl transport) wrote: its body is the tail, reused as it is.
      const prefix = envelopeLine(meta.rkey ?? null, JSON.stringify(meta.headers ?? {}), '');
      const cut = prefix.length - 1;
      if (line.length > cut + 1 && line.charCodeAt(line.length - 1) === 125 && line.startsWith(prefix.slice(0, cut))) {
        text = line.slice(cut, line.length - 1);
      }
    }
    sink.message(message, meta, text);
  };

  const take = (chunk: string): void => {
    const text = rest.length === 0 ? chunk : rest + chunk;
    let start = 0;
    let nl: number;
    while ((nl = text.indexOf('\n', start)) !== -1) {
      lineNo++;
      if (skipping) {
        skipping = false;
      } else {
        const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
        if (end > start) handle(text.slice(start, end));
      }
      start = nl + 1;
      if (sink.stopped) return;
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
      take(typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer));
      if (sink.stopped) return;
      if (!sink.ready) await sink.whenReady();
      if (sink.stopped) return;
    }
    const tail = rest + decoder.end();
    rest = '';
    if (tail.length > 0 && !skipping) {
      lineNo++;
      handle(tail.charCodeAt(tail.length - 1) === 13 ? tail.slice(0, -1) : tail);
    }
  } catch (err) {
    if (signal?.aborted) return;
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
