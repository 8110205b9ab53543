/** `@contexture/collector/registry`: the `Registry` of live handlers, collectors and backends in Redis. */
export { CollectorError } from '../internal/errors.js';
export type { CollectorErrorCode } from '../internal/errors.js';
export { REGISTRY_DEFAULTS, Registry } from './registry.js';
export type {
  RegistryEntry,
  RegistryListOptions,
  RegistryMetrics,
  RegistryOptions,
  RegistryRecord,
} from './registry.js';
