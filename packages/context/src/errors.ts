/**
 * Stable error codes of @contexture/context. Callers branch on `code`, never on the message.
 */
export type ContextErrorCode =
  | 'LC_RESERVED_NAME'
  | 'LC_NOT_SERIALIZABLE'
  | 'LC_INVALID_OPTION'
  | 'LC_INVALID_CONFIG'
  | 'LC_HANDLER_CLOSED'
  | 'LC_FLUSH_TIMEOUT'
  | 'LC_TRANSPORT'
  | 'LC_BAD_MESSAGE';

/** The one base error of @contexture/context. */
export class ContextError extends Error {
  readonly code: ContextErrorCode;
  /** The context field the error is about, where there is one. */
  readonly field?: string;

  constructor(code: ContextErrorCode, message: string, options?: { cause?: unknown; field?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ContextError';
    this.code = code;
    if (options?.field !== undefined) this.field = options.field;
  }
}
