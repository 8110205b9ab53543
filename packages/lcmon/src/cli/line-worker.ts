/**
 * A worker of {@link readLinesParallel}: turns chunks of saved lines (bytes) into output bytes
 * (parse, validate, format), so that several cores share `lcmon -s`. Pure but for what it learns
 * to go faster: lines that {@link scanMessage} vouches for are copied out as they are, never
 * parsed; every other line takes the ordinary path ({@link lineHandler}), which has the last word.
 */
import { isUtf8 } from 'node:buffer';
import { parentPort, workerData } from 'node:worker_threads';
import { MessageSpans, scanMessage, type Malformed } from '@contexture/context/protocol';
import { lineHandler } from '../line-source.js';
import { makeTransform, type TransformSpec } from '../transform.js';
import { chalkAt } from './colour.js';
import { Formatter } from './formatter.js';

/** How the worker formats; the same for every chunk. */
export interface WorkerSpec extends TransformSpec {
  verbose: boolean;
  pretty: boolean;
  colourLevel: 0 | 1 | 2 | 3;
  /** Messages nested deeper are `too deep`; 0: no limit. */
  maxDepth: number;
}

/** A chunk of whole lines. */
export interface WorkerJob {
  id: number;
  bytes: Uint8Array;
}

/** What came of a chunk: its output bytes, how many documents, its malformed lines (1-based within the chunk). */
export interface WorkerResult {
  id: number;
  out: Uint8Array;
  outputs: number;
  /** Where each document ends in `out`, when documents may span lines (`-p`); otherwise each ends at a newline. */
  ends: number[] | undefined;
  lines: number;
  messages: number;
  malformed: Array<[kind: Malformed['kind'], detail: string | undefined, line: number]>;
}

/** Envelope prefixes remembered at most (`{"rkey":…,"headers":…,"object":`); streams mostly have one. */
const MAX_PREFIXES = 16;

const spec = workerData as WorkerSpec;
const transform = makeTransform(spec);
const formatter = new Formatter({
  verbose: spec.verbose,
  pretty: spec.pretty,
  colour: spec.colourLevel > 0 ? chalkAt(spec.colourLevel) : undefined,
  transform,
});
// Each line is decoded on its own: a BOM is stripped only at the start of the stream, as before.
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
const firstDecoder = new TextDecoder('utf-8');
const spans = new MessageSpans();
/** Printing the body as it is, which is what the scan can vouch for. */
const fastPrint =
  !spec.verbose &&
  !spec.pretty &&
  transform === undefined &&
  // The scan vouches for no more than its own depth (64): a lower limit is checked on the ordinary path.
  (spec.maxDepth === 0 || spec.maxDepth >= 64);

/**
 * Envelope prefixes known to be canonical (the prefix the ordinary path checks a line against, for
 * the rkey and headers in it): a line made of one of them, one object and `}` is an envelope whose
 * body is that object. Learned from lines the ordinary path read.
 */
const prefixes: Buffer[] = [];
const prefixTexts: string[] = [];

/**
 * Output goes over the chunk's own bytes, behind the line being read (a line never gives out
 * more than it took, but for a slow line's formatting, which then moves it to a buffer of its own).
 */
let out: Buffer = Buffer.alloc(0);
let inPlace = true;
/** End of the input taken so far (the current line and its LF): in place, output may not pass it. */
let taken = 0;
let pos = 0;
let outputs = 0;
let ends: number[] | undefined;
let malformed: WorkerResult['malformed'] = [];
let messages = 0;
let lastText: string | undefined;
let lastValid = false;
/** The whole chunk is UTF-8 (the usual case): its lines need no check of their own. */
let chunkIsUtf8 = true;

/** Makes room for `n` more bytes of output. */
function room(n: number): void {
  if (inPlace) {
    if (pos + n <= taken) return;
    const own = Buffer.alloc(Math.max(out.length + (out.length >> 3), pos + n, 1 << 16));
    out.copy(own, 0, 0, pos);
    out = own;
    inPlace = false;
    return;
  }
  if (pos + n <= out.length) return;
  const bigger = Buffer.alloc(Math.max(out.length * 2, pos + n));
  out.copy(bigger, 0, 0, pos);
  out = bigger;
}

function put(text: string): void {
  room(Buffer.byteLength(text, 'utf8') + 1);
  pos += out.write(text, pos, 'utf8');
  out[pos++] = 10;
  outputs++;
  ends?.push(pos);
}

const slowLine = lineHandler(
  {
    message(message, meta, text) {
      messages++;
      lastValid = true;
      lastText = text;
      const o = formatter.message(message, meta, text);
      if (o !== undefined) put(o);
    },
    malformed(problem, place) {
      malformed.push([problem.kind, problem.detail, place.line!]);
    },
  },
  true,
  false,
  spec.maxDepth,
);

/** Remembers the prefix of an envelope line whose body the ordinary path printed as it is. */
function learn(line: string): void {
  if (!lastValid || lastText === undefined || lastText.length === line.length || prefixes.length >= MAX_PREFIXES)
    return;
  const text = line.slice(0, line.length - 1 - lastText.length);
  // Printable ASCII only: then its bytes are its characters, and the scan sees the body's own bytes.
  if (text.length === 0 || !/^[\x20-\x7e]*$/.test(text) || prefixTexts.includes(text)) return;
  prefixTexts.push(text);
  prefixes.push(Buffer.from(text, 'latin1'));
}

/** The index of the known prefix the line starts with, the body then being one object before its final `}`; -1 for none. */
function envelopeBody(b: Buffer, s: number, e: number): number {
  for (let k = 0; k < prefixes.length; k++) {
    const p = prefixes[k]!;
    const n = p.length;
    if (e - s <= n + 1 || b[s + n] !== 123) continue;
    let i = 0;
    while (i < n && b[s + i] === p[i]) i++;
    if (i === n && scanMessage(b, s + n, e - 1, spans)) return k;
  }
  return -1;
}

/** Runs the ordinary path on one line. */
function slow(b: Buffer, s: number, e: number, lineNo: number, first: boolean): void {
  lastValid = false;
  lastText = undefined;
  // Bytes that are not UTF-8 are reported, never read as U+FFFD (the fast paths take ASCII only).
  if (!chunkIsUtf8 && !isUtf8(b.subarray(s, e))) {
    malformed.push(['not UTF-8', undefined, lineNo]);
    return;
  }
  const line = (first ? firstDecoder : decoder).decode(b.subarray(s, e));
  // A first line that was only a byte order mark is a blank line, as in -sc.
  if (line.length === 0) return;
  slowLine(line, lineNo);
  learn(line);
}

function printChunk(b: Buffer, first: boolean): number {
  let start = 0;
  let line = 0;
  const n = b.length;
  while (start < n) {
    let nl = b.indexOf(10, start);
    const last = nl === -1;
    if (last) nl = n;
    line++;
    // CR before LF is not part of the line (the final line, without LF, keeps it, as before).
    const end = !last && nl > start && b[nl - 1] === 13 ? nl - 1 : nl;
    taken = last ? n : nl + 1;
    if (end > start) {
      if (fastPrint && b[start] === 123 && b[end - 1] === 125) {
        const k = envelopeBody(b, start, end);
        if (k !== -1) {
          copyOut(b, start + prefixes[k]!.length, end - 1);
          messages++;
        } else if (scanMessage(b, start, end, spans)) {
          copyOut(b, start, end);
          messages++;
        } else {
          slow(b, start, end, line, first && line === 1);
        }
      } else {
        slow(b, start, end, line, first && line === 1);
      }
    }
    start = nl + 1;
  }
  return line;
}

function copyOut(b: Buffer, from: number, to: number): void {
  room(to - from + 1);
  if (inPlace) b.copyWithin(pos, from, to);
  else b.copy(out, pos, from, to);
  pos += to - from;
  out[pos++] = 10;
  outputs++;
}

parentPort!.on('message', (job: WorkerJob) => {
  const b = Buffer.from(job.bytes.buffer, job.bytes.byteOffset, job.bytes.byteLength);
  const first = job.id === 0;
  out = b;
  inPlace = true;
  taken = 0;
  pos = 0;
  outputs = 0;
  ends = spec.pretty ? [] : undefined;
  malformed = [];
  messages = 0;
  chunkIsUtf8 = isUtf8(b);
  const lines = printChunk(b, first);
  const view = new Uint8Array(out.buffer, out.byteOffset, pos);
  const result: WorkerResult = { id: job.id, out: view, outputs, ends, lines, messages, malformed };
  parentPort!.postMessage(result, [out.buffer as ArrayBuffer]);
});
