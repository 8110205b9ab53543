/** `@contexture/collector/allocator`: leases of pooled resources in Redis (`Allocator`, `Allocation`). */
export { CollectorError } from '../internal/errors.js';
export type { CollectorErrorCode } from '../internal/errors.js';
export { Allocation } from './allocation.js';
export { Allocator } from './allocator.js';
export type {
  AllocatorStatus,
  ExtendOptions,
  GcResult,
  HealthReport,
  MallocOptions,
  PoolStats,
} from './allocator.js';
export { ALLOCATOR_DEFAULTS, MAX_PRIORITY } from './allocator-options.js';
export type { AllocatorOptions } from './allocator-options.js';
export type { PoolKeys } from './pool-keys.js';
