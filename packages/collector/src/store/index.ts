/**
 * `@contexture/collector/store`: versioned context state with deltas that clients sync from, in
 * Redis (`RedisContextStore`) or in memory (`MemoryContextStore`), behind one interface
 * (`ContextStore`); its cleaner; and `applyDelta` for clients that keep a copy.
 */
export { CollectorError } from '../internal/errors.js';
export type { CollectorErrorCode } from '../internal/errors.js';
export { allContexts } from './all-contexts.js';
export type { AllContextsOptions } from './all-contexts.js';
export type { StoreStats } from './base-store.js';
export type { CleanerStats } from './cleaner.js';
export { applyDelta, isDeltaLeaf, mergeRecords } from './delta.js';
export type { DeltaRecord, FieldChange } from './delta.js';
export { MemoryContextStore } from './memory-store.js';
export type { MemoryContextStoreOptions } from './memory-store.js';
export { STORE_DEFAULTS } from './options.js';
export type { RestoredContext, StoreOptions } from './options.js';
export { RedisContextStore } from './redis-store.js';
export { REDIS_STORE_DEFAULTS } from './redis-store-options.js';
export type { RedisContextStoreOptions } from './redis-store-options.js';
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
} from './types.js';
