/**
 * @contexture/context: contexts whose every change is published as a message. The user's API only;
 * the wire format is `@contexture/context/protocol`, plumbing shared with the sibling packages is
 * `@contexture/context/internal` (not public).
 */
export { Context } from './context.js';
export type { ChangeLogger, ContextConstructor, ContextLog, ContextMembers, ContextOptions } from './context.js';
export { Handler } from './handler.js';
export type { HandlerStats, HandlerStatus } from './handler.js';
export { HANDLER_DEFAULTS } from './handler-options.js';
export type { HandlerOptions, ReconnectOptions, ResolvedHandlerOptions } from './handler-options.js';
export type { LogFields, Logger, LoggerOption, WarnLogger } from './logger.js';
export type { OverflowPolicy } from './bounded-buffer.js';
export {
  configure,
  getHandler,
  optionsFromEnv,
  optionsFromFile,
  resolveOptions,
  DEFAULT_CONFIG_FILE,
} from './config.js';
export { ContextError } from './errors.js';
export type { ContextErrorCode } from './errors.js';
