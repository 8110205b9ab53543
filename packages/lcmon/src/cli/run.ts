import type { Readable, Writable } from 'node:stream';
import { Collator } from '@contexture/context/protocol';
import { AmqpSource } from '../amqp-source.js';
import { LcmonError } from '../errors.js';
import type { InputSink } from '../input-sink.js';
import { readLines } from '../line-source.js';
import type { TransformSpec } from '../transform.js';
import type { ResolvedOptions } from '../options.js';
import { chalkAt, colourLevel, type MaybeTty } from './colour.js';
import { Diagnostics } from './diagnostics.js';
import { EXIT, exitStatusFor } from './exit-codes.js';
import { withLargeReads } from './file-input.js';
import { Formatter } from './formatter.js';
import { HeldObjects } from '../held-objects.js';
import { MalformedReport } from './malformed-report.js';
import { OutputWriter } from './output-writer.js';
import { ParallelCollator, type CollateSink } from './parallel-collate.js';
import { readLinesParallel, type ParallelSink } from './parallel-lines.js';
import { StatsLine } from './stats-line.js';
import { inTrace } from './trace-filter.js';

/** Streams the CLI works with. */
export interface RunIO {
  stdout: Writable & MaybeTty;
  stderr: Writable & MaybeTty;
  stdin: Readable;
  env: Record<string, string | undefined>;
  /** Aborting it is Ctrl-C: stop, close, `Bye.`, exit 0. */
  signal: AbortSignal;
}

/** What the command line asked for, checked. */
export interface RunConfig {
  /** Where input comes from: stdin (`-s`) or the broker. */
  input: 'stdin' | 'amqp';
  amqp: ResolvedOptions;
  collate: boolean;
  verbose: boolean;
  pretty: boolean;
  transform: ((value: unknown) => unknown) | undefined;
  /** `-n`: stop after this many outputs. */
  count: number | undefined;
  /** `--color` / `--no-color`; undefined to decide from the environment. */
  colour: boolean | undefined;
  flushIncomplete: boolean;
  stats: boolean;
  /** `-k`/`-t`/`-z` as data, for worker threads (which rebuild the transform); undefined to stay on one thread. */
  parallel?: TransformSpec;
  /** `--trace`: only what belongs to this trace id (32 lower-case hex digits). */
  trace?: string;
}

type StopReason = 'end' | 'count' | 'signal' | 'broken' | 'failed';

/** How often finished objects waiting for lost messages are given out, live. */
const EXPIRE_EVERY_MS = 1000;

/** Where the `n`th line of `bytes` ends (after its newline). */
function nthLineEnd(bytes: Uint8Array, n: number): number {
  let at = 0;
  for (let i = 0; i < n; i++) at = bytes.indexOf(10, at) + 1;
  return at;
}

function describeBinding(o: ResolvedOptions): string {
  const on =
    o.exchangeType === 'headers'
      ? `arguments ${JSON.stringify(o.bindingArgs ?? {})}`
      : `routing keys ${o.bindingKeys.join(' ')}`;
  return `exchange "${o.exchange}" (${o.exchangeType}), ${on}`;
}

/**
 * The lcmon pipeline: source → (collate) → format → stdout, all synchronous per batch. Resolves
 * with the exit status; never throws for expected failures (they are reported on stderr).
 */
export async function runMonitor(cfg: RunConfig, io: RunIO): Promise<number> {
  const diag = new Diagnostics(io.stderr, chalkAt(colourLevel(cfg.colour, io.env, io.stderr)));
  const report = new MalformedReport(diag);
  const stdoutLevel = cfg.pretty ? colourLevel(cfg.colour, io.env, io.stdout) : 0;
  const formatter = new Formatter({
    verbose: cfg.verbose,
    pretty: cfg.pretty,
    colour: stdoutLevel > 0 ? chalkAt(stdoutLevel) : undefined,
    transform: cfg.transform,
  });

  let reason: StopReason | undefined;
  let failure: LcmonError | undefined;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  const stop = (why: StopReason): void => {
    if (reason !== undefined) return;
    reason = why;
    resolveDone();
  };
  const fail = (err: unknown): void => {
    failure =
      err instanceof LcmonError
        ? err
        : new LcmonError(
            cfg.input === 'stdin' ? 'LC_MONITOR_INPUT_FAILED' : 'LC_BROKER_CONNECTION_LOST',
            `reading input failed: ${String((err as Error)?.message ?? err)}`,
            { cause: err },
          );
    stop('failed');
  };

  // With --stats on a terminal shared by stdout and stderr, output first clears the status line.
  const writer = new OutputWriter(
    io.stdout,
    () => stop('broken'),
    cfg.stats && io.stdout.isTTY === true ? () => diag.clearStatus() : undefined,
  );
  const limit = cfg.count ?? Infinity;
  let outputs = 0;
  let messages = 0;
  let outputClosed = false;
  const emit = (line: string | undefined): void => {
    if (line === undefined || outputClosed) return;
    writer.line(line);
    if (++outputs >= limit) {
      outputClosed = true;
      writer.flush();
      stop('count');
    }
  };

  /** With -q and -c: deliveries acknowledged once their objects are out. */
  let held: HeldObjects | undefined;
  const trace = cfg.trace;
  /** With --trace and -c: the objects one of whose messages belongs to the trace, until given out. */
  const traced = new Set<string>();
  const collator = cfg.collate
    ? new Collator({
        onObject: (o) => {
          // Only what goes out is let go: past -n (an expiry gives out several at once) or a closed
          // stdout, an object's messages stay in the queue.
          const out = !outputClosed && !writer.broken;
          // Left out by --trace: let go as if printed.
          if (trace === undefined || traced.delete(o.id)) emit(formatter.object(o));
          if (out) held?.out(o.id);
        },
        onDrop: (id) => {
          traced.delete(id);
          held?.out(id, true);
        },
        flushIncomplete: cfg.flushIncomplete,
      })
    : undefined;

  const sink: InputSink = {
    message(message, meta, text) {
      messages++;
      if (collator !== undefined) {
        const marks =
          trace !== undefined &&
          message.obj_id !== undefined &&
          !traced.has(message.obj_id) &&
          inTrace(trace, message.obj, meta.headers);
        if (marks) traced.add(message.obj_id!);
        collator.add(message, meta);
        // A late message of an object already out (or dropped) opens nothing: nothing will take
        // its id out of the set again.
        if (marks && !collator.isOpen(message.obj_id!)) traced.delete(message.obj_id!);
        // A note (no obj_id) has no object to wait for: nothing holds its delivery.
        if (message.obj_id !== undefined) held?.added(message.obj_id);
      } else if (trace === undefined || inTrace(trace, message.obj, meta.headers))
        emit(formatter.message(message, meta, text));
    },
    malformed(problem, place) {
      report.add(problem, place);
    },
    get ready() {
      return writer.ready;
    },
    whenReady: () => writer.whenReady(),
    get stopped() {
      return reason !== undefined;
    },
  };

  const stats = cfg.stats
    ? new StatsLine(diag, () => ({
        messages,
        outputs,
        malformed: report.total,
        open: parallelCollator !== undefined ? openShared : collator?.stats().open,
      }))
    : undefined;

  const onAbort = () => stop('signal');
  io.signal.addEventListener('abort', onAbort, { once: true });
  if (io.signal.aborted) stop('signal');
  const readAbort = new AbortController();
  let source: AmqpSource | undefined;
  let expireTimer: NodeJS.Timeout | undefined;

  let parallelCollator: ParallelCollator | undefined;
  let openShared = 0;
  /** Set once input has stopped: what was read still goes out, and the flush, unless output closed. */
  let finishing = false;
  if (reason === undefined) {
    if (cfg.input === 'stdin' && collator !== undefined && cfg.parallel !== undefined) {
      // Objects are independent of each other: shares of the obj_ids are collated on several cores.
      stats?.start();
      const collateSink: CollateSink = {
        output(doc) {
          if (outputClosed) return;
          writer.text(doc);
          if (++outputs >= limit) {
            outputClosed = true;
            writer.flush();
            stop('count');
          }
        },
        malformed: (problem, place) => report.add(problem, place),
        messages: (n) => {
          messages += n;
        },
        open: (n) => {
          openShared = n;
        },
        get ready() {
          return writer.ready;
        },
        whenReady: () => writer.whenReady(),
        get stopped() {
          return finishing ? outputClosed || writer.broken : reason !== undefined;
        },
      };
      parallelCollator = new ParallelCollator(
        {
          ...cfg.parallel,
          verbose: cfg.verbose,
          pretty: cfg.pretty,
          colourLevel: stdoutLevel,
          maxDepth: cfg.amqp.maxDepth,
          flushIncomplete: cfg.flushIncomplete,
        },
        collateSink,
      );
      parallelCollator.read(withLargeReads(io.stdin), readAbort.signal).then(() => stop('end'), fail);
    } else if (cfg.input === 'stdin' && collator === undefined && cfg.parallel !== undefined) {
      // Lines are independent without -c: parse and format them on several cores.
      stats?.start();
      const parallelSink: ParallelSink = {
        output(bytes, count, ends) {
          if (outputClosed) return;
          const room = limit - outputs;
          if (count >= room) {
            writer.bytes(bytes.subarray(0, ends !== undefined ? ends[room - 1] : nthLineEnd(bytes, room)));
            outputs = limit;
            outputClosed = true;
            writer.flush();
            stop('count');
            return;
          }
          writer.bytes(bytes);
          outputs += count;
        },
        malformed: (problem, place) => report.add(problem, place),
        messages: (n) => {
          messages += n;
        },
        get ready() {
          return writer.ready;
        },
        whenReady: () => writer.whenReady(),
        get stopped() {
          return reason !== undefined;
        },
      };
      readLinesParallel(
        withLargeReads(io.stdin),
        {
          ...cfg.parallel,
          verbose: cfg.verbose,
          pretty: cfg.pretty,
          colourLevel: stdoutLevel,
          maxDepth: cfg.amqp.maxDepth,
        },
        parallelSink,
        readAbort.signal,
      ).then(() => stop('end'), fail);
    } else if (cfg.input === 'stdin') {
      stats?.start();
      // The collator only reads the meta of the messages it folds: they may share it.
      readLines(
        withLargeReads(io.stdin),
        sink,
        readAbort.signal,
        collator === undefined,
        collator !== undefined,
        cfg.amqp.maxDepth,
      ).then(() => stop('end'), fail);
    } else {
      const opening = AmqpSource.open(cfg.amqp);
      const opened = await Promise.race([
        opening.then(
          (s) => s,
          (err: unknown) => {
            fail(err);
            return undefined;
          },
        ),
        done.then(() => undefined),
      ]);
      if (opened === undefined) {
        // Ctrl-C while connecting: close whatever the connect gives later.
        opening.then(
          (s) => s.close(),
          () => {},
        );
      } else {
        source = opened;
        if (cfg.amqp.queue !== undefined) {
          diag.warn(`consuming queue "${source.queue}" takes its messages away from every other consumer of it`);
          if (collator !== undefined) {
            const prefetch = source.prefetch;
            held = new HeldObjects(source, collator, () =>
              diag.warn(
                `unfinished objects hold ${prefetch} messages, the prefetch: the oldest are forced out to keep consuming, ${
                  cfg.flushIncomplete ? 'printed as incomplete' : 'dropped unprinted (--flush-incomplete prints them)'
                }, and their messages acknowledged`,
              ),
            );
          }
        }
        try {
          await source.start(sink);
          // The ready line: the queue is bound and the consumer registered; tests wait for it.
          if (cfg.amqp.queue !== undefined) diag.note(`consuming queue "${source.queue}" on ${source.where}`);
          else diag.note(`listening on ${source.where}, ${describeBinding(cfg.amqp)}, queue ${source.queue}`);
          stats?.start();
          if (collator !== undefined) {
            expireTimer = setInterval(() => collator.expire(), EXPIRE_EVERY_MS);
            expireTimer.unref();
          }
          source.finished.then(() => stop('end'), fail);
        } catch (err) {
          fail(err);
        }
      }
    }
  }

  await done;

  if (expireTimer !== undefined) clearInterval(expireTimer);
  readAbort.abort();
  const flushing = reason === 'end' || reason === 'signal' || reason === 'failed';
  if (parallelCollator !== undefined) {
    // Lines handed to the workers count as read: their objects go out, then the flush.
    finishing = true;
    // A worker that failed while ending: said and in the exit status, not a quiet success (a
    // failure read() met is said already).
    const failed = await parallelCollator.finish(flushing, cfg.flushIncomplete);
    if (failed !== undefined && failure === undefined) fail(failed);
  } else if (collator !== undefined && flushing) {
    collator.flush(cfg.flushIncomplete);
  }
  writer.flush();
  await source?.close();
  await writer.end();
  writer.detach();
  io.signal.removeEventListener('abort', onAbort);
  stats?.finish();
  if (held !== undefined && held.forced > 0) {
    diag.warn(
      `forced out ${held.forced} unfinished object${held.forced === 1 ? '' : 's'} to keep consuming (${held.dropped} dropped unprinted)`,
    );
  }
  // A collated object is given out once: a message of one already complete is in no output.
  const late = parallelCollator?.late ?? collator?.stats().late ?? 0;
  if (late > 0)
    diag.warn(
      `${late} message${late === 1 ? '' : 's'} came after ${late === 1 ? 'its' : 'their'} object was complete and ${late === 1 ? 'is' : 'are'} in no output (a late update, or a message delivered again)`,
    );
  const summary = report.summary();
  if (summary !== undefined) diag.note(summary);
  let status: number = EXIT.OK;
  if (failure !== undefined) {
    diag.error(failure.message);
    status = exitStatusFor(failure.code);
  }
  if (reason === 'signal') diag.plain('Bye.');
  return status;
}
