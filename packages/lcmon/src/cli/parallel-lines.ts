import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { Malformed } from '@contexture/context/protocol';
import type { InputPlace } from '../options.js';
import { LineSkipper, MAX_LINE } from '../line-source.js';
import type { WorkerJob, WorkerResult, WorkerSpec } from './line-worker.js';

/** Most bytes per chunk handed to a worker (whole lines; a longer line makes a longer chunk). */
const CHUNK = 1 << 20;
/** Chunks in flight per worker. */
const DEPTH = 2;

/** Where the results go, in input order. */
export interface ParallelSink {
  /** Output bytes of a chunk (documents ending in newlines): `count` documents, ending at `ends` when given, else each at a newline. */
  output(bytes: Uint8Array, count: number, ends: readonly number[] | undefined): void;
  malformed(problem: Malformed, place: InputPlace): void;
  messages(n: number): void;
  readonly ready: boolean;
  whenReady(): Promise<void>;
  readonly stopped: boolean;
}

/**
 * `lcmon -s` without `-c` on several cores: the main thread cuts stdin into chunks of whole lines
 * and hands them over (transferred, not copied) to workers, which parse, validate and format them
 * and give back output bytes; the results are put back in input order, with line numbers and
 * malformed reports exactly as one thread would give them. (Lines are independent there;
 * collation, which is not, stays on one thread.)
 */
export async function readLinesParallel(
  stream: Readable,
  spec: WorkerSpec,
  sink: ParallelSink,
  signal: AbortSignal,
): Promise<void> {
  const n = Math.max(1, Math.min(4, availableParallelism()));
  const workers = Array.from(
    { length: n },
    () => new Worker(new URL('./line-worker.js', import.meta.url), { workerData: spec }),
  );
  const results = new Map<number, WorkerResult>();
  let failed: Error | undefined;
  let wake: (() => void) | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  for (const w of workers) {
    w.on('message', (r: WorkerResult) => {
      results.set(r.id, r);
      // Put results out as they come, not only when the reader next waits: input may pause.
      if (wake !== undefined) {
        poke();
      } else if (drain() && sent - next < n) {
        // Workers have room while input is slow to come: hand over the lines held so far.
        sendHeld();
      }
    });
    w.on('error', (err) => {
      failed ??= err;
      poke();
    });
  }
  const onAbort = () => {
    stream.destroy();
    poke();
  };
  signal.addEventListener('abort', onAbort, { once: true });

  let sent = 0;
  let next = 0;
  let linesBefore = 0;
  /** Puts back every result that is due, in order; false once the sink has stopped. */
  const drain = (): boolean => {
    for (;;) {
      if (sink.stopped) return false;
      const r = results.get(next);
      if (r === undefined) return true;
      results.delete(next);
      for (const [kind, detail, line] of r.malformed) {
        sink.malformed(detail === undefined ? { kind } : { kind, detail }, { line: linesBefore + line });
      }
      sink.messages(r.messages);
      if (r.outputs > 0) sink.output(r.out, r.outputs, r.ends);
      next++;
      linesBefore += r.lines;
    }
  };
  const waitFor = async (inFlight: number) => {
    for (;;) {
      if (!drain()) return;
      if (sent - next <= inFlight || failed !== undefined || signal.aborted) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  };
  const send = (bytes: Uint8Array) => {
    const job: WorkerJob = { id: sent, bytes };
    workers[sent % n]!.postMessage(job, [bytes.buffer as ArrayBuffer]);
    sent++;
  };

  // Input since the last chunk handed over, in the pieces it came in (joined once, when sent).
  let pieces: Buffer[] = [];
  let size = 0;
  /** Hands over the whole lines held; false when there is none. */
  const sendHeld = (): boolean => {
    let cut = -1;
    let k = pieces.length - 1;
    for (; k >= 0; k--) {
      const i = pieces[k]!.lastIndexOf(10);
      if (i !== -1) {
        cut = i;
        break;
      }
    }
    if (cut === -1) return false;
    // The line begun after the last newline goes on in the pieces after it (none has a newline):
    // they are held with it.
    const tailPiece = pieces[k]!;
    const held = pieces.slice(k + 1);
    if (cut + 1 < tailPiece.length) held.unshift(tailPiece.subarray(cut + 1));
    let restLength = 0;
    for (const p of held) restLength += p.length;
    const own = new Uint8Array(size - restLength);
    let at = 0;
    for (let j = 0; j < k; j++) {
      own.set(pieces[j]!, at);
      at += pieces[j]!.length;
    }
    own.set(tailPiece.subarray(0, cut + 1), at);
    pieces = held;
    size = restLength;
    send(own);
    return true;
  };

  /** A line too large to keep, as one result of its own (it counts as a line): reported, not parsed. */
  const tooLarge = () => {
    results.set(sent, {
      id: sent,
      out: new Uint8Array(0),
      outputs: 0,
      ends: undefined,
      lines: 1,
      messages: 0,
      malformed: [['too large', `more than ${MAX_LINE} bytes`, 1]],
    });
    sent++;
  };
  const skip = new LineSkipper();

  try {
    for await (const chunk of stream) {
      const buf = skip.rest(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
      if (buf === null) continue;
      pieces.push(buf);
      size += buf.length;
      // Gather up to CHUNK while input keeps coming or every worker is busy (bigger chunks cost
      // less per line); a pipe that pauses (a live `... | lcmon -s`) gets its lines handled at
      // once, here or when a worker comes free.
      if (size < CHUNK && (stream.readableLength > 0 || sent - next >= n)) continue;
      // Whole lines go; the rest waits for its newline, unless it is already too long to keep (the
      // start of one line is all that is held then).
      const went = sendHeld();
      if (size > MAX_LINE) {
        pieces = [];
        size = 0;
        skip.skipping = true;
        tooLarge();
      } else if (!went) {
        continue;
      }
      if (!drain()) return;
      await waitFor(n * DEPTH);
      if (failed !== undefined) throw failed;
      if (!drain()) return;
      if (!sink.ready) await sink.whenReady();
      if (sink.stopped || signal.aborted) return;
    }
    // A too-large line that ran to the end of the input was reported already.
    if (!skip.skipping && size > 0) {
      const own = new Uint8Array(size);
      let at = 0;
      for (const p of pieces) {
        own.set(p, at);
        at += p.length;
      }
      send(own);
    }
    await waitFor(0);
    if (failed !== undefined) throw failed;
    drain();
  } catch (err) {
    if (signal.aborted) return;
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
