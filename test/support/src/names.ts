import { randomUUID } from 'node:crypto';

/** A name no other test (or run) uses: `<prefix>-<8 hex>`. */
export function uniqueName(prefix = 'test'): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}
