import type { RedisOption } from '../internal/cluster.js';

/** Where a task runs: see {@link TaskQueue.query}. */
export type TaskPolicy = 'local' | 'remote' | 'localFirst' | 'remoteFirst' | 'auto';

/** A task as its function sees it. */
export interface Task<P = unknown> {
  readonly id: string;
  readonly name: string;
  readonly params: P;
  /** 1 for the first run; more when a worker died before finishing it. */
  readonly attempt: number;
  /** Aborts when the task is no longer this worker's (taken over after a stall, or expired) or its queue closes. */
  readonly signal: AbortSignal;
  /** Reports progress; the caller sees it through `onProgress`. */
  update(current: number, total: number): Promise<void>;
}

/** The function that runs tasks: one for every name, or one per name. */
export type TaskFunction = (task: Task<any>) => unknown;

/** Options of {@link TaskQueue}. */
export interface TaskQueueOptions {
  /** An ioredis client, or a URL (the queue then owns its clients). @default 'redis://127.0.0.1:6379' */
  redis?: RedisOption;
  /** Prefix of every key. @default 'contexture:' */
  prefix?: string;
  /** Queues of one namespace share their tasks. @default 'default' */
  namespace?: string;
  /**
   * How many parts (hash slots) the namespace's tasks are spread over, each task in the part its id
   * hashes to: on a Redis Cluster a busy namespace's load then goes to several masters instead of
   * one. Workers take tasks from every part in turn. 1 keeps every task in the namespace's one slot
   * (the layout of a queue made without it). Every queue of a namespace must say the same: the
   * first to reach Redis stores its number (`<prefix>tq:{<namespace>}:shards`), and a queue that
   * says another fails its queries and listen() with `LC_TASK_SHARDS_MISMATCH`. What
   * stops holding across parts: the order in which tasks of different parts are taken (each part
   * keeps its own order), and a worker may look in several parts before it finds a task. @default 1
   */
  shards?: number;
  /** What runs tasks here: for `listen()` and for local runs. */
  handler?: TaskFunction | Record<string, TaskFunction>;
  /**
   * A running task not renewed by its worker for this long (ms) is run again by another: how soon a
   * dead worker's task comes back. Workers renew every third of it. @default 30000
   */
  visibilityTimeout?: number;
  /** Runs of one task at most (a dead worker costs one); then it fails with `LC_TASK_GAVE_UP`. @default 3 */
  maxAttempts?: number;
  /** How long (ms) a finished task's outcome is kept: asking again with its id returns it. @default 600000 */
  resultTtl?: number;
  /** A listener not seen for this long (ms) is gone (for `auto` and `remoteFirst`). @default 5000 */
  listenerTimeout?: number;
  /**
   * A query still waiting reads its task's outcome back this often (ms), should its notification
   * have been missed: on a Redis Cluster, the subscriber moves to another node when its node dies,
   * without an event, and an outcome told meanwhile reaches nobody. @default 5000
   */
  recheckInterval?: number;
}

/** A query. */
export interface QueryOptions<P = unknown> {
  /** Its id: querying an id again joins the task (or returns its kept outcome). @default a random uuid */
  id?: string;
  name: string;
  /** JSON. */
  params?: P;
  /** Longest wait for the result (ms); the task expires with it. @default 60000 */
  timeout?: number;
  /**
   * `local`: run here. `remote`: run by a listener. `localFirst`: here, and by a listener when that
   * fails or there is no handler here. `remoteFirst`: by a listener when one is alive, else here;
   * here too when listeners gave it up. `auto`: by a listener when one is alive, else here.
   * @default 'auto'
   */
  policy?: TaskPolicy;
  /** Drop the kept outcome once it is received. @default false */
  once?: boolean;
  /** Progress reports of the task. */
  onProgress?: (current: number, total: number) => void;
  signal?: AbortSignal;
}

/** Options of {@link TaskQueue.listen}. */
export interface ListenOptions {
  /** Tasks run at once. @default 1 */
  concurrency?: number;
  /** Aborting it stops taking tasks; `listen()` resolves once the running ones finished. */
  signal?: AbortSignal;
}

export const TASK_QUEUE_DEFAULTS = Object.freeze({
  redis: 'redis://127.0.0.1:6379',
  prefix: 'contexture:',
  namespace: 'default',
  shards: 1,
  visibilityTimeout: 30_000,
  maxAttempts: 3,
  resultTtl: 600_000,
  listenerTimeout: 5_000,
  recheckInterval: 5_000,
});
