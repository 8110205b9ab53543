/**
 * Stable error codes of @contexture/lcmon, named `LC_<AREA>_<WHAT>`. Callers branch on `code`,
 * never on the message; the CLI maps each code to an exit status (see `cli/exit-codes.ts`).
 */
export type LcmonErrorCode =
  /** The broker could not be reached (refused, timed out, DNS). */
  | 'LC_BROKER_UNREACHABLE'
  /** The broker refused the credentials or the vhost. */
  | 'LC_BROKER_REFUSED'
  /** The connection to the broker broke while consuming. */
  | 'LC_BROKER_CONNECTION_LOST'
  /** `queue` names a queue that does not exist. */
  | 'LC_BROKER_NO_QUEUE'
  /** The exchange exists with another type or durability than lcmon declares. */
  | 'LC_BROKER_EXCHANGE_MISMATCH'
  /** The broker refused a declaration, a binding or the consumer for another reason. */
  | 'LC_BROKER_DECLARE_FAILED'
  /** An option of `messages()`, `objects()` or the CLI has a wrong value. */
  | 'LC_MONITOR_INVALID_OPTION'
  /** Reading the CLI's standard input failed. */
  | 'LC_MONITOR_INPUT_FAILED'
  /** The stream was used after it was closed. */
  | 'LC_MONITOR_CLOSED';

/** The one base error of @contexture/lcmon. Messages name host and port, never a password. */
export class LcmonError extends Error {
  override readonly name = 'LcmonError';
  readonly code: LcmonErrorCode;

  constructor(code: LcmonErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}
