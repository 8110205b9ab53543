import { CollectorError, type CollectorErrorCode } from './errors.js';

/** A name or id: a string of 1 to `max` characters without control characters; else `code`. */
export function checkText(code: CollectorErrorCode, what: string, v: unknown, max: number): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max || /[\u0000-\u001f]/.test(v)) {
    throw new CollectorError(
      code,
      `${what} must be a string of 1 to ${max} characters without control characters, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

/** A positive integer (`unit` is said in the message, e.g. ' (ms)'); else `code`. */
export function checkPositive(code: CollectorErrorCode, what: string, v: unknown, unit = ''): number {
  if (!Number.isSafeInteger(v) || (v as number) < 1)
    throw new CollectorError(code, `${what} must be a positive integer${unit}, got ${String(v)}`);
  return v as number;
}
