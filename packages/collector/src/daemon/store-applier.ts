import { backoffDelay, errorFields, redactText } from '@contexture/context/internal';
import type { Malformed, MessageMeta, WireMessage } from '@contexture/context/protocol';
import { CollectorError } from '../internal/errors.js';
import type { ApplyItem } from '../store/types.js';
import type { ApplyTarget, ResolvedCollectorOptions } from './collector-options.js';

/**
 * Why a delivery goes to the dead-letter queue: malformed, refused by the store (a message it
 * cannot take: a field name that is not well-formed Unicode, say), or its context cannot be read
 * in the store.
 */
export type Refusal = {
  kind: Malformed['kind'] | 'store refused' | 'store corrupt' | 'store misconfigured' | 'store error';
  detail?: string;
};

/**
 * How many times one message is applied when the store keeps throwing a JavaScript error (a
 * TypeError, a RangeError: a fault of the store's code or of what the message makes it do, not a
 * failure of Redis) before it goes to the dead-letter queue as `store error`: retried forever, one
 * such message would hold up the queue behind it for good.
 */
const PROGRAM_ERROR_ATTEMPTS = 5;

/** True for the errors JavaScript's own code throws, as opposed to a store's report of a failure. */
function isProgramError(err: unknown): err is Error {
  return (
    err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError || err instanceof SyntaxError
  );
}

/** The store failures whose message is dead-lettered rather than retried, by code: their kind. */
const DEAD_LETTERED: Partial<Record<string, 'store corrupt' | 'store misconfigured'>> = {
  LC_STORE_CORRUPT: 'store corrupt',
  LC_REDIS_CLUSTER_MISMATCH: 'store misconfigured',
};

/**
 * One call to the store, as the collector's `storeCall` event tells it: which method, how many
 * messages it carried, how long it took, and how it ended (`ok`; `error`: failed, to be retried;
 * `refused`: the store refused a message of it, or could not read its context).
 */
export interface StoreCall {
  method: 'apply' | 'applyMany';
  messages: number;
  seconds: number;
  outcome: 'ok' | 'error' | 'refused';
}

/** What the applier reports to its collector. */
export interface ApplierHost {
  /** The collector's counters that applying moves. */
  readonly counts: { applied: number; storeErrors: number; lagSeconds: number | null };
  /** Says why the store failed last (the collector's `lastError`). */
  failed(reason: string): void;
  /** Says something on the collector's logger. */
  log(level: 'info' | 'warn', fields: Record<string, unknown>, message: string): void;
  /** The collector was destroyed: retrying stops. */
  isClosed(): boolean;
  /** Told of every store call once it ended. */
  called(call: StoreCall): void;
}

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

/**
 * Applies messages to the collector's store: one `applyMany()` per batch (or `apply()` each),
 * retrying store failures with the collector's `retry` backoff until they succeed, and telling
 * apart the messages the store refuses (they are dead-lettered instead). An outage of the store
 * is logged once, and its end once.
 */
export class StoreApplier {
  private storeDown = false;
  /** When the last warning of each kind of dead-lettered store failure was written (ms). */
  private readonly warnedAt = new Map<Refusal['kind'], number>();

  constructor(
    private readonly store: ApplyTarget,
    private readonly retry: ResolvedCollectorOptions['retry'],
    private readonly host: ApplierHost,
  ) {}

  /**
   * Applies messages with one `applyMany()` (or `apply()` each when the store has no
   * `applyMany()`), retrying store failures; per message, a {@link Refusal} when the store
   * refuses the message itself, else null.
   */
  async applyItems(items: ApplyItem[]): Promise<Array<Refusal | null>> {
    const store = this.store;
    if (typeof store.applyMany !== 'function')
      return Promise.all(items.map((it) => this.applyWithRetry(it.message, it.meta)));
    const applyMany = store.applyMany.bind(store);
    const counts = this.host.counts;
    const ok = await this.retrying(false, items.length, async () => {
      await applyMany(items);
      counts.applied += items.length;
      for (let i = items.length - 1; i >= 0; i--) {
        const t = items[i]!.message.time_in;
        if (t !== undefined) {
          counts.lagSeconds = Math.max(0, Date.now() / 1000 - t);
          break;
        }
      }
    });
    // A message the store refuses fails the whole call: find it by applying them one by one.
    if (ok !== null) return Promise.all(items.map((it) => this.applyWithRetry(it.message, it.meta)));
    return items.map(() => null);
  }

  /** Applies one message, retrying store failures; resolves with a {@link Refusal} when the store refuses the message itself. */
  private async applyWithRetry(message: WireMessage, meta: MessageMeta | undefined): Promise<Refusal | null> {
    const counts = this.host.counts;
    return this.retrying(true, 1, async () => {
      await this.store.apply(message, meta);
      counts.applied++;
      if (message.time_in !== undefined) counts.lagSeconds = Math.max(0, Date.now() / 1000 - message.time_in);
    });
  }

  /**
   * Runs a store call until it succeeds (null) or the store refuses its input or cannot read the
   * context it goes to (a {@link Refusal}); throws only once destroyed. `single`: the call applies
   * one message (`apply()`), else `messages` of them (`applyMany()`).
   */
  private async retrying(single: boolean, messages: number, call: () => Promise<void>): Promise<Refusal | null> {
    const host = this.host;
    const method = single ? 'apply' : 'applyMany';
    for (let attempt = 1; ; attempt++) {
      const began = performance.now();
      const ended = (outcome: StoreCall['outcome']) =>
        host.called({ method, messages, seconds: (performance.now() - began) / 1000, outcome });
      try {
        await call();
        ended('ok');
        if (this.storeDown) {
          this.storeDown = false;
          host.log('info', { code: 'LC_STORE_RECOVERED' }, 'the store answers again');
        }
        return null;
      } catch (err) {
        if (err instanceof CollectorError && err.code === 'LC_STORE_INVALID_ARGUMENT') {
          ended('refused');
          return { kind: 'store refused', detail: err.message.slice(0, 200) };
        }
        if (isProgramError(err)) {
          // A batch's call goes message by message at once, to find the message it fails on; that
          // message is tried a few times more, then dead-lettered.
          if (!single || attempt >= PROGRAM_ERROR_ATTEMPTS) {
            ended('refused');
            if (single) this.warnOnce('store error', err, `${err.name}: ${redactText(err.message)}`);
            return { kind: 'store error', detail: `${err.name}: ${err.message}`.slice(0, 200) };
          }
        }
        // Retrying cannot help, and would hold up everything behind it: the message is kept in the
        // dead-letter queue, to be sent again once the context's keys are mended (store corrupt) or
        // the collector is pointed at the whole cluster (store misconfigured: a client of one node).
        const kind = err instanceof CollectorError ? DEAD_LETTERED[err.code] : undefined;
        ended(kind === undefined ? 'error' : 'refused');
        if (kind !== undefined) {
          if (single) this.warnOnce(kind, err, redactText((err as Error).message));
          return { kind, detail: (err as Error).message.slice(0, 200) };
        }
        host.counts.storeErrors++;
        const reason = storeFailure(err);
        host.failed(reason);
        if (!this.storeDown) {
          this.storeDown = true;
          host.log(
            'warn',
            { code: 'LC_STORE_FAILED', reason, err: errorFields(err) },
            `the store failed (${reason}); retrying without acknowledging`,
          );
        }
        if (host.isClosed()) throw err;
        await sleep(backoffDelay(attempt, this.retry));
        if (host.isClosed()) throw err;
      }
    }
  }

  /**
   * Says that a message goes to the dead-letter queue as `kind` because of `err` (`text`), once in
   * 10 s at most per kind (a busy context would flood the log); stats() counts every one. A
   * batch's call is applied again message by message, which says it.
   */
  private warnOnce(kind: Refusal['kind'], err: unknown, text: string): void {
    if (Date.now() - (this.warnedAt.get(kind) ?? 0) < 10_000) return;
    this.warnedAt.set(kind, Date.now());
    const code = err instanceof CollectorError ? err.code : 'LC_STORE_ERROR';
    this.host.log(
      'warn',
      { code, kind, err: errorFields(err) },
      `${text}; its message goes to the dead-letter queue (such messages are counted as "${kind}", one warning in 10 s)`,
    );
  }
}

/**
 * What an operator reads of a store failure: the client's error (a Redis store's LC_REDIS_UNAVAILABLE
 * keeps it as `cause`; the call it failed in is left out, a batch names many), or the error itself.
 * ioredis fails the commands of a client that lost its connection with a note on its own retry
 * option; what matters to the reader is that Redis does not answer.
 */
function storeFailure(err: unknown): string {
  const origin =
    err instanceof CollectorError && err.code === 'LC_REDIS_UNAVAILABLE' && err.cause !== undefined ? err.cause : err;
  if ((origin as Error)?.name === 'MaxRetriesPerRequestError') return 'no connection to Redis';
  return redactText((origin as Error)?.message ?? String(origin));
}
