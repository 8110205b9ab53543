/** `@contexture/collector/tasks`: the `TaskQueue` (run a task here or on a listener elsewhere) and `TaskError`. */
export { CollectorError } from '../internal/errors.js';
export type { CollectorErrorCode } from '../internal/errors.js';
export { TASK_QUEUE_DEFAULTS, TaskError, TaskQueue } from './task-queue.js';
export type {
  ListenOptions,
  QueryOptions,
  Task,
  TaskErrorCode,
  TaskFunction,
  TaskPolicy,
  TaskQueueOptions,
} from './task-queue.js';
