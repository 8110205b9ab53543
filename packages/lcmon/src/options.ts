import type { Readable } from 'node:stream';
import type { Malformed } from '@contexture/context/protocol';
import { DEFAULT_EXCHANGE } from '@contexture/context/protocol';
import { AmqpNodes, parseAmqpUrls } from '@contexture/context/internal';
import { LcmonError } from './errors.js';

/** Where a malformed input was met: a line of the input stream, or a message off the broker. */
export interface InputPlace {
  /** 1-based line number, when reading a stream. */
  line?: number;
  /** Routing key of the AMQP message, when consuming. */
  rkey?: string;
}

/** Options of {@link messages} (and, through {@link ObjectsOptions}, of {@link objects}). */
export interface MessagesOptions {
  /**
   * AMQP URL of the broker; for a RabbitMQ cluster, its nodes' URLs as a comma-separated list or an
   * array: opening tries them in turn and consumes from the first that answers. A comma inside a
   * user or password must be written `%2C`.
   * @default 'amqp://guest:guest@localhost:5672/%2F'
   * @example
   * messages({ url: ['amqp://watcher:pw@rabbit1', 'amqp://watcher:pw@rabbit2'] });
   */
  url?: string | readonly string[];
  /**
   * Routing keys (topic patterns) the anonymous queue is bound with.
   * @default ['#']
   */
  bindingKeys?: readonly string[];
  /**
   * Header-binding arguments (with `x-match`). When given, the exchange is declared as a
   * `headers` exchange unless `exchangeType` says otherwise.
   * @default undefined
   */
  bindingArgs?: Record<string, unknown>;
  /**
   * Exchange to bind to. It is declared durable, as every publisher declares it.
   * @default 'lc-topic'
   */
  exchange?: string;
  /**
   * Type the exchange is declared with.
   * @default 'headers' when `bindingArgs` is given, else 'topic'
   */
  exchangeType?: 'topic' | 'headers';
  /**
   * Consume this existing queue (checked with a passive declare, never created or bound) instead of
   * an anonymous one. Consuming removes the messages from it.
   * @default undefined
   */
  queue?: string;
  /**
   * Arguments of the anonymous queue's declaration.
   * @default { 'x-message-ttl': 600000 }
   */
  queueArgs?: Record<string, unknown>;
  /**
   * Read lines (saved `lcmon -v` lines or plain message bodies) from this stream instead of the broker.
   * @default undefined
   */
  stdin?: Readable;
  /**
   * Unacknowledged messages the broker may push ahead; messages are acknowledged in batches, only
   * once they have been handed on, so a slow reader slows the queue, not its own memory.
   * @default 1000
   */
  prefetch?: number;
  /**
   * Consume without acknowledgements (the broker forgets a message once it has sent it). Faster,
   * but then nothing holds messages back on the broker while the reader is slow: they wait in this
   * process's socket buffers instead. `lcmon` uses it for its anonymous queue, whose messages
   * exist for it alone and whose stdout blocks the process when it backs up; never with `queue`.
   * @default false
   */
  noAck?: boolean;
  /**
   * Messages (a body, or a saved line's body and headers) nested deeper than this many levels are
   * malformed (`too deep`): counted, reported, skipped and, from a queue, acknowledged. 0 turns the
   * check off. The same limit as the collector's.
   * @default 64
   */
  maxDepth?: number;
  /**
   * Milliseconds to wait for the broker's TCP connection.
   * @default 10000
   */
  connectTimeout?: number;
  /**
   * Called for each malformed line or message, which is otherwise only counted.
   * @default undefined
   */
  onMalformed?: (problem: Malformed, place: InputPlace) => void;
}

/** Options of {@link objects}. */
export interface ObjectsOptions extends MessagesOptions {
  /**
   * Yield `{object, headers, rkey, start, end, elapsed, id}` instead of the bare object.
   * @default false
   */
  verbose?: boolean;
  /**
   * Keep the messages folded into each object on it (`messages`, with `verbose`).
   * @default false
   */
  captureMessages?: boolean;
  /**
   * At the end of the input (or on close) also give out objects that never finished, marked
   * `complete: false`.
   * @default false
   */
  flushIncomplete?: boolean;
  /**
   * How long (ms) a finished object waits for its missing messages before it is given out with
   * `complete: false`.
   * @default 5000
   */
  gapTimeout?: number;
}

export const DEFAULT_URL = 'amqp://guest:guest@localhost:5672/%2F';
export const DEFAULT_TTL = 600_000;

/** The defaults of {@link MessagesOptions} and {@link ObjectsOptions}. */
export const DEFAULTS = Object.freeze({
  url: DEFAULT_URL,
  bindingKeys: Object.freeze(['#']) as readonly string[],
  exchange: DEFAULT_EXCHANGE,
  queueArgs: Object.freeze({ 'x-message-ttl': DEFAULT_TTL }) as Readonly<Record<string, unknown>>,
  prefetch: 1000,
  noAck: false,
  connectTimeout: 10_000,
  maxDepth: 64,
  verbose: false,
  captureMessages: false,
  flushIncomplete: false,
  gapTimeout: 5000,
});

/** Options with every default filled in, checked once. */
export interface ResolvedOptions {
  /** The broker's node(s): printed, they show `host:port` only, never a password. */
  nodes: AmqpNodes;
  bindingKeys: readonly string[];
  bindingArgs: Record<string, unknown> | undefined;
  exchange: string;
  exchangeType: 'topic' | 'headers';
  queue: string | undefined;
  queueArgs: Record<string, unknown>;
  stdin: Readable | undefined;
  prefetch: number;
  noAck: boolean;
  connectTimeout: number;
  maxDepth: number;
  onMalformed: ((problem: Malformed, place: InputPlace) => void) | undefined;
  verbose: boolean;
  captureMessages: boolean;
  flushIncomplete: boolean;
  gapTimeout: number;
}

function invalid(message: string): never {
  throw new LcmonError('LC_MONITOR_INVALID_OPTION', message);
}

/** The options of messages(); objects() takes these and {@link OBJECTS_ONLY}. */
const MESSAGES_KEYS: ReadonlySet<string> = new Set([
  'url',
  'bindingKeys',
  'bindingArgs',
  'exchange',
  'exchangeType',
  'queue',
  'queueArgs',
  'stdin',
  'prefetch',
  'noAck',
  'maxDepth',
  'connectTimeout',
  'onMalformed',
]);
const OBJECTS_ONLY: ReadonlySet<string> = new Set(['verbose', 'captureMessages', 'flushIncomplete', 'gapTimeout']);

/**
 * Fills in the defaults and validates; throws `LC_MONITOR_INVALID_OPTION`. `of` is the function
 * the options were given to: an option it does not take (a typo such as `bindingKey`, which would
 * otherwise bind `#`) is refused.
 */
export function resolveOptions(options: ObjectsOptions = {}, of: 'messages' | 'objects' = 'objects'): ResolvedOptions {
  if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options)))
    invalid(`the options of ${of}() must be an object`);
  const o = options ?? {};
  for (const k of Object.keys(o)) {
    if (MESSAGES_KEYS.has(k) || (of === 'objects' && OBJECTS_ONLY.has(k))) continue;
    invalid(
      OBJECTS_ONLY.has(k) ? `${k} is an option of objects(), not of messages()` : `${of}(): unknown option '${k}'`,
    );
  }
  for (const k of ['noAck', 'verbose', 'captureMessages', 'flushIncomplete'] as const)
    if (o[k] !== undefined && typeof o[k] !== 'boolean') invalid(`${k} must be true or false`);
  if (o.noAck === true && o.queue !== undefined)
    invalid('noAck cannot be used with queue: a named queue is acknowledged, so nothing of it is lost');
  if (o.onMalformed !== undefined && typeof o.onMalformed !== 'function') invalid('onMalformed must be a function');
  const bindingKeys = o.bindingKeys ?? DEFAULTS.bindingKeys;
  if (!Array.isArray(bindingKeys) || bindingKeys.length === 0 || bindingKeys.some((k) => typeof k !== 'string')) {
    invalid('bindingKeys must be a non-empty array of strings');
  }
  const exchange = o.exchange ?? DEFAULTS.exchange;
  if (typeof exchange !== 'string' || exchange.length === 0)
    invalid('exchange must be a non-empty string (the default exchange cannot be bound)');
  const exchangeType = o.exchangeType ?? (o.bindingArgs !== undefined ? 'headers' : 'topic');
  if (exchangeType !== 'topic' && exchangeType !== 'headers') invalid(`exchangeType must be 'topic' or 'headers'`);
  if (o.queue !== undefined && (typeof o.queue !== 'string' || o.queue.length === 0))
    invalid('queue must be a non-empty string');
  const prefetch = o.prefetch ?? DEFAULTS.prefetch;
  if (!Number.isSafeInteger(prefetch) || prefetch < 1 || prefetch > 65535)
    invalid('prefetch must be an integer from 1 to 65535');
  const connectTimeout = o.connectTimeout ?? DEFAULTS.connectTimeout;
  if (!Number.isFinite(connectTimeout) || connectTimeout <= 0) invalid('connectTimeout must be a positive number');
  const maxDepth = o.maxDepth ?? DEFAULTS.maxDepth;
  if (!Number.isSafeInteger(maxDepth) || maxDepth < 0) invalid('maxDepth must be a non-negative integer');
  const gapTimeout = o.gapTimeout ?? DEFAULTS.gapTimeout;
  if (!Number.isFinite(gapTimeout) || gapTimeout < 0) invalid('gapTimeout must be a non-negative number');
  const url = o.url ?? DEFAULTS.url;
  let urls: string[];
  if (Array.isArray(url) || (typeof url === 'string' && url.includes(','))) {
    // The nodes of a cluster, each checked; one that is not a URL is named by its position only.
    const list = parseAmqpUrls(url);
    if (!list.ok) invalid(`url ${list.why}`);
    urls = list.urls;
  } else {
    // Neither the URL nor its scheme is repeated: in `user:secret@host` the parser takes `user:` for it.
    if (typeof url !== 'string' || !/^amqps?:\/\/[^/]/i.test(url) || !URL.canParse(url))
      invalid('url must be an amqp:// or amqps:// URL');
    // What parses can still hold a password with an unencoded / ? # (taken for host:port) or port 0.
    const one = parseAmqpUrls([url]);
    if (!one.ok) invalid(`url ${one.why}`);
    urls = one.urls;
  }
  if (o.stdin !== undefined && (o.stdin === null || typeof (o.stdin as Readable).on !== 'function'))
    invalid('stdin must be a readable stream');
  return {
    nodes: new AmqpNodes(urls),
    bindingKeys,
    bindingArgs: o.bindingArgs,
    exchange,
    exchangeType,
    queue: o.queue,
    queueArgs: { ...(o.queueArgs ?? DEFAULTS.queueArgs) },
    stdin: o.stdin,
    prefetch,
    noAck: o.noAck === true,
    connectTimeout,
    maxDepth,
    onMalformed: o.onMalformed,
    verbose: o.verbose ?? DEFAULTS.verbose,
    captureMessages: o.captureMessages ?? DEFAULTS.captureMessages,
    flushIncomplete: o.flushIncomplete ?? DEFAULTS.flushIncomplete,
    gapTimeout,
  };
}
