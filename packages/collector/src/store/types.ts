import type { MessageMeta, WireMessage } from '@contexture/context/protocol';

/** Lifecycle of a stored context; `null` until a `born`, `finished` or `transient` message arrived. */
export type ContextStatus = 'born' | 'finished' | 'transient';

/** A context as the store holds it. Times are unix seconds. */
export interface StoredContext {
  id: string;
  /** Bumped by exactly one for every effective change (fields or status). */
  version: number;
  /**
   * The fields, listed in the stores' key order at every depth (array-index keys ascending, then
   * the others sorted), whatever order they were written in.
   */
  context: Record<string, unknown>;
  status: ContextStatus | null;
  /** Routing key of the first message that carried one. */
  rkey: string | null;
  /** Headers of the first message that carried them. */
  headers: Record<string, unknown> | null;
  /** `time_in` of the `born` (or `transient`) message. */
  born_at: number | null;
  /** When the store last changed it (the store's clock). */
  updated_at: number | null;
  /** `time_in` of the `finished` (or `transient`) message. */
  finished_at: number | null;
  /**
   * Which context of this id it is: new whenever the context is made anew (first write after it
   * did not exist: deleted, expired; or restored), as its versions then count from 1 again. A
   * client keeping a copy gives it back to `sync()` ('' : a context written before there were
   * incarnations).
   */
  incarnation: string;
}

/** A change of one value. */
export type DeltaLeaf =
  | { action: 'added'; value: unknown }
  | { action: 'modified'; old_value: unknown; value: unknown }
  | { action: 'removed'; old_value: unknown };

/**
 * A change of one field: a {@link DeltaLeaf} (its `action` is a string), or, when an object field
 * changed inside, the changes of its own fields (a map whose values are nodes again).
 */
export type DeltaNode = DeltaLeaf | { [key: string]: DeltaNode };

/** The changes of a context's fields, by field name. */
export type ContextDelta = Record<string, DeltaNode>;

/** One message of `applyMany()`, with what the bus said about it. */
export interface ApplyItem {
  message: WireMessage;
  meta?: MessageMeta;
}

/** What `apply()` and the direct writes report. */
export interface ApplyResult {
  id: string;
  /** False when the write changed nothing (a duplicate, a late message, the same value again). */
  changed: boolean;
  /** The version after the write (0 when nothing of the context is visible yet). */
  version: number;
}

/** What `sync()` answers: read-only (deeply frozen, shared between callers). */
export type SyncResult =
  | ({ type: 'full' } & StoredContext)
  | {
      type: 'delta';
      id: string;
      version: number;
      delta: ContextDelta;
      status: ContextStatus | null;
      incarnation: string;
    }
  | { type: 'no_change'; id: string; version: number; incarnation: string };

/** One event of `watch()`. */
export type ContextEvent =
  /** One version: apply `delta` to a copy at `version - 1`. */
  | {
      type: 'change';
      id: string;
      version: number;
      delta: ContextDelta;
      status: ContextStatus | null;
      updated_at: number;
      incarnation: string;
    }
  /** The context was replaced wholesale (`restore()`): a copy must `sync(id, null)` again. */
  | { type: 'reset'; id: string; version: number }
  /** The context was deleted (`delete()`). Expiry by TTL is not announced. */
  | { type: 'deleted'; id: string };

/** A row of `list()`. */
export interface ContextSummary {
  id: string;
  version: number;
  status: ContextStatus | null;
  rkey: string | null;
  born_at: number | null;
  updated_at: number | null;
  finished_at: number | null;
}

/** Options of `list()`. */
export interface ListOptions {
  /** Only contexts whose routing key matches this glob (`*`, `?`, `[...]`, `\` as in Redis). */
  rkey?: string;
  /** Only contexts of this status (`null`: those without one). */
  status?: ContextStatus | null;
  /** The `cursor` of the previous page; absent for the first. */
  cursor?: string | null;
  /**
   * Stop once this many rows are found. The Redis store never splits one SCAN batch, so a page can
   * hold a few more; nothing is skipped either way.
   * @default 100
   */
  limit?: number;
}

/** A page of `list()`: `cursor` is null after the last page. */
export interface ListPage {
  items: ContextSummary[];
  cursor: string | null;
}

/** Options of `cleanup()`. */
export interface CleanupOptions {
  /**
   * The most contexts examined in this call; the next call continues where this one stopped.
   * @default the store's `cleanupLimit`
   */
  limit?: number;
}

/** What one `cleanup()` did. */
export interface CleanupResult {
  /** Contexts examined. */
  scanned: number;
  /** Contexts deleted because they were idle (or finished) past their TTL. */
  contextsDeleted: number;
  /** Deltas dropped (older than `deltaTtl` or beyond `deltaThreshold`). */
  deltasDeleted: number;
  /** True when this call reached the end of the keyspace (the next one starts over). */
  wrapped: boolean;
}

/** Options of `watch()`. */
export interface WatchOptions {
  /**
   * Events kept for a consumer that does not keep up; past it the oldest are dropped, which the
   * consumer sees as a gap in `version` (its cue to `sync()`).
   * @default 10000
   */
  maxQueue?: number;
  /**
   * Whether a `next()` waiting for an event keeps the process alive (a `for await` over the watch
   * does not end the program while it waits); false lets the program end meanwhile, as the store's
   * own connections do when idle.
   * @default true
   */
  keepAlive?: boolean;
}

/** A subscription to one context's changes; an async iterator that unsubscribes when closed. */
export interface ContextWatch extends AsyncIterableIterator<ContextEvent> {
  /** Resolves once the subscription is live: `sync()` after this misses nothing. */
  readonly ready: Promise<void>;
  /** Events dropped because the consumer was too slow. */
  readonly dropped: number;
  /** Unsubscribes; pending `next()` calls end. Idempotent. */
  close(): Promise<void>;
}

/** The lifecycle of a store. */
export type StoreStatus = 'open' | 'closing' | 'closed';

/**
 * A versioned context store: the Redis one and the in-memory one behave alike, down to the same
 * test suite.
 */
export interface ContextStore extends AsyncDisposable {
  readonly status: StoreStatus;
  /** Folds one wire message in (one atomic step). Resolves once the store has it. */
  apply(message: WireMessage, meta?: MessageMeta): Promise<ApplyResult>;
  /**
   * Folds messages in, the same as `apply()` on each in the order given (one result per message,
   * in that order), one atomic step per context. Invalid messages reject the whole call before
   * anything is written.
   */
  applyMany(items: readonly ApplyItem[]): Promise<ApplyResult[]>;
  get(id: string): Promise<StoredContext | null>;
  /**
   * What a client at `version` (`null`: nothing) needs to be current; `null` for an unknown id.
   * With `incarnation` (what the client's last answer said), a client whose copy is of an earlier
   * context of this id (deleted or expired, and made again; or restored) gets the whole context:
   * without it, versions alone cannot tell. The answer is read-only: it is deeply frozen and
   * shared with the other callers at the same version (a store computes it once for them all).
   * Copy before changing; `applyDelta()` copies the values it takes into the client's copy.
   */
  sync(id: string, version: number | null, incarnation?: string | null): Promise<SyncResult | null>;
  /** Replaces the whole context (a write without a bus). */
  set(id: string, context: Record<string, unknown>): Promise<ApplyResult>;
  /** Deep-merges `partial` into the context (objects merge, everything else replaces). */
  update(id: string, partial: Record<string, unknown>): Promise<ApplyResult>;
  /**
   * Sets the given fields whole (no merge) and removes the `remove` ones, in one atomic step (a
   * write without a bus, as `update()`).
   */
  assign(id: string, fields: Record<string, unknown>, remove?: readonly string[]): Promise<ApplyResult>;
  /** Removes the context and its deltas; false when there was none. */
  delete(id: string): Promise<boolean>;
  list(options?: ListOptions): Promise<ListPage>;
  cleanup(options?: CleanupOptions): Promise<CleanupResult>;
  /** Starts the periodic cleaner (`interval` ms; the store's `cleanupInterval` when absent). */
  startCleaner(interval?: number): void;
  /** Changes the cleaner's interval, also while it runs; starts it when stopped. */
  setCleanupInterval(interval: number): void;
  stopCleaner(): void;
  /** Hands the context to the configured `exportCallback`; returns what it handed over. */
  export(id: string): Promise<StoredContext>;
  /** Fetches the context from the configured `restoreProvider` and stores it, keeping its version. */
  restore(id: string): Promise<StoredContext>;
  watch(id: string, options?: WatchOptions): ContextWatch;
  close(): Promise<void>;
}
