import { AmqpSource } from '../amqp-source.js';
import { LcmonError } from '../errors.js';
import type { InputSink } from '../input-sink.js';
import { readLines } from '../line-source.js';
import type { ResolvedOptions } from '../options.js';
import { HeartbeatWatch } from '../web/heartbeats.js';
import type { ListenAddress } from '@contexture/context/internal';
import { LiveState } from '../web/live-state.js';
import type { LiveStateOptions } from '../web/live-state-options.js';
import { WebServer } from '../web/web-server.js';
import { chalkAt, colourLevel } from './colour.js';
import { Diagnostics } from './diagnostics.js';
import { EXIT, exitStatusFor } from './exit-codes.js';
import { withLargeReads } from './file-input.js';
import { MalformedReport } from './malformed-report.js';
import type { RunIO } from './run.js';

/** What `lcmon --web` needs. */
export interface WebConfig {
  input: 'stdin' | 'amqp';
  amqp: ResolvedOptions;
  listen: ListenAddress;
  state: LiveStateOptions & { fadeMs: number };
  colour: boolean | undefined;
}

function describeSource(o: ResolvedOptions): string {
  if (o.queue !== undefined) return `queue "${o.queue}"`;
  const on =
    o.exchangeType === 'headers'
      ? `arguments ${JSON.stringify(o.bindingArgs ?? {})}`
      : `routing keys ${o.bindingKeys.join(' ')}`;
  return `exchange "${o.exchange}" (${o.exchangeType}), ${on}`;
}

/**
 * `lcmon --web`: reads the stream (broker or stdin) into a {@link LiveState} and serves the page
 * until Ctrl-C. With stdin, the page stays up after the end of input. Resolves with the exit status.
 */
export async function runWeb(cfg: WebConfig, io: RunIO): Promise<number> {
  const diag = new Diagnostics(io.stderr, chalkAt(colourLevel(cfg.colour, io.env, io.stderr)));
  const report = new MalformedReport(diag);
  const state = new LiveState(cfg.state);
  let failure: LcmonError | undefined;
  let stopped = false;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  const stop = () => {
    stopped = true;
    resolveDone();
  };
  const fail = (err: unknown) => {
    failure ??=
      err instanceof LcmonError
        ? err
        : new LcmonError(
            'LC_BROKER_CONNECTION_LOST',
            `reading input failed: ${String((err as Error)?.message ?? err)}`,
            {
              cause: err,
            },
          );
    stop();
  };
  io.signal.addEventListener('abort', stop, { once: true });
  if (io.signal.aborted) stop();

  const sink: InputSink = {
    message: (m, meta) => state.add(m, meta),
    malformed: (problem, place) => {
      state.malformed();
      report.add(problem, place);
    },
    ready: true,
    whenReady: () => Promise.resolve(),
    get stopped() {
      return stopped;
    },
  };

  let source: AmqpSource | undefined;
  let heartbeats: HeartbeatWatch | undefined;
  let server: WebServer | undefined;
  const readAbort = new AbortController();
  try {
    if (!stopped && cfg.input === 'amqp') {
      source = await AmqpSource.open(cfg.amqp);
      heartbeats = await HeartbeatWatch.open(cfg.amqp);
      await source.start(sink);
      source.finished.then(stop, fail);
    }
    if (!stopped) {
      server = new WebServer({
        host: cfg.listen.host,
        port: cfg.listen.port,
        state,
        heartbeats,
        source: cfg.input === 'stdin' ? 'stdin' : `${source!.where}, ${describeSource(cfg.amqp)}`,
        fadeMs: cfg.state.fadeMs,
      });
      let url: string;
      try {
        url = await server.listen();
      } catch (err) {
        throw new LcmonError(
          'LC_MONITOR_INVALID_OPTION',
          `cannot listen on ${cfg.listen.host}:${cfg.listen.port}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
          { cause: err },
        );
      }
      if (cfg.input === 'stdin') {
        readLines(withLargeReads(io.stdin), sink, readAbort.signal, false, false, cfg.amqp.maxDepth).then(
          () => diag.note('end of input; the page stays up until Ctrl-C'),
          fail,
        );
      }
      // The ready line: tests and scripts read the URL from it.
      diag.note(
        `web view on ${url} (${cfg.input === 'stdin' ? 'stdin' : `${source!.where}, ${describeSource(cfg.amqp)}`})`,
      );
    }
    await done;
  } catch (err) {
    fail(err);
  } finally {
    readAbort.abort();
    io.signal.removeEventListener('abort', stop);
    await server?.close();
    await heartbeats?.close().catch(() => {});
    await source?.close();
  }
  const summary = report.summary();
  if (summary !== undefined) diag.note(summary);
  if (failure !== undefined) {
    diag.error(failure.message);
    return exitStatusFor(failure.code);
  }
  diag.plain('Bye.');
  return EXIT.OK;
}
