/**
 * The sync() calls of the Redis store, batched: those of one context asked for in one turn of the
 * event loop share one sync.lua call, and the callers at one version one frozen answer.
 */
import { CollectorError } from '../internal/errors.js';
import { trackCall } from '../internal/redis-client.js';
import type { RedisClient } from '../internal/cluster.js';
import { mergeRecords, parseRecord } from './delta.js';
import { deepFreeze } from './json.js';
import type { KnownContexts } from './known-contexts.js';
import type { ResolvedStoreOptions } from './options.js';
import { failure, label } from './redis-failure.js';
import { contextKeys } from './redis-keys.js';
import { hashEntry, toRecord, toStatus } from './redis-replies.js';
import { STORE_SCRIPTS } from './store-scripts.js';
import type { SyncResult } from './types.js';

/** A sync() waiting to be sent. */
export interface QueuedSync {
  version: number | null;
  incarnation: string | null;
  resolve: (r: SyncResult | null) => void;
  reject: (err: unknown) => void;
}

/** What the batcher needs of its store. */
export interface RedisSyncsOptions {
  redis: RedisClient;
  prefix: string;
  options: ResolvedStoreOptions;
  /** What the store knows of the contexts: the fields a full answer takes, what it notes. */
  known: KnownContexts;
  /** Where Redis is, as errors say it. */
  at: string;
}

/** The sync() calls of a Redis store waiting for the end of this turn, and their sending. */
export class RedisSyncs {
  private readonly redis: RedisClient;
  private readonly prefix: string;
  private readonly options: ResolvedStoreOptions;
  private readonly known: KnownContexts;
  private readonly at: string;
  /** sync() calls waiting for the end of this turn, per id. */
  private readonly queue = new Map<string, QueuedSync[]>();

  constructor(o: RedisSyncsOptions) {
    this.redis = o.redis;
    this.prefix = o.prefix;
    this.options = o.options;
    this.known = o.known;
    this.at = o.at;
  }

  /** True while calls wait to be sent. */
  get waiting(): boolean {
    return this.queue.size > 0;
  }

  /** Adds a call for `id`; the first call of a turn of the event loop sends them all at its end. */
  add(id: string, sync: QueuedSync): void {
    const waiting = this.queue.get(id);
    if (waiting !== undefined) {
      waiting.push(sync);
      return;
    }
    this.queue.set(id, [sync]);
    if (this.queue.size === 1) process.nextTick(() => this.flush());
  }

  /** Sends the calls waiting: one script call per context. */
  flush(): void {
    const queued = [...this.queue];
    this.queue.clear();
    for (const [id, waiting] of queued) {
      // One answer per distinct (version, incarnation) asked.
      const clients = new Map<string, { version: number | null; incarnation: string | null }>();
      for (const w of waiting) clients.set(syncKey(w), w);
      trackCall(this.redis, this.syncNow(id, clients)).then(
        (answers) => {
          for (const w of waiting) w.resolve(answers === null ? null : answers.get(syncKey(w))!);
        },
        (err: unknown) => {
          const failed = failure(`sync of ${label(id)}`, err, this.at);
          for (const w of waiting) w.reject(failed);
        },
      );
    }
  }

  /** The frozen answer for each client of one context, from one script call; null: unknown id. */
  private async syncNow(
    id: string,
    clients: Map<string, { version: number | null; incarnation: string | null }>,
  ): Promise<Map<string, SyncResult> | null> {
    const k = contextKeys(this.prefix, id);
    const o = this.options;
    // The fields of the version known whole, taken now (a write answered while this call is under
    // way changes what is known): when a client gets the whole context and it is still at that
    // version, Redis sends only the context's own entries and the answer takes these fields.
    const known = this.known.peek(id);
    const held =
      known?.complete === true
        ? { version: known.version, incarnation: known.incarnation, fields: new Map(known.fields) }
        : undefined;
    const args: Array<string | number> = [held === undefined ? '' : held.version, held?.incarnation ?? ''];
    for (const c of clients.values()) args.push(c.version === null ? '' : c.version, c.incarnation ?? '');
    const reply = await STORE_SCRIPTS.sync.call(
      this.redis,
      k.state,
      k.deltas,
      Date.now(),
      o.deltaTtl ?? 0,
      o.deltaThreshold,
      ...args,
    );
    if (reply === null) return null;
    const [versionText, statusText, letters, first, texts, hash, incarnationText, asKnown] = reply;
    const version = Number(versionText);
    const status = toStatus(statusText);
    const incarnation = incarnationText ?? '';
    const records = texts.map(parseRecord);
    let full: SyncResult | null = null;
    const answers = new Map<string, SyncResult>();
    [...clients].forEach(([key, { version: v }], i) => {
      const letter = letters[i];
      let answer: SyncResult;
      if (letter === 'n') {
        answer = { type: 'no_change', id, version, incarnation };
      } else if (letter === 'd') {
        const delta = mergeRecords(records.slice(v! + 1 - first));
        answer = { type: 'delta', id, version, delta, status, incarnation };
      } else {
        if (full === null) {
          const known = asKnown === 1 ? undefined : this.known.peek(id);
          const record =
            asKnown === 1 ? toRecord(id, hash ?? [], undefined, held!.fields) : toRecord(id, hash ?? [], known?.fields);
          if (known !== undefined && record !== null) {
            // The fields as they are at this version: every one of them.
            this.known.remember(
              id,
              known.fields,
              { version: record.version, incarnation: hashEntry(hash ?? [], '#in') ?? '' },
              true,
            );
          }
          if (record === null)
            throw new CollectorError('LC_STORE_CORRUPT', `the state of ${JSON.stringify(id)} has no version`);
          full = { type: 'full', ...record };
        }
        answer = full;
      }
      answers.set(key, deepFreeze(answer));
    });
    return answers;
  }
}

/** What tells the sync() calls of one context apart: the version and incarnation they give. */
function syncKey(c: { version: number | null; incarnation: string | null }): string {
  return `${c.version ?? ''}|${c.incarnation ?? ''}`;
}
