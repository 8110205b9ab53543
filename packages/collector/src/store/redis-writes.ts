/**
 * The direct-write queue of the Redis store: per context, the writes and deletes asked for (and
 * the bus messages asked for among them) go to Redis in the order asked, one script call after
 * another; a call that loses to another writer is made again after a capped, jittered pause.
 */
import { backoffDelay, type BackoffOptions } from '@contexture/context/internal';
import type { RedisClient } from '../internal/cluster.js';
import { CollectorError } from '../internal/errors.js';
import type { KnownContexts } from './known-contexts.js';
import type { ResolvedStoreOptions } from './options.js';
import { failure, label } from './redis-failure.js';
import { contextKeys, type PublishMode, publishArg } from './redis-keys.js';
import {
  mergeSpec,
  patchSpec,
  setSpec,
  writeArgs,
  type DirectOp,
  type MergeOp,
  type PatchOp,
  type SetOp,
  type WriteSpec,
} from './redis-write-specs.js';
import { STORE_SCRIPTS } from './store-scripts.js';

/**
 * The pause before a write lost to another writer goes again, at its `attempt`: at random up to
 * 2 ** attempt ms, at most 50 ms (see StoreOptions.updateRetries).
 */
const CONFLICT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({
  initialDelay: 1,
  factor: 2,
  maxDelay: 50,
  jitter: 1,
});

/** What the queue needs of its store. */
export interface RedisWritesOptions {
  redis: RedisClient;
  prefix: string;
  publish: PublishMode;
  options: ResolvedStoreOptions;
  /** What the store knows of the contexts: what merges start from, what writes keep up to date. */
  known: KnownContexts;
  /** Where Redis is, as errors say it. */
  at: string;
}

/** The direct writes and deletes of a Redis store, per context in the order asked (see runOps()). */
export class RedisWrites {
  private readonly redis: RedisClient;
  private readonly prefix: string;
  private readonly publish: PublishMode;
  private readonly options: ResolvedStoreOptions;
  private readonly known: KnownContexts;
  private readonly at: string;
  /** Direct writes and deletes not sent yet, per id, in the order asked (see runOps()). */
  private readonly directOps = new Map<string, DirectOp[]>();
  /** Per id, its direct writes being sent and answered, one call after another (see runOps()). */
  private readonly running = new Map<string, Promise<void>>();

  constructor(o: RedisWritesOptions) {
    this.redis = o.redis;
    this.prefix = o.prefix;
    this.publish = o.publish;
    this.options = o.options;
    this.known = o.known;
    this.at = o.at;
  }

  /** True when nothing of `id` is waiting or under way: a write asked for now goes first. */
  idle(id: string): boolean {
    return !this.directOps.has(id) && !this.running.has(id);
  }

  /** True while writes are waiting or under way. */
  get busy(): boolean {
    return this.directOps.size > 0 || this.running.size > 0;
  }

  /** Queues a direct write or delete of `id`; its writes start at the end of this turn unless under way. */
  queue(id: string, op: DirectOp): void {
    let ops = this.directOps.get(id);
    if (ops === undefined) {
      ops = [];
      this.directOps.set(id, ops);
    }
    ops.push(op);
    if (ops.length === 1 && !this.running.has(id)) process.nextTick(() => this.startOps(id));
  }

  /** Starts what waits now, and waits for every write under way to be answered. */
  async settle(): Promise<void> {
    for (const id of [...this.directOps.keys()]) this.startOps(id);
    await Promise.allSettled([...this.running.values()]);
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
        const k = contextKeys(this.prefix, id);
        this.known.forget(id);
        try {
          if (first.kind === 'apply')
            first.resolve(await STORE_SCRIPTS.apply.callList(this.redis, [2, k.state, k.deltas, ...first.args]));
          else
            first.resolve(
              (await STORE_SCRIPTS.remove.call(this.redis, k.state, k.deltas, publishArg(this.publish, k.channel))) ===
                1,
            );
        } catch (err) {
          // applyMany() says what its calls failed in.
          first.reject(first.kind === 'apply' ? err : failure(`delete of ${label(id)}`, err, this.at));
        }
        this.known.forget(id);
        continue;
      }
      const specs: WriteSpec[] = [];
      let merges = 0;
      while (merges < ops.length && ops[merges]!.kind === 'merge') merges++;
      if (merges > 0) {
        const group = ops.splice(0, merges) as MergeOp[];
        let spec: WriteSpec | null;
        try {
          spec = await mergeSpec(this.redis, contextKeys(this.prefix, id).state, this.known, id, group);
        } catch (err) {
          // What it knew may be what does not read: the next write reads the fields again.
          this.known.forget(id);
          const failed = failure(`update of ${label(id)}`, err, this.at);
          for (const op of group) op.reject(failed);
          continue;
        }
        if (spec !== null) specs.push(spec);
      }
      while (ops.length > 0 && (ops[0]!.kind === 'set' || ops[0]!.kind === 'patch')) {
        const op = ops.shift() as SetOp | PatchOp;
        try {
          specs.push(op.kind === 'set' ? (op.spec ?? setSpec(this.known, id, op)) : patchSpec(this.known, id, op));
        } catch (err) {
          // What the store knows of the context does not read (LC_STORE_CORRUPT): this write fails
          // alone, and the next one reads the fields again.
          this.known.forget(id);
          op.reject(err);
        }
        if (op.kind === 'set') op.spec = undefined;
      }
      if (specs.length === 0) continue;
      let reply: Array<number | string>;
      try {
        reply = await STORE_SCRIPTS.write.callList(
          this.redis,
          writeArgs(contextKeys(this.prefix, id), this.options, this.publish, specs),
        );
      } catch (err) {
        const failed = failure(`write to ${label(id)}`, err, this.at);
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
        if (replies[0]! < 0 || !spec.done({ replies, incarnation })) for (const op of spec.ops) again.push(op);
      }
      const known = this.known.peek(id);
      if (again.length === 0 && known !== undefined && known.incarnation === incarnation) {
        // What the context is at after the call: the next merges can be sent ready.
        known.stamp = String(reply[reply.length - 2]);
        known.status = String(reply[reply.length - 1]);
      }
      if (again.length > 0) {
        // Lost to another writer: what was not done goes first again, in its order.
        this.known.forget(id);
        // (Loops, not spreads: a turn may hold tens of thousands of updates of one context.)
        let attempt = 0;
        const kept: DirectOp[] = [];
        for (const op of again) {
          if (op.kind === 'merge') {
            attempt = Math.max(attempt, ++op.attempts);
            if (op.attempts > this.options.updateRetries) {
              op.reject(
                new CollectorError(
                  'LC_STORE_CONFLICT',
                  `update of ${JSON.stringify(id)} lost to concurrent writers ${this.options.updateRetries + 1} times`,
                ),
              );
              continue;
            }
          }
          kept.push(op);
        }
        const rest = ops.splice(0);
        for (const op of kept) ops.push(op);
        for (const op of rest) ops.push(op);
        await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt, CONFLICT_BACKOFF)));
      }
    }
  }
}
