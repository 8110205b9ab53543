import { checkPositive, checkText as text } from '../internal/checks.js';
import { CollectorError } from '../internal/errors.js';

/** A `CollectorError` `LC_TASK_INVALID`: a bad option or argument of the task queue. */
export function invalid(message: string): CollectorError {
  return new CollectorError('LC_TASK_INVALID', message);
}

/** A task name, id or namespace: text of 1–512 characters. */
export const checkText = (what: string, v: unknown): string => text('LC_TASK_INVALID', what, v, 512);

/** A positive integer (ms, or a count). */
export const checkMs = (what: string, v: unknown): number => checkPositive('LC_TASK_INVALID', what, v);

/**
 * JSON text of a value that must survive as JSON: no functions, cycles, BigInts, non-finite
 * numbers (JSON would write null) or undefined at the top.
 */
export function toJson(what: string, v: unknown): string {
  let text: string | undefined;
  try {
    // JSON only: what JSON.stringify would quietly turn into {} or drop is refused instead.
    text = JSON.stringify(v === undefined ? null : v, (key, x: unknown) => {
      if (
        typeof x === 'function' ||
        typeof x === 'symbol' ||
        x instanceof Map ||
        x instanceof Set ||
        x instanceof WeakMap ||
        x instanceof WeakSet ||
        x instanceof Promise
      ) {
        throw new TypeError(
          `${key === '' ? 'the value' : JSON.stringify(key)} is a ${x instanceof Object ? (x.constructor?.name ?? typeof x) : typeof x}, not JSON`,
        );
      }
      if (typeof x === 'number' && !Number.isFinite(x))
        throw new TypeError(`${key === '' ? 'the value' : JSON.stringify(key)} is ${x}, not JSON`);
      return x;
    });
  } catch (err) {
    throw new CollectorError('LC_TASK_INVALID', `${what} must be JSON: ${(err as Error).message}`, { cause: err });
  }
  if (text === undefined) throw invalid(`${what} must be JSON, got ${typeof v}`);
  return text;
}

/** The arguments of `task.update(current, total)`: two finite numbers. */
export function checkProgress(current: unknown, total: unknown): void {
  if (
    typeof current !== 'number' ||
    !Number.isFinite(current) ||
    typeof total !== 'number' ||
    !Number.isFinite(total)
  ) {
    throw invalid(`task.update(current, total) takes two finite numbers, got ${String(current)}, ${String(total)}`);
  }
}

/** What `f` gives, or `fallback` when it throws. */
function tryOr<T>(f: () => T, fallback: T): T {
  try {
    return f();
  } catch {
    return fallback;
  }
}

/** Text of a thrown value, or `fallback` when it has none (no toString, or one that throws). */
function textOf(v: unknown, fallback: string): string {
  return tryOr<string | null>(() => String(v), null) ?? tryOr(() => Object.prototype.toString.call(v), fallback);
}

/**
 * What a worker records of the error its task function threw: its name, message and string code.
 * Any thrown value is described, never throwing: a null-prototype object, or one whose `name`,
 * `message` or `toString` throws, gives what can be read of it.
 */
export function errorInfo(err: unknown): { name: string; message: string; code?: string } {
  const read = (k: string): unknown =>
    (typeof err === 'object' && err !== null) || typeof err === 'function'
      ? tryOr(() => (err as Record<string, unknown>)[k], undefined)
      : undefined;
  const name = read('name');
  const message = read('message');
  const code = read('code');
  return {
    name: name === undefined || name === null ? 'Error' : textOf(name, 'Error'),
    message:
      message === undefined || message === null
        ? textOf(err, `a thrown ${typeof err}`)
        : textOf(message, `a thrown ${typeof err}`),
    ...(typeof code === 'string' ? { code } : {}),
  };
}
