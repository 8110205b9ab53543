import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../internal/cluster.js';
import { type BackoffOptions, backoffDelay } from '@contexture/context/internal';
import { CollectorError } from '../internal/errors.js';
import { reaching } from '../internal/redis-client.js';
import { sleep } from '../internal/sleep.js';
import { setLongInterval } from '../internal/timers.js';
import { checkProgress, errorInfo, invalid, toJson } from './task-checks.js';
import { TaskError } from './task-error.js';
import type { Task, TaskFunction } from './task-options.js';
import { type Claimed, TASK_SCRIPTS as SCRIPTS } from './task-scripts.js';
import type { ShardCount } from '../internal/shard-count.js';
import type { TaskSubscriber } from './task-subscriber.js';

/** What a worker needs of its {@link TaskQueue}. */
export interface WorkerQueue {
  readonly redis: RedisClient;
  /** The queue's id: the worker's name derives from it. */
  readonly id: string;
  /** The key prefix of the namespace's listeners: `<prefix>tq:{<namespace>}:`. */
  readonly base: string;
  /** Per part of the namespace, its key prefix (the first is `base`). */
  readonly bases: readonly string[];
  /** The key prefix of the part task `id` is in. */
  baseOf(id: string): string;
  readonly visibilityTimeout: number;
  readonly listenerTimeout: number;
  /** Aborts when the queue closes. */
  readonly closed: AbortSignal;
  readonly subscriber: TaskSubscriber;
  /** The check that the namespace's other queues say the same number of parts. */
  readonly shardCount: ShardCount;
  functionFor(name: string): TaskFunction | undefined;
  /** Whether the queue's close() was called. */
  isClosing(): boolean;
}

/** What a worker needs to take its next task in the call that finishes the last one. */
interface Chain {
  /** Per name, its ready list then its running zset (as the claim script takes them). */
  keys: string[];
  names: string[];
  worker: string;
}

/**
 * Pauses between the tries of a finish that Redis did not take: 50, 100, 200, 400, 800 ms. The
 * claim stays this worker's until its visibility passes, after which another worker runs the task
 * again (at least once).
 */
const FINISH_RETRY: BackoffOptions = Object.freeze({ initialDelay: 50, maxDelay: 800, factor: 2, jitter: 0 });
/** Tries of a finish. */
const FINISH_TRIES = 5;

/**
 * One `listen()` of a {@link TaskQueue}: claims tasks of its names, `concurrency` at a time, runs
 * each with the queue's handler while renewing it, and records its outcome (once), until `stop`
 * aborts; then waits for the running ones. It says it is alive in the listener sets of its names
 * meanwhile (for `auto` and `remoteFirst` queries).
 */
export class TaskWorker {
  private readonly worker: string;
  /** Per part, for each of this worker's names, its ready list then its running zset. */
  private readonly keys: string[][];
  /** The part the next claim looks in first: parts are taken in turn. */
  private nextPart = 0;
  /** Pause (ms) between looks for tasks when none came: the wake-up channel usually ends it sooner. */
  private readonly idle: number;
  /** Pauses after failed claims (Redis unreachable): `idle`, every time. */
  private readonly claimRetry: BackoffOptions;

  constructor(
    private readonly q: WorkerQueue,
    private readonly names: string[],
    private readonly concurrency: number,
    private readonly stop: AbortSignal,
  ) {
    this.worker = `${q.id}:${randomUUID().slice(0, 8)}`;
    this.keys = q.bases.map((base) => names.flatMap((n) => [`${base}q:${n}`, `${base}running:${n}`]));
    // A worker that died leaves its task to be found once its visibility passes: look that often.
    this.idle = Math.max(20, Math.min(1000, Math.floor(q.visibilityTimeout / 4)));
    this.claimRetry = { initialDelay: this.idle, maxDelay: this.idle, factor: 1, jitter: 0 };
  }

  /** Runs until `stop` aborts and the running tasks finished. */
  async run(): Promise<void> {
    const { q, names, keys, worker, stop, concurrency } = this;
    await q.subscriber.subscribe(true);
    const beat = async (mode: 'beat' | 'leave') => {
      await Promise.all(
        names.map((n) => SCRIPTS.listeners.call(q.redis, `${q.base}l:${n}`, mode, worker, q.listenerTimeout)),
      ).catch(() => {});
    };
    await beat('beat');
    const beater = setLongInterval(() => void beat('beat'), Math.max(50, Math.floor(q.listenerTimeout / 3)), false);
    const running = new Set<Promise<void>>();
    let wake: (() => void) | null = null;
    // Set by every wake-up; cleared when a claim starts. A wake-up that comes while a claim is under
    // way (its task may have been queued after the claim looked) is not lost: the loop looks again
    // instead of waiting.
    let woken = false;
    const poke = () => {
      woken = true;
      wake?.();
    };
    q.subscriber.wakers.add(poke);
    let failures = 0;
    try {
      while (!stop.aborted) {
        let claimed = false;
        while (running.size < concurrency && !stop.aborted) {
          let got: Claimed | null = null;
          let part = 0;
          woken = false;
          try {
            if (!q.shardCount.ok) await q.shardCount.check();
            // Each part in turn, from the one after the part of the last claim, until one has a task.
            for (let tried = 0; got === null && tried < keys.length; tried++) {
              part = this.nextPart;
              this.nextPart = (part + 1) % keys.length;
              const base = q.bases[part]!;
              got = await SCRIPTS.claim.call(
                q.redis,
                keys[part]!.length,
                ...keys[part]!,
                base,
                worker,
                q.visibilityTimeout,
                '',
                ...names,
              );
            }
            failures = 0;
          } catch (err) {
            // Another number of parts than the namespace's: nothing this listener claims would be right.
            if (err instanceof CollectorError && err.code === 'LC_TASK_SHARDS_MISMATCH') throw err;
            await sleep(backoffDelay(++failures, this.claimRetry), stop); // Redis unreachable: try again in a while
            break;
          }
          if (got === null) break;
          claimed = true;
          // A chain whose last finish found the ready lists empty frees its place without a look
          // for tasks: one queued since then woke the listener (it landed in an empty list), unless
          // the namespace has other parts (the finish looked in its task's part only) or a wake-up
          // came meanwhile (while its place was taken, the loop may have let it pass).
          const p = this.runChain(got, { keys: keys[part]!, names, worker }).then(
            (drained) => {
              running.delete(p);
              if (!drained || woken || keys.length > 1) poke();
            },
            () => {
              running.delete(p);
              poke();
            },
          );
          running.add(p);
        }
        if (stop.aborted) break;
        // Stopped by a full listener rather than by empty lists: a task may wait behind the one
        // just claimed (queued in a list that was not empty, so no wake-up comes for it). The
        // first chain that frees a place looks again.
        if (claimed && running.size >= concurrency) woken = true;
        if ((claimed || woken) && running.size < concurrency) continue;
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, this.idle);
          stop.addEventListener('abort', done, { once: true });
          wake = done;
          function done() {
            clearTimeout(t);
            stop.removeEventListener('abort', done);
            resolve();
          }
        });
        wake = null;
      }
    } finally {
      q.subscriber.wakers.delete(poke);
      beater.clear();
      await Promise.allSettled(running);
      if (!q.isClosing() || q.redis.status === 'ready') await beat('leave');
    }
  }

  /**
   * Runs a claimed task, then the next ones its finish claimed, while the listener runs. Resolves
   * with true when the last finish looked for a next task and the ready lists were empty.
   */
  private async runChain(first: Claimed, chain: Chain): Promise<boolean> {
    let task: Claimed | 'drained' | null = first;
    while (task !== null && task !== 'drained') task = await this.runClaimed(task, this.stop.aborted ? null : chain);
    return task === 'drained';
  }

  /**
   * Runs one claimed task: renews it while it runs, then records its outcome (once), taking the
   * worker's next task in the same call when `chain` is given. Returns that next task, 'drained'
   * when the finish looked for one and found none, or null when it did not look (or failed).
   */
  private async runClaimed(
    [id, name, paramsText, attempt, token]: Claimed,
    chain: Chain | null,
  ): Promise<Claimed | 'drained' | null> {
    const q = this.q;
    const fn = q.functionFor(name);
    const base = q.baseOf(id);
    const keys = [`${base}t:${id}`, `${base}running:${name}`, `${base}w:${id}`] as const;
    const ac = new AbortController();
    const onClose = () => ac.abort(new CollectorError('LC_TASK_CLOSED', `the task queue closed while task ${id} ran`));
    q.closed.addEventListener('abort', onClose, { once: true });
    const renew = setLongInterval(
      () => {
        SCRIPTS.renew.call(q.redis, ...keys, id, token, q.visibilityTimeout, '', '').then(
          (ok) => {
            if (ok === 0) ac.abort(new TaskError('LC_TASK_TIMEOUT', id, `task ${id} is no longer this worker's`));
          },
          () => {},
        );
      },
      Math.max(10, Math.floor(q.visibilityTimeout / 3)),
      false,
    );
    let outcome: ['done' | 'failed', string];
    try {
      let params: unknown;
      try {
        params = JSON.parse(paramsText);
      } catch {
        throw invalid(`the params of task ${id} are not JSON`);
      }
      const task: Task = {
        id,
        name,
        params,
        attempt: Number(attempt),
        signal: ac.signal,
        update: async (current, total) => {
          checkProgress(current, total);
          const ok = await reaching(
            `progress of task '${name}' (${id})`,
            q.redis,
            SCRIPTS.renew.call(q.redis, ...keys, id, token, q.visibilityTimeout, current, total),
          );
          if (ok === 0) ac.abort(new TaskError('LC_TASK_TIMEOUT', id, `task ${id} is no longer this worker's`));
        },
      };
      const result = await fn!(task);
      try {
        outcome = ['done', toJson('the result', result)];
      } catch (err) {
        // Refused as a run here refuses it: the caller gets LC_TASK_INVALID, not a failure of the task.
        outcome = ['failed', JSON.stringify({ ...errorInfo(err), invalidResult: true })];
      }
    } catch (err) {
      if (q.closed.aborted) {
        // Stopped by our own close: hand the task back at once (its visibility ends now) for another
        // worker, rather than record a failure that is not the task's.
        renew.clear();
        await SCRIPTS.renew.call(q.redis, ...keys, id, token, 0, '', '').catch(() => {});
        return null;
      }
      outcome = ['failed', JSON.stringify(errorInfo(err))];
    } finally {
      renew.clear();
      q.closed.removeEventListener('abort', onClose);
    }
    const more = chain === null ? [''] : [base, chain.worker, q.visibilityTimeout, ...chain.names];
    for (let i = 1; i <= FINISH_TRIES; i++) {
      try {
        const [, next] = await SCRIPTS.finish.call(
          q.redis,
          3 + (chain?.keys.length ?? 0),
          ...keys,
          ...(chain?.keys ?? []),
          id,
          token,
          outcome[0],
          outcome[1],
          ...more,
        );
        return next ?? (chain === null ? null : 'drained');
      } catch {
        await sleep(backoffDelay(i, FINISH_RETRY));
      }
    }
    return null;
  }
}
