import { CollectorError, type CollectorErrorCode } from '../internal/errors.js';

/** Why a lock could not be taken or kept: `code` is `LC_LOCK_HELD`, `LC_LOCK_TIMEOUT`, `LC_LOCK_ABORTED`, `LC_LOCK_LOST` or `LC_LOCK_INVALID_NAME`. */
export class LockError extends CollectorError {
  override readonly name = 'LockError';
  /** The lock's name. */
  readonly lock: string;

  constructor(
    code: Extract<CollectorErrorCode, `LC_LOCK_${string}`>,
    lock: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.lock = lock;
  }
}
