/** `@contexture/collector/tasks`: the `TaskQueue` (run a task here or on a listener elsewhere) and `TaskError`. */
export { CollectorError } from '../internal/errors.js';
export type { CollectorErrorCode } from '../internal/errors.js';
export { TaskError } from './task-error.js';
export type { TaskErrorCode } from './task-error.js';
export { TASK_QUEUE_DEFAULTS } from './task-options.js';
export type { ListenOptions, QueryOptions, Task, TaskFunction, TaskPolicy, TaskQueueOptions } from './task-options.js';
export { TaskQueue } from './task-queue.js';
