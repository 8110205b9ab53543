import type { MessageMeta, WireMessage } from '@contexture/context/protocol';
import { isPlainObject } from '@contexture/context/protocol';
import { CollectorError } from '../internal/errors.js';
import { Cleaner, type CleanerStats } from './cleaner.js';
import {
  checkFields,
  checkId,
  MAX_VALUE_DEPTH,
  resolveStoreOptions,
  tooDeepField,
  type ResolvedStoreOptions,
  type RestoredContext,
  type StoreOptions,
} from './options.js';
import type {
  ApplyItem,
  ApplyResult,
  CleanupOptions,
  CleanupResult,
  ContextStatus,
  ContextStore,
  ContextWatch,
  ListOptions,
  ListPage,
  StoredContext,
  StoreStatus,
  SyncResult,
  WatchOptions,
} from './types.js';

/** Counters of a store. */
export interface StoreStats {
  cleaner: CleanerStats;
}

const STATUSES: ReadonlySet<unknown> = new Set(['born', 'finished', 'transient', null, undefined]);

/**
 * What both stores share: option handling, the lifecycle (`close()` once, same promise to every
 * caller), the periodic cleaner, and `export()` / `restore()` on top of each store's primitives.
 */
export abstract class BaseContextStore implements ContextStore {
  protected readonly options: ResolvedStoreOptions;
  private readonly cleaner: Cleaner;
  private state: StoreStatus = 'open';
  private closing: Promise<void> | null = null;

  /** `backendKeys`: the names of the backend's own options (see resolveStoreOptions()). */
  constructor(options: StoreOptions | undefined, backendKeys: readonly string[] = []) {
    this.options = resolveStoreOptions(options, backendKeys);
    this.cleaner = new Cleaner(
      () => this.cleanup(),
      this.options.cleanupInterval ?? 60_000,
      this.options.onCleanupError,
    );
  }

  /** Starts the cleaner when the options ask for it; called by subclasses once they are ready. */
  protected startConfiguredCleaner(): void {
    if (this.options.cleanupInterval !== null) this.cleaner.start(this.options.cleanupInterval);
  }

  get status(): StoreStatus {
    return this.state;
  }

  stats(): StoreStats {
    return { cleaner: { ...this.cleaner.stats } };
  }

  protected checkOpen(): void {
    if (this.state !== 'open') throw new CollectorError('LC_STORE_CLOSED', 'the store is closed');
  }

  abstract apply(message: WireMessage, meta?: MessageMeta): Promise<ApplyResult>;
  abstract applyMany(items: readonly ApplyItem[]): Promise<ApplyResult[]>;
  abstract get(id: string): Promise<StoredContext | null>;
  abstract sync(id: string, version: number | null, incarnation?: string | null): Promise<SyncResult | null>;
  abstract set(id: string, context: Record<string, unknown>): Promise<ApplyResult>;
  abstract update(id: string, partial: Record<string, unknown>): Promise<ApplyResult>;
  abstract assign(id: string, fields: Record<string, unknown>, remove?: readonly string[]): Promise<ApplyResult>;
  abstract delete(id: string): Promise<boolean>;
  abstract list(options?: ListOptions): Promise<ListPage>;
  abstract cleanup(options?: CleanupOptions): Promise<CleanupResult>;
  abstract watch(id: string, options?: WatchOptions): ContextWatch;
  /**
   * Replaces the context with a restored one (version kept, deltas dropped) and announces a reset;
   * `updated_at` and `incarnation` are kept when given (not null, not ''), and set on `record` otherwise.
   */
  protected abstract replace(id: string, record: StoredContext): Promise<void>;
  /** Releases the backend's resources (after the cleaner stopped). */
  protected abstract shutdown(): Promise<void>;

  startCleaner(interval?: number): void {
    this.checkOpen();
    if (interval !== undefined) checkInterval(interval);
    this.cleaner.start(interval);
  }

  setCleanupInterval(interval: number): void {
    this.checkOpen();
    checkInterval(interval);
    this.cleaner.setInterval(interval);
  }

  stopCleaner(): void {
    this.cleaner.stop();
  }

  async export(id: string): Promise<StoredContext> {
    checkId(id);
    const callback = this.options.exportCallback;
    if (callback === null)
      throw new CollectorError('LC_STORE_NOT_CONFIGURED', 'export() needs the exportCallback option');
    const record = await this.get(id);
    if (record === null) throw new CollectorError('LC_STORE_NOT_FOUND', `no context ${JSON.stringify(id)}`);
    try {
      await callback(record);
    } catch (err) {
      throw new CollectorError('LC_STORE_EXPORT_FAILED', `export of ${JSON.stringify(id)} failed`, { cause: err });
    }
    return record;
  }

  async restore(id: string): Promise<StoredContext> {
    checkId(id);
    this.checkOpen();
    const provider = this.options.restoreProvider;
    if (provider === null)
      throw new CollectorError('LC_STORE_NOT_CONFIGURED', 'restore() needs the restoreProvider option');
    let got: RestoredContext | null;
    try {
      got = await provider(id);
    } catch (err) {
      throw new CollectorError('LC_STORE_RESTORE_FAILED', `the restore provider failed for ${JSON.stringify(id)}`, {
        cause: err,
      });
    }
    if (got === null || got === undefined)
      throw new CollectorError('LC_STORE_NOT_FOUND', `the restore provider has no context ${JSON.stringify(id)}`);
    const record = checkRestored(id, got);
    try {
      await this.replace(id, record);
    } catch (err) {
      // Encoding walks the context by recursion: nesting thousands deep runs out of stack before
      // anything is written.
      if (err instanceof RangeError && /call stack/i.test(err.message))
        throw new CollectorError(
          'LC_STORE_RESTORE_FAILED',
          `the restore provider gave a context nested too deep to store for ${JSON.stringify(id)}`,
          { cause: err },
        );
      throw err;
    }
    return record;
  }

  close(): Promise<void> {
    if (this.closing === null) {
      this.state = 'closing';
      this.closing = (async () => {
        try {
          await this.cleaner.close();
          await this.shutdown();
        } finally {
          this.state = 'closed';
        }
      })();
    }
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function checkInterval(interval: number): void {
  if (!Number.isSafeInteger(interval) || interval < 1) {
    throw new CollectorError(
      'LC_STORE_INVALID_ARGUMENT',
      `a cleanup interval must be an integer >= 1 (ms), got ${String(interval)}`,
    );
  }
}

function optNumber(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Checks what a restore provider gave and turns it into a stored record. */
function checkRestored(id: string, got: RestoredContext): StoredContext {
  const bad = (why: string) =>
    new CollectorError('LC_STORE_RESTORE_FAILED', `the restore provider gave ${why} for ${JSON.stringify(id)}`);
  if (!isPlainObject(got)) throw bad('something that is not an object');
  if (!isPlainObject(got.context)) throw bad('a context that is not a plain object');
  const deep = tooDeepField(got.context);
  if (deep !== undefined)
    throw bad(
      `a field (${JSON.stringify(deep).slice(0, 60)}, deeper than ${MAX_VALUE_DEPTH} levels) nested too deep to store`,
    );
  try {
    // Field names as every write takes them: well-formed Unicode (Redis would make two names one).
    checkFields('the context', got.context);
  } catch (err) {
    throw bad(`a context that cannot be stored (${(err as Error).message})`);
  }
  if (got.rkey !== undefined && got.rkey !== null && typeof got.rkey !== 'string')
    throw bad('a routing key that is not text');
  if (!Number.isSafeInteger(got.version) || got.version < 1) throw bad('a version that is not an integer >= 1');
  if (!STATUSES.has(got.status)) throw bad('an unknown status');
  if (got.headers !== undefined && got.headers !== null && !isPlainObject(got.headers))
    throw bad('headers that are not an object');
  if (got.incarnation !== undefined && typeof got.incarnation !== 'string')
    throw bad('an incarnation that is not text');
  for (const k of ['born_at', 'updated_at', 'finished_at'] as const) {
    const v = (got as Record<string, unknown>)[k];
    if (v !== undefined && v !== null && optNumber(v) === null) throw bad(`a ${k} that is not a finite number`);
  }
  return {
    id,
    version: got.version,
    context: got.context,
    status: (got.status ?? null) as ContextStatus | null,
    rkey: typeof got.rkey === 'string' ? got.rkey : null,
    headers: (got.headers ?? null) as Record<string, unknown> | null,
    born_at: optNumber(got.born_at),
    updated_at: optNumber(got.updated_at),
    finished_at: optNumber(got.finished_at),
    // '': the store's own, given by replace().
    incarnation: got.incarnation ?? '',
  };
}
