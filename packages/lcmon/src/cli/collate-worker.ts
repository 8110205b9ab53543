/**
 * A worker of {@link ParallelCollator}: collates and formats the messages of its share of the
 * `obj_id`s. It reads the lines the main thread routed to it, out of a chunk of input in memory
 * shared by every worker, and gives back each output document with its position in the input, so
 * that the main thread merges the shares into the order one collator gives.
 */
import { isUtf8 } from 'node:buffer';
import { parentPort, workerData } from 'node:worker_threads';
import { Collator, type Malformed } from '@contexture/context/protocol';
import { lineHandler } from '../line-source.js';
import { makeTransform } from '../transform.js';
import { chalkAt } from './colour.js';
import { Formatter } from './formatter.js';
import type { WorkerSpec } from './line-worker.js';

/** How the workers collate; the same for every chunk. */
export interface CollateSpec extends WorkerSpec {
  flushIncomplete: boolean;
  /** Limits of each worker's collator (the whole limit shared out). */
  maxOpen: number;
  rememberCompleted: number;
}

/** The lines of a chunk routed to one worker. */
export interface CollateJob {
  type: 'chunk';
  id: number;
  /** The whole chunk (shared memory, the same for every worker). */
  bytes: Uint8Array;
  /** Per line of this worker's share: start, end (without newline or CR), line number in the input. */
  lines: Float64Array;
}

/** End of input: give out what is still held (and, with `includeOpen`, what never finished). */
export interface FlushJob {
  type: 'flush';
  includeOpen: boolean;
}

/** What came of a chunk (or of the flush) in this worker's share. */
export interface CollateResult {
  id: number;
  /** The output documents, each followed by a newline. */
  text: string;
  /** Where each document ends in `text` (after its newline). */
  ends: number[];
  /** The input position (a line number) of each document, in order. */
  positions: number[];
  /** Lines of this share that are not messages: kind, detail, line number. */
  malformed: Array<[kind: Malformed['kind'], detail: string | undefined, position: number]>;
  messages: number;
  /** Objects open in this share after the chunk. */
  open: number;
  /** Messages of this share that came after their object was given out, so far (see Collator stats). */
  late: number;
  /** For a flush: how many of the documents are waiting objects (the rest are open ones). */
  waiting?: number;
}

const spec = workerData as CollateSpec;
const formatter = new Formatter({
  verbose: spec.verbose,
  pretty: spec.pretty,
  colour: spec.colourLevel > 0 ? chalkAt(spec.colourLevel) : undefined,
  transform: makeTransform(spec),
});

let text = '';
let ends: number[] = [];
let positions: number[] = [];
let malformed: CollateResult['malformed'] = [];
let messages = 0;
const collator = new Collator({
  onObject(o, position) {
    const doc = formatter.object(o);
    if (doc === undefined) return;
    text += `${doc}\n`;
    ends.push(text.length);
    positions.push(position);
  },
  flushIncomplete: spec.flushIncomplete,
  maxOpen: spec.maxOpen,
  rememberCompleted: spec.rememberCompleted,
});

// The line number the handler is given is the line's input position.
const handle = lineHandler(
  {
    message(message, meta) {
      messages++;
      collator.add(message, meta, lastPosition);
    },
    malformed(problem, place) {
      malformed.push([problem.kind, problem.detail, place.line!]);
    },
  },
  false,
  true,
  spec.maxDepth,
);
let lastPosition = 0;
function chunk(job: CollateJob): CollateResult {
  // A BOM inside the input is kept (that line is not JSON); the one at its start is cut by the router.
  const b = Buffer.from(job.bytes.buffer, job.bytes.byteOffset, job.bytes.byteLength);
  const lines = job.lines;
  // Bytes that are not UTF-8 are reported, never read as U+FFFD: checked line by line only when
  // the chunk as a whole is not UTF-8.
  const utf8 = isUtf8(b);
  for (let i = 0; i < lines.length; i += 3) {
    const s = lines[i]!;
    const e = lines[i + 1]!;
    lastPosition = lines[i + 2]!;
    if (!utf8 && !isUtf8(b.subarray(s, e))) malformed.push(['not UTF-8', undefined, lastPosition]);
    else handle(b.toString('utf8', s, e), lastPosition);
  }
  return done(job.id);
}

function done(id: number): CollateResult {
  const { open, late } = collator.stats();
  const r: CollateResult = { id, text, ends, positions, malformed, messages, open, late };
  text = '';
  ends = [];
  positions = [];
  malformed = [];
  messages = 0;
  return r;
}

parentPort!.on('message', (job: CollateJob | FlushJob) => {
  if (job.type === 'chunk') {
    parentPort!.postMessage(chunk(job));
    return;
  }
  // The flush: waiting objects first, then (with includeOpen) the ones that never finished.
  collator.flush(false);
  const waiting = positions.length;
  if (job.includeOpen) collator.flush(true);
  parentPort!.postMessage({ ...done(-1), waiting });
});
