import { isPlainObject, setOwn, type MessageMeta, type WireMessage } from '@contexture/context/protocol';
import type { Redis } from 'ioredis';
import { CollectorError } from '../internal/errors.js';
import { BaseContextStore } from './base-store.js';
import {
  ABSENT_VALUE,
  changesText,
  copyFields,
  forField,
  freezeBatch,
  mergeField,
  type FreshObjects,
  mergeRecords,
  ownCopy,
  parseRecord,
  recordEvent,
  replaceChanges,
  type FieldChange,
} from './delta.js';
import { escapeGlob, globToRegExp } from './glob.js';
import { decodeValue, deepFreeze, encodeValue, inKeyOrder, ownValue } from './json.js';
import {
  checkCleanupOptions,
  checkFields,
  checkId,
  checkIncarnation,
  checkListOptions,
  checkMessage,
  checkRemove,
  checkVersion,
  ttlFor,
  type StoreOptions,
} from './options.js';
import { STORE_SCRIPTS } from './store-scripts.js';
import type {
  ApplyItem,
  ApplyResult,
  CleanupOptions,
  CleanupResult,
  ContextEvent,
  ContextStatus,
  ContextSummary,
  ContextWatch,
  ListOptions,
  ListPage,
  StoredContext,
  SyncResult,
  WatchOptions,
} from './types.js';
import { WatchQueue } from './watch-queue.js';
import {
  closeClient,
  redisAddress,
  REFUSED,
  resolveRedis,
  scrubAuth,
  trackCall,
  unreachable,
} from '../internal/redis-client.js';

/** Options of {@link RedisContextStore}. */
export interface RedisContextStoreOptions extends StoreOptions {
  /**
   * An ioredis client (the caller keeps owning it) or a Redis URL (the store creates its client and
   * closes it in `close()`).
   * @default 'redis://127.0.0.1:6379'
   */
  redis?: Redis | string;
  /**
   * Start of every key and channel of the store.
   * @default 'contexture:'
   */
  prefix?: string;
  /**
   * Publish every change on the context's channel (what `watch()` listens to).
   * @default true
   */
  publish?: boolean;
  /**
   * COUNT hint of the SCANs of `list()` and `cleanup()`.
   * @default 500
   */
  scanCount?: number;
  /**
   * The most contexts `applyMany()` folds in one script call. Several share the call's fixed cost;
   * their keys are all declared, but in different slots: use 1 with Redis Cluster (one slot per
   * call).
   * @default 100
   */
  contextsPerCall?: number;
  /**
   * How many contexts' fields, as this store last wrote or read them, it remembers (text, and the
   * parsed value once used, with the version and incarnation they are known at): merging updates
   * start from them without reading the fields first, a `set()` of a context known whole sends the
   * changes it works out from them (its records then hold only what changed, at the paths that
   * changed), and a full sync() answer of the version it knows whole takes the fields from what
   * it knows (Redis sends only the rest), of another version reuses the parsed values of the texts
   * it finds unchanged.
   * Such writes check that the context is still at that version and incarnation (else they read
   * and merge again, or write the whole context). 0: none.
   * @default 256
   */
  knownContexts?: number;
}

type RedisStoreSettings = {
  redis: Redis | string;
  prefix: string;
  publish: boolean;
  scanCount: number;
  contextsPerCall: number;
  knownContexts: number;
};

export const REDIS_STORE_DEFAULTS: Readonly<RedisStoreSettings> = Object.freeze({
  redis: 'redis://127.0.0.1:6379',
  prefix: 'contexture:',
  publish: true,
  scanCount: 500,
  contextsPerCall: 100,
  knownContexts: 256,
});

/** A field as the store last wrote or read it: its canonical text ('' : absent), its value once parsed. */
interface KnownField {
  text: string;
  value?: unknown;
}

/** What the store knows of a context: fields as they are at `version` of incarnation `incarnation`. */
interface KnownContext {
  fields: Map<string, KnownField>;
  version: number;
  /** The context's #in ('' : it has none). */
  incarnation: string;
  /** `fields` are all the context has. */
  complete: boolean;
  /**
   * The stamp ('<#hs>:') and status ('' : none) a write of this version found, undefined when
   * unknown: with both, merges send values stamped and records made (see write.lua's 'rmerge'). The
   * status goes with the version; the stamp may have moved since (a bus message that changed
   * nothing), and write.lua then stamps the values anew.
   */
  stamp?: string;
  status?: string;
}

/** The keys of one context; both share the `{id}` hash tag, so each script touches one slot. */
export interface ContextKeys {
  /** Hash: '.'<field> → '<seq>:<JSON>' (a tombstone '<seq>:'), '#v', '#st', … the context's own. */
  state: string;
  /** List of delta records, oldest first. */
  deltas: string;
  /** Pub/sub channel of its changes. */
  channel: string;
}

/** A sync() waiting to be sent (see RedisContextStore.sync()). */
interface QueuedSync {
  version: number | null;
  incarnation: string | null;
  resolve: (r: SyncResult | null) => void;
  reject: (err: unknown) => void;
}

/**
 * A direct write or delete asked for, waiting for its turn: those of one context go to Redis in the
 * order asked (see RedisContextStore.runOps()).
 */
type DirectOp =
  | {
      kind: 'merge';
      partial: Record<string, unknown>;
      attempts: number;
      resolve: (r: ApplyResult) => void;
      reject: (err: unknown) => void;
    }
  | {
      kind: 'set';
      context: Record<string, unknown>;
      spec?: WriteSpec;
      resolve: (r: ApplyResult) => void;
      reject: (err: unknown) => void;
    }
  | { kind: 'patch'; pairs: string[]; resolve: (r: ApplyResult) => void; reject: (err: unknown) => void }
  | { kind: 'delete'; resolve: (removed: boolean) => void; reject: (err: unknown) => void }
  /** Bus messages of a context with direct writes asked for before them: apply.lua's arguments after its keys. */
  | { kind: 'apply'; args: Array<string | number>; resolve: (reply: number[]) => void; reject: (err: unknown) => void };

/** What write.lua answers for one write. */
interface WriteReply {
  /**
   * Version and changed (1 or 0) per version asked for: one pair, or one per `versions` of a
   * 'merge'; -1 when its check failed, -2 when it was not tried (a check before it failed).
   */
  replies: number[];
  /** The context's incarnation after the call. */
  incarnation: string;
}

/** One write of a write.lua call (write.lua tells the modes apart), and what to do with its reply. */
interface WriteSpec {
  mode: 'set' | 'patch' | 'merge' | 'mergeorset';
  checks: string[];
  pairs: string[];
  /** 'merge' / 'mergeorset': the changes of each version it makes, as JSON (see changesText()). */
  versions: string[];
  /**
   * 'merge' / 'mergeorset' made from a context whose stamp and status are known, at `version`:
   * sent ready (see write.lua's 'rmerge'), the values stamped and the records made here.
   */
  ready?: { stamp: string; status: string; version: number };
  /** The ops it carries, in order. */
  ops: DirectOp[];
  /** Settles its ops from its reply; false when its check failed (the ops are then not settled). */
  done: (reply: WriteReply) => boolean;
}

const STATUS: Record<string, ContextStatus> = { born: 'born', finished: 'finished', transient: 'transient' };

/** The watches of one context's channel: one subscription for all of them. */
interface WatchEntry {
  id: string;
  queues: Set<WatchQueue>;
  ready: Promise<void>;
  /** The context's incarnation, as its last message said. */
  incarnation: string;
}

/**
 * The context store in Redis: one Lua script call per message, atomic and idempotent, versions and
 * deltas kept per context, every change published on the context's channel.
 *
 * Layout (P = prefix): `P ctx:{id}`, a hash holding the fields (`.name` → `<seq>:<JSON>`, the seq
 * kept so that late messages lose; a deleted field leaves `<seq>:`) and the context's own entries
 * (`#v` version, `#st` status, `#hs` highest seq, times, …); `P ctx:{id}:d`, the list of delta
 * records; channel `P ctx:{id}:changes` (the delta records of one script call, one a line).
 *
 * @example
 * const store = new RedisContextStore({ redis: 'redis://127.0.0.1:6379', prefix: 'app:' });
 * await store.apply({ obj_id: 'r1', obj: { user: 'ann' }, status: 'born', seq: 0 });
 * const copy = await store.sync('r1', null);
 */
export class RedisContextStore extends BaseContextStore {
  readonly redis: Redis;
  readonly prefix: string;
  private readonly owned: boolean;
  private readonly publish: boolean;
  private readonly scanCount: number;
  private readonly contextsPerCall: number;
  private readonly knownContexts: number;
  /** Per id, the fields as last written or read (see RedisContextStoreOptions.knownContexts); oldest use first. */
  private readonly known = new Map<string, KnownContext>();
  private subscriber: Redis | null = null;
  /** Per channel: its id, its watchers, and the incarnation its last message named. */
  private readonly watchers = new Map<string, WatchEntry>();
  private cleanupCursor = '0';
  /** Direct writes and deletes not sent yet, per id, in the order asked (see runOps()). */
  private readonly directOps = new Map<string, DirectOp[]>();
  /** Per id, its direct writes being sent and answered, one call after another (see runOps()). */
  private readonly running = new Map<string, Promise<void>>();
  /** sync() calls waiting for the end of this turn, per id (see sync()). */
  private readonly syncQueue = new Map<string, QueuedSync[]>();

  /** Where Redis is, as errors say it (host:port, or the socket path). */
  private readonly at: string;

  /** The last connection error of a client the store owns (it is retried, not thrown). */
  lastRedisError: string | null = null;

  constructor(options: RedisContextStoreOptions = {}) {
    super(options, Object.keys(REDIS_STORE_DEFAULTS));
    const o: RedisStoreSettings = { ...REDIS_STORE_DEFAULTS };
    if (options.redis !== undefined) o.redis = options.redis;
    if (options.prefix !== undefined) o.prefix = options.prefix;
    if (options.publish !== undefined) o.publish = options.publish;
    if (options.scanCount !== undefined) o.scanCount = options.scanCount;
    if (options.contextsPerCall !== undefined) o.contextsPerCall = options.contextsPerCall;
    if (options.knownContexts !== undefined) o.knownContexts = options.knownContexts;
    if (typeof o.prefix !== 'string') throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'prefix must be a string');
    if (typeof o.publish !== 'boolean')
      throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'publish must be a boolean');
    if (!Number.isSafeInteger(o.scanCount) || o.scanCount < 1)
      throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'scanCount must be an integer >= 1');
    if (!Number.isSafeInteger(o.contextsPerCall) || o.contextsPerCall < 1)
      throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'contextsPerCall must be an integer >= 1');
    if (!Number.isSafeInteger(o.knownContexts) || o.knownContexts < 0)
      throw new CollectorError('LC_STORE_INVALID_ARGUMENT', 'knownContexts must be an integer >= 0');
    const client = resolveRedis(o.redis, (message) => (this.lastRedisError = message));
    if (typeof client === 'string') throw new CollectorError('LC_STORE_INVALID_ARGUMENT', client);
    this.redis = client.redis;
    this.owned = client.owned;
    this.at = redisAddress(this.redis);
    this.prefix = o.prefix;
    this.publish = o.publish;
    this.scanCount = o.scanCount;
    this.contextsPerCall = o.contextsPerCall;
    this.knownContexts = o.knownContexts;
    this.startConfiguredCleaner();
  }

  /** A failed Redis call of `what` as a CollectorError naming where Redis is (see failure()). */
  private failure(what: string, err: unknown): unknown {
    return failure(what, err, this.at);
  }

  /** `call()`, its Redis failures made CollectorErrors (see failure()) saying `what()`. */
  private async reaching<T>(what: () => string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw this.failure(what(), err);
    }
  }

  /** The keys and channel of a context. */
  keys(id: string): ContextKeys {
    const state = `${this.prefix}ctx:{${id}}`;
    return { state, deltas: `${state}:d`, channel: `${state}:changes` };
  }

  async apply(message: WireMessage, meta?: MessageMeta): Promise<ApplyResult> {
    return (await this.applyMany([{ message, meta }]))[0]!;
  }

  /**
   * Folds messages in as `apply()` would in their order: the messages of one `obj_id` go to Redis
   * together, up to `contextsPerCall` contexts in one script call, the calls pipelined. Nothing is
   * written when a message is invalid. The messages of a context with direct writes asked for
   * before them and not done yet go after those, in a call of their own (see runOps()).
   */
  async applyMany(items: readonly ApplyItem[]): Promise<ApplyResult[]> {
    this.checkOpen();
    const objs = items.map((item) => checkMessage(item.message));
    const now = Date.now();
    const nowSeconds = String(now / 1000);
    // Per context, in order of first appearance: its messages' arguments and their indexes.
    const groups = new Map<string, { args: Array<string | number>; at: number[] }>();
    items.forEach(({ message, meta }, i) => {
      const id = message.obj_id;
      let g = groups.get(id);
      if (g === undefined) {
        g = { args: [0], at: [] };
        groups.set(id, g);
      }
      g.at.push(i);
      const args = g.args;
      const del = message.action === 'delete';
      const headers = meta?.headers;
      args.push(
        message.seq === undefined ? '' : message.seq,
        message.status ?? '',
        message.time_in === undefined ? nowSeconds : String(message.time_in),
        del ? '1' : '0',
        meta?.rkey ?? '',
        meta?.rkey === undefined ? '0' : '1',
        headers === undefined ? '' : (encodeValue(headers) ?? ''),
      );
      const count = args.length;
      args.push(0);
      const obj = objs[i]!;
      let n = 0;
      for (const key in obj) {
        if (!Object.hasOwn(obj, key)) continue;
        if (del) {
          args.push(`.${key}`, '');
          n++;
        } else {
          const text = forField(key, () => encodeValue(obj[key]));
          if (text === undefined) continue;
          args.push(`.${key}`, text);
          n++;
        }
      }
      args[count] = n;
    });
    // Messages may change any field (or none, by their seq): what was known of them is not.
    if (this.known.size > 0) for (const id of groups.keys()) this.known.delete(id);
    const o = this.options;
    const head = [now, ttlFor(o, false), ttlFor(o, true), o.deltaTtl ?? 0, o.deltaThreshold, this.publish ? '1' : ''];
    const results: ApplyResult[] = new Array(items.length);
    const calls: Array<Promise<void>> = [];
    const all: Array<[string, { args: Array<string | number>; at: number[] }]> = [];
    for (const entry of groups) {
      const [id, g] = entry;
      if (!this.directOps.has(id) && !this.running.has(id)) {
        all.push(entry);
        continue;
      }
      // Direct writes of this context asked for before these messages are not all done: the
      // messages wait for their turn behind them (see runOps()), so that call order holds.
      g.args[0] = g.at.length;
      calls.push(
        new Promise<number[]>((resolve, reject) =>
          this.queueOp(id, { kind: 'apply', args: [...head, ...g.args], resolve, reject }),
        ).then((reply) => {
          for (const [r, i] of g.at.entries())
            results[i] = { id, changed: reply[2 * r + 1] === 1, version: reply[2 * r]! };
        }),
      );
    }
    for (let c = 0; c < all.length; c += this.contextsPerCall) {
      const part = all.slice(c, c + this.contextsPerCall);
      const keys: string[] = [];
      const args: Array<string | number> = [];
      for (const [id, g] of part) {
        const k = this.keys(id);
        keys.push(k.state, k.deltas);
        g.args[0] = g.at.length;
        for (const a of g.args) args.push(a);
      }
      calls.push(
        STORE_SCRIPTS.apply.call(this.redis, keys.length, ...keys, ...head, ...args).then((reply) => {
          let r = 0;
          for (const [id, g] of part) {
            for (const i of g.at) {
              results[i] = { id, changed: reply[r + 1] === 1, version: reply[r]! };
              r += 2;
            }
          }
        }),
      );
    }
    try {
      // A script call may be sent twice (EVAL after NOSCRIPT): close() lets it end (see trackCall()).
      await trackCall(this.redis, Promise.all(calls));
    } catch (err) {
      throw this.failure(
        `apply to ${label(items[0]!.message.obj_id)}${groups.size > 1 ? ` and ${groups.size - 1} more` : ''}`,
        err,
      );
    }
    return results;
  }

  async get(id: string): Promise<StoredContext | null> {
    checkId(id);
    this.checkOpen();
    const flat = await this.reaching(
      () => `get of ${label(id)}`,
      () => this.redis.call('HGETALL', this.keys(id).state),
    );
    return toRecord(id, flat as string[]);
  }

  /**
   * What a client at `version` needs. The calls for one id asked for in the same turn of the event
   * loop share one script call whatever their versions (the records are read once, from the oldest
   * version asked), and the callers at one version share one frozen answer: many participants
   * syncing one context cost one read and one merge per distinct version.
   */
  async sync(id: string, version: number | null, incarnation?: string | null): Promise<SyncResult | null> {
    checkId(id);
    const v = checkVersion(version);
    const inc = checkIncarnation(incarnation);
    this.checkOpen();
    return new Promise((resolve, reject) => {
      enqueue(this.syncQueue, id, { version: v, incarnation: inc, resolve, reject }, () => this.flushSyncs());
    });
  }

  private flushSyncs(): void {
    const queued = [...this.syncQueue];
    this.syncQueue.clear();
    for (const [id, waiting] of queued) {
      // One answer per distinct (version, incarnation) asked.
      const clients = new Map<string, { version: number | null; incarnation: string | null }>();
      for (const w of waiting) clients.set(syncKey(w), w);
      trackCall(this.redis, this.syncNow(id, clients)).then(
        (answers) => {
          for (const w of waiting) w.resolve(answers === null ? null : answers.get(syncKey(w))!);
        },
        (err: unknown) => {
          const failed = this.failure(`sync of ${label(id)}`, err);
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
    const k = this.keys(id);
    const o = this.options;
    // The fields of the version known whole, taken now (a write answered while this call is under
    // way changes what is known): when a client gets the whole context and it is still at that
    // version, Redis sends only the context's own entries and the answer takes these fields.
    const known = this.known.get(id);
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
          const known = asKnown === 1 ? undefined : this.known.get(id);
          const record =
            asKnown === 1 ? toRecord(id, hash ?? [], undefined, held!.fields) : toRecord(id, hash ?? [], known?.fields);
          if (known !== undefined && record !== null) {
            // The fields as they are at this version: every one of them.
            this.remember(
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

  async set(id: string, context: Record<string, unknown>): Promise<ApplyResult> {
    checkId(id);
    checkFields('context', context);
    this.checkOpen();
    return new Promise((resolve, reject) => {
      const op: Extract<DirectOp, { kind: 'set' }> = { kind: 'set', context, resolve, reject };
      // Taken as it is now: what the caller changes afterwards is not written. With nothing of this
      // context before it, its write is made now (it then leads its call, which holds no merge, the
      // only write whose check can fail: it is never sent again); else a copy waits for its turn.
      if (!this.directOps.has(id) && !this.running.has(id)) {
        op.spec = this.setSpec(id, op);
      } else {
        op.context = copyFields(context, true);
      }
      this.queueOp(id, op);
    });
  }

  async assign(id: string, fields: Record<string, unknown>, remove: readonly string[] = []): Promise<ApplyResult> {
    checkId(id);
    checkFields('fields', fields);
    const gone = checkRemove(remove, fields);
    this.checkOpen();
    const pairs = fieldPairs(fields);
    for (const key of gone) pairs.push(`.${key}`, '');
    return new Promise((resolve, reject) => this.queueOp(id, { kind: 'patch', pairs, resolve, reject }));
  }

  async update(id: string, partial: Record<string, unknown>): Promise<ApplyResult> {
    checkId(id);
    checkFields('partial', partial);
    this.checkOpen();
    // Without object values there is nothing to merge into: the fields are written whole.
    if (!Object.keys(partial).some((key) => isPlainObject(partial[key]))) {
      const pairs = fieldPairs(partial);
      return new Promise((resolve, reject) => this.queueOp(id, { kind: 'patch', pairs, resolve, reject }));
    }
    // Taken as it is now (an update that cannot be encoded fails here, alone).
    const own = copyFields(partial);
    return new Promise((resolve, reject) =>
      this.queueOp(id, { kind: 'merge', partial: own, attempts: 0, resolve, reject }),
    );
  }

  async delete(id: string): Promise<boolean> {
    checkId(id);
    this.checkOpen();
    return new Promise((resolve, reject) => this.queueOp(id, { kind: 'delete', resolve, reject }));
  }

  /** Queues a direct write or delete of `id`; its writes start at the end of this turn unless under way. */
  private queueOp(id: string, op: DirectOp): void {
    let ops = this.directOps.get(id);
    if (ops === undefined) {
      ops = [];
      this.directOps.set(id, ops);
    }
    ops.push(op);
    if (ops.length === 1 && !this.running.has(id)) process.nextTick(() => this.startOps(id));
  }

  private startOps(id: string): void {
    if (this.running.has(id) || !this.directOps.has(id)) return;
    const run = this.runOps(id).finally(() => {
      this.running.delete(id);
      // Asked for while the last call was answered: the next run takes them.
      if (this.directOps.has(id)) this.startOps(id);
    });
    this.running.set(id, run);
  }

  /**
   * The direct writes of one context, in the order asked, one script call after another (each
   * call takes what was asked for while the one before it was under way): a call starts with the
   * merging updates that come first, made here one on top of the other from the fields as the
   * store knows them (read first when it does not), then the writes of whole fields that follow
   * them; a delete is a call of its own. A call's checks (the version the merges were made from)
   * failing means another process wrote in between: nothing after the failed write is done, and
   * the same ops go again, the fields read anew, after a growing, jittered pause. Bus messages
   * asked for while direct writes were waiting or under way take their turn among them, in a call
   * of their own.
   */
  private async runOps(id: string): Promise<void> {
    for (;;) {
      const ops = this.directOps.get(id);
      if (ops === undefined || ops.length === 0) {
        this.directOps.delete(id);
        return;
      }
      const first = ops[0]!;
      if (first.kind === 'apply' || first.kind === 'delete') {
        // A call of its own, after which what the store knew of the context no longer holds (nor
        // what a read answered meanwhile).
        ops.shift();
        const k = this.keys(id);
        this.known.delete(id);
        try {
          if (first.kind === 'apply')
            first.resolve(await STORE_SCRIPTS.apply.call(this.redis, 2, k.state, k.deltas, ...first.args));
          else
            first.resolve(
              (await STORE_SCRIPTS.remove.call(this.redis, k.state, k.deltas, this.publish ? k.channel : '')) === 1,
            );
        } catch (err) {
          // applyMany() says what its calls failed in.
          first.reject(first.kind === 'apply' ? err : this.failure(`delete of ${label(id)}`, err));
        }
        this.known.delete(id);
        continue;
      }
      const specs: WriteSpec[] = [];
      let merges = 0;
      while (merges < ops.length && ops[merges]!.kind === 'merge') merges++;
      if (merges > 0) {
        const group = ops.splice(0, merges) as Array<Extract<DirectOp, { kind: 'merge' }>>;
        let spec: WriteSpec | null;
        try {
          spec = await this.mergeSpec(id, group);
        } catch (err) {
          // What it knew may be what does not read: the next write reads the fields again.
          this.known.delete(id);
          const failed = this.failure(`update of ${label(id)}`, err);
          for (const op of group) op.reject(failed);
          continue;
        }
        if (spec !== null) specs.push(spec);
      }
      while (ops.length > 0 && (ops[0]!.kind === 'set' || ops[0]!.kind === 'patch')) {
        const op = ops.shift() as Extract<DirectOp, { kind: 'set' | 'patch' }>;
        try {
          specs.push(op.kind === 'set' ? (op.spec ?? this.setSpec(id, op)) : this.patchSpec(id, op));
        } catch (err) {
          // What the store knows of the context does not read (LC_STORE_CORRUPT): this write fails
          // alone, and the next one reads the fields again.
          this.known.delete(id);
          op.reject(err);
        }
        if (op.kind === 'set') op.spec = undefined;
      }
      if (specs.length === 0) continue;
      let reply: Array<number | string>;
      try {
        reply = await STORE_SCRIPTS.write.call(this.redis, ...this.writeArgs(id, specs));
      } catch (err) {
        const failed = this.failure(`write to ${label(id)}`, err);
        for (const spec of specs) for (const op of spec.ops) op.reject(failed);
        continue;
      }
      const incarnation = String(reply[reply.length - 3] ?? '');
      let r = 0;
      const again: DirectOp[] = [];
      for (const spec of specs) {
        const n = spec.versions.length > 0 ? 2 * spec.versions.length : 2;
        const replies = reply.slice(r, r + n) as number[];
        r += n;
        if (replies[0]! < 0 || !spec.done({ replies, incarnation })) again.push(...spec.ops);
      }
      const known = this.known.get(id);
      if (again.length === 0 && known !== undefined && known.incarnation === incarnation) {
        // What the context is at after the call: the next merges can be sent ready.
        known.stamp = String(reply[reply.length - 2]);
        known.status = String(reply[reply.length - 1]);
      }
      if (again.length > 0) {
        // Lost to another writer: what was not done goes first again, in its order.
        this.known.delete(id);
        const attempt = Math.max(...again.map((op) => (op.kind === 'merge' ? ++op.attempts : 0)));
        const over = again.filter((op) => op.kind === 'merge' && op.attempts > this.options.updateRetries);
        for (const op of over)
          op.reject(
            new CollectorError(
              'LC_STORE_CONFLICT',
              `update of ${JSON.stringify(id)} lost to concurrent writers ${this.options.updateRetries + 1} times`,
            ),
          );
        ops.unshift(...again.filter((op) => !over.includes(op)));
        await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(50, 2 ** attempt)));
      }
    }
  }

  /**
   * The write of a group of merging updates: made one on top of the other from the fields as the
   * store knows them (read first, with the version they are at, when it does not), each recording
   * only the paths it changed; the write checks that version and writes each field's last value
   * once. An update that cannot be merged fails alone. Null when none is left.
   */
  private async mergeSpec(id: string, group: Array<Extract<DirectOp, { kind: 'merge' }>>): Promise<WriteSpec | null> {
    const fields = [...new Set(group.flatMap(({ partial }) => Object.keys(partial)))];
    let start = group[0]!.attempts === 0 ? this.knownContext(id) : undefined;
    if (start === undefined || !fields.every((key) => start!.complete || start!.fields.has(key))) {
      const olds = await this.redis.hmget(this.keys(id).state, '#v', '#in', ...fields.map((key) => `.${key}`));
      const at = { version: Number(olds[0] ?? 0), incarnation: olds[1] ?? '' };
      start = this.remember(
        id,
        fields.map((key, i) => [key, { text: valueText(olds[i + 2] ?? null) ?? '' }]),
        at,
      );
    }
    const known = start;
    // The objects the merges make are changed in place by the ones after them; should a merge
    // fail, they go again each on its own copies, and the one that failed fails alone.
    const { ready, versions, written, current } =
      mergeGroup(id, known, fields, group, new Set()) ?? mergeGroup(id, known, fields, group)!;
    if (ready.length === 0) return null;
    const pairs: string[] = [];
    const wrote: Array<[string, KnownField]> = [];
    for (const key of written) {
      const value = current.get(key);
      const text = encodeValue(value)!;
      pairs.push(`.${key}`, text);
      wrote.push([key, { text, value }]);
    }
    return {
      mode: 'merge',
      checks: versionChecks(known),
      pairs,
      versions,
      ready: readyAt(known),
      ops: ready,
      done: ({ replies, incarnation }) => {
        if (replies[0] === -1) return false;
        this.remember(id, wrote, {
          version: replies[replies.length - 2]!,
          incarnation,
          before: replies[0]! - replies[1]!,
        });
        for (const [w, op] of ready.entries())
          op.resolve({ id, changed: replies[2 * w + 1] === 1, version: replies[2 * w]! });
        return true;
      },
    };
  }

  /**
   * The write of a set(). Of a context the store knows whole, the changes are worked out here from
   * the known values (only what changed is recorded, at the paths that changed) and written with a
   * check that the context is still at the known version; if it is not, write.lua does it as a
   * plain 'set' in the same place ('mergeorset'). Otherwise a plain 'set'.
   */
  private setSpec(id: string, op: Extract<DirectOp, { kind: 'set' }>): WriteSpec {
    const known = this.knownContext(id);
    const context = op.context;
    const pairs: string[] = [];
    const wrote: Array<[string, KnownField]> = [];
    const done = ({ replies, incarnation }: WriteReply): boolean => {
      const [version, changed] = replies as [number, number];
      // Either way the context now holds these fields and no other.
      this.remember(id, wrote, { version, incarnation, before: version - changed }, true);
      op.resolve({ id, changed: changed === 1, version });
      return true;
    };
    if (known === undefined || !known.complete) {
      for (const key of Object.keys(context)) {
        const value = forField(key, () => ownCopy(context[key]));
        if (value === undefined) continue;
        const text = encodeValue(value)!;
        pairs.push(`.${key}`, text);
        wrote.push([key, { text, value }]);
      }
      return { mode: 'set', checks: [], pairs, versions: [], ops: [op], done };
    }
    const changes: FieldChange[] = [];
    for (const key of Object.keys(context)) {
      const f = known.fields.get(key);
      const old = f === undefined || f.text === '' ? ABSENT_VALUE : (f.value ??= storedValue(id, key, f.text));
      // A value JSON drops removes the field, as when it is not given (its removal is recorded here).
      const value = replaceChanges(key, old, context[key], changes);
      if (value === ABSENT_VALUE && old === ABSENT_VALUE) continue;
      const text = value === ABSENT_VALUE ? '' : value === old ? f!.text : encodeValue(value)!;
      pairs.push(`.${key}`, text);
      wrote.push([key, text === '' ? { text } : { text, value }]);
    }
    for (const [key, f] of known.fields) {
      if (Object.hasOwn(context, key) || f.text === '') continue;
      changes.push({ k: key, o: (f.value ??= storedValue(id, key, f.text)) });
      pairs.push(`.${key}`, '');
      wrote.push([key, { text: '' }]);
    }
    return {
      mode: 'mergeorset',
      checks: versionChecks(known),
      pairs,
      versions: [changesText(changes)],
      ready: readyAt(known),
      ops: [op],
      done,
    };
  }

  /** The write of fields whole (assign(), or an update() without objects to merge into). */
  private patchSpec(id: string, op: Extract<DirectOp, { kind: 'patch' }>): WriteSpec {
    const pairs = op.pairs;
    return {
      mode: 'patch',
      checks: [],
      pairs,
      versions: [],
      ops: [op],
      done: ({ replies, incarnation }) => {
        const [version, changed] = replies as [number, number];
        const wrote: Array<[string, KnownField]> = [];
        for (let i = 0; i < pairs.length; i += 2) wrote.push([pairs[i]!.slice(1), { text: pairs[i + 1]! }]);
        this.remember(id, wrote, { version, incarnation, before: version - changed });
        op.resolve({ id, changed: changed === 1, version });
        return true;
      },
    };
  }

  /** write.lua's keys and arguments for the writes of one call (see its header). */
  private writeArgs(id: string, specs: readonly WriteSpec[]): Array<string | number> {
    const k = this.keys(id);
    const o = this.options;
    const now = Date.now();
    const args: Array<string | number> = [
      k.state,
      k.deltas,
      now,
      ttlFor(o, false),
      ttlFor(o, true),
      o.deltaTtl ?? 0,
      o.deltaThreshold,
      this.publish ? k.channel : '',
    ];
    for (const w of specs) {
      const r = w.ready;
      if (r === undefined) {
        args.push(w.mode, w.checks.length / 2, w.pairs.length / 2);
        for (const a of w.checks) args.push(a);
        for (const a of w.pairs) args.push(a);
        if (w.mode === 'merge' || w.mode === 'mergeorset') args.push(w.versions.length, ...w.versions);
        continue;
      }
      // Ready: the values as Redis keeps them ('' removes: the stamp alone) and the records whole,
      // as write.lua would make them.
      args.push(`r${w.mode}`, w.checks.length / 2 + 2, w.pairs.length / 2);
      for (const a of w.checks) args.push(a);
      args.push('#hs', r.stamp, '#st', r.status);
      for (let i = 0; i < w.pairs.length; i += 2) args.push(w.pairs[i]!, r.stamp + w.pairs[i + 1]!);
      args.push(w.versions.length);
      const tail = r.status === '' ? ']}' : `],"s":"${r.status}"}`;
      let version = r.version;
      for (const items of w.versions)
        args.push(items === '' ? '' : `{"v":${++version},"t":${now},"c":[${items}${tail}`);
    }
    return args;
  }

  async list(options: ListOptions = {}): Promise<ListPage> {
    checkListOptions(options);
    this.checkOpen();
    return this.reaching(
      () => 'list',
      () => this.listNow(options),
    );
  }

  private async listNow(options: ListOptions): Promise<ListPage> {
    const limit = options.limit ?? 100;
    const re = options.rkey === undefined ? null : globToRegExp(options.rkey);
    const items: ContextSummary[] = [];
    let cursor = options.cursor ?? '0';
    do {
      const [next, ids] = await this.scanIds(cursor);
      cursor = next;
      if (ids.length === 0) continue;
      const pipe = this.redis.pipeline();
      for (const id of ids) pipe.hmget(this.keys(id).state, '#v', '#st', '#rk', '#ba', '#fa', '#ua');
      const rows = (await pipe.exec()) ?? [];
      ids.forEach((id, i) => {
        const [err, m] = rows[i] ?? [null, null];
        if (err !== null || !Array.isArray(m)) return;
        const version = Number(m[0] ?? 0);
        if (!(version > 0)) return;
        const status = toStatus(m[1] as string | null);
        const rkey = (m[2] as string | null) ?? null;
        if (options.status !== undefined && status !== options.status) return;
        if (re !== null && (rkey === null || !re.test(rkey))) return;
        items.push({
          id,
          version,
          status,
          rkey,
          born_at: toNumber(m[3] as string | null),
          updated_at: toSeconds(m[5] as string | null),
          finished_at: toNumber(m[4] as string | null),
        });
      });
    } while (cursor !== '0' && items.length < limit);
    return { items, cursor: cursor === '0' ? null : cursor };
  }

  async cleanup(options: CleanupOptions = {}): Promise<CleanupResult> {
    checkCleanupOptions(options);
    this.checkOpen();
    return this.reaching(
      () => 'cleanup',
      () => this.cleanupNow(options),
    );
  }

  private async cleanupNow(options: CleanupOptions): Promise<CleanupResult> {
    const limit = options.limit ?? this.options.cleanupLimit;
    const o = this.options;
    const result: CleanupResult = { scanned: 0, contextsDeleted: 0, deltasDeleted: 0, wrapped: false };
    do {
      const [next, ids] = await this.scanIds(this.cleanupCursor);
      this.cleanupCursor = next;
      if (ids.length > 0) {
        const now = Date.now();
        const calls = ids.map((id) => {
          const k = this.keys(id);
          return [k.state, k.deltas, now, o.deltaTtl ?? 0, o.deltaThreshold, ttlFor(o, false), ttlFor(o, true)];
        });
        for (const [err, r] of await STORE_SCRIPTS.prune.runMany(this.redis, calls)) {
          if (err !== null) throw err;
          const [deleted, dropped] = r as [number, number];
          result.contextsDeleted += deleted;
          result.deltasDeleted += dropped;
        }
        result.scanned += ids.length;
      }
      if (next === '0') result.wrapped = true;
    } while (!result.wrapped && result.scanned < limit);
    return result;
  }

  watch(id: string, options: WatchOptions = {}): ContextWatch {
    checkId(id);
    this.checkOpen();
    const channel = this.keys(id).channel;
    let entry = this.watchers.get(channel);
    if (entry === undefined) {
      const sub = this.subscriberClient();
      const made: WatchEntry = { id, queues: new Set(), ready: Promise.resolve(), incarnation: '' };
      made.ready = sub.subscribe(channel).then(
        () => undefined,
        (err: unknown) => {
          // The watches that share it fail; the next watch() of the id subscribes anew.
          if (this.watchers.get(channel) === made) this.watchers.delete(channel);
          throw this.failure(`watch of ${label(id)}`, err);
        },
      );
      entry = made;
      this.watchers.set(channel, entry);
    }
    const watched = entry;
    const q: WatchQueue = new WatchQueue(options.maxQueue ?? 10_000, watched.ready, async () => {
      watched.queues.delete(q);
      if (watched.queues.size === 0 && this.watchers.get(channel) === watched) {
        this.watchers.delete(channel);
        // Not waited for: with Redis away it would wait for Redis (close() then quits after it).
        void this.subscriber?.unsubscribe(channel).catch(() => {});
      }
    });
    watched.queues.add(q);
    return q;
  }

  protected async replace(id: string, record: StoredContext): Promise<void> {
    const k = this.keys(id);
    const now = Date.now();
    const args: Array<string | number> = [
      k.state,
      k.deltas,
      now,
      record.version,
      ttlFor(this.options, record.status === 'finished' || record.status === 'transient'),
      this.publish ? k.channel : '',
      '#v',
      record.version,
      '#ua',
      now,
      '#tw',
      now,
    ];
    if (record.status !== null) args.push('#st', record.status);
    if (record.rkey !== null) args.push('#rk', record.rkey);
    if (record.headers !== null) args.push('#hd', encodeValue(record.headers) ?? '{}');
    if (record.born_at !== null) args.push('#ba', String(record.born_at));
    if (record.finished_at !== null) args.push('#fa', String(record.finished_at));
    for (const key of Object.keys(record.context)) {
      const text = encodeValue(record.context[key]);
      if (text !== undefined) args.push(`.${key}`, `-1:${text}`);
    }
    this.known.delete(id);
    record.incarnation = await this.reaching(
      () => `restore of ${label(id)}`,
      () => STORE_SCRIPTS.restore.call(this.redis, ...args),
    );
    this.known.delete(id);
    record.updated_at = now / 1000;
  }

  protected async shutdown(): Promise<void> {
    // What was asked for before close() goes out and is answered before the QUIT: the syncs queued
    // for the next tick are sent now, and the direct writes queued or under way are waited for.
    while (this.syncQueue.size > 0 || this.directOps.size > 0 || this.running.size > 0) {
      if (this.syncQueue.size > 0) this.flushSyncs();
      for (const id of [...this.directOps.keys()]) this.startOps(id);
      await Promise.allSettled([...this.running.values()]);
    }
    for (const entry of [...this.watchers.values()]) for (const q of [...entry.queues]) await q.close();
    if (this.subscriber !== null) {
      await closeClient(this.subscriber);
      this.subscriber = null;
    }
    if (this.owned) await closeClient(this.redis);
  }

  /** What this store knows of `id` (see RedisContextStoreOptions.knownContexts), now its newest use. */
  private knownContext(id: string): KnownContext | undefined {
    const known = this.known.get(id);
    if (known !== undefined) {
      this.known.delete(id);
      this.known.set(id, known);
    }
    return known;
  }

  /**
   * Notes fields of `id` as they are at `at` (version and incarnation), just written or read;
   * `complete`: the context has no other. What was known of its other fields stays known when it
   * was known at `at.before` (the version before this store's write) or at `at` itself, and is
   * dropped otherwise (another writer may have changed them).
   */
  private remember(
    id: string,
    fields: Iterable<[string, KnownField]>,
    at: { version: number; incarnation: string; before?: number },
    complete = false,
  ): KnownContext {
    let known = this.known.get(id);
    this.known.delete(id);
    const kept =
      known !== undefined &&
      !complete &&
      known.incarnation === at.incarnation &&
      (known.version === at.version || known.version === at.before);
    if (!kept) known = { fields: new Map(), version: at.version, incarnation: at.incarnation, complete };
    for (const [key, f] of fields) known!.fields.set(key, f);
    known!.version = at.version;
    if (this.knownContexts > 0) {
      this.known.set(id, known!);
      if (this.known.size > this.knownContexts) this.known.delete(this.known.keys().next().value!);
    }
    return known!;
  }

  /** One SCAN step over the contexts' meta keys: the next cursor and the ids found. */
  private async scanIds(cursor: string): Promise<[string, string[]]> {
    const head = `${this.prefix}ctx:{`;
    const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${escapeGlob(head)}*}`, 'COUNT', this.scanCount);
    const ids: string[] = [];
    // The state hash is the key that ends at the hash tag; the deltas list ends in :d.
    for (const key of keys) if (key.startsWith(head) && key.endsWith('}')) ids.push(key.slice(head.length, -1));
    return [next, ids];
  }

  private subscriberClient(): Redis {
    if (this.subscriber === null) {
      // A client of the caller's made without an offline queue would fail the first subscribe, made
      // before this connection is up.
      const sub = this.redis.duplicate({ enableOfflineQueue: true });
      sub.on('error', (err: unknown) => {
        // ioredis reconnects by itself; a watcher sees a gap in versions and syncs.
        scrubAuth(err);
      });
      sub.on('message', (channel: string, text: string) => this.onMessage(channel, text));
      this.subscriber = sub;
    }
    return this.subscriber;
  }

  private onMessage(channel: string, text: string): void {
    const entry = this.watchers.get(channel);
    if (entry === undefined) return;
    // The scripts publish the context's incarnation, then the records of one call, one a line (in
    // one message or several: the incarnation holds for the records after it).
    for (const line of text.split('\n')) {
      let event: ContextEvent;
      try {
        if (line.startsWith('{"in":')) {
          const inc = (JSON.parse(line) as { in?: unknown }).in;
          entry.incarnation = typeof inc === 'string' ? inc : '';
          continue;
        }
        if (line.startsWith('{"v":')) event = recordEvent(entry.id, parseRecord(line), entry.incarnation);
        else if (line.startsWith('{"reset":'))
          event = { type: 'reset', id: entry.id, version: Number(JSON.parse(line).reset) };
        else if (line === '{"deleted":true}') event = { type: 'deleted', id: entry.id };
        else continue;
      } catch {
        continue;
      }
      for (const q of entry.queues) q.push(event);
    }
  }
}

/**
 * A failed Redis call of `what` as a CollectorError (ours, and errors of the program itself, pass
 * through): a key of the store's layout holding another type, or holding what its script cannot
 * read, is LC_STORE_CORRUPT; anything else (no connection, a timeout, Redis refusing: out of
 * memory, loading, read-only) LC_UNAVAILABLE. `cause` keeps the client's error.
 */
function failure(what: string, err: unknown, at: string): unknown {
  scrubAuth(err);
  if (
    err instanceof CollectorError ||
    err instanceof TypeError ||
    err instanceof RangeError ||
    err instanceof SyntaxError ||
    err instanceof ReferenceError
  )
    return err;
  const message = (err as Error)?.message ?? String(err);
  // Redis 7 passes on the error of a command in a script as it is; Redis 5 and 6 inside "ERR Error
  // running script … @user_script:…".
  if (!REFUSED.test(message)) {
    if (/\bWRONGTYPE\b/.test(message)) {
      return new CollectorError(
        'LC_STORE_CORRUPT',
        `context store ${what}: one of its keys holds another type (foreign data under the store's prefix?)`,
        { cause: err },
      );
    }
    if (/user_script/.test(message) && UNREADABLE.test(message)) {
      return new CollectorError(
        'LC_STORE_CORRUPT',
        `context store ${what}: its script could not read what the keys hold (foreign data under the store's prefix?): ${message.slice(0, 200)}`,
        { cause: err },
      );
    }
  }
  // Any other failure (an ACL refusing a command, say) is Redis's too.
  const reason = unreachable(err, at) ?? `Redis at ${at} failed: ${message}`;
  return new CollectorError('LC_UNAVAILABLE', `context store ${what}: ${reason}`, { cause: err });
}

/**
 * What a script raises on data it cannot read (a field without its stamp, a number that is not
 * one): Lua's own runtime errors. Others (an ACL refusing a command or channel, SCRIPT KILL) are
 * not about the data.
 */
const UNREADABLE =
  /attempt to (perform arithmetic|index|concatenate|compare|call)|bad argument|Expected value|Expected object key|Expected comma|Expected colon|Found invalid/;

/**
 * A field's stored text as a value (`own`: the store's own, see ownValue(); else a plain copy);
 * text that is not JSON (foreign data under the store's prefix) is LC_STORE_CORRUPT.
 */
function storedValue(id: string, name: string | null, text: string, own = true): unknown {
  try {
    return own ? ownValue(text) : decodeValue(text);
  } catch (err) {
    throw new CollectorError(
      'LC_STORE_CORRUPT',
      `context store: ${name === null ? 'the headers' : `field ${label(name)}`} of ${label(id)} is not JSON (foreign data under the store's prefix?)`,
      { cause: err },
    );
  }
}

/** An id as error messages quote it (long ones cut). */
function label(id: unknown): string {
  const text = JSON.stringify(String(id));
  return text.length > 80 ? `${text.slice(0, 76)}…"` : text;
}

/** What tells the sync() calls of one context apart: the version and incarnation they give. */
function syncKey(c: { version: number | null; incarnation: string | null }): string {
  return `${c.version ?? ''}|${c.incarnation ?? ''}`;
}

/** The value of `name` in a flat field/value list (HGETALL's reply); undefined when absent. */
function hashEntry(flat: readonly string[], name: string): string | undefined {
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === name) return flat[i + 1];
  return undefined;
}

/**
 * Merging updates made one on top of the other from the fields known: the updates merged, the
 * items of each one's record, the fields written and their last values. With `fresh` (see
 * mergeField()) the objects made are changed in place by the later merges and frozen at the end,
 * and null is returned when a merge throws; without, an update that throws is rejected alone.
 */
function mergeGroup(
  id: string,
  known: KnownContext,
  fields: readonly string[],
  group: Array<Extract<DirectOp, { kind: 'merge' }>>,
  fresh?: FreshObjects,
): { ready: typeof group; versions: string[]; written: Set<string>; current: Map<string, unknown> } | null {
  const current = new Map<string, unknown>();
  for (const key of fields) {
    // Not among the fields of a context known whole: it has none of that name.
    const f = known.fields.get(key);
    // Parsed into a value of the store's own: the merges share what they keep of it.
    if (f !== undefined && f.text !== '') current.set(key, (f.value ??= storedValue(id, key, f.text)));
  }
  const ready: typeof group = [];
  const versions: string[] = [];
  const written = new Set<string>();
  for (const op of group) {
    const staged = new Map<string, unknown>();
    const changes: FieldChange[] = [];
    try {
      for (const key of Object.keys(op.partial)) {
        staged.set(
          key,
          mergeField(key, current.has(key) ? current.get(key) : ABSENT_VALUE, op.partial[key], changes, fresh),
        );
      }
      versions.push(changesText(changes));
    } catch (err) {
      if (fresh !== undefined) return null;
      op.reject(err);
      continue;
    }
    for (const [key, value] of staged) {
      current.set(key, value);
      written.add(key);
    }
    ready.push(op);
  }
  if (fresh !== undefined) for (const key of written) current.set(key, freezeBatch(current.get(key), fresh));
  return { ready, versions, written, current };
}

/** How a merge made from what is known of a context is sent ready (see WriteSpec.ready); undefined when it cannot be. */
function readyAt(known: KnownContext): WriteSpec['ready'] {
  if (known.stamp === undefined || known.status === undefined || !(known.version > 0)) return undefined;
  return { stamp: known.stamp, status: known.status, version: known.version };
}

/** The checks of a write made from what is known of a context: its version and incarnation. */
function versionChecks(known: KnownContext): string[] {
  return ['#v', known.version > 0 ? String(known.version) : '', '#in', known.incarnation];
}

/** The `.field`, canonical text pairs of a write of whole fields (what JSON drops is left out). */
function fieldPairs(fields: Record<string, unknown>): string[] {
  const pairs: string[] = [];
  for (const key of Object.keys(fields)) {
    const text = forField(key, () => encodeValue(fields[key]));
    if (text !== undefined) pairs.push(`.${key}`, text);
  }
  return pairs;
}

/**
 * Adds `item` to the calls waiting for `id` in `queue`; the first call of a turn of the event loop
 * schedules `flush` for the end of it.
 */
function enqueue<T>(queue: Map<string, T[]>, id: string, item: T, flush: () => void): void {
  const waiting = queue.get(id);
  if (waiting !== undefined) {
    waiting.push(item);
    return;
  }
  queue.set(id, [item]);
  if (queue.size === 1) process.nextTick(flush);
}

function toNumber(v: string | null | undefined): number | null {
  if (v === null || v === undefined || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

function toSeconds(ms: string | null | undefined): number | null {
  const n = toNumber(ms);
  return n === null ? null : n / 1000;
}

function toStatus(v: string | null | undefined): ContextStatus | null {
  return v === null || v === undefined ? null : (STATUS[v] ?? null);
}

/** The JSON text of a stored '<seq>:<JSON>' value; null for a tombstone or no value. */
function valueText(stored: string | null): string | null {
  if (stored === null) return null;
  const text = stored.slice(stored.indexOf(':') + 1);
  return text === '' ? null : text;
}

/**
 * A record from the state hash as a flat field/value list; null when it has no version (yet).
 * With `known` (what the store knows of the fields), the values are the store's own, frozen: a
 * field whose text is the one known takes the known value, and the others are noted there. With
 * `fields` (the fields of the version the hash is of, known), `flat` holds only the rest.
 */
function toRecord(
  id: string,
  flat: string[],
  known?: Map<string, KnownField>,
  fields?: ReadonlyMap<string, KnownField>,
): StoredContext | null {
  const context: Record<string, unknown> = {};
  const own = new Map<string, string>();
  if (fields !== undefined) {
    // The context's own fields, known: `flat` holds the rest.
    for (const [name, f] of fields)
      if (f.text !== '') setOwn(context, name, (f.value ??= storedValue(id, name, f.text)));
  }
  for (let i = 0; i < flat.length; i += 2) {
    const key = flat[i]!;
    const value = flat[i + 1]!;
    if (key.charCodeAt(0) === 46 /* . */) {
      const text = valueText(value);
      if (text === null) continue;
      const name = key.slice(1);
      if (known === undefined) {
        setOwn(context, name, storedValue(id, name, text, false));
        continue;
      }
      let f = known.get(name);
      if (f === undefined || f.text !== text) {
        // Noted once it reads: text that is not JSON is never known.
        f = { text, value: storedValue(id, name, text) };
        known.set(name, f);
      }
      setOwn(context, name, (f.value ??= storedValue(id, name, text)));
    } else {
      own.set(key, value);
    }
  }
  // Known fields the hash no longer holds are known to be absent.
  if (known !== undefined)
    for (const [name, f] of known) if (f.text !== '' && !Object.hasOwn(context, name)) known.set(name, { text: '' });
  const version = Number(own.get('#v') ?? 0);
  if (!(version > 0)) return null;
  const hd = own.get('#hd');
  const headers = hd === undefined ? null : storedValue(id, null, hd, false);
  return {
    id,
    version,
    context: inKeyOrder(context),
    status: toStatus(own.get('#st')),
    rkey: own.get('#rk') ?? null,
    headers: isPlainObject(headers) ? headers : null,
    born_at: toNumber(own.get('#ba')),
    updated_at: toSeconds(own.get('#ua')),
    finished_at: toNumber(own.get('#fa')),
    incarnation: own.get('#in') ?? '',
  };
}
