/** `@contexture/collector/shared`: `SharedContext`, one context's state kept alike in many processes. */
export { CollectorError } from '../internal/errors.js';
export type { CollectorErrorCode } from '../internal/errors.js';
export { SharedContext } from './shared-context.js';
export type { FieldLockOptions, SharedContextOptions, SharedContextStats } from './shared-context.js';
