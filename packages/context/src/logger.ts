import { redactText } from './redact.js';

/**
 * The fields of a log record: an event `code`, counts, `url` as `host:port`, `err` as
 * `{ name, message, code }`. Never a password: URLs and error texts are masked first.
 */
export type LogFields = Record<string, unknown>;

/**
 * A pino-style logger: the fields first, the message second. A pino (or bunyan) logger is one, as
 * is a `child()` of it.
 *
 * @example
 * import pino from 'pino';
 * new Handler({ logger: pino().child({ lib: 'contexture' }) });
 */
export interface Logger {
  info(fields: LogFields, message: string): void;
  warn(fields: LogFields, message: string): void;
  error(fields: LogFields, message: string): void;
  debug?(fields: LogFields, message: string): void;
}

/**
 * A logger of messages only, as the options took before {@link Logger}: `warn(message)`, and
 * `info(message)` where there is one. Still accepted: it gets the message line alone, as before.
 */
export interface WarnLogger {
  warn(message: string): void;
  info?(message: string): void;
  /** Absent: an object with an `error` method too is taken for a pino-style {@link Logger}. */
  error?: undefined;
}

/** What a `logger` option takes. */
export type LoggerOption = Logger | WarnLogger;

/** Whether `value` is a pino-style {@link Logger}: `info`, `warn` and `error` are functions. */
export function isLogger(value: unknown): value is Logger {
  const v = value as Partial<Logger> | null | undefined;
  return typeof v?.info === 'function' && typeof v.warn === 'function' && typeof v.error === 'function';
}

/** Whether `value` can be a `logger` option: a {@link Logger}, or anything with a `warn` function. */
export function isLoggerOption(value: unknown): value is LoggerOption {
  return typeof (value as Partial<WarnLogger> | null | undefined)?.warn === 'function';
}

/**
 * A {@link Logger} for what a `logger` option holds: a pino-style one as it is; a message-only one
 * wrapped, so that it gets `prefix + message` as before (`error` on its `warn`, `info` on its
 * `info` if it has one, `debug` nowhere).
 */
export function toLogger(logger: LoggerOption, prefix = ''): Logger {
  if (isLogger(logger)) return logger;
  const warn = (_: LogFields, message: string) => logger.warn(`${prefix}${message}`);
  return {
    info: (_, message) => logger.info?.(`${prefix}${message}`),
    warn,
    error: warn,
  };
}

/**
 * The default logger: each record is one plain line, `<prefix><message>`, on `stream` (stderr).
 * The fields are left out: they say again what the message says.
 */
export function textLogger(prefix: () => string, stream: { write(chunk: string): unknown } = process.stderr): Logger {
  const line = (_: LogFields, message: string) => void stream.write(`${prefix()}${message}\n`);
  return { info: line, warn: line, error: line };
}

/** An error as log fields: its name, its message with passwords masked, and its code if it has one. */
export function errorFields(err: unknown): LogFields {
  const e = err as { name?: unknown; message?: unknown; code?: unknown } | null | undefined;
  const out: LogFields = {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    message: redactText(typeof e?.message === 'string' ? e.message : String(err)),
  };
  if (typeof e?.code === 'string' || typeof e?.code === 'number') out.code = e.code;
  return out;
}
