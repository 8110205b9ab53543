import { isPlainObject } from '@contexture/context/protocol';
import { CollectorError, type CollectorErrorCode } from '../internal/errors.js';

/**
 * Codes of {@link TaskError}: the `LC_TASK_*` codes of `CollectorErrorCode` that say why a query
 * gave no result. `LC_TASK_INVALID` and `LC_TASK_CLOSED` are plain `CollectorError`s.
 */
export type TaskErrorCode = Extract<
  CollectorErrorCode,
  | 'LC_TASK_FAILED'
  | 'LC_TASK_TIMEOUT'
  | 'LC_TASK_GAVE_UP'
  | 'LC_TASK_NO_HANDLER'
  | 'LC_TASK_ABORTED'
  | 'LC_TASK_CONFLICT'
>;

/** What a worker reports of the error its task function threw. */
export interface RemoteError {
  name: string;
  message: string;
  code?: string;
}

/** Why a query gave no result. */
export class TaskError extends CollectorError {
  override readonly name = 'TaskError';
  declare readonly code: TaskErrorCode;
  /** The task's id. */
  readonly task: string;
  /** For `LC_TASK_FAILED`: the error the task function threw, as the worker reported it. */
  readonly remote: RemoteError | null;

  constructor(
    code: TaskErrorCode,
    task: string,
    message: string,
    remote: TaskError['remote'] = null,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.task = task;
    this.remote = remote;
  }
}

/**
 * The error a worker reports, read back from its JSON text (anything else becomes its message),
 * and whether it is the refusal of a result that is not JSON.
 */
function remoteOf(text: string | null | undefined): RemoteError & { invalidResult?: true } {
  try {
    const e: unknown = JSON.parse(text ?? '');
    if (isPlainObject(e)) {
      const r: RemoteError & { invalidResult?: true } = {
        name: String(e.name ?? 'Error'),
        message: String(e.message ?? ''),
      };
      if (typeof e.code === 'string') r.code = e.code;
      if (e.invalidResult === true) r.invalidResult = true;
      return r;
    }
  } catch {
    /* below */
  }
  return { name: 'Error', message: String(text) };
}

/**
 * The error of a task recorded as failed, from the error text its worker recorded: a
 * {@link TaskError}, or the `CollectorError` `LC_TASK_INVALID` of a result that is not JSON (as
 * a run here gives).
 */
export function taskFailure(id: string, name: string, payload: string | null | undefined): TaskError | CollectorError {
  const { invalidResult, ...remote } = remoteOf(payload);
  if (invalidResult === true) return new CollectorError('LC_TASK_INVALID', `task '${name}' (${id}): ${remote.message}`);
  if (remote.code === 'LC_TASK_GAVE_UP')
    return new TaskError('LC_TASK_GAVE_UP', id, `task '${name}' (${id}) ${remote.message}`);
  return new TaskError('LC_TASK_FAILED', id, `task '${name}' (${id}) failed: ${remote.message}`, remote);
}
