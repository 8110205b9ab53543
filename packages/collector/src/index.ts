/**
 * @contexture/collector: versioned context state with deltas that clients sync from, in Redis
 * (`RedisContextStore`) or in memory (`MemoryContextStore`), behind one interface (`ContextStore`).
 */
export { CollectorError } from './errors.js';
export type { CollectorErrorCode } from './errors.js';
export { MemoryContextStore } from './store/memory-store.js';
export type { MemoryContextStoreOptions } from './store/memory-store.js';
export { RedisContextStore, REDIS_STORE_DEFAULTS } from './store/redis-store.js';
export type { RedisContextStoreOptions } from './store/redis-store.js';
export { STORE_DEFAULTS } from './store/options.js';
export type { RestoredContext, StoreOptions } from './store/options.js';
export type { StoreStats } from './store/base-store.js';
export type { CleanerStats } from './store/cleaner.js';
export { applyDelta, isDeltaLeaf, mergeRecords } from './store/delta.js';
export type { DeltaRecord, FieldChange } from './store/delta.js';
export type {
  ApplyItem,
  ApplyResult,
  CleanupOptions,
  CleanupResult,
  ContextDelta,
  ContextEvent,
  ContextStatus,
  ContextStore,
  ContextSummary,
  ContextWatch,
  DeltaLeaf,
  DeltaNode,
  ListOptions,
  ListPage,
  StoredContext,
  StoreStatus,
  SyncResult,
  WatchOptions,
} from './store/types.js';
export { Collector } from './daemon/collector.js';
export type { CollectorStats, CollectorStatus } from './daemon/collector.js';
export { COLLECTOR_DEFAULTS } from './daemon/collector-options.js';
export type {
  ApplyTarget,
  CollectorLogger,
  CollectorOptions,
  ResolvedCollectorOptions,
} from './daemon/collector-options.js';
export { createProgram, EXIT } from './daemon/cli.js';
export type { ProgramIO } from './daemon/cli.js';
export { RedisLock, REDIS_LOCK_DEFAULTS } from './lock/redis-lock.js';
export type {
  AcquireOptions,
  LockCallOptions,
  LockHandle,
  LockStatus,
  RedisLockOptions,
  SetIfOp,
} from './lock/redis-lock.js';
export { LockPool } from './lock/lock-pool.js';
export type { LockPoolOptions } from './lock/lock-pool.js';
export { LockError } from './lock/lock-error.js';
export { Allocator } from './allocator/allocator.js';
export type {
  AllocatorStatus,
  ExtendOptions,
  GcResult,
  HealthReport,
  MallocOptions,
  PoolStats,
} from './allocator/allocator.js';
export { Allocation } from './allocator/allocation.js';
export { ALLOCATOR_DEFAULTS, MAX_PRIORITY } from './allocator/allocator-options.js';
export type { AllocatorOptions } from './allocator/allocator-options.js';
export type { PoolKeys } from './allocator/pool-keys.js';
export { Registry, REGISTRY_DEFAULTS } from './registry/registry.js';
export type {
  RegistryEntry,
  RegistryListOptions,
  RegistryMetrics,
  RegistryOptions,
  RegistryRecord,
} from './registry/registry.js';
export type { HeartbeatRegistry, HeartbeatStats } from './daemon/heartbeats.js';
export { TaskQueue, TaskError, TASK_QUEUE_DEFAULTS } from './tasks/task-queue.js';
export type {
  ListenOptions,
  QueryOptions,
  Task,
  TaskErrorCode,
  TaskFunction,
  TaskPolicy,
  TaskQueueOptions,
} from './tasks/task-queue.js';
export { SharedContext } from './shared/shared-context.js';
export type { FieldLockOptions, SharedContextOptions, SharedContextStats } from './shared/shared-context.js';
