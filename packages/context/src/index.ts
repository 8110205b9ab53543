export { ContextError } from './errors.js';
export type { ContextErrorCode } from './errors.js';
