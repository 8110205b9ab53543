import { redactUrl, strayAt } from './redact.js';
import { parseAmqpUrls } from './amqp-nodes.js';
import { ContextError } from './errors.js';
import type { OverflowPolicy } from './bounded-buffer.js';
import { isLoggerOption, textLogger, type LoggerOption } from './logger.js';

/** Reconnection backoff: capped exponential with jitter. */
export interface ReconnectOptions {
  /** @default 100 */
  initialDelay?: number;
  /** @default 5000 */
  maxDelay?: number;
  /** @default 2 */
  factor?: number;
  /** Fraction (0–1) of the delay drawn at random either way. @default 0.2 */
  jitter?: number;
}

/** Options of {@link Handler} and of `configure()`. */
export interface HandlerOptions {
  /**
   * Where messages go: `amqp://…`, `amqps://…` (TLS), `jsonl:-` (standard output) or
   * `jsonl:/path` (append to a file). The nodes of a RabbitMQ cluster as a comma-separated list of
   * AMQP URLs or an array of them: every (re)connect goes to the next node in turn, and what was
   * not confirmed by a lost node is sent again to the next one. A comma inside a user or password
   * must be written `%2C`.
   * @default 'amqp://guest:guest@127.0.0.1:5672/%2F'
   * @example
   * new Handler({ url: ['amqp://app:secret@rabbit1', 'amqp://app:secret@rabbit2', 'amqp://app:secret@rabbit3'] });
   */
  url?: string | readonly string[];
  /** @default 'lc-topic' */
  exchange?: string;
  /** Type of the (durable) exchange. @default 'topic' */
  exchangeType?: 'topic' | 'headers';
  /** Headers sent with every message, besides `hostname`. @default {} */
  headers?: Record<string, unknown>;
  /** Messages the buffer holds before the overflow policy applies. @default 5000 */
  bufferSize?: number;
  /** What a full buffer does: drop the oldest message, drop the newest, or `block` (see `Handler.ready()`). @default 'drop-oldest' */
  overflow?: OverflowPolicy;
  /** Longest delay (ms) from a change to its publication when the broker keeps up. @default 10 */
  flushInterval?: number;
  /** Pack consecutive messages with one routing key and headers into one AMQP message (ndjson). @default false */
  batch?: boolean;
  /** Publish persistent messages (delivery mode 2): they survive a broker restart in durable queues. @default false */
  persistent?: boolean;
  /** Most messages in one batch message. @default 100 */
  batchSize?: number;
  /** Do not let the process exit before the buffer is drained (up to `waitTimeout`). @default false */
  wait?: boolean;
  /** Longest wait (ms) for the drain at exit. @default 5000 */
  waitTimeout?: number;
  /** Longest wait (ms) for the drain in `close()`; what is left is counted as dropped. @default 5000 */
  closeTimeout?: number;
  /** Messages sent and not yet confirmed, at most. @default 10000 */
  maxInFlight?: number;
  /** Socket connect timeout (ms). @default 5000 */
  connectTimeout?: number;
  /**
   * Every this many ms, while connected to a broker, the handler publishes a heartbeat (its stats,
   * host and pid) on the reserved routing key `contexture.heartbeat`; 0 for none. JSON-lines
   * transports never carry heartbeats.
   * @default 5000
   */
  heartbeatInterval?: number;
  /** Reconnection backoff. */
  reconnect?: ReconnectOptions;
  /**
   * Where the handler's warnings go (outages and recoveries, drops, exit with undelivered
   * messages): a pino-style logger, called `warn({ code, … }, message)`, or an object with a
   * `warn(message)` method only, which gets the line `contexture: <message>`; null for none.
   * @default a logger writing `contexture: <message>` lines on stderr
   * @example
   * new Handler({ logger: pino().child({ lib: 'contexture' }) });
   */
  logger?: LoggerOption | null;
}

export type ResolvedHandlerOptions = Required<Omit<HandlerOptions, 'url' | 'reconnect' | 'logger'>> & {
  /** The URL, or the nodes' URLs comma-separated (a Handler's `options` shows them with their passwords masked). */
  url: string;
  reconnect: Required<ReconnectOptions>;
  logger: LoggerOption | null;
};

const stderrLogger = textLogger(() => 'contexture: ');

/** Built-in defaults, the weakest source of configuration. */
export const HANDLER_DEFAULTS: Readonly<ResolvedHandlerOptions> = Object.freeze({
  url: 'amqp://guest:guest@127.0.0.1:5672/%2F',
  exchange: 'lc-topic',
  exchangeType: 'topic',
  headers: {},
  bufferSize: 5000,
  overflow: 'drop-oldest',
  flushInterval: 10,
  batch: false,
  persistent: false,
  batchSize: 100,
  wait: false,
  waitTimeout: 5000,
  closeTimeout: 5000,
  maxInFlight: 10_000,
  connectTimeout: 5000,
  heartbeatInterval: 5000,
  reconnect: Object.freeze({ initialDelay: 100, maxDelay: 5000, factor: 2, jitter: 0.2 }),
  logger: stderrLogger,
} as ResolvedHandlerOptions);

const KEYS: ReadonlySet<string> = new Set(Object.keys(HANDLER_DEFAULTS));

function bad(source: string, key: string, want: string, got: unknown): never {
  const shown = typeof got === 'string' ? `'${got.length > 60 ? `${got.slice(0, 60)}…` : got}'` : String(got);
  throw new ContextError('LC_CONFIG_INVALID', `${source}: ${key} must be ${want}, got ${shown}`);
}

function positiveInt(source: string, key: string, v: unknown): number {
  if (!Number.isSafeInteger(v) || (v as number) < 1) bad(source, key, 'a positive integer', v);
  return v as number;
}

function nonNegative(source: string, key: string, v: unknown): number {
  if (typeof v !== 'number' || !(v >= 0) || Number.isNaN(v)) bad(source, key, 'a number ≥ 0', v);
  return v as number;
}

/** The longest delay a Node timer takes (2^31 - 1 ms, about 24.8 days): a longer one fires at once. */
const MAX_DELAY = 2_147_483_647;

/** A time in ms that a timer waits: a number from `min` to 2^31 - 1. */
function delay(source: string, key: string, v: unknown, min = 0): number {
  if (typeof v !== 'number' || !(v >= min) || !(v <= MAX_DELAY))
    bad(source, key, `a number of ms from ${min} to ${MAX_DELAY} (Node's longest timer)`, v);
  return v as number;
}

function heartbeat(source: string, v: unknown): number {
  if (v !== 0 && (!Number.isSafeInteger(v) || (v as number) < 100 || (v as number) > MAX_DELAY))
    bad(source, 'heartbeatInterval', `an integer from 100 to ${MAX_DELAY} (ms), or 0 for no heartbeats`, v);
  return v as number;
}

/** Checks a merged set of options; throws a `ContextError` (`LC_CONFIG_INVALID`) naming the source and the key. */
export function validateHandlerOptions(
  o: HandlerOptions & Record<string, unknown>,
  source: string,
): ResolvedHandlerOptions {
  for (const k of Object.keys(o))
    if (!KEYS.has(k)) throw new ContextError('LC_CONFIG_INVALID', `${source}: unknown option '${k}'`);
  // Schemes are case-insensitive: AMQP://… is amqp://….
  const lower = (u: unknown) => (typeof u === 'string' ? u.replace(/^\s*[a-z]+:/i, (m) => m.toLowerCase()) : u);
  let url = lower(o.url);
  let listed = false;
  if (Array.isArray(url) || (typeof url === 'string' && url.includes(',') && !url.startsWith('jsonl:'))) {
    // The nodes of a cluster: every entry an AMQP URL, named by its position when one is not.
    const list = parseAmqpUrls(Array.isArray(url) ? url.map(lower) : url);
    if (!list.ok) throw new ContextError('LC_CONFIG_INVALID', `${source}: url ${list.why}`);
    url = list.urls.map(lower).join(',');
    listed = true;
  }
  if (typeof url === 'string' && url.startsWith('jsonl:') && /,\s*(jsonl:|amqps?:\/\/)/i.test(url))
    bad(source, 'url', 'one jsonl: destination (a list is of AMQP URLs only)', url);
  if (typeof url !== 'string' || !/^(amqps?:\/\/|jsonl:)/.test(url))
    bad(source, 'url', 'an amqp://, amqps:// or jsonl: URL', typeof url === 'string' ? redactUrl(url) : url);
  if (url.startsWith('amqp') && !listed) {
    let host = '';
    try {
      const u = new URL(url);
      host = u.hostname;
      if (u.port === '0') bad(source, 'url', 'a URL whose port is not 0', redactUrl(url));
    } catch (err) {
      if (err instanceof ContextError) throw err;
    }
    // An '@' past the host is a password that was not percent-encoded (`u:12/pw@host`): the parser
    // would take `u` for the host and 12 for the port.
    if (host === '' || strayAt(url))
      bad(
        source,
        'url',
        'a URL that parses (characters such as / : @ ? # in a user or password must be percent-encoded)',
        redactUrl(url),
      );
  }
  if (typeof o.exchange !== 'string') bad(source, 'exchange', 'a string', o.exchange);
  if (o.exchangeType !== 'topic' && o.exchangeType !== 'headers')
    bad(source, 'exchangeType', "'topic' or 'headers'", o.exchangeType);
  if (typeof o.headers !== 'object' || o.headers === null || Array.isArray(o.headers))
    bad(source, 'headers', 'an object', o.headers);
  if (o.overflow !== 'drop-oldest' && o.overflow !== 'drop-newest' && o.overflow !== 'block')
    bad(source, 'overflow', "'drop-oldest', 'drop-newest' or 'block'", o.overflow);
  if (typeof o.batch !== 'boolean') bad(source, 'batch', 'true or false', o.batch);
  if (typeof o.wait !== 'boolean') bad(source, 'wait', 'true or false', o.wait);
  if (typeof o.persistent !== 'boolean') bad(source, 'persistent', 'true or false', o.persistent);
  const given = o.reconnect ?? {};
  if (typeof given !== 'object' || given === null || Array.isArray(given))
    bad(source, 'reconnect', 'an object (initialDelay, maxDelay, factor, jitter)', JSON.stringify(given));
  for (const k of Object.keys(given))
    if (!(k in HANDLER_DEFAULTS.reconnect))
      throw new ContextError('LC_CONFIG_INVALID', `${source}: unknown option 'reconnect.${k}'`);
  const r = { ...HANDLER_DEFAULTS.reconnect, ...given };
  if (typeof r.factor !== 'number' || !(r.factor >= 1) || !Number.isFinite(r.factor))
    bad(source, 'reconnect.factor', 'a number ≥ 1', r.factor);
  const logger = o.logger === undefined ? HANDLER_DEFAULTS.logger : o.logger;
  if (logger !== null && !isLoggerOption(logger))
    bad(
      source,
      'logger',
      'a pino-style logger (info, warn, error), an object with a warn(message) method, or null',
      logger,
    );
  return {
    url,
    exchange: o.exchange,
    exchangeType: o.exchangeType,
    headers: { ...o.headers },
    bufferSize: positiveInt(source, 'bufferSize', o.bufferSize),
    overflow: o.overflow,
    flushInterval: delay(source, 'flushInterval', o.flushInterval),
    batch: o.batch,
    persistent: o.persistent,
    batchSize: positiveInt(source, 'batchSize', o.batchSize),
    wait: o.wait,
    waitTimeout: delay(source, 'waitTimeout', o.waitTimeout),
    closeTimeout: delay(source, 'closeTimeout', o.closeTimeout),
    maxInFlight: positiveInt(source, 'maxInFlight', o.maxInFlight),
    connectTimeout: delay(source, 'connectTimeout', positiveInt(source, 'connectTimeout', o.connectTimeout), 1),
    heartbeatInterval: heartbeat(source, o.heartbeatInterval),
    reconnect: {
      // A delay of 0 would make a reconnect loop with no pause.
      initialDelay: delay(source, 'reconnect.initialDelay', r.initialDelay, 1),
      maxDelay: delay(source, 'reconnect.maxDelay', r.maxDelay, 1),
      factor: r.factor,
      jitter: Math.min(1, nonNegative(source, 'reconnect.jitter', r.jitter)),
    },
    logger,
  };
}
