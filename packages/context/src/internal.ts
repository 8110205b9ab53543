/**
 * Plumbing shared by the sibling packages (@contexture/lcmon, @contexture/collector): URL
 * redaction, AMQP connection helpers and the one backoff function of every retry loop.
 *
 * Not public API: anything here may change or go without notice, in any release. Programs use
 * `@contexture/context` and `@contexture/context/protocol`.
 *
 * @packageDocumentation
 */
export { AMQP_HEARTBEAT_SECONDS, amqpRefusal, withAmqpHeartbeat } from './amqp-url.js';
export { watchSilence } from './amqp-watchdog.js';
export { AmqpNodes, amqpHostPort, parseAmqpUrls, redactUrls } from './amqp-nodes.js';
export type { AmqpUrlList } from './amqp-nodes.js';
export { backoffDelay } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export { hostPort, redactText, redactUrl } from './redact.js';
export { errorFields, isLogger, isLoggerOption, textLogger, toLogger } from './logger.js';
export {
  DEFAULT_WEB_HOST,
  isLoopback,
  PAGE_HEADERS,
  PageFiles,
  pageJson,
  parseListenAddress,
} from './page-server.js';
export type { ListenAddress } from './page-server.js';
