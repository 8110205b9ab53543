import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Redis } from 'ioredis';
import { isPlainObject } from '@contexture/context/protocol';
import { checkPositive, checkText as text } from '../internal/checks.js';
import { CollectorError } from '../internal/errors.js';
import { type Claimed, TASK_SCRIPTS as SCRIPTS } from './task-scripts.js';
import { closeClient, reaching, resolveRedis, scrubAuth, unavailable } from '../internal/redis-client.js';
import { sleep } from '../internal/sleep.js';

/** What a worker needs to take its next task in the call that finishes the last one. */
interface Chain {
  lists: string[];
  names: string[];
  worker: string;
}

/** Where a task runs: see {@link TaskQueue.query}. */
export type TaskPolicy = 'local' | 'remote' | 'localFirst' | 'remoteFirst' | 'auto';

/** Stable codes of {@link TaskError}. */
export type TaskErrorCode =
  /** The task function threw (`remote` holds its error's name, message and code). */
  | 'LC_TASK_FAILED'
  /** No result within the query's `timeout`. */
  | 'LC_TASK_TIMEOUT'
  /** Every worker that took the task stopped before finishing it, `maxAttempts` times. */
  | 'LC_TASK_GAVE_UP'
  /** A `local` query with no handler for the name here. */
  | 'LC_TASK_NO_HANDLER'
  /** The query's signal aborted. */
  | 'LC_TASK_ABORTED'
  /** A task of that id exists with another name. */
  | 'LC_TASK_CONFLICT';

/** Why a query gave no result. */
export class TaskError extends Error {
  override readonly name = 'TaskError';
  readonly code: TaskErrorCode;
  /** The task's id. */
  readonly task: string;
  /** For `LC_TASK_FAILED`: the error the task function threw, as the worker reported it. */
  readonly remote: { name: string; message: string; code?: string } | null;

  constructor(
    code: TaskErrorCode,
    task: string,
    message: string,
    remote: TaskError['remote'] = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
    this.task = task;
    this.remote = remote;
  }
}

/** A task as its function sees it. */
export interface Task<P = unknown> {
  readonly id: string;
  readonly name: string;
  readonly params: P;
  /** 1 for the first run; more when a worker died before finishing it. */
  readonly attempt: number;
  /** Aborts when the task is no longer this worker's (taken over after a stall, or expired) or its queue closes. */
  readonly signal: AbortSignal;
  /** Reports progress; the caller sees it through `onProgress`. */
  update(current: number, total: number): Promise<void>;
}

/** The function that runs tasks: one for every name, or one per name. */
export type TaskFunction = (task: Task<any>) => unknown;

/** Options of {@link TaskQueue}. */
export interface TaskQueueOptions {
  /** An ioredis client, or a URL (the queue then owns its clients). @default 'redis://127.0.0.1:6379' */
  redis?: Redis | string;
  /** Prefix of every key. @default 'contexture:' */
  prefix?: string;
  /** Queues of one namespace share their tasks. @default 'default' */
  namespace?: string;
  /** What runs tasks here: for `listen()` and for local runs. */
  handler?: TaskFunction | Record<string, TaskFunction>;
  /**
   * A running task not renewed by its worker for this long (ms) is run again by another: how soon a
   * dead worker's task comes back. Workers renew every third of it. @default 30000
   */
  visibilityTimeout?: number;
  /** Runs of one task at most (a dead worker costs one); then it fails with `LC_TASK_GAVE_UP`. @default 3 */
  maxAttempts?: number;
  /** How long (ms) a finished task's outcome is kept: asking again with its id returns it. @default 600000 */
  resultTtl?: number;
  /** A listener not seen for this long (ms) is gone (for `auto` and `remoteFirst`). @default 5000 */
  listenerTimeout?: number;
}

/** A query. */
export interface QueryOptions<P = unknown> {
  /** Its id: querying an id again joins the task (or returns its kept outcome). @default a random uuid */
  id?: string;
  name: string;
  /** JSON. */
  params?: P;
  /** Longest wait for the result (ms); the task expires with it. @default 60000 */
  timeout?: number;
  /**
   * `local`: run here. `remote`: run by a listener. `localFirst`: here, and by a listener when that
   * fails or there is no handler here. `remoteFirst`: by a listener when one is alive, else here;
   * here too when listeners gave it up. `auto`: by a listener when one is alive, else here.
   * @default 'auto'
   */
  policy?: TaskPolicy;
  /** Drop the kept outcome once it is received. @default false */
  once?: boolean;
  /** Progress reports of the task. */
  onProgress?: (current: number, total: number) => void;
  signal?: AbortSignal;
}

/** Options of {@link TaskQueue.listen}. */
export interface ListenOptions {
  /** Tasks run at once. @default 1 */
  concurrency?: number;
  /** Aborting it stops taking tasks; `listen()` resolves once the running ones finished. */
  signal?: AbortSignal;
}

export const TASK_QUEUE_DEFAULTS = Object.freeze({
  redis: 'redis://127.0.0.1:6379',
  prefix: 'contexture:',
  namespace: 'default',
  visibilityTimeout: 30_000,
  maxAttempts: 3,
  resultTtl: 600_000,
  listenerTimeout: 5_000,
});

interface Waiter {
  name: string;
  resolve(v: unknown): void;
  reject(e: Error): void;
  onProgress?: ((current: number, total: number) => void) | undefined;
}

function invalid(message: string): CollectorError {
  return new CollectorError('LC_TASK_INVALID', message);
}

const checkText = (what: string, v: unknown): string => text('LC_TASK_INVALID', what, v, 512);
const checkMs = (what: string, v: unknown): number => checkPositive('LC_TASK_INVALID', what, v);

/** JSON text of a value that must survive as JSON: no functions, cycles, BigInts or undefined at the top. */
function toJson(what: string, v: unknown): string {
  let text: string | undefined;
  try {
    // JSON only: what JSON.stringify would quietly turn into {} or drop is refused instead.
    text = JSON.stringify(v === undefined ? null : v, (key, x: unknown) => {
      if (
        typeof x === 'function' ||
        typeof x === 'symbol' ||
        x instanceof Map ||
        x instanceof Set ||
        x instanceof WeakMap ||
        x instanceof WeakSet ||
        x instanceof Promise
      ) {
        throw new TypeError(
          `${key === '' ? 'the value' : JSON.stringify(key)} is a ${x instanceof Object ? (x.constructor?.name ?? typeof x) : typeof x}, not JSON`,
        );
      }
      return x;
    });
  } catch (err) {
    throw new CollectorError('LC_TASK_INVALID', `${what} must be JSON: ${(err as Error).message}`, { cause: err });
  }
  if (text === undefined) throw invalid(`${what} must be JSON, got ${typeof v}`);
  return text;
}

function remoteOf(text: string | null | undefined): { name: string; message: string; code?: string } {
  try {
    const e: unknown = JSON.parse(text ?? '');
    if (isPlainObject(e)) {
      const r: { name: string; message: string; code?: string } = {
        name: String(e.name ?? 'Error'),
        message: String(e.message ?? ''),
      };
      if (typeof e.code === 'string') r.code = e.code;
      return r;
    }
  } catch {
    /* below */
  }
  return { name: 'Error', message: String(text) };
}

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
  readonly redis: Redis;
  readonly prefix: string;
  readonly namespace: string;
  /** This queue's id: its reply channel and its listeners' names derive from it. */
  readonly id = randomUUID();
  private readonly owned: boolean;
  private readonly o: { visibilityTimeout: number; maxAttempts: number; resultTtl: number; listenerTimeout: number };
  private readonly handler: TaskQueueOptions['handler'];
  private readonly base: string;
  private readonly replyChannel: string;
  private readonly wakeChannel: string;
  private sub: Redis | null = null;
  private subReady: Promise<void> | null = null;
  /** The subscriber has subscribed once: until then a query checks that Redis answers at all. */
  private subscribed = false;
  /** The wake-up channel's subscription, once a listener asked for it. */
  private wakeReady: Promise<void> | null = null;
  /** listeners() calls under way, by task name: queries asking at once share one. */
  private readonly listenerChecks = new Map<string, Promise<number>>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly wakers = new Set<() => void>();
  private closing: Promise<void> | null = null;
  private readonly closed = new AbortController();
  /** The running `listen()` loops: `close()` waits for them (and so for the tasks they run). */
  private readonly listening = new Set<Promise<void>>();

  constructor(options: TaskQueueOptions = {}) {
    const o = {
      ...TASK_QUEUE_DEFAULTS,
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    } as Required<TaskQueueOptions>;
    if (typeof o.prefix !== 'string') throw invalid('prefix must be a string');
    this.prefix = o.prefix;
    this.namespace = checkText('namespace', o.namespace);
    this.o = {
      visibilityTimeout: checkMs('visibilityTimeout', o.visibilityTimeout),
      maxAttempts: checkMs('maxAttempts', o.maxAttempts),
      resultTtl: checkMs('resultTtl', o.resultTtl),
      listenerTimeout: checkMs('listenerTimeout', o.listenerTimeout),
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
    this.base = `${this.prefix}tq:{${this.namespace}}:`;
    this.replyChannel = `${this.base}r:${this.id}`;
    this.wakeChannel = `${this.base}new`;
  }

  /**
   * Runs a task and resolves with its result, or rejects with a {@link TaskError} (or a
   * `CollectorError` `LC_TASK_INVALID` for bad arguments).
   */
  async query<R = unknown, P = unknown>(q: QueryOptions<P>): Promise<R> {
    this.checkOpen();
    if (!isPlainObject(q)) throw invalid('query takes an object with at least a name');
    const name = checkText('name', q.name);
    const id = q.id === undefined ? randomUUID() : checkText('id', q.id);
    const timeout = checkMs('timeout', q.timeout ?? 60_000);
    const policy = q.policy ?? 'auto';
    if (!['local', 'remote', 'localFirst', 'remoteFirst', 'auto'].includes(policy))
      throw invalid(`policy must be local, remote, localFirst, remoteFirst or auto, got ${String(policy)}`);
    // Checked and turned into text once: a remote run sends the text, a local one reads it back.
    const paramsText = q.params === undefined ? 'null' : toJson('params', q.params);
    if (q.signal?.aborted)
      throw new TaskError('LC_TASK_ABORTED', id, `task ${id} was aborted before it started`, null, {
        cause: q.signal.reason,
      });
    const fn = this.functionFor(name);
    const here = () => this.runHere<R>(fn, id, name, JSON.parse(paramsText) as P, q);
    // One timeout for the whole query, asking for listeners included.
    const deadline = performance.now() + timeout;
    const left = () => Math.max(1, Math.ceil(deadline - performance.now()));
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
            if (err instanceof TaskError && err.code === 'LC_TASK_ABORTED') throw err;
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
      const bound = Math.min(timeout, this.o.listenerTimeout);
      const timer = setTimeout(() => {
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
        settle(() => reject(new CollectorError('LC_CLOSED', `the task queue closed while waiting for task ${id}`)));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.closed.signal.addEventListener('abort', onClose, { once: true });
      let settled = false;
      const closed = this.closed.signal;
      function settle(then: () => void): void {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        closed.removeEventListener('abort', onClose);
        then();
      }
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
          settle(() => (err instanceof CollectorError && err.code === 'LC_UNAVAILABLE' ? resolve(0) : reject(err))),
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
    for (const n of names) {
      checkText('name', n);
      if (this.functionFor(n) === undefined) throw invalid(`no handler for task '${n}' in this queue`);
    }
    const concurrency = checkMs('concurrency', options.concurrency ?? 1);
    const stop = AbortSignal.any([this.closed.signal, ...(options.signal ? [options.signal] : [])]);
    const worker = `${this.id}:${randomUUID().slice(0, 8)}`;
    await this.subscribe(true);
    const keys = names.map((n) => `${this.base}q:${n}`);
    const beat = async (mode: 'beat' | 'leave') => {
      await Promise.all(
        names.map((n) =>
          SCRIPTS.listeners.call(this.redis, `${this.base}l:${n}`, mode, worker, this.o.listenerTimeout),
        ),
      ).catch(() => {});
    };
    await beat('beat');
    const beater = setInterval(() => void beat('beat'), Math.max(50, Math.floor(this.o.listenerTimeout / 3)));
    beater.unref();
    const running = new Set<Promise<void>>();
    let wake: (() => void) | null = null;
    const poke = () => wake?.();
    this.wakers.add(poke);
    // A worker that died leaves its task to be found once its visibility passes: look that often.
    const idle = Math.max(20, Math.min(1000, Math.floor(this.o.visibilityTimeout / 4)));
    try {
      while (!stop.aborted) {
        let claimed = false;
        while (running.size < concurrency && !stop.aborted) {
          let got: Claimed | null;
          try {
            got = await SCRIPTS.claim.call(
              this.redis,
              1 + keys.length,
              `${this.base}running`,
              ...keys,
              this.base,
              worker,
              this.o.visibilityTimeout,
              '',
              ...names,
            );
          } catch {
            await sleep(idle, stop); // Redis unreachable: try again in a while
            break;
          }
          if (got === null) break;
          claimed = true;
          const p = this.runChain(got, { lists: keys, names, worker }, stop).finally(() => {
            running.delete(p);
            poke();
          });
          running.add(p);
        }
        if (stop.aborted) break;
        if (claimed && running.size < concurrency) continue;
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, idle);
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
      this.wakers.delete(poke);
      clearInterval(beater);
      await Promise.allSettled(running);
      if (this.closing === null || this.redis.status === 'ready') await beat('leave');
    }
  }

  /**
   * Rejects pending queries (`LC_CLOSED`), stops the listeners and waits for the tasks they run
   * (their `signal` aborts), then closes the clients it made. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed.abort();
      for (const [id, set] of this.waiters)
        for (const w of set)
          w.reject(new CollectorError('LC_CLOSED', `the task queue closed while waiting for task ${id}`));
      this.waiters.clear();
      // Listeners stop taking tasks and finish the running ones (their signals abort) first.
      await Promise.allSettled([...this.listening]);
      if (this.sub !== null) await closeClient(this.sub);
      if (this.owned) await closeClient(this.redis);
    })();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private checkOpen(): void {
    if (this.closing !== null) throw new CollectorError('LC_CLOSED', 'the task queue is closed');
  }

  private functionFor(name: string): TaskFunction | undefined {
    const h = this.handler;
    if (typeof h === 'function') return h;
    if (h !== undefined && Object.hasOwn(h, name)) return h[name];
    return undefined;
  }

  /** Runs a task in this process, as a listener would (JSON in, JSON out). */
  private async runHere<R>(
    fn: TaskFunction | undefined,
    id: string,
    name: string,
    params: unknown,
    q: QueryOptions<any>,
  ): Promise<R> {
    if (fn === undefined) throw new TaskError('LC_TASK_NO_HANDLER', id, `no handler for task '${name}' here`);
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
    let result: unknown;
    try {
      result = await fn(task);
    } catch (err) {
      const e = err as { name?: string; message?: string; code?: unknown };
      const remote = {
        name: String(e?.name ?? 'Error'),
        message: String(e?.message ?? err),
        ...(typeof e?.code === 'string' ? { code: e.code } : {}),
      };
      throw new TaskError('LC_TASK_FAILED', id, `task '${name}' (${id}) failed: ${remote.message}`, remote, {
        cause: err,
      });
    }
    return JSON.parse(toJson('the result', result)) as R;
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
    let set = this.waiters.get(id);
    if (set === undefined) this.waiters.set(id, (set = new Set()));
    set.add(settle);
    // `timeout` is what is left of the query's own (asking for listeners may have taken some): the
    // message says the one the caller set.
    const timer = setTimeout(
      () =>
        settle.reject(
          new TaskError(
            'LC_TASK_TIMEOUT',
            id,
            `no result for task '${name}' (${id}) within ${q.timeout ?? timeout} ms`,
          ),
        ),
      timeout,
    );
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
      const subscribed = this.subscribe();
      void (this.subscribed ? subscribed : Promise.race([subscribed, this.redis.ping().then(() => subscribed)]))
        .then(() =>
          SCRIPTS.submit.call(
            this.redis,
            this.taskKey(id),
            `${this.base}q:${name}`,
            `${this.base}w:${id}`,
            id,
            name,
            paramsText,
            timeout,
            this.o.maxAttempts,
            this.replyChannel,
            this.wakeChannel,
            // With `once`, the outcome is kept only long enough for a caller that missed the notification.
            q.once === true ? Math.min(60_000, this.o.resultTtl) : this.o.resultTtl,
          ),
        )
        .then(
          ([state, payload]) => {
            if (state === 'done') settle.resolve(JSON.parse(payload ?? 'null'));
            else if (state === 'failed') settle.reject(this.failure(id, name, payload));
            else if (state === 'conflict')
              settle.reject(
                new TaskError(
                  'LC_TASK_CONFLICT',
                  id,
                  `task ${id} exists with the name '${String(payload)}', not '${name}'`,
                ),
              );
          },
          // Redis out of reach or refusing for now: LC_UNAVAILABLE; any other error (a script's, an
          // ACL's) as Redis gave it.
          (err: unknown) =>
            settle.reject(unavailable(`task '${name}' (${id}) could not be queued`, err, this.redis) as Error),
        );
      const result = await outcome;
      // Dropped once told (not waited for: the caller has its result).
      if (q.once === true) void this.redis.del(this.taskKey(id)).catch(() => {});
      return result as R;
    } finally {
      clearTimeout(timer);
      q.signal?.removeEventListener('abort', onAbort);
      set.delete(settle);
      if (set.size === 0 && this.waiters.get(id) === set) this.waiters.delete(id);
    }
  }

  private failure(id: string, name: string, payload: string | null | undefined): TaskError {
    const remote = remoteOf(payload);
    if (remote.code === 'LC_TASK_GAVE_UP')
      return new TaskError('LC_TASK_GAVE_UP', id, `task '${name}' (${id}) ${remote.message}`);
    return new TaskError('LC_TASK_FAILED', id, `task '${name}' (${id}) failed: ${remote.message}`, remote);
  }

  private taskKey(id: string): string {
    return `${this.base}t:${id}`;
  }

  /**
   * One subscriber connection: this queue's reply channel (what queries wait for), and with `wake`
   * the wake-up channel too (what listen() waits for; its failure is listen()'s alone).
   */
  private subscribe(wake = false): Promise<void> {
    if (this.subReady === null) {
      // Settings of its own, whatever the queue's client has: it waits for Redis however long it
      // takes, holding its commands meanwhile (no command timeout, no retry limit, an offline queue).
      const sub = this.redis.duplicate({
        maxRetriesPerRequest: null,
        commandTimeout: undefined,
        enableOfflineQueue: true,
      });
      sub.on('error', (err: unknown) => {
        // ioredis reconnects and resubscribes by itself; missed outcomes are read back on 'ready'.
        scrubAuth(err);
      });
      sub.on('message', (channel: string, text: string) => {
        if (channel === this.wakeChannel) {
          for (const w of this.wakers) w();
          return;
        }
        this.onReply(text);
      });
      let first = true;
      sub.on('ready', () => {
        if (first) first = false;
        else void this.recheck();
      });
      this.sub = sub;
      this.subReady = this.whenSubscribed(sub, sub.subscribe(this.replyChannel));
    }
    if (!wake) return this.subReady;
    if (this.wakeReady === null) {
      const sub = this.sub!;
      const ready = this.subReady.then(() => sub.subscribe(this.wakeChannel)).then(() => undefined);
      this.wakeReady = ready;
      // Failed, the next listen() tries again (a failed reply subscription has dropped the subscriber).
      ready.catch(() => {
        if (this.wakeReady === ready) this.wakeReady = null;
      });
    }
    return this.wakeReady;
  }

  /**
   * `subscribing` on the subscriber `sub`, done; if it fails the subscriber is dropped, so that the
   * next call makes a new one instead of failing for good.
   */
  private whenSubscribed(sub: Redis, subscribing: Promise<unknown>): Promise<void> {
    return subscribing.then(
      () => {
        this.subscribed = true;
      },
      (err: unknown) => {
        if (this.sub === sub) {
          this.sub = null;
          this.subReady = null;
          this.wakeReady = null;
          this.subscribed = false;
          sub.disconnect();
        }
        throw err;
      },
    );
  }

  private onReply(text: string): void {
    let m: unknown;
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    if (!isPlainObject(m) || typeof m.id !== 'string') return;
    const set = this.waiters.get(m.id);
    if (set === undefined) return;
    if (m.type === 'progress') {
      const current = Number(m.current);
      const total = Number(m.total);
      for (const w of set) {
        try {
          w.onProgress?.(current, total);
        } catch {
          /* a throwing progress callback must not lose the result */
        }
      }
      return;
    }
    for (const w of [...set]) {
      if (m.type === 'done') {
        try {
          w.resolve(JSON.parse(String(m.result)));
        } catch (err) {
          w.reject(err as Error);
        }
      } else if (m.type === 'failed') {
        w.reject(this.failure(m.id, w.name, String(m.error)));
      }
    }
  }

  /** After a reconnect of the subscriber: outcomes told meanwhile are read back from their tasks. */
  private async recheck(): Promise<void> {
    for (const id of [...this.waiters.keys()]) {
      try {
        const [status, result, error] = await this.redis.hmget(this.taskKey(id), 'status', 'result', 'error');
        if (status === 'done') this.onReply(JSON.stringify({ id, type: 'done', result }));
        else if (status === 'failed') this.onReply(JSON.stringify({ id, type: 'failed', error }));
      } catch {
        /* the next reconnect tries again; the query's timeout bounds the wait */
      }
    }
  }

  /** Runs one claimed task: renews it while it runs, then records its outcome (once). */
  /** Runs a claimed task, then the next ones its finish claimed, while the listener runs. */
  private async runChain(first: Claimed, chain: Chain, stop: AbortSignal): Promise<void> {
    let task: Claimed | null = first;
    while (task !== null) task = await this.runClaimed(task, stop.aborted ? null : chain);
  }

  /**
   * Runs one claimed task: renews it while it runs, then records its outcome (once), taking the
   * worker's next task in the same call when `chain` is given. Returns that next task, or null.
   */
  private async runClaimed(
    [id, name, paramsText, attempt, token]: Claimed,
    chain: Chain | null,
  ): Promise<Claimed | null> {
    const fn = this.functionFor(name);
    const keys = [this.taskKey(id), `${this.base}running`, `${this.base}w:${id}`] as const;
    const ac = new AbortController();
    const onClose = () => ac.abort(new CollectorError('LC_CLOSED', `the task queue closed while task ${id} ran`));
    this.closed.signal.addEventListener('abort', onClose, { once: true });
    const renew = setInterval(
      () => {
        SCRIPTS.renew.call(this.redis, ...keys, id, token, this.o.visibilityTimeout, '', '').then(
          (ok) => {
            if (ok === 0) ac.abort(new TaskError('LC_TASK_TIMEOUT', id, `task ${id} is no longer this worker's`));
          },
          () => {},
        );
      },
      Math.max(10, Math.floor(this.o.visibilityTimeout / 3)),
    );
    renew.unref();
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
            this.redis,
            SCRIPTS.renew.call(this.redis, ...keys, id, token, this.o.visibilityTimeout, current, total),
          );
          if (ok === 0) ac.abort(new TaskError('LC_TASK_TIMEOUT', id, `task ${id} is no longer this worker's`));
        },
      };
      const result = await fn!(task);
      outcome = ['done', toJson('the result', result)];
    } catch (err) {
      if (this.closed.signal.aborted) {
        // Stopped by our own close: hand the task back at once (its visibility ends now) for another
        // worker, rather than record a failure that is not the task's.
        clearInterval(renew);
        await SCRIPTS.renew.call(this.redis, ...keys, id, token, 0, '', '').catch(() => {});
        return null;
      }
      const e = err as { name?: string; message?: string; code?: unknown };
      outcome = [
        'failed',
        JSON.stringify({
          name: String(e?.name ?? 'Error'),
          message: String(e?.message ?? err),
          ...(typeof e?.code === 'string' ? { code: e.code } : {}),
        }),
      ];
    } finally {
      clearInterval(renew);
      this.closed.signal.removeEventListener('abort', onClose);
    }
    // A finish that Redis did not take is retried a few times: the claim stays this worker's until
    // its visibility passes, after which another worker runs the task again (at least once).
    const more = chain === null ? [''] : [this.base, chain.worker, this.o.visibilityTimeout, ...chain.names];
    for (let i = 0; i < 5; i++) {
      try {
        const [, next] = await SCRIPTS.finish.call(
          this.redis,
          3 + (chain?.lists.length ?? 0),
          ...keys,
          ...(chain?.lists ?? []),
          id,
          token,
          outcome[0],
          outcome[1],
          ...more,
        );
        return next ?? null;
      } catch {
        await sleep(50 * 2 ** i);
      }
    }
    return null;
  }
}

function checkProgress(current: unknown, total: unknown): void {
  if (
    typeof current !== 'number' ||
    !Number.isFinite(current) ||
    typeof total !== 'number' ||
    !Number.isFinite(total)
  ) {
    throw invalid(`task.update(current, total) takes two finite numbers, got ${String(current)}, ${String(total)}`);
  }
}
