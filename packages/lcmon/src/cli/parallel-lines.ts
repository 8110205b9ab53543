import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { Malformed } from '@contexture/context/protocol';
import type { InputPlace } from '../options.js';
import type { WorkerJob, WorkerResult, WorkerSpec } from './line-worker.js';

/** Most bytes per chunk handed to a worker (whole lines; a longer line makes a longer chunk). */
const CHUNK = 1 << 20;
/** Chunks in flight per worker. */
const DEPTH = 2;

/** Where the results go, in input order. */
export interface ParallelSink {
  /** Output text of a chunk (documents ending in newlines) and where each document ends. */
  output(text: string, ends: readonly number[]): void;
  malformed(problem: Malformed, place: InputPlace): void;
  messages(n: number): void;
  readonly ready: boolean;
  whenReady(): Promise<void>;
  readonly stopped: boolean;
}

/**
 * `lcmon -s` without `-c` on several cores: the main thread cuts stdin into chunks of whole lines,
 * workers parse, validate and format them, and the results are put back in input order, with line
 * numbers and malformed reports exactly as one thread would give them. (Lines are independent
 * there; collation, which is not, stays on one thread.)
 */
export async function readLinesParallel(stream: Readable, spec: WorkerSpec, sink: ParallelSink, signal: AbortSignal): Promise<void> {
  const n = Math.max(1, Math.min(4, availableParallelism()));
  const workers = Array.from({ length: n }, () => new Worker(new URL('./line-worker.js', import.meta.url), { workerData: spec }));
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
      if (wake !== undefined) poke();
      else drain();
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
      next++;
      for (const [kind, detail, line] of r.malformed) {
        sink.malformed(detail === undefined ? { kind } : { kind, detail }, { line: linesBefore + line });
      }
      sink.messages(r.messages);
      if (r.text.length > 0) sink.output(r.text, r.ends);
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
  const send = (bytes: Buffer) => {
    // A copy of its own, so the worker can take it over without copying again.
    const own = new Uint8Array(bytes.length);
    own.set(bytes);
    const job: WorkerJob = { id: sent, bytes: own };
    workers[sent % n]!.postMessage(job, [own.buffer]);
    sent++;
  };

  try {
    let carry: Buffer | undefined;
    for await (const chunk of stream) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      const all: Buffer = carry === undefined ? buf : Buffer.concat([carry, buf]);
      // Gather up to CHUNK while input keeps coming; a pipe that pauses (a live `... | lcmon -s`)
      // gets its lines handled at once.
      if (all.length < CHUNK && stream.readableLength > 0) {
        carry = all;
        continue;
      }
      const cut = all.lastIndexOf(10);
      if (cut === -1) {
        carry = all;
        continue;
      }
      send(all.subarray(0, cut + 1));
      carry = cut + 1 < all.length ? Buffer.from(all.subarray(cut + 1)) : undefined;
      if (!drain()) return;
      await waitFor(n * DEPTH);
      if (failed !== undefined) throw failed;
      if (!drain()) return;
      if (!sink.ready) await sink.whenReady();
      if (sink.stopped || signal.aborted) return;
    }
    if (carry !== undefined && carry.length > 0) send(carry);
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
