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

/** What a `logger` option takes: a winston logger is taken too (see {@link isWinston}). */
export type LoggerOption = Logger | WarnLogger;

/** A winston logger, as {@link toLogger} calls it: `log({ ...fields, level, message })`, one record. */
interface WinstonLogger {
  log(entry: LogFields & { level: string; message: string }): unknown;
  levels: Record<string, unknown>;
}

/**
 * Whether `value` is a winston logger (or a `child()` of one): it has `info`, `warn` and `error`
 * too, but takes the message first and the fields after it; called pino-style, it would print the
 * fields as its message and lose the message. Told apart by what only winston's Logger has: `log`,
 * `add` and `configure` methods and a `levels` table.
 */
export function isWinston(value: unknown): boolean {
  const v = value as { log?: unknown; add?: unknown; configure?: unknown; levels?: unknown } | null | undefined;
  return (
    typeof v?.log === 'function' &&
    typeof v.add === 'function' &&
    typeof v.configure === 'function' &&
    typeof v.levels === 'object' &&
    v.levels !== null
  );
}

/** Whether `value` is a pino-style {@link Logger}: `info`, `warn` and `error` are functions. */
export function isLogger(value: unknown): value is Logger {
  const v = value as Partial<Logger> | null | undefined;
  return typeof v?.info === 'function' && typeof v.warn === 'function' && typeof v.error === 'function';
}

/**
 * Whether `value` can be a `logger` option: a {@link Logger}, anything with a `warn` function, or a
 * winston logger (whose levels may have `warning` rather than `warn`, as syslog's do).
 */
export function isLoggerOption(value: unknown): value is LoggerOption {
  return typeof (value as Partial<WarnLogger> | null | undefined)?.warn === 'function' || isWinston(value);
}

/** The first of `names` that winston's `levels` has, or null (then records of that level are left out). */
function winstonLevel(levels: Record<string, unknown>, names: readonly string[]): string | null {
  for (const n of names) if (Object.hasOwn(levels, n)) return n;
  return null;
}

/**
 * A {@link Logger} that gives winston each record whole, `log({ ...fields, level, message })`, at
 * the level its `levels` names so. Whole rather than `log(level, message, fields)`: winston reads a
 * message with `%s`, `%d`… in it as a format and then leaves the fields out of the record.
 */
function fromWinston(logger: WinstonLogger): Logger {
  const at = (names: readonly string[]) => {
    const level = winstonLevel(logger.levels, names);
    return (fields: LogFields, message: string) => {
      if (level !== null) logger.log({ ...fields, level, message });
    };
  };
  return {
    info: at(['info', 'notice']),
    warn: at(['warn', 'warning']),
    error: at(['error', 'err']),
    debug: at(['debug']),
  };
}

/**
 * A {@link Logger} for what a `logger` option holds: a winston one called message first (see
 * {@link isWinston}); a pino-style one as it is; a message-only one wrapped, so that it gets
 * `prefix + message` as before (`error` on its `warn`, `info` on its `info` if it has one, `debug`
 * nowhere).
 */
export function toLogger(logger: LoggerOption, prefix = ''): Logger {
  if (isWinston(logger)) return fromWinston(logger as unknown as WinstonLogger);
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
