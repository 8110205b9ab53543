/**
 * `@contexture/collector`: the Redis layer of contexture. Each concern has a subpath of its own,
 * which loads only what it needs:
 *
 * - `@contexture/collector/store`: versioned contexts with deltas (`RedisContextStore`, `MemoryContextStore`)
 * - `@contexture/collector/locks`: `RedisLock`, `LockPool`
 * - `@contexture/collector/allocator`: `Allocator`
 * - `@contexture/collector/registry`: `Registry`
 * - `@contexture/collector/tasks`: `TaskQueue`
 * - `@contexture/collector/shared`: `SharedContext`
 * - `@contexture/collector/daemon`: the `Collector` and its CLI (the only part that loads amqplib)
 *
 * This entry re-exports the public classes of every subpath but `/daemon`, so importing it never
 * loads the AMQP client; types and defaults are on the subpaths.
 */
export { Allocation, Allocator } from './allocator/index.js';
export { CollectorError } from './internal/errors.js';
export type { CollectorErrorCode } from './internal/errors.js';
export { LockError, LockPool, RedisLock } from './locks/index.js';
export { Registry } from './registry/index.js';
export { SharedContext } from './shared/index.js';
export { MemoryContextStore, RedisContextStore } from './store/index.js';
export { TaskError, TaskQueue } from './tasks/index.js';
