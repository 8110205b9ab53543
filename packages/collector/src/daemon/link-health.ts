import { printable } from '../internal/printable.js';
import { redactText } from '@contexture/context/internal';
import type { Collector } from './collector.js';
import { within } from '../internal/within.js';

/** What {@link LinkHealth} needs of a Redis client: an ioredis client or Cluster fits. */
export interface PingableRedis {
  readonly status: string;
  ping(): Promise<unknown>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
}

/** One link as `/healthz` shows it. */
export interface LinkReport {
  up: boolean;
  /** When it went up or down (ISO 8601), as far as this process saw. */
  since: string;
  /** Where it goes: `host:port` (never a password). */
  at?: string;
  /** Why it is down, when it is. */
  reason?: string;
}

/** The body of `/healthz`. */
export interface HealthReport {
  status: 'ok' | 'unavailable';
  rabbitmq: LinkReport;
  redis: LinkReport;
}

/** The state of one link, and since when. */
class Link {
  up = false;
  since = Date.now();
  reason: string | null = 'not connected yet';

  /** Records the link's state; the time moves only when the state changes. */
  set(up: boolean, reason: string | null, at = Date.now()): void {
    if (up !== this.up) this.since = at;
    this.up = up;
    this.reason = up ? null : (reason ?? this.reason);
  }

  report(at?: string): LinkReport {
    const r: LinkReport = { up: this.up, since: new Date(this.since).toISOString() };
    if (at !== undefined) r.at = at;
    if (!this.up && this.reason !== null) r.reason = this.reason;
    return r;
  }
}

/** Options of {@link LinkHealth}. */
export interface LinkHealthOptions {
  collector: Collector;
  /** The store's Redis client. */
  redis: PingableRedis;
  /** Where Redis is, as `/healthz` shows it (`host:port`; never a URL with its password). */
  redisAt?: string;
  /** How long a PING of Redis may take before Redis counts as down (ms). @default 2000 */
  pingTimeout?: number;
}

/**
 * Whether the collector is connected to RabbitMQ (consuming) and to Redis (its client ready, and
 * answering a PING), and since when: what `/healthz` answers. The times come from the collector's
 * and the client's events, and from each check.
 */
export class LinkHealth {
  private readonly broker = new Link();
  private readonly redisLink = new Link();
  private readonly unwatch: Array<() => void> = [];
  /** The Redis client's last error (its message, passwords masked). */
  private redisError: string | null = null;

  constructor(private readonly options: LinkHealthOptions) {
    const { collector, redis } = options;
    this.broker.set(collector.status === 'consuming', `collector ${collector.status}`);
    this.redisLink.set(redis.status === 'ready', `Redis client ${redis.status}`);
    const watch = (
      target: { on: PingableRedis['on']; off: PingableRedis['off'] },
      event: string,
      fn: (...a: unknown[]) => void,
    ) => {
      target.on(event, fn);
      this.unwatch.push(() => target.off(event, fn));
    };
    const c = collector as unknown as PingableRedis;
    watch(c, 'consuming', () => this.broker.set(true, null));
    watch(c, 'disconnect', (why) => this.broker.set(false, `lost: ${redactText(String(why))}`));
    watch(redis, 'ready', () => {
      this.redisError = null;
      this.redisLink.set(true, null);
    });
    watch(redis, 'error', (err) => {
      this.redisError = redactText((err as Error)?.message ?? String(err));
      this.redisLink.set(false, this.redisError);
    });
    for (const event of ['close', 'reconnecting', 'end'])
      watch(redis, event, () => this.redisLink.set(false, `connection ${event === 'end' ? 'ended' : 'lost'}`));
  }

  /** Checks both links now (a PING of Redis); resolves with the report of `/healthz`. */
  async check(): Promise<HealthReport> {
    const { collector, redis } = this.options;
    const status = collector.status;
    const lastError = collector.stats().lastError;
    if (status === 'consuming') this.broker.set(true, null);
    else this.broker.set(false, `collector ${status}${lastError === null ? '' : ` (last error: ${lastError})`}`);
    if (redis.status !== 'ready') {
      const why = this.redisError === null ? '' : ` (last error: ${this.redisError})`;
      this.redisLink.set(false, `Redis client ${redis.status}${why}`);
    } else {
      const answered = await this.ping();
      this.redisLink.set(answered === true, answered === true ? null : answered);
    }
    const up = this.broker.up && this.redisLink.up;
    return {
      status: up ? 'ok' : 'unavailable',
      rabbitmq: this.broker.report(collector.where),
      redis: this.redisLink.report(this.options.redisAt),
    };
  }

  /** Stops listening to the collector and the client. */
  close(): void {
    for (const off of this.unwatch.splice(0)) off();
  }

  /** True when Redis answers a PING in time, else why not. */
  private ping(): Promise<true | string> {
    const ms = this.options.pingTimeout ?? 2000;
    const answer = this.options.redis.ping().then(
      () => true as const,
      (err: unknown) => `PING failed: ${redactText((err as Error)?.message ?? String(err))}`,
    );
    return within(answer, ms, `no answer to PING within ${ms} ms`);
  }
}

// Its options hold the Redis client (and its password): it prints as where Redis is.
printable(LinkHealth, (h) => ({ redis: (h as unknown as { options: LinkHealthOptions }).options.redisAt ?? null }));
