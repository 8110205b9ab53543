/**
 * A worker of {@link ParallelLines}: turns chunks of saved lines into output text (parse, validate,
 * format), so that several cores share `lcmon -s`. Pure: it keeps no state between chunks.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Malformed } from '@contexture/context/protocol';
import { lineHandler } from '../line-source.js';
import { makeTransform, type TransformSpec } from '../transform.js';
import { chalkAt } from './colour.js';
import { Formatter } from './formatter.js';

/** How the worker formats; the same for every chunk. */
export interface WorkerSpec extends TransformSpec {
  verbose: boolean;
  pretty: boolean;
  colourLevel: 0 | 1 | 2 | 3;
}

/** A chunk of whole lines. */
export interface WorkerJob {
  id: number;
  bytes: Uint8Array;
}

/** What came of a chunk: its outputs (text and where each ends), its malformed lines (1-based within the chunk). */
export interface WorkerResult {
  id: number;
  text: string;
  ends: number[];
  lines: number;
  messages: number;
  malformed: Array<[kind: Malformed['kind'], detail: string | undefined, line: number]>;
}

const spec = workerData as WorkerSpec;
const formatter = new Formatter({
  verbose: spec.verbose,
  pretty: spec.pretty,
  colour: spec.colourLevel > 0 ? chalkAt(spec.colourLevel) : undefined,
  transform: makeTransform(spec),
});
const decoder = new TextDecoder();

let parts: string[] = [];
let malformed: WorkerResult['malformed'] = [];
let messages = 0;
const handle = lineHandler({
  message(message, meta, text) {
    messages++;
    const out = formatter.message(message, meta, text);
    if (out !== undefined) parts.push(out);
  },
  malformed(problem, place) {
    malformed.push([problem.kind, problem.detail, place.line!]);
  },
});

parentPort!.on('message', (job: WorkerJob) => {
  const text = decoder.decode(job.bytes);
  parts = [];
  malformed = [];
  messages = 0;
  let start = 0;
  let line = 0;
  let nl: number;
  while ((nl = text.indexOf('\n', start)) !== -1) {
    line++;
    const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
    if (end > start) handle(text.slice(start, end), line);
    start = nl + 1;
  }
  if (start < text.length) {
    line++;
    handle(text.slice(start), line);
  }
  const ends: number[] = [];
  let at = 0;
  for (const p of parts) {
    at += p.length + 1;
    ends.push(at);
  }
  const result: WorkerResult = { id: job.id, text: parts.length === 0 ? '' : parts.join('\n') + '\n', ends, lines: line, messages, malformed };
  parentPort!.postMessage(result);
});
