/**
 * Stable error codes of @contexture/context, named `LC_<AREA>_<WHAT>`. Callers branch on `code`,
 * never on the message.
 */
export type ContextErrorCode =
  /** A name the Context itself uses (`context`, `log`, `update`, …) was assigned as a field; `ctx.update()` sets it. */
  | 'LC_CONTEXT_RESERVED_NAME'
  /** A field's value cannot be sent as JSON (circular, BigInt, function, symbol) or read (its getter throws); `field` names it. */
  | 'LC_CONTEXT_NOT_SERIALIZABLE'
  /** A write through `ctx.context`, the read-only view of the fields: set the field on the context or with `update()`. */
  | 'LC_CONTEXT_READ_ONLY'
  /** A Context option or argument is wrong: `guid`, a reserved or over-long routing key, headers, `update()`'s argument. */
  | 'LC_CONTEXT_INVALID_OPTION'
  /** The Handler's `headers` option holds something AMQP cannot carry (found when a Context is made with it). */
  | 'LC_HANDLER_INVALID_OPTION'
  /**
   * The exchange exists with another type or durability than the handler declares: the handler
   * stops publishing, says so once, and counts every message as dropped.
   */
  | 'LC_HANDLER_EXCHANGE_MISMATCH'
  /** The handler is closed. Reserved: a closed handler drops and counts messages rather than throwing. */
  | 'LC_HANDLER_CLOSED'
  /** A flush did not finish in time. Reserved: `flush()` resolves false rather than throwing. */
  | 'LC_HANDLER_FLUSH_TIMEOUT'
  /** An option of `configure()`, `new Handler()`, the environment or a config file is unknown or has a wrong value. */
  | 'LC_CONFIG_INVALID'
  /**
   * A transport failed for good (the reader of standard output went away): the `error` event of a
   * handler that stops publishing. Passing failures are `lastError` and `disconnect` events.
   */
  | 'LC_TRANSPORT_FAILED'
  /** A message is not of the wire format. Reserved: decoding reports a `Malformed` value rather than throwing. */
  | 'LC_PROTOCOL_BAD_MESSAGE'
  /** An option of a protocol class is wrong (the `Collator`'s `onObject` is not a function). */
  | 'LC_PROTOCOL_INVALID_OPTION'
  /** An option of the Express middleware or the Fastify plugin is unknown or has a wrong value. */
  | 'LC_WEB_INVALID_OPTION'
  /** An option of `handlerMetrics()` (`@contexture/context/prometheus`) is wrong, or its metric names are taken. */
  | 'LC_METRICS_INVALID_OPTION'
  /** A `BoundedBuffer`'s capacity is not a positive integer. */
  | 'LC_BUFFER_INVALID_CAPACITY';

/** The one base error of @contexture/context. */
export class ContextError extends Error {
  override readonly name = 'ContextError';
  readonly code: ContextErrorCode;
  /** The context field the error is about, where there is one. */
  readonly field?: string;

  constructor(code: ContextErrorCode, message: string, options?: { cause?: unknown; field?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.field !== undefined) this.field = options.field;
  }
}
