export { Context } from './context.js';
export type { ChangeLogger, ContextConstructor, ContextLog, ContextMembers, ContextOptions } from './context.js';
export { Handler } from './handler.js';
export type { HandlerStats, HandlerStatus } from './handler.js';
export { HANDLER_DEFAULTS } from './handler-options.js';
export type { HandlerOptions, ReconnectOptions, ResolvedHandlerOptions, WarnLogger } from './handler-options.js';
export {
  configure,
  getHandler,
  optionsFromEnv,
  optionsFromFile,
  resolveOptions,
  DEFAULT_CONFIG_FILE,
} from './config.js';
export { BoundedBuffer } from './bounded-buffer.js';
export type { OverflowPolicy } from './bounded-buffer.js';
export { ContextError } from './errors.js';
export type { ContextErrorCode } from './errors.js';
export { hostPort, redactText, redactUrl } from './redact.js';
export { AMQP_HEARTBEAT_SECONDS, amqpRefusal, withAmqpHeartbeat } from './amqp-url.js';
