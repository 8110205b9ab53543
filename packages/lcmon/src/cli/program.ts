import { readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_EXCHANGE } from '@contexture/context/protocol';
import { urlForHost } from '../amqp-url.js';
import { DEFAULTS, DEFAULT_TTL, resolveOptions } from '../options.js';
import { makeTransform } from '../transform.js';
import type { MaybeTty } from './colour.js';
import { EXIT } from './exit-codes.js';
import { LcmonError } from '../errors.js';
import { listHandlers } from './handlers.js';
import { runMonitor, type RunConfig } from './run.js';
import { parseTraceId } from './trace-filter.js';
import { runWeb } from './web.js';
import { type ListenAddress, parseListenAddress } from '@contexture/context/internal';
import { LIVE_STATE_DEFAULTS } from '../web/live-state-options.js';

/** What the program talks to; every field defaults to the process's own. */
export interface ProgramIO {
  stdout?: Writable & MaybeTty;
  stderr?: Writable & MaybeTty;
  stdin?: Readable;
  env?: Record<string, string | undefined>;
  /**
   * Aborting it is Ctrl-C. When not given, the program listens to SIGINT and SIGTERM itself while
   * it runs (a second Ctrl-C exits at once with status 130).
   */
  signal?: AbortSignal;
}

/** The options commander parses. */
interface CliOptions {
  hostname: string;
  url?: string;
  exchange: string;
  exchangeType?: 'topic' | 'headers';
  queue?: string;
  rkey: string[];
  arg?: Array<[string, string | number]>;
  xmatch: 'all' | 'any';
  stdin?: boolean;
  keys?: string[];
  trim?: string[];
  collate?: boolean;
  pretty?: boolean;
  verbose?: boolean;
  z?: boolean;
  count?: number;
  ttl: number;
  maxDepth: number;
  color?: boolean;
  flushIncomplete?: boolean;
  stats?: boolean;
  handlers?: boolean;
  wait?: number;
  trace?: string;
  web?: ListenAddress;
  webFade: number;
  webMaxObjects: number;
  webHistory: number;
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError('expected milliseconds, a non-negative integer');
  return n;
}

function depthArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError('expected a number of levels, a non-negative integer (0: no limit)');
  return n;
}

function traceArg(value: string): string {
  const id = parseTraceId(value);
  if (id === undefined) throw new InvalidArgumentError('expected a trace id, 32 hex digits (not all zero)');
  return id;
}

function listenArg(value: string): ListenAddress {
  const a = parseListenAddress(value);
  if (a === undefined) throw new InvalidArgumentError('expected [HOST:]PORT, such as 8080 or 127.0.0.1:8080');
  return a;
}

/** `k=v`: a header-binding argument; a value of digits becomes an integer, as in the original. */
function bindingArg(
  value: string,
  previous: Array<[string, string | number]> | undefined,
): Array<[string, string | number]> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value, got "${value}"`);
  const k = value.slice(0, eq);
  const v = value.slice(eq + 1);
  return [...(previous ?? []), [k, /^\d+$/.test(v) && Number.isSafeInteger(Number(v)) ? Number(v) : v]];
}

function usageError(program: Command, message: string): never {
  program.error(`error: ${message}`, { exitCode: EXIT.USAGE, code: 'lcmon.usage' });
}

/** Options checked by the library: what it refuses is a usage error (exit 2), not a crash. */
function resolved<T>(program: Command, make: () => T): T {
  try {
    return make();
  } catch (err) {
    if (err instanceof LcmonError && err.code === 'LC_MONITOR_INVALID_OPTION') usageError(program, err.message);
    throw err;
  }
}

/**
 * Runs `run` until it ends, with the caller's `signal`, or else one that SIGINT/SIGTERM abort (a
 * second one exits at once); an exit status other than OK ends the program with it.
 */
async function untilSignal(
  signal: AbortSignal | undefined,
  run: (signal: AbortSignal) => Promise<number>,
): Promise<void> {
  const own = signal === undefined ? processSignal() : undefined;
  let status: number;
  try {
    status = await run(signal ?? own!.signal);
  } finally {
    own?.release();
  }
  if (status !== EXIT.OK) throw new CommanderError(status, 'lcmon.exit', '');
}

/** Listens to SIGINT/SIGTERM while the program runs; returns the signal and a function to stop listening. */
function processSignal(): { signal: AbortSignal; release: () => void } {
  const ac = new AbortController();
  const onSignal = () => {
    if (ac.signal.aborted) process.exit(130);
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: ac.signal,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/**
 * Builds the `lcmon` command. The bin only calls `parseAsync`; tests build their own with other
 * streams and call `exitOverride()` / `configureOutput()`. Errors come out of `parseAsync` as a
 * `CommanderError` whose `exitCode` is the status to exit with (see {@link exitCodeOf}).
 *
 * @example
 * await createProgram({ stdin: fs.createReadStream('saved.jsonl') }).parseAsync(['-sc'], { from: 'user' });
 */
export function createProgram(io: ProgramIO = {}): Command {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const env = io.env ?? process.env;
  const program = new Command('lcmon');
  program
    .description(
      'Watch the contexture message stream: filter, extract keys, collate whole objects. One JSON document per line on stdout.',
    )
    .version(version(), '-V, --version')
    .helpOption('-h, --help', 'show this help')
    .option('-H, --hostname <host>', 'AMQP server hostname (amqp://guest:guest@HOST:5672/%2F)', 'localhost')
    .option('-u, --url <url>', 'full AMQP URL, overrides -H (default: $CONTEXTURE_URL)')
    .option('-e, --exchange <name>', 'exchange to bind to (default: $CONTEXTURE_EXCHANGE, else lc-topic)')
    .addOption(
      new Option(
        '--exchange-type <type>',
        'type the exchange is declared with (default: headers with -a, else $CONTEXTURE_EXCHANGE_TYPE, else topic)',
      ).choices(['topic', 'headers']),
    )
    .option('-q, --queue <name>', 'consume an existing queue instead (takes its messages away from others)')
    .option('-r, --rkey <key...>', 'routing keys to bind (topic patterns)', ['#'])
    .addOption(
      new Option('-a, --arg <key=value...>', 'header-binding arguments; binds to a headers exchange').argParser(
        bindingArg,
      ),
    )
    .addOption(new Option('-x, --xmatch <mode>', 'x-match of the -a arguments').choices(['all', 'any']).default('all'))
    .addOption(
      new Option(
        '-s, --stdin',
        'read saved lines (lcmon -v output or plain bodies) from stdin instead of the broker',
      ).conflicts(['queue', 'url', 'hostname', 'exchange', 'exchangeType', 'rkey', 'arg', 'xmatch', 'ttl']),
    )
    .option('-k, --keys <key...>', 'keys to extract: first match breadth-first, *key for all matches')
    .option('-t, --trim <key...>', 'keys to remove, at any depth')
    .option('-c, --collate', 'collate messages into whole objects')
    .option('-p, --pretty', 'pretty-print (coloured on a terminal)')
    .option(
      '-v, --verbose',
      'messages with rkey and headers; with -c, objects with headers, rkey, start, end, elapsed, id',
    )
    .option('-z', 'drop empty values and objects; print nothing for what ends up empty')
    .option(
      '--trace <id>',
      'only what belongs to this OpenTelemetry trace (trace_id field or traceparent header); with -c, objects any of whose messages does',
      traceArg,
    )
    .option('-n, --count <n>', 'exit after printing N documents', positiveInt)
    .option('--ttl <ms>', 'message TTL of the anonymous queue', nonNegativeInt, DEFAULT_TTL)
    .option(
      '--max-depth <n>',
      'messages nested deeper than this are skipped as malformed (too deep); 0: no limit',
      depthArg,
      DEFAULTS.maxDepth,
    )
    .option('--color', 'colour -p output even when stdout is not a terminal')
    .option('--no-color', 'never colour (NO_COLOR does the same)')
    .option(
      '--flush-incomplete',
      'with -c: at the end (or on Ctrl-C) also print objects that never finished, marked "complete": false',
    )
    .option('--stats', 'a live status line on stderr (on a terminal) and a summary at the end')
    .option('--handlers', 'list the live handlers and collectors from their heartbeats (a table; JSON lines with -v)')
    .option('--wait <ms>', 'with --handlers: how long to listen for heartbeats', nonNegativeInt, 6000)
    .option(
      '--web <[host:]port>',
      'serve a live page of the open objects instead of printing (host default 127.0.0.1; port 0: any free port)',
      listenArg,
    )
    .option(
      '--web-fade <ms>',
      'with --web: how long finished objects stay, fading out',
      nonNegativeInt,
      LIVE_STATE_DEFAULTS.fadeMs,
    )
    .option(
      '--web-max-objects <n>',
      'with --web: the most objects kept; past it the oldest are dropped (counted)',
      positiveInt,
      LIVE_STATE_DEFAULTS.maxObjects,
    )
    .option(
      '--web-history <n>',
      'with --web: the most messages of history kept per object (older ones dropped, counted)',
      positiveInt,
      LIVE_STATE_DEFAULTS.maxHistory,
    )
    .addHelpText(
      'after',
      `
Examples:
  lcmon -r 'web.#' -c                 collated objects of every context named web.*
  lcmon -v > saved.jsonl; lcmon -sc < saved.jsonl
  lcmon -k '*elapsed' -z | jq .
  lcmon --handlers                    who publishes, and how it is doing
  lcmon --web 8080 -r 'web.#'         open http://127.0.0.1:8080/ to watch objects live
  lcmon -c --trace 4bf92f3577b34da6a3ce929d0e0e4736   the objects of one trace
  node service.js | lcmon -sc         a jsonl transport's output, no broker

Exit status: 0 done (end of input, -n reached, Ctrl-C, closed stdout), 2 bad arguments,
66 no such queue, 69 broker unreachable or lost, 70 internal error, 74 reading stdin failed,
77 login refused, 78 exchange type mismatch, 130 a second Ctrl-C.`,
    )
    .showHelpAfterError('(lcmon --help lists the options)')
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => void stdout.write(s),
      writeErr: (s) => void stderr.write(s),
    });

  program.action(async (opts: CliOptions) => {
    const fromCli = (name: string) => program.getOptionValueSource(name) === 'cli';
    /** A `CONTEXTURE_*` variable the collector and the Handler read too; empty is unset, as there. */
    const fromEnv = (name: string) => (env[name] === '' ? undefined : env[name]);
    // Flags win over the environment, which wins over the defaults.
    const url = opts.url ?? (fromCli('hostname') ? undefined : fromEnv('CONTEXTURE_URL')) ?? urlForHost(opts.hostname);
    const exchange = opts.exchange ?? fromEnv('CONTEXTURE_EXCHANGE') ?? DEFAULT_EXCHANGE;
    if (opts.queue !== undefined) {
      for (const [name, flag] of [
        ['rkey', '-r'],
        ['arg', '-a'],
        ['xmatch', '-x'],
        ['ttl', '--ttl'],
        ['exchange', '-e'],
        ['exchangeType', '--exchange-type'],
      ] as const) {
        if (fromCli(name))
          usageError(program, `${flag} does not apply to -q: an existing queue is consumed as it is bound`);
      }
    }
    if (opts.flushIncomplete && !opts.collate) usageError(program, '--flush-incomplete needs -c');
    if (fromCli('wait') && !opts.handlers) usageError(program, '--wait needs --handlers');
    if (opts.handlers) {
      for (const [name, flag] of [
        ['stdin', '-s'],
        ['queue', '-q'],
        ['collate', '-c'],
        ['keys', '-k'],
        ['rkey', '-r'],
        ['arg', '-a'],
        ['exchangeType', '--exchange-type'],
        ['trace', '--trace'],
        ['web', '--web'],
      ] as const) {
        if (opts[name] !== undefined && fromCli(name)) usageError(program, `${flag} does not apply to --handlers`);
      }
      const amqp = resolved(program, () =>
        resolveOptions({ url, exchange, queueArgs: { 'x-message-ttl': opts.ttl }, noAck: true }),
      );
      await untilSignal(io.signal, (signal) =>
        listHandlers({ amqp, wait: opts.wait ?? 6000, verbose: opts.verbose === true }, { stdout, stderr, signal }),
      );
      return;
    }
    for (const [name, flag] of [
      ['webFade', '--web-fade'],
      ['webMaxObjects', '--web-max-objects'],
      ['webHistory', '--web-history'],
    ] as const) {
      if (fromCli(name) && opts.web === undefined) usageError(program, `${flag} needs --web`);
    }
    if (opts.web !== undefined) {
      for (const [name, flag] of [
        ['collate', '-c'],
        ['keys', '-k'],
        ['trim', '-t'],
        ['z', '-z'],
        ['pretty', '-p'],
        ['verbose', '-v'],
        ['count', '-n'],
        ['stats', '--stats'],
        ['flushIncomplete', '--flush-incomplete'],
        ['trace', '--trace'],
      ] as const) {
        if (opts[name] !== undefined) usageError(program, `${flag} does not apply to --web`);
      }
    }
    if (fromCli('xmatch') && opts.arg === undefined) usageError(program, '-x needs -a');
    if (exchange.length === 0) usageError(program, '-e needs an exchange name (the default exchange cannot be bound)');
    let exchangeType = opts.exchangeType;
    if (exchangeType === 'topic' && opts.arg !== undefined)
      usageError(program, '-a binds to a headers exchange: it cannot be used with --exchange-type topic');
    // Read only where an exchange is declared: not for stdin (-s), nor an existing queue (-q).
    if (exchangeType === undefined && opts.arg === undefined && !opts.stdin && opts.queue === undefined) {
      const type = fromEnv('CONTEXTURE_EXCHANGE_TYPE');
      if (type !== undefined && type !== 'topic' && type !== 'headers')
        usageError(program, `CONTEXTURE_EXCHANGE_TYPE must be 'topic' or 'headers', got '${type.slice(0, 60)}'`);
      exchangeType = type;
    }
    if (opts.rkey.length === 0) usageError(program, '-r needs at least one routing key');

    let bindingArgs: Record<string, unknown> | undefined;
    if (opts.arg !== undefined) {
      bindingArgs = { 'x-match': opts.xmatch };
      for (const [k, v] of opts.arg) bindingArgs[k] = v;
    }
    const amqp = resolved(program, () =>
      resolveOptions({
        url,
        exchange,
        exchangeType,
        bindingKeys: opts.rkey,
        bindingArgs,
        queue: opts.queue,
        queueArgs: { 'x-message-ttl': opts.ttl },
        maxDepth: opts.maxDepth,
        // The anonymous queue is lcmon's alone: acks would cost the broker a third of its delivery
        // rate for nothing. A slow stdout still holds messages back: process.stdout blocks on Linux,
        // so the socket is not read and TCP flow control keeps them on the broker (TTL-bounded).
        // An existing queue (-q) is acknowledged as printed, so -n and Ctrl-C leave the rest in it.
        noAck: opts.queue === undefined,
      }),
    );
    const listen = opts.web;
    if (listen !== undefined) {
      await untilSignal(io.signal, (signal) =>
        runWeb(
          {
            input: opts.stdin ? 'stdin' : 'amqp',
            amqp,
            listen,
            state: { fadeMs: opts.webFade, maxObjects: opts.webMaxObjects, maxHistory: opts.webHistory },
            colour: opts.color,
          },
          { stdout, stderr, stdin: io.stdin ?? process.stdin, env, signal },
        ),
      );
      return;
    }
    const cfg: RunConfig = {
      input: opts.stdin ? 'stdin' : 'amqp',
      amqp,
      collate: opts.collate === true,
      verbose: opts.verbose === true,
      pretty: opts.pretty === true,
      transform: makeTransform({ keys: opts.keys, trim: opts.trim, dropEmpty: opts.z === true }),
      // The trace filter runs on the main thread: most of the input is left out, the workers would gain little.
      parallel: opts.trace === undefined ? { keys: opts.keys, trim: opts.trim, dropEmpty: opts.z === true } : undefined,
      trace: opts.trace,
      count: opts.count,
      colour: opts.color,
      flushIncomplete: opts.flushIncomplete === true,
      stats: opts.stats === true,
    };
    await untilSignal(io.signal, (signal) =>
      runMonitor(cfg, { stdout, stderr, stdin: io.stdin ?? process.stdin, env, signal }),
    );
  });
  return program;
}

/**
 * The exit status for what `parseAsync` threw: 0 for --help and --version, the status carried by
 * lcmon's own errors, 2 for every other argument error, 70 (after a report on stderr) for a bug.
 */
export function exitCodeOf(err: unknown, stderr: Writable = process.stderr): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')
      return EXIT.OK;
    if (err.code === 'lcmon.exit' || err.code === 'lcmon.usage') return err.exitCode;
    return EXIT.USAGE;
  }
  stderr.write(`lcmon: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
  return EXIT.SOFTWARE;
}
