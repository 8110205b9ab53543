import fs from 'node:fs';
import path from 'node:path';
import { redactText, redactUrl } from './redact.js';
import { errorFields, toLogger } from './logger.js';
import { ContextError } from './errors.js';
import { Handler } from './handler.js';
import { HANDLER_DEFAULTS, validateHandlerOptions, type HandlerOptions } from './handler-options.js';

/** The file read when `CONTEXTURE_CONFIG` names none. */
export const DEFAULT_CONFIG_FILE = 'contexture.config.json';

type Env = Record<string, string | undefined>;

const ENV: ReadonlyArray<[string, keyof HandlerOptions, 'string' | 'int' | 'number' | 'bool' | 'json']> = [
  ['CONTEXTURE_URL', 'url', 'string'],
  ['CONTEXTURE_EXCHANGE', 'exchange', 'string'],
  ['CONTEXTURE_EXCHANGE_TYPE', 'exchangeType', 'string'],
  ['CONTEXTURE_HEADERS', 'headers', 'json'],
  ['CONTEXTURE_BUFFER_SIZE', 'bufferSize', 'int'],
  ['CONTEXTURE_OVERFLOW', 'overflow', 'string'],
  ['CONTEXTURE_FLUSH_INTERVAL', 'flushInterval', 'number'],
  ['CONTEXTURE_BATCH', 'batch', 'bool'],
  ['CONTEXTURE_BATCH_SIZE', 'batchSize', 'int'],
  ['CONTEXTURE_PERSISTENT', 'persistent', 'bool'],
  ['CONTEXTURE_WAIT', 'wait', 'bool'],
  ['CONTEXTURE_WAIT_TIMEOUT', 'waitTimeout', 'number'],
  ['CONTEXTURE_CLOSE_TIMEOUT', 'closeTimeout', 'number'],
  ['CONTEXTURE_MAX_IN_FLIGHT', 'maxInFlight', 'int'],
  ['CONTEXTURE_CONNECT_TIMEOUT', 'connectTimeout', 'int'],
  ['CONTEXTURE_HEARTBEAT_INTERVAL', 'heartbeatInterval', 'int'],
];

/** The handler options set by `CONTEXTURE_*` environment variables. */
export function optionsFromEnv(env: Env = process.env): HandlerOptions {
  const out: Record<string, unknown> = {};
  for (const [name, key, type] of ENV) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const fail = (want: string): never => {
      const shown = key === 'url' ? redactUrl(raw) : raw;
      throw new ContextError('LC_CONFIG_INVALID', `environment: ${name} must be ${want}, got '${shown}'`);
    };
    switch (type) {
      case 'string':
        out[key] = raw;
        break;
      case 'int':
      case 'number': {
        // Decimal only: Number() would also take 0x10, 0b1, 0o7 and a blank value (0).
        const n = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(raw) ? Number(raw) : Number.NaN;
        if (!Number.isFinite(n) || (type === 'int' && !Number.isSafeInteger(n)))
          fail(type === 'int' ? 'an integer' : 'a number');
        out[key] = n;
        break;
      }
      case 'bool':
        if (/^(1|true|yes|on)$/i.test(raw)) out[key] = true;
        else if (/^(0|false|no|off)$/i.test(raw)) out[key] = false;
        else fail('true or false');
        break;
      case 'json':
        try {
          out[key] = JSON.parse(raw);
        } catch {
          fail('a JSON object');
        }
        break;
    }
    // Checked one by one, as the option of its variable: an error names the variable it came from.
    validateHandlerOptions(
      { ...HANDLER_DEFAULTS, [key]: out[key] } as HandlerOptions & Record<string, unknown>,
      `environment: ${name}`,
    );
  }
  return out as HandlerOptions;
}

/**
 * The handler options of the config file: `CONTEXTURE_CONFIG`, or `contexture.config.json` in the
 * working directory when it exists. A JSON object with the option names of {@link HandlerOptions}.
 */
export function optionsFromFile(env: Env = process.env, cwd = process.cwd()): HandlerOptions {
  const named = env.CONTEXTURE_CONFIG;
  const file = named ? path.resolve(cwd, named) : path.join(cwd, DEFAULT_CONFIG_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (!named && (err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ContextError('LC_CONFIG_INVALID', `config file ${file}: ${(err as Error).message}`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ContextError('LC_CONFIG_INVALID', `config file ${file}: not valid JSON (${(err as Error).message})`, {
      cause: err,
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ContextError('LC_CONFIG_INVALID', `config file ${file}: must hold a JSON object`);
  }
  const opts = value as Record<string, unknown>;
  // Validate the file on its own so an error names it.
  validateHandlerOptions(
    { ...HANDLER_DEFAULTS, ...opts } as HandlerOptions & Record<string, unknown>,
    `config file ${file}`,
  );
  return opts as HandlerOptions;
}

/**
 * Resolves the handler options, strongest first: `explicit` (the `configure()` options), the
 * `CONTEXTURE_*` environment variables, the config file, the built-in defaults.
 */
export function resolveOptions(
  explicit: HandlerOptions = {},
  env: Env = process.env,
  cwd = process.cwd(),
): HandlerOptions {
  const merged: Record<string, unknown> = { ...optionsFromFile(env, cwd), ...optionsFromEnv(env) };
  for (const [k, v] of Object.entries(explicit)) if (v !== undefined) merged[k] = v;
  return merged as HandlerOptions;
}

let current: Handler | null = null;

/**
 * Sets up the process's handler (the one contexts use unless they name another) and returns it.
 * Options given here win over `CONTEXTURE_*` variables, which win over the config file. Calling it
 * again replaces the handler; the previous one is closed gracefully in the background.
 *
 * @example
 * configure({ url: 'amqp://guest:guest@127.0.0.1:5672/%2F', exchange: 'lc-topic' });
 */
export function configure(options: HandlerOptions = {}): Handler {
  const handler = new Handler(resolveOptions(options));
  const previous = current;
  current = handler;
  if (previous !== null) void previous.close();
  return handler;
}

/**
 * The process's handler: the one `configure()` made, or else one made now from the environment and
 * the config file. Bad configuration there is reported once on stderr and the built-in defaults are
 * used, since a Context must never throw into the program because of it.
 */
export function getHandler(): Handler {
  if (current !== null) return current;
  try {
    current = new Handler(resolveOptions());
  } catch (err) {
    // Said on the logger the handler made instead uses: the default one (no logger comes from
    // the environment or a file).
    current = new Handler();
    const logger = current.options.logger;
    if (logger !== null)
      toLogger(logger, 'contexture: ').warn(
        { code: 'LC_CONFIG_INVALID', err: errorFields(err) },
        `${redactText((err as Error).message)}; using the built-in defaults`,
      );
  }
  return current;
}
