import type { MessageMeta, WireMessage } from '@contexture/context/protocol';
import { CollectorError } from '../internal/errors.js';
import { BaseContextStore } from './base-store.js';
import { mergeRecords, recordEvent, type DeltaRecord, type FieldChange } from './delta.js';
import {
  ABSENT_VALUE,
  copyFields,
  freezeBatch,
  freshObjects,
  mergeField,
  replaceChanges,
  replaceField,
  replaceWhole,
  type FreshObjects,
} from './field-changes.js';
import { globToRegExp } from './glob.js';
import { deepFreeze, encodeValue, keepFrozen, ownValue } from './json.js';
import {
  deltasFrom,
  dropDeltas,
  entryRecord,
  heavierThanContext,
  keepDelta,
  messageTexts,
  newEntry,
  pruneDeltas,
  recordAtPaths,
  summary,
  type Entry,
  type Field,
} from './memory-entry.js';
import {
  checkCleanupOptions,
  checkApplyItems,
  checkFields,
  checkId,
  checkIncarnation,
  checkListOptions,
  checkWatchOptions,
  checkRemove,
  metaHeadersText,
  checkVersion,
  ttlFor,
  type StoreOptions,
} from './options.js';
import type {
  ApplyItem,
  ApplyResult,
  CleanupOptions,
  CleanupResult,
  ContextEvent,
  ContextSummary,
  ContextWatch,
  ListOptions,
  ListPage,
  StoredContext,
  SyncResult,
  WatchOptions,
} from './types.js';
import { WatchQueue } from './watch-queue.js';

/** Options of {@link MemoryContextStore}: the retention and hooks every store has. */
export type MemoryContextStoreOptions = StoreOptions;

/** The most merges, or objects they made, kept unfrozen in one turn before they are sealed. */
const MAX_FRESH = 4096;

/** A sync() waiting for the end of this turn (see MemoryContextStore.sync()). */
interface WaitingSync {
  version: number | null;
  incarnation: string | null;
  resolve: (r: SyncResult | null) => void;
  reject: (err: unknown) => void;
}

/**
 * The in-memory context store: the embedded default for single-process use and for tests of user
 * code. Same interface and same rules as {@link RedisContextStore}; TTLs are enforced on access and
 * by `cleanup()`.
 *
 * @example
 * const store = new MemoryContextStore({ deltaThreshold: 50 });
 * await store.set('room:1', { topic: 'hello' });
 * await store.update('room:1', { topic: 'bye' });
 * await store.sync('room:1', 1); // { type: 'delta', version: 2, delta: { topic: { action: 'modified', … } } }
 */
export class MemoryContextStore extends BaseContextStore {
  private readonly entries = new Map<string, Entry>();
  private readonly watchers = new Map<string, Set<WatchQueue>>();
  private nextOrd = 1;
  private sweep: Iterator<[string, Entry]> | null = null;
  /**
   * The batch of the merging updates of this turn (see mergeField()): the objects they made are not
   * frozen yet, changed in place by the merges after them, and seen by nothing but the store's
   * fields until seal().
   */
  private readonly fresh: FreshObjects = freshObjects();
  /** The fields those merges wrote (each once), made the store's own values by seal(). */
  private readonly freshFields = new Set<Field>();
  /** sync() calls waiting for the end of this turn, per id (see sync()). */
  private readonly waitingSyncs = new Map<string, WaitingSync[]>();
  private sealQueued = false;

  constructor(options?: MemoryContextStoreOptions) {
    super(options);
    this.startConfiguredCleaner();
  }

  async apply(message: WireMessage, meta?: MessageMeta): Promise<ApplyResult> {
    this.checkOpen();
    const texts = messageTexts(message);
    const headers = metaHeadersText(meta);
    this.seal();
    return this.applyTexts(message, meta, texts, headers);
  }

  /** apply() of a message whose fields' texts are known (see messageTexts()). */
  private applyTexts(
    message: WireMessage,
    meta: MessageMeta | undefined,
    texts: Array<[string, string | undefined]>,
    headersText: string | undefined,
  ): ApplyResult {
    const id = message.obj_id;
    const del = message.action === 'delete';
    const now = Date.now();
    let e = this.live(id, now);
    const created = e === undefined;
    if (e === undefined) e = newEntry(0);
    const seq = message.seq === undefined ? e.hs + 1 : message.seq;
    let wrote = false;
    if (seq > e.hs) {
      e.hs = seq;
      wrote = true;
    }
    const changes: FieldChange[] = [];
    for (const [k, text] of texts) {
      const s = e.seqs.get(k);
      if (s !== undefined && seq <= s) continue;
      e.seqs.set(k, seq);
      wrote = true;
      const old = e.fields.get(k);
      if (del) {
        if (old !== undefined) {
          e.fields.delete(k);
          changes.push({ k, o: old.value });
        }
      } else if (old === undefined || encodeValue(old.value) !== text) {
        const value = ownValue(text!);
        e.fields.set(k, { value });
        changes.push(old === undefined ? { k, n: value } : { k, o: old.value, n: value });
      }
    }
    let statusChanged = false;
    const status = message.status;
    const ti = message.time_in ?? now / 1000;
    if (status === 'born') {
      if (e.status === null) {
        e.status = 'born';
        statusChanged = true;
      }
      if (e.bornAt === null) {
        e.bornAt = ti;
        wrote = true;
      }
    } else if (
      (status === 'finished' || status === 'transient') &&
      e.status !== 'finished' &&
      e.status !== 'transient'
    ) {
      e.status = status;
      statusChanged = true;
      e.finishedAt = ti;
      if (status === 'transient' && e.bornAt === null) e.bornAt = ti;
    }
    if (meta?.rkey !== undefined && e.rkey === null) {
      e.rkey = meta.rkey;
      wrote = true;
    }
    if (headersText !== undefined && e.headers === null) {
      e.headers = headersText;
      wrote = true;
    }
    const changed = changes.length > 0 || statusChanged;
    if (!changed && !wrote) return { id, changed: false, version: e.version };
    if (created) this.insert(id, e);
    this.commit(id, e, now, changes, changed);
    return { id, changed, version: e.version };
  }

  /** `apply()` on each message in order; nothing is applied when one of them is invalid. */
  async applyMany(items: readonly ApplyItem[]): Promise<ApplyResult[]> {
    checkApplyItems(items);
    this.checkOpen();
    // Every message checked and encoded first: nothing is applied when one of them cannot be.
    const texts = items.map((item) => messageTexts(item.message));
    const headers = items.map((item) => metaHeadersText(item.meta));
    this.seal();
    return items.map(({ message, meta }, i) => this.applyTexts(message, meta, texts[i]!, headers[i]));
  }

  async get(id: string): Promise<StoredContext | null> {
    checkId(id);
    this.checkOpen();
    this.seal();
    const e = this.live(id, Date.now());
    if (e === undefined || e.version === 0) return null;
    return entryRecord(id, e);
  }

  /**
   * As in the Redis store, the sync() calls of one turn (the code that runs before the next
   * microtask) are answered together at its end, from the state the writes of that turn left: the
   * callers of one context at one version share one frozen answer, made once.
   */
  async sync(id: string, version: number | null, incarnation?: string | null): Promise<SyncResult | null> {
    checkId(id);
    const v = checkVersion(version);
    const inc = checkIncarnation(incarnation);
    this.checkOpen();
    return new Promise((resolve, reject) => {
      const waiting = this.waitingSyncs.get(id);
      const w: WaitingSync = { version: v, incarnation: inc, resolve, reject };
      if (waiting !== undefined) {
        waiting.push(w);
        return;
      }
      this.waitingSyncs.set(id, [w]);
      if (this.waitingSyncs.size === 1) queueMicrotask(() => this.answerSyncs());
    });
  }

  /** Answers the sync() calls waiting (see sync()). */
  private answerSyncs(): void {
    this.seal();
    const now = Date.now();
    for (const [id, waiting] of this.waitingSyncs) {
      for (const w of waiting) {
        try {
          w.resolve(this.syncNow(id, w.version, w.incarnation, now));
        } catch (err) {
          w.reject(err);
        }
      }
    }
    this.waitingSyncs.clear();
  }

  /** The answer to a client of `id` at version `v` of incarnation `inc`, now. */
  private syncNow(id: string, v: number | null, inc: string | null, now: number): SyncResult | null {
    const e = this.live(id, now);
    if (e === undefined || e.version === 0) return null;
    // A copy of another context of this id: versions say nothing about it.
    if (inc !== null && inc !== e.incarnation) return this.fullAnswer(id, e);
    if (v === e.version)
      return Object.freeze({ type: 'no_change', id, version: v, incarnation: e.incarnation }) as SyncResult;
    // Participants of one context sync after the same changes: each answer is computed once per
    // version and handed out frozen to every caller (see ContextStore.sync()).
    e.answers ??= { full: null, deltas: new Map() };
    if (v !== null && v < e.version) {
      const from = deltasFrom(e, v + 1, now, this.options.deltaTtl);
      if (from >= 0) {
        let answer = e.answers.deltas.get(v);
        if (answer === undefined) {
          const records = from === 0 ? e.deltas : e.deltas.slice(from);
          if (heavierThanContext(records, e)) {
            // As in the Redis store: less to hand over and to apply than the records.
            answer = this.fullAnswer(id, e);
          } else {
            const delta = mergeRecords(records.map(recordAtPaths));
            answer = deepFreeze<SyncResult>({
              type: 'delta',
              id,
              version: e.version,
              delta,
              status: e.status,
              incarnation: e.incarnation,
            });
          }
          e.answers.deltas.set(v, answer);
        }
        return answer;
      }
    }
    return this.fullAnswer(id, e);
  }

  /** The whole context as sync() hands it out: frozen, shared until the next write. */
  private fullAnswer(id: string, e: Entry): SyncResult {
    e.answers ??= { full: null, deltas: new Map() };
    e.answers.full ??= deepFreeze<SyncResult>({ type: 'full', ...entryRecord(id, e, false) });
    return e.answers.full;
  }

  async set(id: string, context: Record<string, unknown>): Promise<ApplyResult> {
    checkId(id);
    checkFields('context', context);
    this.checkOpen();
    return this.write(
      id,
      (current, changes) => {
        const next = new Map<string, unknown>();
        // Recorded as whole fields: the same deltas, far less to make and keep (see replaceWhole()).
        for (const k of Object.keys(context)) next.set(k, replaceWhole(k, current(k), context[k], changes));
        return next;
      },
      true,
    );
  }

  async update(id: string, partial: Record<string, unknown>): Promise<ApplyResult> {
    checkId(id);
    checkFields('partial', partial);
    this.checkOpen();
    // What JSON makes of it, as the Redis store takes it (a Date is its text, not an object to merge into).
    const own = copyFields(partial);
    return this.merge(id, own);
  }

  async assign(id: string, fields: Record<string, unknown>, remove: readonly string[] = []): Promise<ApplyResult> {
    checkId(id);
    checkFields('fields', fields);
    const gone = checkRemove(remove, fields);
    this.checkOpen();
    return this.write(id, (current, changes) => {
      const next = new Map<string, unknown>();
      for (const k of Object.keys(fields)) replaceField(next, k, current(k), fields[k], changes);
      for (const k of gone) next.set(k, replaceChanges(k, current(k), undefined, changes));
      return next;
    });
  }

  async delete(id: string): Promise<boolean> {
    checkId(id);
    this.checkOpen();
    this.seal();
    const e = this.live(id, Date.now());
    if (e === undefined) return false;
    this.entries.delete(id);
    if (e.version === 0) return false;
    this.publish(id, { type: 'deleted', id });
    return true;
  }

  async list(options: ListOptions = {}): Promise<ListPage> {
    checkListOptions(options);
    this.checkOpen();
    const limit = options.limit ?? 100;
    const cursor = options.cursor ?? null;
    if (cursor !== null && !/^\d+$/.test(cursor))
      throw new CollectorError(
        'LC_STORE_INVALID_ARGUMENT',
        `cursor ${JSON.stringify(cursor.slice(0, 40))} is not one a page gave`,
      );
    const after = cursor === null ? 0 : Number(cursor);
    const re = options.rkey === undefined ? null : globToRegExp(options.rkey);
    const now = Date.now();
    const items: ContextSummary[] = [];
    let last = after;
    for (const [id, e] of this.entries) {
      if (e.ord <= after) continue;
      if (items.length >= limit) return { items, cursor: String(last) };
      last = e.ord;
      if (e.expiresAt !== 0 && now >= e.expiresAt) continue;
      if (e.version === 0) continue;
      if (options.status !== undefined && e.status !== options.status) continue;
      if (re !== null && (e.rkey === null || !re.test(e.rkey))) continue;
      items.push(summary(id, e));
    }
    return { items, cursor: null };
  }

  async cleanup(options: CleanupOptions = {}): Promise<CleanupResult> {
    checkCleanupOptions(options);
    this.checkOpen();
    const limit = options.limit ?? this.options.cleanupLimit;
    const now = Date.now();
    const result: CleanupResult = { scanned: 0, contextsDeleted: 0, deltasDeleted: 0, wrapped: false };
    this.sweep ??= this.entries.entries();
    while (result.scanned < limit) {
      const step = this.sweep.next();
      if (step.done === true) {
        this.sweep = null;
        result.wrapped = true;
        break;
      }
      const [id, e] = step.value;
      result.scanned++;
      const ttl = ttlFor(this.options, e.status === 'finished' || e.status === 'transient');
      if ((e.expiresAt !== 0 && now >= e.expiresAt) || (ttl > 0 && now - e.touched >= ttl)) {
        this.entries.delete(id);
        result.contextsDeleted++;
        continue;
      }
      result.deltasDeleted += pruneDeltas(e, now, this.options);
    }
    return result;
  }

  watch(id: string, options: WatchOptions = {}): ContextWatch {
    checkId(id);
    checkWatchOptions(options);
    this.checkOpen();
    let set = this.watchers.get(id);
    if (set === undefined) {
      set = new Set();
      this.watchers.set(id, set);
    }
    const watchers = set;
    const q: WatchQueue = new WatchQueue(
      options.maxQueue ?? 10_000,
      Promise.resolve(),
      async () => {
        watchers.delete(q);
        if (watchers.size === 0 && this.watchers.get(id) === watchers) this.watchers.delete(id);
      },
      options.keepAlive ?? true,
    );
    watchers.add(q);
    return q;
  }

  protected async replace(id: string, record: StoredContext): Promise<void> {
    this.seal();
    const now = Date.now();
    const e = newEntry(this.nextOrd++);
    e.version = record.version;
    e.status = record.status;
    e.rkey = record.rkey;
    e.headers = record.headers === null ? null : (encodeValue(record.headers) ?? null);
    e.bornAt = record.born_at;
    e.finishedAt = record.finished_at;
    e.updated = record.updated_at === null ? now : Math.round(record.updated_at * 1000);
    e.touched = now;
    if (record.incarnation !== '') e.incarnation = record.incarnation;
    for (const k of Object.keys(record.context)) {
      const text = encodeValue(record.context[k]);
      if (text !== undefined) e.fields.set(k, { value: ownValue(text) });
    }
    const ttl = ttlFor(this.options, e.status === 'finished' || e.status === 'transient');
    e.expiresAt = ttl > 0 ? now + ttl : 0;
    this.entries.delete(id);
    this.entries.set(id, e);
    record.updated_at = e.updated / 1000;
    record.incarnation = e.incarnation;
    this.publish(id, { type: 'reset', id, version: e.version });
  }

  protected async shutdown(): Promise<void> {
    this.seal();
    for (const set of this.watchers.values()) for (const q of [...set]) await q.close();
    this.watchers.clear();
  }

  /** The entry of `id`, or undefined when there is none or it expired (then it is removed). */
  private live(id: string, now: number): Entry | undefined {
    const e = this.entries.get(id);
    if (e === undefined) return undefined;
    if (e.expiresAt !== 0 && now >= e.expiresAt) {
      this.entries.delete(id);
      return undefined;
    }
    if (e.deltasExpireAt !== 0 && now >= e.deltasExpireAt) {
      dropDeltas(e);
      e.deltasExpireAt = 0;
    }
    return e;
  }

  private insert(id: string, e: Entry): void {
    e.ord = this.nextOrd++;
    this.entries.set(id, e);
  }

  /**
   * A direct write: `build` makes the new values of the fields it writes (ABSENT_VALUE: removed)
   * from their current ones, pushing what changed; with `replaceAll` every other field is removed.
   * It runs in full before anything changes, so a value that cannot be encoded leaves the context
   * as it was. Written fields are stamped with the highest seq seen, so a late bus message older
   * than the write never undoes it and any newer one wins.
   */
  private write(
    id: string,
    build: (current: (k: string) => unknown, changes: FieldChange[]) => Map<string, unknown>,
    replaceAll = false,
  ): ApplyResult {
    // It may share or hand out what the merges made: they are frozen first.
    this.seal();
    const now = Date.now();
    let e = this.live(id, now);
    const created = e === undefined;
    if (e === undefined) e = newEntry(0);
    const fields = e.fields;
    const changes: FieldChange[] = [];
    const next = build((k) => {
      const f = fields.get(k);
      return f === undefined ? ABSENT_VALUE : f.value;
    }, changes);
    const stamp = e.hs;
    if (replaceAll) {
      for (const [k, old] of fields) {
        if (next.has(k)) continue;
        fields.delete(k);
        e.seqs.set(k, stamp);
        changes.push({ k, o: old.value });
      }
    }
    for (const [k, value] of next) {
      if (value === ABSENT_VALUE) {
        if (!fields.delete(k)) continue;
      } else {
        // The field's own record, kept: a field written again and again makes nothing new.
        const f = fields.get(k);
        if (f === undefined) fields.set(k, { value });
        else f.value = value;
      }
      e.seqs.set(k, stamp);
    }
    // A direct write makes the context exist: creating it is a change even with no fields.
    const changed = changes.length > 0 || e.version === 0;
    if (created) this.insert(id, e);
    this.commit(id, e, now, changes, changed);
    return { id, changed, version: e.version };
  }

  /**
   * The write of update(): each field of `own` (from copyFields()) merged into the one there, as
   * write() writes it. Merged values share what they keep with the stored ones (see
   * mergeChanges()); the objects the merges of this turn made are changed in place by the next
   * ones (see seal()).
   */
  private merge(id: string, own: Record<string, unknown>): ApplyResult {
    const now = Date.now();
    let e = this.live(id, now);
    const created = e === undefined;
    if (e === undefined) e = newEntry(0);
    const fields = e.fields;
    const fresh = this.fresh;
    const changes: FieldChange[] = [];
    const keys = Object.keys(own);
    const values = keys.map((k) => {
      const f = fields.get(k);
      return mergeField(k, f === undefined ? ABSENT_VALUE : f.value, own[k], changes, fresh);
    });
    const stamp = e.hs;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const value = values[i];
      let f = fields.get(k);
      if (value === ABSENT_VALUE) {
        if (!fields.delete(k)) continue;
      } else {
        if (f === undefined) fields.set(k, (f = { value }));
        else f.value = value;
        if (fresh.made.length > 0) this.freshFields.add(f);
      }
      e.seqs.set(k, stamp);
    }
    if (fresh.made.length > 0) this.sealLater();
    // A direct write makes the context exist: creating it is a change even with no fields.
    const changed = changes.length > 0 || e.version === 0;
    if (created) this.insert(id, e);
    this.commit(id, e, now, changes, changed);
    return { id, changed, version: e.version };
  }

  /** Has the batch of merges sealed at the end of the turn, or now when it grew long (see seal()). */
  private sealLater(): void {
    // A long turn of merges is sealed as it goes: what they replaced is then garbage.
    if (this.freshFields.size >= MAX_FRESH || this.fresh.made.length >= MAX_FRESH) this.seal();
    else if (!this.sealQueued) {
      this.sealQueued = true;
      queueMicrotask(() => this.seal());
    }
  }

  /** Bumps the version and records the delta when something changed; refreshes the TTLs. */
  private commit(id: string, e: Entry, now: number, changes: FieldChange[], changed: boolean): void {
    e.touched = now;
    e.answers = null;
    const ttl = ttlFor(this.options, e.status === 'finished' || e.status === 'transient');
    if (ttl > 0) e.expiresAt = now + ttl;
    if (!changed) return;
    e.version++;
    e.updated = now;
    const rec: DeltaRecord = { v: e.version, t: now, c: changes };
    if (e.status !== null) rec.s = e.status;
    keepDelta(e, rec, this.options, now, ttl);
    const set = this.watchers.get(id);
    if (set !== undefined && set.size > 0) this.publish(id, recordEvent(id, rec, e.incarnation, true));
  }

  /**
   * Ends the turn's batch of merges (see update()): freezes the objects they made and makes the
   * values of the fields they wrote the store's own, so that they can be shared and handed out.
   */
  private seal(): void {
    this.sealQueued = false;
    if (this.freshFields.size === 0 && this.fresh.made.length === 0) return;
    freezeBatch(null, this.fresh);
    for (const f of this.freshFields) keepFrozen(f.value);
    this.freshFields.clear();
  }

  private publish(id: string, event: ContextEvent): void {
    const set = this.watchers.get(id);
    if (set === undefined) return;
    for (const q of set) q.push(event);
  }
}
