import type { MessageMeta, WireMessage } from '@contexture/context/protocol';
import { isPlainObject } from '@contexture/context/protocol';
import { byMaster, bySlot, isCluster, masterClient, ownerOf, type RedisClient } from '../internal/cluster.js';
import { CollectorError } from '../internal/errors.js';
import { CLUSTER_MISMATCH, closeClient, redisAddress, resolveRedis, trackCall } from '../internal/redis-client.js';
import { BaseContextStore } from './base-store.js';
import { parseRecord, recordEvent } from './delta.js';
import { copyFields, forField } from './field-changes.js';
import { encodeValue } from './json.js';
import { KnownContexts } from './known-contexts.js';
import {
  checkCleanupOptions,
  checkApplyItems,
  checkFields,
  checkId,
  checkIncarnation,
  checkListOptions,
  checkWatchOptions,
  checkMessage,
  metaHeadersText,
  checkRemove,
  checkVersion,
  ttlFor,
} from './options.js';
import { failure, label } from './redis-failure.js';
import { type ContextKeys, contextKeys, type PublishMode, publishArg } from './redis-keys.js';
import { toRecord } from './redis-replies.js';
import { RedisScanner } from './redis-scanner.js';
import { REDIS_STORE_DEFAULTS, redisStoreSettings, type RedisContextStoreOptions } from './redis-store-options.js';
import { RedisSyncs } from './redis-syncs.js';
import { RedisWatchers } from './redis-watchers.js';
import { fieldPairs, setSpec, type SetOp } from './redis-write-specs.js';
import { RedisWrites } from './redis-writes.js';
import { STORE_SCRIPTS } from './store-scripts.js';
import type {
  ApplyItem,
  ApplyResult,
  CleanupOptions,
  CleanupResult,
  ContextEvent,
  ContextWatch,
  ListOptions,
  ListPage,
  StoredContext,
  SyncResult,
  WatchOptions,
} from './types.js';
import { printable } from '../internal/printable.js';

/** A context's messages of one applyMany(): its arguments to apply.lua and where their results go. */
type ApplyGroup = [id: string, group: { args: Array<string | number>; at: number[] }];
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
  readonly redis: RedisClient;
  readonly prefix: string;
  private readonly owned: boolean;
  private readonly publish: PublishMode;
  private readonly contextsPerCall: number;
  /** Per id, the fields as last written or read (see RedisContextStoreOptions.knownContexts). */
  private readonly known: KnownContexts;
  /** Direct writes and deletes, per id in the order asked. */
  private readonly writes: RedisWrites;
  /** sync() calls waiting for the end of this turn (see sync()). */
  private readonly syncs: RedisSyncs;
  private readonly watchers: RedisWatchers;
  private readonly scanner: RedisScanner;

  /** Where Redis is, as errors say it (host:port, or the socket path). */
  private readonly at: string;

  /** The last connection error of a client the store owns (it is retried, not thrown). */
  lastRedisError: string | null = null;

  constructor(options: RedisContextStoreOptions = {}) {
    super(options, Object.keys(REDIS_STORE_DEFAULTS));
    const o = redisStoreSettings(options);
    const client = resolveRedis(o.redis, (message) => (this.lastRedisError = message));
    if (typeof client === 'string') throw new CollectorError('LC_STORE_INVALID_ARGUMENT', client);
    this.redis = client.redis;
    this.owned = client.owned;
    this.at = redisAddress(this.redis);
    this.prefix = o.prefix;
    this.publish = o.publish ? (isCluster(this.redis) ? 'SPUBLISH' : 'PUBLISH') : '';
    this.contextsPerCall = o.contextsPerCall;
    this.known = new KnownContexts(o.knownContexts);
    const shared = { redis: this.redis, prefix: this.prefix, options: this.options, at: this.at };
    this.writes = new RedisWrites({ ...shared, publish: this.publish, known: this.known });
    this.syncs = new RedisSyncs({ ...shared, known: this.known });
    this.watchers = new RedisWatchers(this.redis, this.at);
    this.scanner = new RedisScanner({ ...shared, scanCount: o.scanCount });
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
    return contextKeys(this.prefix, id);
  }

  async apply(message: WireMessage, meta?: MessageMeta): Promise<ApplyResult> {
    return (await this.applyMany([{ message, meta }]))[0]!;
  }

  /**
   * Folds messages in as `apply()` would in their order: the messages of one `obj_id` go to Redis
   * together, up to `contextsPerCall` contexts in one script call, the calls pipelined. Nothing is
   * written when a message is invalid. The messages of a context with direct writes asked for
   * before them and not done yet go after those, in a call of their own (see RedisWrites).
   */
  async applyMany(items: readonly ApplyItem[]): Promise<ApplyResult[]> {
    checkApplyItems(items);
    this.checkOpen();
    const objs = items.map((item) => checkMessage(item.message));
    const headerTexts = items.map((item) => metaHeadersText(item.meta));
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
      const headers = headerTexts[i];
      args.push(
        message.seq === undefined ? '' : message.seq,
        message.status ?? '',
        message.time_in === undefined ? nowSeconds : String(message.time_in),
        del ? '1' : '0',
        meta?.rkey ?? '',
        meta?.rkey === undefined ? '0' : '1',
        headers ?? '',
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
    if (this.known.size > 0) for (const id of groups.keys()) this.known.forget(id);
    const o = this.options;
    const head = [now, ttlFor(o, false), ttlFor(o, true), o.deltaTtl ?? 0, o.deltaThreshold, this.publish];
    const results: ApplyResult[] = new Array(items.length);
    const calls: Array<Promise<void>> = [];
    const all: ApplyGroup[] = [];
    for (const entry of groups) {
      const [id, g] = entry;
      if (this.writes.idle(id)) {
        all.push(entry);
        continue;
      }
      // Direct writes of this context asked for before these messages are not all done: the
      // messages wait for their turn behind them (see RedisWrites), so that call order holds.
      g.args[0] = g.at.length;
      calls.push(
        new Promise<number[]>((resolve, reject) =>
          this.writes.queue(id, { kind: 'apply', args: [...head, ...g.args], resolve, reject }),
        ).then((reply) => {
          for (const [r, i] of g.at.entries())
            results[i] = { id, changed: reply[2 * r + 1] === 1, version: reply[2 * r]! };
        }),
      );
    }
    // On a cluster the contexts of one call are those of one master (see applyPart()).
    for (const group of byMaster(this.redis, all, ([id]) => this.keys(id).state))
      for (let c = 0; c < group.length; c += this.contextsPerCall)
        calls.push(this.applyPart(group.slice(c, c + this.contextsPerCall), head, results));
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

  /**
   * One apply.lua call for the messages of `part`'s contexts, their results put in `results`. On a
   * cluster the contexts are those of one master; when they are in several slots, the call goes
   * straight to that master with their keys among the arguments, run by the variant of the script
   * that declares allow-cross-slot-keys (Redis 7: a script may touch keys of several slots of its
   * node that it does not declare). When a key is not that master's any more (a slot moved or
   * moving: MOVED, ASK, TRYAGAIN, a non-local key), each slot's contexts are sent in a call of
   * their own through the cluster client, which follows the move.
   */
  private async applyPart(part: ApplyGroup[], head: Array<string | number>, results: ApplyResult[]): Promise<void> {
    const redis = this.redis;
    let node: RedisClient | undefined;
    const keys: string[] = [];
    for (const [id] of part) {
      const k = this.keys(id);
      keys.push(k.state, k.deltas);
    }
    if (isCluster(redis) && part.length > 1) {
      const slots = bySlot(redis, [...part.keys()], (i) => keys[2 * i]!);
      if (slots.length > 1) {
        // Contexts of several slots go in one call straight to their master; when the client has no
        // connection to it now (it is down), each slot's contexts in a call of their own, through
        // the cluster client, which says what became of that master.
        node = masterClient(redis, ownerOf(redis, keys[0]!) ?? '');
        if (node === undefined) {
          await Promise.all(
            slots.map((s) =>
              this.applyPart(
                s.map((i) => part[i]!),
                head,
                results,
              ),
            ),
          );
          return;
        }
      }
    }
    // Straight to a master, the contexts' state keys go first among the arguments (see apply.lua).
    const args: Array<string | number> = node === undefined ? [] : [part.length];
    if (node !== undefined) for (let n = 0; n < keys.length; n += 2) args.push(keys[n]!);
    for (const [, g] of part) {
      g.args[0] = g.at.length;
      for (const a of g.args) args.push(a);
    }
    let reply: number[];
    if (node === undefined) {
      reply = await STORE_SCRIPTS.apply.callList(redis, [keys.length, ...keys, ...head, ...args]);
    } else {
      try {
        reply = await STORE_SCRIPTS.applyAcrossSlots.callList(node, [0, ...head, ...args]);
      } catch (err) {
        // A slot that has moved to another master since (or is moving): the script touched every
        // key before writing, so nothing was applied; each slot's contexts go in a call of their
        // own through the cluster client, which follows the move.
        const message = (err as Error)?.message ?? '';
        if (!CLUSTER_MISMATCH.test(message) && !/^TRYAGAIN\b/.test(message)) throw err;
        const slots = bySlot(redis, part, ([id]) => this.keys(id).state);
        await Promise.all(slots.map((s) => this.applyPart(s, head, results)));
        return;
      }
    }
    let r = 0;
    for (const [id, g] of part) {
      for (const i of g.at) {
        results[i] = { id, changed: reply[r + 1] === 1, version: reply[r]! };
        r += 2;
      }
    }
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
      this.syncs.add(id, { version: v, incarnation: inc, resolve, reject });
    });
  }

  /**
   * The versions of a context the store still holds deltas of, oldest first, each as the `change`
   * event `watch()` gives for it (`deltaThreshold` and `deltaTtl` limit how many; a context just
   * restored has none); null for an unknown id.
   *
   * @example
   * for (const e of (await store.history('r1')) ?? []) console.log(e.version, e.delta);
   */
  async history(id: string): Promise<Extract<ContextEvent, { type: 'change' }>[] | null> {
    checkId(id);
    this.checkOpen();
    const k = this.keys(id);
    const [version, incarnation, texts] = await this.reaching(
      () => `history of ${label(id)}`,
      async () => {
        // One slot: the hash's entries and the list read in one transaction.
        const replies = await this.redis.multi().hmget(k.state, '#v', '#in').lrange(k.deltas, 0, -1).exec();
        for (const [err] of replies ?? []) if (err) throw err;
        const [v, inc] = replies![0]![1] as [string | null, string | null];
        return [Number(v ?? 0), inc ?? '', replies![1]![1] as string[]] as const;
      },
    );
    if (!(version > 0)) return null;
    return texts.map(
      (text) => recordEvent(id, parseRecord(text), incarnation) as Extract<ContextEvent, { type: 'change' }>,
    );
  }

  async set(id: string, context: Record<string, unknown>): Promise<ApplyResult> {
    checkId(id);
    checkFields('context', context);
    this.checkOpen();
    return new Promise((resolve, reject) => {
      const op: SetOp = { kind: 'set', context, resolve, reject };
      // Taken as it is now: what the caller changes afterwards is not written. With nothing of this
      // context before it, its write is made now (it then leads its call, which holds no merge, the
      // only write whose check can fail: it is never sent again); else a copy waits for its turn.
      if (this.writes.idle(id)) {
        op.spec = setSpec(this.known, id, op);
      } else {
        op.context = copyFields(context, true);
      }
      this.writes.queue(id, op);
    });
  }

  async assign(id: string, fields: Record<string, unknown>, remove: readonly string[] = []): Promise<ApplyResult> {
    checkId(id);
    checkFields('fields', fields);
    const gone = checkRemove(remove, fields);
    this.checkOpen();
    const pairs = fieldPairs(fields);
    for (const key of gone) pairs.push(`.${key}`, '');
    return new Promise((resolve, reject) => this.writes.queue(id, { kind: 'patch', pairs, resolve, reject }));
  }

  async update(id: string, partial: Record<string, unknown>): Promise<ApplyResult> {
    checkId(id);
    checkFields('partial', partial);
    this.checkOpen();
    // Without object values there is nothing to merge into: the fields are written whole.
    if (!Object.keys(partial).some((key) => isPlainObject(partial[key]))) {
      const pairs = fieldPairs(partial);
      return new Promise((resolve, reject) => this.writes.queue(id, { kind: 'patch', pairs, resolve, reject }));
    }
    // Taken as it is now (an update that cannot be encoded fails here, alone).
    const own = copyFields(partial);
    return new Promise((resolve, reject) =>
      this.writes.queue(id, { kind: 'merge', partial: own, attempts: 0, resolve, reject }),
    );
  }

  async delete(id: string): Promise<boolean> {
    checkId(id);
    this.checkOpen();
    return new Promise((resolve, reject) => this.writes.queue(id, { kind: 'delete', resolve, reject }));
  }

  async list(options: ListOptions = {}): Promise<ListPage> {
    checkListOptions(options);
    this.checkOpen();
    return this.reaching(
      () => 'list',
      () => this.scanner.list(options),
    );
  }

  async cleanup(options: CleanupOptions = {}): Promise<CleanupResult> {
    checkCleanupOptions(options);
    this.checkOpen();
    return this.reaching(
      () => 'cleanup',
      () => this.scanner.cleanup(options),
    );
  }

  watch(id: string, options: WatchOptions = {}): ContextWatch {
    checkId(id);
    checkWatchOptions(options);
    this.checkOpen();
    return this.watchers.watch(id, this.keys(id).channel, options.maxQueue ?? 10_000, options.keepAlive ?? true);
  }

  protected async replace(id: string, record: StoredContext): Promise<void> {
    const k = this.keys(id);
    const now = Date.now();
    const updated = record.updated_at === null ? now : Math.round(record.updated_at * 1000);
    const args: Array<string | number> = [
      k.state,
      k.deltas,
      now,
      record.version,
      ttlFor(this.options, record.status === 'finished' || record.status === 'transient'),
      publishArg(this.publish, k.channel),
      '#v',
      record.version,
      '#ua',
      updated,
      '#tw',
      now,
    ];
    if (record.status !== null) args.push('#st', record.status);
    if (record.rkey !== null) args.push('#rk', record.rkey);
    if (record.headers !== null) args.push('#hd', encodeValue(record.headers) ?? '{}');
    if (record.born_at !== null) args.push('#ba', String(record.born_at));
    if (record.finished_at !== null) args.push('#fa', String(record.finished_at));
    if (record.incarnation !== '') args.push('#in', record.incarnation);
    for (const key of Object.keys(record.context)) {
      const text = encodeValue(record.context[key]);
      if (text !== undefined) args.push(`.${key}`, `-1:${text}`);
    }
    this.known.forget(id);
    record.incarnation = await this.reaching(
      () => `restore of ${label(id)}`,
      () => STORE_SCRIPTS.restore.callList(this.redis, args),
    );
    this.known.forget(id);
    record.updated_at = updated / 1000;
  }

  protected async shutdown(): Promise<void> {
    // What was asked for before close() goes out and is answered before the QUIT: the syncs queued
    // for the next tick are sent now, and the direct writes queued or under way are waited for.
    while (this.syncs.waiting || this.writes.busy) {
      if (this.syncs.waiting) this.syncs.flush();
      await this.writes.settle();
    }
    await this.watchers.close();
    if (this.owned) await closeClient(this.redis);
  }
}

printable(RedisContextStore, (s) => ({ redis: redisAddress(s.redis), prefix: s.prefix, status: s.status }));
