import { createRequire } from 'node:module';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { Logger } from '@contexture/context';
import { amqpHostPort, amqpRefusal, errorFields, parseAmqpUrls, redactText } from '@contexture/context/internal';
import { Collector } from './collector.js';
import { CollectorError, type CollectorErrorCode } from '../internal/errors.js';
import { RedisContextStore } from '../store/redis-store.js';
import { Registry } from '../registry/registry.js';
import { LOG_FORMATS, programLogger } from './cli-logger.js';
import { MetricsServer } from './metrics-server.js';
import { addRedisOptions, badUrl, EXIT, nonEmpty, type RedisTarget, redisTarget } from './redis-cli-options.js';

export { EXIT };

/**
 * Where the program writes, and when it stops; tests pass their own. Its options read
 * `process.env` (commander's `.env()`).
 */
export interface ProgramIO {
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Resolves when the program should stop (SIGTERM / SIGINT by default). */
  stopSignal?: Promise<unknown>;
}

/**
 * The exit status and code of a start that failed: the broker refusing the set-up (`code`, from
 * {@link CollectorError}) is a configuration error (78), or a permission one (77) like a refused
 * login or vhost (`refused`); anything else is a broker that cannot be reached (69).
 */
function startFailure(code: CollectorErrorCode | null, refused: boolean): { status: number; code: string } {
  if (code === 'LC_BROKER_EXCHANGE_MISMATCH' || code === 'LC_BROKER_DECLARE_FAILED')
    return { status: EXIT.CONFIG, code };
  if (code === 'LC_BROKER_REFUSED' || refused) return { status: EXIT.NO_PERM, code: 'LC_BROKER_REFUSED' };
  return { status: EXIT.UNAVAILABLE, code: 'LC_BROKER_UNREACHABLE' };
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

/** AMQP's prefetch count is 16 bits. */
function prefetchCount(value: string): number {
  const n = positiveInt(value);
  if (n > 65_535) throw new InvalidArgumentError('must be at most 65535 (AMQP prefetch count)');
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('must be an integer ≥ 0');
  return n;
}

function portNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < 0 || n > 65_535)
    throw new InvalidArgumentError('must be a port number from 0 to 65535 (0: any free port)');
  return n;
}

function positiveSeconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0.1)
    throw new InvalidArgumentError('must be a number of seconds ≥ 0.1');
  return n;
}

/** This package's version (dist/src/daemon → the package's own package.json). */
const VERSION = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;

/**
 * The first SIGTERM / SIGINT stops gracefully; a second one exits at once (status 130, what was not
 * acknowledged stays queued) and says so.
 */
function signals(log: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const first = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', first);
      process.off('SIGINT', first);
      const again = (s: NodeJS.Signals) => {
        log.warn(
          { code: 'LC_DAEMON_EXIT_NOW', signal: s },
          `${s} again: exiting now; messages not acknowledged stay queued`,
        );
        process.exit(130);
      };
      process.once('SIGTERM', again);
      process.once('SIGINT', again);
      resolve(signal);
    };
    process.on('SIGTERM', first);
    process.on('SIGINT', first);
  });
}

/** The flags an environment variable can give: option key, variable. */
const ENV_FLAGS: ReadonlyArray<[key: string, variable: string]> = [
  ['classic', 'CONTEXTURE_COLLECTOR_CLASSIC'],
  ['quorum', 'CONTEXTURE_COLLECTOR_QUORUM'],
  ['autoDelete', 'CONTEXTURE_AUTO_DELETE'],
  ['registry', 'CONTEXTURE_COLLECTOR_NO_REGISTRY'],
];

/**
 * The `contexture-collector` program. Every option also reads an environment variable.
 *
 * @example
 * await createProgram().parseAsync(process.argv);
 */
export function createProgram(io: ProgramIO = {}): Command {
  const stderr = io.stderr ?? process.stderr;
  const say = (line: string) => void stderr.write(`${line}\n`);
  const program = new Command('contexture-collector')
    .description('Consume context messages from RabbitMQ and keep them in Redis as versioned state with deltas.')
    .configureOutput({
      writeOut: (s) => void (io.stdout ?? process.stdout).write(s),
      writeErr: (s) => void stderr.write(s),
    })
    .addOption(
      new Option('-u, --url <url>', 'AMQP URL; for a RabbitMQ cluster, its nodes comma-separated (tried in turn)')
        .env('CONTEXTURE_URL')
        .default('amqp://guest:guest@127.0.0.1:5672/%2F', 'amqp://guest:***@127.0.0.1:5672/%2F'),
    );
  addRedisOptions(program)
    .addOption(
      new Option('-e, --exchange <name>', 'exchange to bind to')
        .argParser(nonEmpty)
        .env('CONTEXTURE_EXCHANGE')
        .default('lc-topic'),
    )
    .addOption(
      new Option('--exchange-type <type>', 'exchange type')
        .choices(['topic', 'headers'])
        .env('CONTEXTURE_EXCHANGE_TYPE')
        .default('topic'),
    )
    .addOption(
      new Option('-q, --queue <name>', 'durable queue to consume (shared by all collectors)')
        .argParser(nonEmpty)
        .env('CONTEXTURE_COLLECTOR_QUEUE')
        .default('contexture.collector'),
    )
    .addOption(
      new Option('--classic', 'declare classic queues instead of quorum queues (the default)').env(
        'CONTEXTURE_COLLECTOR_CLASSIC',
      ),
    )
    .addOption(
      new Option('--quorum', 'quorum queues (the default; kept for compatibility)').env('CONTEXTURE_COLLECTOR_QUORUM'),
    )
    .addOption(
      new Option('--delivery-limit <n>', 'deliveries of a message before a quorum queue dead-letters it (0: no limit)')
        .argParser(nonNegativeInt)
        .env('CONTEXTURE_COLLECTOR_DELIVERY_LIMIT')
        .default(20),
    )
    .addOption(
      new Option('-r, --rkey <key...>', 'routing keys to bind the queue with')
        .env('CONTEXTURE_COLLECTOR_RKEYS')
        .default(['#']),
    )
    .addOption(
      new Option('--dead-letter-queue <name>', 'queue for malformed messages (default: <queue>.dead)')
        .argParser(nonEmpty)
        .env('CONTEXTURE_COLLECTOR_DLQ'),
    )
    .addOption(
      new Option('--prefetch <n>', 'messages applied concurrently')
        .argParser(prefetchCount)
        .env('CONTEXTURE_COLLECTOR_PREFETCH')
        .default(1000),
    )
    .addOption(
      new Option('--batch-size <n>', 'deliveries applied (one store call) and acknowledged together at most')
        .argParser(positiveInt)
        .env('CONTEXTURE_COLLECTOR_BATCH_SIZE')
        .default(500),
    )
    .addOption(
      new Option('--max-bytes <n>', 'message bodies larger than this are dead-lettered as malformed (too large)')
        .argParser(positiveInt)
        .env('CONTEXTURE_COLLECTOR_MAX_BYTES')
        .default(1024 * 1024),
    )
    .addOption(
      new Option('--max-depth <n>', 'messages nested deeper than this are dead-lettered as malformed (too deep)')
        .argParser(positiveInt)
        .env('CONTEXTURE_COLLECTOR_MAX_DEPTH')
        .default(64),
    )
    .addOption(
      new Option('--delta-threshold <n>', 'deltas kept per context (0: none)')
        .argParser(nonNegativeInt)
        .env('CONTEXTURE_DELTA_THRESHOLD'),
    )
    .addOption(
      new Option('--delta-ttl <ms>', 'how long a delta is kept').argParser(nonNegativeInt).env('CONTEXTURE_DELTA_TTL'),
    )
    .addOption(
      new Option('--auto-delete', 'delete contexts idle longer than --context-ttl').env('CONTEXTURE_AUTO_DELETE'),
    )
    .addOption(
      new Option('--context-ttl <ms>', 'idle time before a context is deleted (with --auto-delete)')
        .argParser(nonNegativeInt)
        .env('CONTEXTURE_CONTEXT_TTL'),
    )
    .addOption(
      new Option('--finished-ttl <ms>', 'how long a finished context is kept')
        .argParser(nonNegativeInt)
        .env('CONTEXTURE_FINISHED_TTL'),
    )
    .addOption(
      new Option('--cleanup-interval <ms>', 'period of the cleaner (0: off)')
        .argParser(nonNegativeInt)
        .env('CONTEXTURE_CLEANUP_INTERVAL'),
    )
    .addOption(
      new Option(
        '--no-registry',
        'do not keep the registry of live handlers and collectors (from heartbeats) in Redis',
      ).env('CONTEXTURE_COLLECTOR_NO_REGISTRY'),
    )
    .addOption(
      new Option('--heartbeat-interval <ms>', "ms between the collector's own heartbeats (0: none)")
        .argParser(nonNegativeInt)
        .env('CONTEXTURE_HEARTBEAT_INTERVAL')
        .default(5000),
    )
    .addOption(
      new Option(
        '--handler-timeout <ms>',
        'a handler or collector not heard from for this long is unhealthy in the registry',
      )
        .argParser(positiveInt)
        .env('CONTEXTURE_REGISTRY_TIMEOUT')
        .default(15000),
    )
    .addOption(
      new Option('--shutdown-timeout <ms>', 'on SIGTERM, how long messages in flight may take to finish')
        .argParser(nonNegativeInt)
        .env('CONTEXTURE_COLLECTOR_SHUTDOWN_TIMEOUT')
        .default(10_000),
    )
    .addOption(
      new Option('--stats [seconds]', 'print a stats line on stderr every N seconds (default 5)')
        .argParser(positiveSeconds)
        .env('CONTEXTURE_COLLECTOR_STATS'),
    )
    .addOption(
      new Option('--log-format <format>', "the program's own lines on stderr: plain text, or one JSON object per line")
        .choices(LOG_FORMATS)
        .env('CONTEXTURE_COLLECTOR_LOG_FORMAT')
        .default('text'),
    )
    .addOption(
      new Option('--metrics-port <port>', 'serve /metrics (Prometheus) and /healthz over HTTP on this port (0: any)')
        .argParser(portNumber)
        .env('CONTEXTURE_COLLECTOR_METRICS_PORT'),
    )
    .addOption(
      new Option('--metrics-host <host>', 'address the metrics server listens on')
        .argParser(nonEmpty)
        .env('CONTEXTURE_COLLECTOR_METRICS_HOST')
        .default('127.0.0.1'),
    )
    .version(VERSION, '-V, --version')
    .addHelpText(
      'after',
      `
Exit status: 0 stopped by SIGTERM / SIGINT, 2 bad arguments, 69 broker unreachable (or the metrics
port cannot be listened on), 70 internal error, 77 access refused, 78 set-up refused (exchange
type, reserved name), 130 a second signal.`,
    )
    .showHelpAfterError('(contexture-collector --help lists the options)')
    .exitOverride()
    .action(async (opts) => {
      const log = programLogger(opts.logFormat, stderr);
      // A list (the nodes of a cluster) is checked entry by entry, naming the one refused.
      const list = opts.url.includes(',') ? parseAmqpUrls(opts.url) : null;
      const urlWhy = list === null ? badUrl(opts.url, ['amqp:', 'amqps:']) : list.ok ? undefined : list.why;
      const target: RedisTarget =
        urlWhy === undefined
          ? redisTarget(program, opts)
          : {
              ok: false,
              option: '--url',
              ...(program.getOptionValueSource('url') === 'env' ? { env: 'CONTEXTURE_URL' } : {}),
              why: urlWhy,
            };
      if (!target.ok) {
        const from = target.env === undefined ? '' : ` (from ${target.env})`;
        log.error(
          { code: 'LC_DAEMON_INVALID_OPTION', option: target.option, ...(target.env ? { env: target.env } : {}) },
          `${target.option} ${target.why}${from}`,
        );
        throw new CommanderError(EXIT.USAGE, 'LC_DAEMON_INVALID_OPTION', `${target.option} ${target.why}`);
      }
      const { redis, at: redisAt } = target;
      const refuse = (fields: Record<string, unknown>, why: string): never => {
        log.error({ code: 'LC_DAEMON_INVALID_OPTION', ...fields }, why);
        throw new CommanderError(EXIT.USAGE, 'LC_DAEMON_INVALID_OPTION', why);
      };
      // A flag given by its variable takes the variable's value (commander sets it whatever that
      // is): 1, true, yes or on set it; 0, false, no, off or empty leave it off.
      for (const [key, variable] of ENV_FLAGS) {
        if (program.getOptionValueSource(key) !== 'env') continue;
        const raw = (process.env[variable] ?? '').trim();
        const on = /^(1|true|yes|on)$/i.test(raw);
        if (!on && !/^(0|false|no|off|)$/i.test(raw))
          refuse(
            { option: key, env: variable },
            `${variable} must be 1, true, yes, on, 0, false, no or off, got ${JSON.stringify(raw.slice(0, 40))}`,
          );
        // (--no-registry is the option `registry`, false when the flag is on.)
        opts[key] = key === 'registry' ? !on : on;
      }
      if (opts.classic === true && opts.quorum === true)
        refuse({ option: '--classic' }, 'option --classic cannot be used with option --quorum');
      // Routing keys from the variable: comma- or space-separated.
      if (program.getOptionValueSource('rkey') === 'env')
        opts.rkey = (process.env.CONTEXTURE_COLLECTOR_RKEYS ?? '').split(/[\s,]+/).filter(Boolean);
      const retention: Record<string, unknown> = {};
      if (opts.deltaThreshold !== undefined) retention.deltaThreshold = opts.deltaThreshold;
      if (opts.deltaTtl !== undefined) retention.deltaTtl = opts.deltaTtl;
      if (opts.autoDelete !== undefined) retention.autoDelete = opts.autoDelete === true;
      if (opts.contextTtl !== undefined) retention.contextTtl = opts.contextTtl;
      if (opts.finishedTtl !== undefined) retention.finishedTtl = opts.finishedTtl;
      if (opts.cleanupInterval !== undefined && opts.cleanupInterval > 0)
        retention.cleanupInterval = opts.cleanupInterval;
      // What the options make: one they refuse (a value out of range, a URL ioredis cannot read) is a
      // usage error, said in one line, with whatever was made already closed.
      let store: RedisContextStore | null = null;
      let registry: Registry | null = null;
      let collector: Collector;
      try {
        store = new RedisContextStore({ redis, prefix: opts.prefix, ...retention });
        registry =
          opts.registry === false
            ? null
            : new Registry({
                redis: store.redis,
                prefix: opts.prefix,
                namespace: 'handlers',
                heartbeatTimeout: opts.handlerTimeout,
                expireAfter: 4 * opts.handlerTimeout,
              });
        collector = new Collector({
          registry,
          heartbeatInterval: opts.heartbeatInterval,
          store,
          url: opts.url,
          exchange: opts.exchange,
          exchangeType: opts.exchangeType,
          queue: opts.queue,
          queueType: opts.classic ? 'classic' : 'quorum',
          deliveryLimit: opts.deliveryLimit,
          bindings: opts.rkey,
          deadLetterQueue: opts.deadLetterQueue,
          prefetch: opts.prefetch,
          batchSize: opts.batchSize,
          maxBytes: opts.maxBytes,
          maxDepth: opts.maxDepth,
          shutdownTimeout: opts.shutdownTimeout,
          logger: log,
        });
      } catch (err) {
        await registry?.close();
        await store?.close();
        const why = redactText(String((err as Error)?.message ?? err));
        log.error(
          { code: 'LC_DAEMON_INVALID_OPTION', err: errorFields(err) },
          `${why} (contexture-collector --help lists the options)`,
        );
        throw new CommanderError(EXIT.USAGE, 'LC_DAEMON_INVALID_OPTION', why);
      }
      // Connection trouble with Redis, said once per outage (the store retries on its own).
      let redisDown = false;
      store.redis.on('error', (err: Error) => {
        if (redisDown) return;
        redisDown = true;
        log.warn(
          { code: 'LC_REDIS_UNREACHABLE', redis: redisAt, err: errorFields(err) },
          `Redis at ${redisAt} is unreachable (${redactText(err.message)}); messages stay queued until it answers`,
        );
      });
      store.redis.on('ready', () => {
        if (!redisDown) return;
        redisDown = false;
        log.info({ code: 'LC_REDIS_RECOVERED', redis: redisAt }, `Redis at ${redisAt} answers again`);
      });
      // Listening before connecting: a port in use ends the program at once, and /healthz says 503 until consuming.
      let metrics: MetricsServer | null = null;
      if (opts.metricsPort !== undefined) {
        try {
          metrics = await MetricsServer.listen({
            collector,
            redis: store.redis,
            redisAt,
            entries: registry,
            port: opts.metricsPort,
            host: opts.metricsHost,
          });
        } catch (err) {
          const why = redactText((err as Error)?.message ?? String(err));
          log.error({ code: 'LC_METRICS_LISTEN_FAILED', host: opts.metricsHost, port: opts.metricsPort }, why);
          await registry?.close();
          await store.close();
          const denied = ((err as Error).cause as { code?: unknown } | undefined)?.code === 'EACCES';
          throw new CommanderError(denied ? EXIT.NO_PERM : EXIT.UNAVAILABLE, 'LC_METRICS_LISTEN_FAILED', why);
        }
        log.info({ code: 'LC_METRICS_SERVING', url: metrics.url }, `serving ${metrics.url}/metrics and /healthz`);
      }
      const stop = io.stopSignal ?? signals(log);
      const brokerAt = (opts.url as string)
        .split(',')
        .map((u) => amqpHostPort(u.trim()))
        .join(', ');
      // A stop signal while still connecting (a broker that takes the connection and does not
      // answer) stops at once, as one during consuming does, rather than waiting out the handshake.
      const first = await Promise.race([
        collector.start().then(
          () => ({ started: true as const }),
          (err: unknown) => ({ started: false as const, err }),
        ),
        stop.then((signal) => ({ signal })),
      ]);
      if ('signal' in first) {
        log.info(
          { code: 'LC_DAEMON_STOPPING', signal: String(first.signal), url: brokerAt },
          `${String(first.signal)}: stopping; the broker at ${brokerAt} has not answered yet, nothing consumed`,
        );
        await collector.close();
        await metrics?.close();
        await registry?.close();
        await store.close();
        log.info(
          { code: 'LC_DAEMON_STOPPED', applied: 0, deadLettered: 0 },
          'stopped after applying 0 messages (0 dead-lettered)',
        );
        return;
      }
      if (!first.started) {
        const err = first.err;
        const reason = redactText((err as Error)?.message ?? String(err));
        const code = err instanceof CollectorError ? err.code : null;
        const exit = startFailure(code, amqpRefusal(reason) !== null);
        // A refused login or vhost is not an unreachable broker, nor is a set-up the broker refuses
        // (an exchange of another type, a reserved name, missing permissions): each is said in one
        // line, with its own status (as lcmon does).
        log.error(
          { code: exit.code, exitStatus: exit.status, url: brokerAt, err: errorFields(err) },
          code !== null
            ? reason
            : `${exit.code === 'LC_BROKER_REFUSED' ? 'the broker refused the login or the vhost' : 'cannot reach the broker'} at ${brokerAt}: ${reason}`,
        );
        await metrics?.close();
        await registry?.close();
        await store.close();
        throw new CommanderError(exit.status, exit.code, reason);
      }
      log.info(
        {
          code: 'LC_DAEMON_CONSUMING',
          queue: opts.queue,
          queueType: collector.queueType,
          url: collector.where,
          redis: redisAt,
          prefix: opts.prefix,
        },
        `consuming ${opts.queue} (${collector.queueType} queue) from ${collector.where} into ${redisAt} (prefix ${opts.prefix})`,
      );
      if (opts.stats !== undefined)
        collector.startStats(
          opts.stats === true ? 5 : opts.stats,
          opts.logFormat === 'json' ? (text, stats) => log.info({ code: 'LC_DAEMON_STATS', ...stats }, text) : say,
        );
      const why = await stop;
      log.info(
        { code: 'LC_DAEMON_STOPPING', signal: String(why), shutdownTimeout: opts.shutdownTimeout },
        `${String(why)}: stopping; finishing messages in flight (up to ${opts.shutdownTimeout} ms)`,
      );
      await collector.close();
      await metrics?.close();
      await registry?.close();
      await store.close();
      const s = collector.stats();
      log.info(
        { code: 'LC_DAEMON_STOPPED', applied: s.applied, deadLettered: s.deadLettered },
        `stopped after applying ${s.applied} messages (${s.deadLettered} dead-lettered)`,
      );
    });
  return program;
}
