/**
 * `@contexture/collector/locks`: `RedisLock` (fenced, re-entrant, extended while `withLock` work
 * runs) and `LockPool` (a set of named locks), with `LockError`.
 */
export { CollectorError } from '../internal/errors.js';
export type { CollectorErrorCode } from '../internal/errors.js';
export { LockError } from './lock-error.js';
export { LockPool } from './lock-pool.js';
export type { LockPoolOptions } from './lock-pool.js';
export { REDIS_LOCK_DEFAULTS, RedisLock } from './redis-lock.js';
export type {
  AcquireOptions,
  LockCallOptions,
  LockHandle,
  LockStatus,
  RedisLockOptions,
  SetIfOp,
} from './redis-lock.js';
