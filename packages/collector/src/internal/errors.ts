/**
 * Stable codes of {@link CollectorError} (and of its subclasses `LockError` and `TaskError`), named
 * `LC_<AREA>_<WHAT>`; callers branch on these, never on messages.
 */
export type CollectorErrorCode =
  /** An allocator option or argument is out of range or of the wrong type. */
  | 'LC_ALLOC_INVALID_ARGUMENT'
  /** A resource key, binding name, owner or pool name is empty, too long or holds a NUL or control character. */
  | 'LC_ALLOC_INVALID_KEY'
  /** The allocator was closed. */
  | 'LC_ALLOC_CLOSED'
  /**
   * The pool is spread over another number of shards than this allocator says: the number its
   * first allocator stored. A configuration error.
   */
  | 'LC_ALLOC_SHARDS_MISMATCH'
  /** An argument is out of range or of the wrong type (an option, an id, a version). */
  | 'LC_STORE_INVALID_ARGUMENT'
  /** The store was closed. */
  | 'LC_STORE_CLOSED'
  /** The context does not exist. */
  | 'LC_STORE_NOT_FOUND'
  /** `export()` without an `exportCallback`, or `restore()` without a `restoreProvider`. */
  | 'LC_STORE_NOT_CONFIGURED'
  /** The export callback threw or rejected (`cause` holds its error). */
  | 'LC_STORE_EXPORT_FAILED'
  /** The restore provider threw, rejected or gave something that is not a context. */
  | 'LC_STORE_RESTORE_FAILED'
  /** A direct `update()` lost to concurrent writers more often than its retry budget. */
  | 'LC_STORE_CONFLICT'
  /** Redis answered something the store cannot read (a key of the layout holds foreign data). */
  | 'LC_STORE_CORRUPT'
  /** A lock could not be taken: another owner held it through every retry. */
  | 'LC_LOCK_HELD'
  /** A lock could not be taken before the `timeout` of `acquire()` passed. */
  | 'LC_LOCK_TIMEOUT'
  /** `acquire()` was aborted through its signal. */
  | 'LC_LOCK_ABORTED'
  /** A held lock expired or was taken over before its holder released it. */
  | 'LC_LOCK_LOST'
  /** A lock name or key is empty or holds a NUL character. */
  | 'LC_LOCK_INVALID_NAME'
  /**
   * Redis answered as a cluster the client is not made for: MOVED or ASK (a client of one node of a
   * Redis Cluster: give an ioredis Cluster, or the nodes' URLs), or CROSSSLOT (keys of one call in
   * several slots). A configuration error: retrying does not help.
   */
  | 'LC_REDIS_CLUSTER_MISMATCH'
  /** A lock or lock pool option, or an argument of `setIf()`, is out of range or of the wrong type. */
  | 'LC_LOCK_INVALID_ARGUMENT'
  /** A registry id, entry, metric or option is empty, too long, not a finite number or not JSON. */
  | 'LC_REGISTRY_INVALID_ARGUMENT'
  /** The registry was closed. */
  | 'LC_REGISTRY_CLOSED'
  /**
   * The registry's namespace is spread over another number of parts (`shards`) than this registry
   * says: the number the first registry of the namespace stored. A configuration error.
   */
  | 'LC_REGISTRY_SHARDS_MISMATCH'
  /** Redis did not answer in time (unreachable, or too slow) where a call could not wait longer. */
  | 'LC_REDIS_UNAVAILABLE'
  /** A shared context key, field or option is invalid. */
  | 'LC_SHARED_INVALID_ARGUMENT'
  /** A shared context write lost to concurrent writers more often than its retry budget. */
  | 'LC_SHARED_CONFLICT'
  /** The shared context was closed. */
  | 'LC_SHARED_CLOSED'
  /** A task queue option, id, name, params or result is invalid (params and results must be JSON). */
  | 'LC_TASK_INVALID'
  /** The task queue was closed (before the call, or while a query waited or a task ran). */
  | 'LC_TASK_CLOSED'
  /** The task function threw (a `TaskError`; `remote` holds its error's name, message and code). */
  | 'LC_TASK_FAILED'
  /** No result within the query's `timeout`, or a running task is no longer this worker's (a `TaskError`). */
  | 'LC_TASK_TIMEOUT'
  /** Every worker that took the task stopped before finishing it, `maxAttempts` times (a `TaskError`). */
  | 'LC_TASK_GAVE_UP'
  /** A `local` query with no handler for the name here (a `TaskError`). */
  | 'LC_TASK_NO_HANDLER'
  /** The query's signal aborted (a `TaskError`). */
  | 'LC_TASK_ABORTED'
  /** A task of that id exists with another name (a `TaskError`). */
  | 'LC_TASK_CONFLICT'
  /**
   * The task queue's namespace is spread over another number of parts (`shards`) than this queue
   * says: the number the first queue of the namespace stored. A configuration error.
   */
  | 'LC_TASK_SHARDS_MISMATCH'
  /** A `Collector` option is missing, unknown, out of range or of the wrong type. */
  | 'LC_DAEMON_INVALID_OPTION'
  /** The collector was closed before it consumed (`start()` under way). */
  | 'LC_DAEMON_CLOSED'
  /** The exchange exists on the broker with another type or durability than the collector declares. */
  | 'LC_BROKER_EXCHANGE_MISMATCH'
  /** The broker refused the collector's user access to the exchange or a queue (its permissions). */
  | 'LC_BROKER_REFUSED'
  /** The broker refused to declare, bind or consume the collector's exchange or queues (a reserved name, a queue locked by another connection, …). */
  | 'LC_BROKER_DECLARE_FAILED'
  /** The collector's metrics server cannot listen on its address (in use, not allowed, not this host's). */
  | 'LC_METRICS_LISTEN_FAILED';

/**
 * The base error of `@contexture/collector`: every error of the package's own is one (`LockError` and
 * `TaskError` extend it with the lock's name or the task's id); an error of Redis itself is passed
 * on as Redis gave it. `code` is stable, `cause` keeps the origin.
 */
export class CollectorError extends Error {
  override readonly name: string = 'CollectorError';
  readonly code: CollectorErrorCode;

  constructor(code: CollectorErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
