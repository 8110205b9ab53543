/**
 * Every context of a store that a filter keeps, page after page of `list()`, each id once.
 */
import type { ContextStore, ContextSummary, ListOptions } from './types.js';

/** Options of `allContexts()`: `list()`'s filters, and how many rows each page asks for. */
export interface AllContextsOptions extends Omit<ListOptions, 'cursor' | 'limit'> {
  /** The `limit` of each `list()` call. @default 500 */
  pageSize?: number;
}

/**
 * Walks `store.list()` from the first page to the last and yields each context once. Pages of the
 * Redis store come from SCAN, which returns every context present throughout the walk at least
 * once, but may return one again on a later page when Redis resizes its table between two pages
 * (as keys are deleted, by expiry or cleanup): the ids seen are kept (one string each) to skip
 * those.
 */
export async function* allContexts(
  store: Pick<ContextStore, 'list'>,
  options: AllContextsOptions = {},
): AsyncGenerator<ContextSummary> {
  const { pageSize = 500, ...filter } = options;
  const seen = new Set<string>();
  let cursor: string | null = null;
  do {
    const page = await store.list({ ...filter, cursor, limit: pageSize });
    for (const row of page.items) {
      if (seen.has(row.id)) continue;
      seen.add(row.id);
      yield row;
    }
    cursor = page.cursor;
  } while (cursor !== null);
}
