import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { partTag, type RedisClient, slotOf } from '../internal/cluster.js';
import { isPlainObject } from '@contexture/context/protocol';
import { CollectorError } from '../internal/errors.js';
import { checkFunction, checkOptionNames, checkSignal, hashTagRefusal } from '../internal/checks.js';
import { closeClient, reaching, redisAddress, resolveRedis, unavailable } from '../internal/redis-client.js';
import { checkMs, checkProgress, checkText, errorInfo, invalid, toJson } from './task-checks.js';
import { TaskError, taskFailure } from './task-error.js';
import {
  type ListenOptions,
  type QueryOptions,
  type Task,
  TASK_QUEUE_DEFAULTS,
  type TaskFunction,
  type TaskQueueOptions,
} from './task-options.js';
import { TASK_SCRIPTS as SCRIPTS } from './task-scripts.js';
import { TaskSubscriber, type Waiter } from './task-subscriber.js';
import { TaskWorker, type WorkerQueue } from './task-worker.js';
import { printable } from '../internal/printable.js';
import { setLongTimeout } from '../internal/timers.js';
import { ShardCount } from '../internal/shard-count.js';

/** The error of a query with no result within its timeout (`ms`, the one the caller set). */
function timedOut(id: string, name: string, ms: number): TaskError {
  return new TaskError('LC_TASK_TIMEOUT', id, `no result for task '${name}' (${id}) within ${ms} ms`);
}

const QUERY_OPTIONS = ['id', 'name', 'params', 'timeout', 'policy', 'once', 'onProgress', 'signal'];

/**
 * A task queue in Redis: `query()` a named task with JSON params and get its result; `listen()`
 * runs tasks with the queue's handler. At least once: a task whose worker stops renewing it (it died)
 * is run again by another, and only one outcome is ever recorded and told. Results and progress
 * reach the caller by pub/sub notification on its own channel.
 *
 * @example
 * const tasks = new TaskQueue({ redis: 'redis://127.0.0.1:6379', handler: { resize: async (t) => resize(t.params) } });
 * const stop = new AbortController();
 * void tasks.listen(['resize'], { concurrency: 8, signal: stop.signal });
 * const out = await tasks.query({ name: 'resize', params: { url, width: 200 }, timeout: 10_000 });
 */
export class TaskQueue implements AsyncDisposable {
  readonly redis: RedisClient;
  readonly prefix: string;
  readonly namespace: string;
  /** This queue's id: its reply channel and its listeners' names derive from it. */
  readonly id = randomUUID();
  private readonly owned: boolean;
  private readonly o: {
    visibilityTimeout: number;
    maxAttempts: number;
    resultTtl: number;
    listenerTimeout: number;
    recheckInterval: number;
  };
  private readonly handler: TaskQueueOptions['handler'];
  /** Where the namespace's listeners and wake-up channel are: the first part's key prefix. */
  private readonly base: string;
  /** Per part, its key prefix `<prefix>tq:{<tag>}:` (see partTag(); the first is `base`). */
  private readonly bases: string[];
  private readonly replyChannel: string;
  private readonly wakeChannel: string;
  /** The reply (and wake-up) subscription, and the queries waiting on it. */
  private readonly subscriber: TaskSubscriber;
  /** What this queue's workers (`listen()`) see of it. */
  private readonly workerQueue: WorkerQueue;
  /** The check that the namespace's other queues say the same number of parts. */
  private readonly shardCount: ShardCount;
  /** listeners() calls under way, by task name: queries asking at once share one. */
  private readonly listenerChecks = new Map<string, Promise<number>>();
  private closing: Promise<void> | null = null;
  private readonly closed = new AbortController();
  /** The running `listen()` loops: `close()` waits for them (and so for the tasks they run). */
  private readonly listening = new Set<Promise<void>>();

  constructor(options: TaskQueueOptions = {}) {
    checkOptionNames('LC_TASK_INVALID', 'TaskQueue', options, [...Object.keys(TASK_QUEUE_DEFAULTS), 'handler']);
    const o = {
      ...TASK_QUEUE_DEFAULTS,
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    } as Required<TaskQueueOptions>;
    if (typeof o.prefix !== 'string') throw invalid('prefix must be a string');
    this.prefix = o.prefix;
    this.namespace = checkText('namespace', o.namespace);
    const tagRefusal = hashTagRefusal(this.prefix, 'tq', 'namespace', this.namespace);
    if (tagRefusal !== null) throw invalid(tagRefusal);
    const shards = checkMs('shards', o.shards);
    if (shards > 1024) throw invalid(`shards must be at most 1024, got ${shards}`);
    this.o = {
      visibilityTimeout: checkMs('visibilityTimeout', o.visibilityTimeout),
      maxAttempts: checkMs('maxAttempts', o.maxAttempts),
      resultTtl: checkMs('resultTtl', o.resultTtl),
      listenerTimeout: checkMs('listenerTimeout', o.listenerTimeout),
      recheckInterval: checkMs('recheckInterval', o.recheckInterval),
    };
    const h = options.handler;
    if (
      h !== undefined &&
      typeof h !== 'function' &&
      !(isPlainObject(h) && Object.values(h).every((f) => typeof f === 'function'))
    ) {
      throw invalid('handler must be a function or an object of functions by task name');
    }
    this.handler = h;
    // Every running task and every query asking for listeners listens for close(): many at once is normal.
    setMaxListeners(0, this.closed.signal);
    const client = resolveRedis(o.redis, () => {});
    if (typeof client === 'string') throw invalid(client);
    this.redis = client.redis;
    this.owned = client.owned;
    this.bases = Array.from({ length: shards }, (_, n) => `${this.prefix}tq:{${partTag(this.namespace, n)}}:`);
    this.base = this.bases[0]!;
    this.replyChannel = `${this.base}r:${this.id}`;
    this.wakeChannel = `${this.base}new`;
    this.subscriber = new TaskSubscriber(
      this.redis,
      this.replyChannel,
      this.wakeChannel,
      (id) => this.taskKey(id),
      this.o.recheckInterval,
    );
    const countKey = `${this.base}shards`;
    this.shardCount = new ShardCount(
      this.redis,
      countKey,
      shards,
      (stored) =>
        new CollectorError(
          'LC_TASK_SHARDS_MISMATCH',
          `task queue namespace '${this.namespace}' is spread over ${stored} part(s) (${countKey}), this queue says shards: ${shards}`,
        ),
    );
    this.workerQueue = {
      redis: this.redis,
      id: this.id,
      base: this.base,
      bases: this.bases,
      baseOf: (id) => this.baseOf(id),
      visibilityTimeout: this.o.visibilityTimeout,
      listenerTimeout: this.o.listenerTimeout,
      closed: this.closed.signal,
      subscriber: this.subscriber,
      shardCount: this.shardCount,
      functionFor: (name) => this.functionFor(name),
      isClosing: () => this.closing !== null,
    };
  }

  /**
   * Runs a task and resolves with its result, or rejects with a {@link TaskError} (or a
   * `CollectorError` `LC_TASK_INVALID` for bad arguments).
   */
  async query<R = unknown, P = unknown>(q: QueryOptions<P>): Promise<R> {
    this.checkOpen();
    if (!isPlainObject(q)) throw invalid('query takes an object with at least a name');
    checkOptionNames('LC_TASK_INVALID', 'query', q, QUERY_OPTIONS);
    const name = checkText('name', q.name);
    const id = q.id === undefined ? randomUUID() : checkText('id', q.id);
    const timeout = checkMs('timeout', q.timeout ?? 60_000);
    const policy = q.policy ?? 'auto';
    if (!['local', 'remote', 'localFirst', 'remoteFirst', 'auto'].includes(policy))
      throw invalid(`policy must be local, remote, localFirst, remoteFirst or auto, got ${String(policy)}`);
    checkSignal('LC_TASK_INVALID', 'signal', q.signal);
    checkFunction('LC_TASK_INVALID', 'onProgress', q.onProgress);
    // Checked and turned into text once: a remote run sends the text, a local one reads it back.
    const paramsText = q.params === undefined ? 'null' : toJson('params', q.params);
    if (q.signal?.aborted)
      throw new TaskError('LC_TASK_ABORTED', id, `task ${id} was aborted before it started`, null, {
        cause: q.signal.reason,
      });
    const fn = this.functionFor(name);
    // One timeout for the whole query, asking for listeners included.
    const deadline = performance.now() + timeout;
    const left = () => Math.max(1, Math.ceil(deadline - performance.now()));
    const here = () => this.runHere<R>(fn, id, name, JSON.parse(paramsText) as P, left(), q);
    switch (policy) {
      case 'local':
        if (fn === undefined)
          throw new TaskError('LC_TASK_NO_HANDLER', id, `no handler for task '${name}' here (policy local)`);
        return here();
      case 'remote':
        return this.remote<R>(id, name, paramsText, left(), q);
      case 'localFirst':
        if (fn !== undefined) {
          try {
            return await here();
          } catch (err) {
            // Only a failure of the task goes on to a listener: aborted, out of time or closed, the query ends.
            if (!(err instanceof TaskError) || err.code !== 'LC_TASK_FAILED') throw err;
          }
        }
        return this.remote<R>(id, name, paramsText, left(), q);
      case 'remoteFirst':
        if (fn === undefined || (await this.listenersOrNone(id, name, timeout, q.signal)) > 0) {
          try {
            return await this.remote<R>(id, name, paramsText, left(), q);
          } catch (err) {
            if (fn === undefined || !(err instanceof TaskError) || err.code !== 'LC_TASK_GAVE_UP') throw err;
          }
        }
        return here();
      default:
        if (fn === undefined || (await this.listenersOrNone(id, name, timeout, q.signal)) > 0)
          return this.remote<R>(id, name, paramsText, left(), q);
        return here();
    }
  }

  /** Live listeners of a task name (any process). */
  async listeners(name: string): Promise<number> {
    this.checkOpen();
    checkText('name', name);
    return reaching(
      `listeners of task '${name}'`,
      this.redis,
      SCRIPTS.listeners.call(this.redis, `${this.base}l:${name}`, 'count', '', this.o.listenerTimeout),
    );
  }

  /**
   * listeners() for a query (`id`, `timeout`, `signal`), but none when Redis cannot be reached or
   * does not answer within `listenerTimeout` (no listener can take the task then); the query's
   * timeout and signal end the wait as they end the query.
   */
  private listenersOrNone(id: string, name: string, timeout: number, signal: AbortSignal | undefined): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      let settled = false;
      const closed = this.closed.signal;
      const settle = (then: () => void): void => {
        if (settled) return;
        settled = true;
        timer.clear();
        signal?.removeEventListener('abort', onAbort);
        closed.removeEventListener('abort', onClose);
        then();
      };
      const bound = Math.min(timeout, this.o.listenerTimeout);
      const timer = setLongTimeout(() => {
        if (bound < timeout) settle(() => resolve(0));
        else
          settle(() =>
            reject(
              new TaskError(
                'LC_TASK_TIMEOUT',
                id,
                `no result for task '${name}' (${id}) within ${timeout} ms: Redis did not say whether a listener is alive`,
              ),
            ),
          );
      }, bound);
      const onAbort = () =>
        settle(() =>
          reject(
            new TaskError('LC_TASK_ABORTED', id, `task ${id} was aborted before it started`, null, {
              cause: signal?.reason,
            }),
          ),
        );
      const onClose = () =>
        settle(() =>
          reject(new CollectorError('LC_TASK_CLOSED', `the task queue closed while waiting for task ${id}`)),
        );
      signal?.addEventListener('abort', onAbort, { once: true });
      closed.addEventListener('abort', onClose, { once: true });
      let check = this.listenerChecks.get(name);
      if (check === undefined) {
        // Shared by the queries that ask meanwhile: a Redis that does not answer is asked once.
        const made = this.listeners(name);
        check = made;
        this.listenerChecks.set(name, made);
        const forget = () => {
          if (this.listenerChecks.get(name) === made) this.listenerChecks.delete(name);
        };
        made.then(forget, forget);
      }
      check.then(
        (n) => settle(() => resolve(n)),
        (err: unknown) =>
          settle(() =>
            err instanceof CollectorError && err.code === 'LC_REDIS_UNAVAILABLE' ? resolve(0) : reject(err),
          ),
      );
    });
  }

  /**
   * Runs tasks of these names with the queue's handler, `concurrency` at a time, until `signal`
   * aborts (or the queue closes); then waits for the running ones and resolves.
   */
  listen(names: string[], options: ListenOptions = {}): Promise<void> {
    const loop = this.listenLoop(names, options);
    this.listening.add(loop);
    void loop.then(
      () => this.listening.delete(loop),
      () => this.listening.delete(loop),
    );
    return loop;
  }

  private async listenLoop(names: string[], options: ListenOptions): Promise<void> {
    this.checkOpen();
    if (!Array.isArray(names) || names.length === 0) throw invalid('listen takes at least one task name');
    checkOptionNames('LC_TASK_INVALID', 'listen', options, ['concurrency', 'signal']);
    for (const n of names) {
      checkText('name', n);
      if (this.functionFor(n) === undefined) throw invalid(`no handler for task '${n}' in this queue`);
    }
    const concurrency = checkMs('concurrency', options.concurrency ?? 1);
    const signal = checkSignal('LC_TASK_INVALID', 'signal', options.signal);
    const stop = AbortSignal.any([this.closed.signal, ...(signal ? [signal] : [])]);
    await new TaskWorker(this.workerQueue, names, concurrency, stop).run();
  }

  /**
   * Rejects pending queries (`LC_TASK_CLOSED`), stops the listeners and waits for the tasks they run
   * (their `signal` aborts), then closes the clients it made. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed.abort();
      this.subscriber.rejectAll(
        (id) => new CollectorError('LC_TASK_CLOSED', `the task queue closed while waiting for task ${id}`),
      );
      // Listeners stop taking tasks and finish the running ones (their signals abort) first.
      await Promise.allSettled([...this.listening]);
      await this.subscriber.close();
      if (this.owned) await closeClient(this.redis);
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private checkOpen(): void {
    if (this.closing !== null) throw new CollectorError('LC_TASK_CLOSED', 'the task queue is closed');
  }

  private functionFor(name: string): TaskFunction | undefined {
    const h = this.handler;
    if (typeof h === 'function') return h;
    if (h !== undefined && Object.hasOwn(h, name)) return h[name];
    return undefined;
  }

  /**
   * Runs a task in this process, as a listener would (JSON in, JSON out). The query ends at its
   * timeout (`LC_TASK_TIMEOUT`), when its signal aborts (`LC_TASK_ABORTED`) or when the queue
   * closes (`LC_TASK_CLOSED`), whether or not the function heeds its `signal`, which aborts then.
   */
  private runHere<R>(
    fn: TaskFunction | undefined,
    id: string,
    name: string,
    params: unknown,
    timeout: number,
    q: QueryOptions<any>,
  ): Promise<R> {
    if (fn === undefined)
      return Promise.reject(new TaskError('LC_TASK_NO_HANDLER', id, `no handler for task '${name}' here`));
    const ac = new AbortController();
    const task: Task = {
      id,
      name,
      params,
      attempt: 1,
      signal: q.signal ? AbortSignal.any([ac.signal, q.signal]) : ac.signal,
      update: async (current, total) => {
        checkProgress(current, total);
        q.onProgress?.(current, total);
      },
    };
    const closed = this.closed.signal;
    return new Promise<R>((resolve, reject) => {
      let settled = false;
      const settle = (then: () => void): void => {
        if (settled) return;
        settled = true;
        timer.clear();
        q.signal?.removeEventListener('abort', onAbort);
        closed.removeEventListener('abort', onClose);
        then();
      };
      /** Ends the query with `err`, telling the task through its signal. */
      const end = (err: Error) =>
        settle(() => {
          ac.abort(err);
          reject(err);
        });
      const timer = setLongTimeout(() => end(timedOut(id, name, q.timeout ?? timeout)), timeout);
      const onAbort = () =>
        end(
          new TaskError('LC_TASK_ABORTED', id, `task '${name}' (${id}) was aborted while it ran`, null, {
            cause: q.signal?.reason,
          }),
        );
      const onClose = () => end(new CollectorError('LC_TASK_CLOSED', `the task queue closed while task ${id} ran`));
      q.signal?.addEventListener('abort', onAbort, { once: true });
      closed.addEventListener('abort', onClose, { once: true });
      new Promise<unknown>((r) => r(fn(task))).then(
        (result) => {
          let out: R;
          try {
            out = JSON.parse(toJson('the result', result)) as R;
          } catch (err) {
            settle(() => reject(err));
            return;
          }
          settle(() => resolve(out));
        },
        (err: unknown) => {
          const remote = errorInfo(err);
          settle(() =>
            reject(
              new TaskError('LC_TASK_FAILED', id, `task '${name}' (${id}) failed: ${remote.message}`, remote, {
                cause: err,
              }),
            ),
          );
        },
      );
    });
  }

  /** Queues the task (or joins it) and waits for its outcome by notification. */
  private async remote<R>(
    id: string,
    name: string,
    paramsText: string,
    timeout: number,
    q: QueryOptions<any>,
  ): Promise<R> {
    let settle!: Waiter;
    const outcome = new Promise<unknown>((resolve, reject) => {
      settle = { name, resolve, reject, onProgress: q.onProgress };
    });
    outcome.catch(() => {}); // it may reject before it is awaited below
    const stopWaiting = this.subscriber.wait(id, settle);
    // `timeout` is what is left of the query's own (asking for listeners may have taken some): the
    // message says the one the caller set.
    const timer = setLongTimeout(() => settle.reject(timedOut(id, name, q.timeout ?? timeout)), timeout);
    const onAbort = () =>
      settle.reject(
        new TaskError('LC_TASK_ABORTED', id, `waiting for task '${name}' (${id}) was aborted`, null, {
          cause: q.signal?.reason,
        }),
      );
    q.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      // Not awaited on its own: the query's timeout (or abort) settles it even while Redis is slow.
      // The subscriber waits for Redis however long it takes (it must not lose a notification): a
      // Redis not reached yet is found out by a command of the queue's client, which gives up
      // (unless the caller's client was made never to: then the query's timeout ends the wait).
      const subscribed = this.subscriber.subscribe();
      const submit = () =>
        SCRIPTS.submit.call(
          this.redis,
          this.taskKey(id),
          `${this.baseOf(id)}q:${name}`,
          `${this.baseOf(id)}w:${id}`,
          id,
          name,
          paramsText,
          timeout,
          this.o.maxAttempts,
          this.replyChannel,
          this.wakeChannel,
          // With `once`, the outcome is kept only long enough for a caller that missed the notification.
          q.once === true ? Math.min(60_000, this.o.resultTtl) : this.o.resultTtl,
        );
      void (
        this.subscriber.subscribed ? subscribed : Promise.race([subscribed, this.redis.ping().then(() => subscribed)])
      )
        // Queued only where the namespace's listeners look (see ShardCount).
        .then(() => (this.shardCount.ok ? submit() : this.shardCount.check().then(submit)))
        .then(
          ([state, payload]) => {
            if (state === 'done') settle.resolve(JSON.parse(payload ?? 'null'));
            else if (state === 'failed') settle.reject(taskFailure(id, name, payload));
            else if (state === 'conflict')
              settle.reject(
                new TaskError(
                  'LC_TASK_CONFLICT',
                  id,
                  `task ${id} exists with the name '${String(payload)}', not '${name}'`,
                ),
              );
          },
          // Redis out of reach or refusing for now: LC_REDIS_UNAVAILABLE; any other error (a script's, an
          // ACL's) as Redis gave it.
          (err: unknown) =>
            settle.reject(unavailable(`task '${name}' (${id}) could not be queued`, err, this.redis) as Error),
        );
      const result = await outcome;
      // Dropped once told (not waited for: the caller has its result).
      if (q.once === true) void this.redis.del(this.taskKey(id)).catch(() => {});
      return result as R;
    } finally {
      timer.clear();
      q.signal?.removeEventListener('abort', onAbort);
      stopWaiting();
    }
  }

  /** The key prefix of the part task `id` is in: its id's hash slot, modulo the parts. */
  private baseOf(id: string): string {
    return this.bases.length === 1 ? this.base : this.bases[slotOf(id) % this.bases.length]!;
  }

  private taskKey(id: string): string {
    return `${this.baseOf(id)}t:${id}`;
  }
}

printable(TaskQueue, (q) => ({ redis: redisAddress(q.redis), prefix: q.prefix, namespace: q.namespace, id: q.id }));
