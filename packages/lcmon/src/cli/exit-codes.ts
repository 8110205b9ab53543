import type { LcmonErrorCode } from '../errors.js';

/** Exit statuses of lcmon (sysexits.h where one fits). */
export const EXIT = Object.freeze({
  OK: 0,
  /** Bad arguments (usage printed). */
  USAGE: 2,
  /** `-q` names a queue that does not exist (EX_NOINPUT). */
  NO_INPUT: 66,
  /** The broker is unreachable or went away (EX_UNAVAILABLE). */
  UNAVAILABLE: 69,
  /** A bug (EX_SOFTWARE). */
  SOFTWARE: 70,
  /** Reading stdin failed (EX_IOERR). */
  IO_ERROR: 74,
  /** The broker refused the login (EX_NOPERM). */
  NO_PERM: 77,
  /** The exchange exists with another type, or another refusal by the broker (EX_CONFIG). */
  CONFIG: 78,
});

const BY_CODE: Record<LcmonErrorCode, number> = {
  LC_BROKER_UNREACHABLE: EXIT.UNAVAILABLE,
  LC_BROKER_CONNECTION_LOST: EXIT.UNAVAILABLE,
  LC_BROKER_REFUSED: EXIT.NO_PERM,
  LC_BROKER_NO_QUEUE: EXIT.NO_INPUT,
  LC_BROKER_EXCHANGE_MISMATCH: EXIT.CONFIG,
  LC_BROKER_DECLARE_FAILED: EXIT.CONFIG,
  LC_MONITOR_INVALID_OPTION: EXIT.USAGE,
  LC_MONITOR_INPUT_FAILED: EXIT.IO_ERROR,
  LC_MONITOR_CLOSED: EXIT.SOFTWARE,
};

/** The exit status for an error code. */
export function exitStatusFor(code: LcmonErrorCode): number {
  return BY_CODE[code] ?? EXIT.SOFTWARE;
}
