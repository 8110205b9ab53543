/**
 * How the Redis store reports a failed Redis call: as a CollectorError saying what failed and why
 * (foreign data under its prefix, or Redis itself), with `label()` quoting ids in its messages.
 */
import { CollectorError } from '../internal/errors.js';
import { mismatchAt, REFUSED, scrubAuth, unreachable } from '../internal/redis-client.js';

/**
 * A failed Redis call of `what` as a CollectorError (ours, and errors of the program itself, pass
 * through): a key of the store's layout holding another type, or holding what its script cannot
 * read, is LC_STORE_CORRUPT; Redis Cluster refusing a call for where its keys are (MOVED, ASK,
 * CROSSSLOT) LC_REDIS_CLUSTER_MISMATCH; anything else (no connection, a timeout, Redis refusing: out of
 * memory, loading, read-only) LC_REDIS_UNAVAILABLE. `cause` keeps the client's error.
 */
export function failure(what: string, err: unknown, at: string): unknown {
  scrubAuth(err);
  if (
    err instanceof CollectorError ||
    err instanceof TypeError ||
    err instanceof RangeError ||
    err instanceof SyntaxError ||
    err instanceof ReferenceError
  )
    return err;
  const message = (err as Error)?.message ?? String(err);
  // Redis 7 passes on the error of a command in a script as it is; Redis 5 and 6 inside "ERR Error
  // running script … @user_script:…".
  if (!REFUSED.test(message)) {
    if (/\bWRONGTYPE\b/.test(message)) {
      return new CollectorError(
        'LC_STORE_CORRUPT',
        `context store ${what}: one of its keys holds another type (foreign data under the store's prefix?)`,
        { cause: err },
      );
    }
    if (/user_script/.test(message) && UNREADABLE.test(message)) {
      return new CollectorError(
        'LC_STORE_CORRUPT',
        `context store ${what}: its script could not read what the keys hold (foreign data under the store's prefix?): ${message.slice(0, 200)}`,
        { cause: err },
      );
    }
  }
  const mismatch = mismatchAt(`context store ${what}`, err, at, at.endsWith('(cluster)'));
  if (mismatch !== null) return mismatch;
  // Any other failure (an ACL refusing a command, say) is Redis's too.
  const reason = unreachable(err, at) ?? `Redis at ${at} failed: ${message}`;
  return new CollectorError('LC_REDIS_UNAVAILABLE', `context store ${what}: ${reason}`, { cause: err });
}

/**
 * What a script raises on data it cannot read (a field without its stamp, a number that is not
 * one): Lua's own runtime errors. Others (an ACL refusing a command or channel, SCRIPT KILL) are
 * not about the data.
 */
const UNREADABLE =
  /attempt to (perform arithmetic|index|concatenate|compare|call)|bad argument|Expected value|Expected object key|Expected comma|Expected colon|Found invalid/;

/** An id as error messages quote it (long ones cut). */
export function label(id: unknown): string {
  const text = JSON.stringify(String(id));
  return text.length > 80 ? `${text.slice(0, 76)}…"` : text;
}
