/**
 * Stable error codes of @contexture/lcmon. Callers branch on `code`, never on the message; the CLI
 * maps each code to an exit status (see `cli/exit-codes.ts`).
 */
export type LcmonErrorCode =
  /** The broker could not be reached (refused, timed out, DNS). */
  | 'LC_UNREACHABLE'
  /** The broker refused the credentials or the vhost. */
  | 'LC_ACCESS_REFUSED'
  /** The connection broke while consuming. */
  | 'LC_CONNECTION_LOST'
  /** `queue` names a queue that does not exist. */
  | 'LC_NO_QUEUE'
  /** The exchange exists with another type or durability than lcmon declares. */
  | 'LC_EXCHANGE_MISMATCH'
  /** The broker refused a declaration or binding for another reason. */
  | 'LC_AMQP'
  /** An option has a wrong value. */
  | 'LC_INVALID_OPTION'
  /** Reading the input stream failed. */
  | 'LC_INPUT'
  /** The stream was used after it was closed. */
  | 'LC_CLOSED';

/** The one base error of @contexture/lcmon. Messages name host and port, never a password. */
export class LcmonError extends Error {
  readonly code: LcmonErrorCode;

  constructor(code: LcmonErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LcmonError';
    this.code = code;
  }
}
