import type { HeartbeatStats } from './heartbeats.js';

/** Lifecycle of a {@link Collector}. */
export type CollectorStatus = 'idle' | 'connecting' | 'consuming' | 'disconnected' | 'closing' | 'closed';

/** Counters of a {@link Collector}. */
export interface CollectorStats {
  status: CollectorStatus;
  /** AMQP deliveries received. */
  deliveries: number;
  /**
   * The part of `deliveries` the broker marked as redelivered: delivered before and not
   * acknowledged (a collector that stopped or lost its connection midway). Their messages count
   * again in `received`; the store applies each once (a redelivery is a no-op there).
   */
  redelivered: number;
  /**
   * Wire messages read from those deliveries (a batch delivery holds several): each is applied,
   * dead-lettered (`malformed`) or a note.
   */
  received: number;
  /** Wire messages applied to the store (a batch delivery holds several). */
  applied: number;
  /** Deliveries acknowledged. */
  acked: number;
  /** Malformed or refused messages by kind; each was dead-lettered and acknowledged. */
  malformed: Record<string, number>;
  /** Deliveries sent to the dead-letter queue. */
  deadLettered: number;
  /**
   * Messages without `obj_id` and `obj` (a publisher's notes, such as the Python handler's start-up
   * announcement): no context to store, so acknowledged with their delivery and only counted.
   */
  notes: number;
  /** Failed store calls (each retried). */
  storeErrors: number;
  /** Deliveries being applied now. */
  inFlight: number;
  /** Messages applied per second over the last stats interval. */
  rate: number;
  /** Seconds between the newest applied message's `time_in` and its application. */
  lagSeconds: number | null;
  /** Ready messages in the queue at the last check. */
  queueDepth: number | null;
  reconnects: number;
  lastError: string | null;
  /** Heartbeats received and sent (see the `registry` option). */
  heartbeats: HeartbeatStats;
}

/** The counters a {@link Collector} keeps (what {@link CollectorStats} shows of them). */
export type CollectorCounts = Omit<CollectorStats, 'status' | 'malformed' | 'lastError' | 'heartbeats'>;

/** The counters of a collector that has done nothing yet. */
export function zeroCounts(): CollectorCounts {
  return {
    deliveries: 0,
    redelivered: 0,
    received: 0,
    applied: 0,
    acked: 0,
    deadLettered: 0,
    notes: 0,
    storeErrors: 0,
    inFlight: 0,
    reconnects: 0,
    rate: 0,
    lagSeconds: null,
    queueDepth: null,
  };
}

/** The stats line of the CLI's `--stats`. */
export function statsLine(s: CollectorStats): string {
  const malformed = Object.values(s.malformed).reduce((a, b) => a + b, 0);
  return (
    `${s.rate} msg/s, applied ${s.applied}, in flight ${s.inFlight}, queue ${s.queueDepth ?? '?'}, ` +
    `lag ${s.lagSeconds === null ? '?' : `${s.lagSeconds.toFixed(3)} s`}, malformed ${malformed}, ` +
    `store errors ${s.storeErrors}, reconnects ${s.reconnects}`
  );
}

/** What the collector's heartbeats carry of its counters. */
export function heartbeatMetrics(c: CollectorCounts): Record<string, number> {
  const stats: Record<string, number> = {
    deliveries: c.deliveries,
    applied: c.applied,
    acked: c.acked,
    dead_lettered: c.deadLettered,
    notes: c.notes,
    store_errors: c.storeErrors,
    in_flight: c.inFlight,
    rate: c.rate,
    reconnects: c.reconnects,
  };
  if (c.queueDepth !== null) stats.queue_depth = c.queueDepth;
  if (c.lagSeconds !== null) stats.lag_seconds = c.lagSeconds;
  return stats;
}

/**
 * Reads a collector's stats every so often: the rate of messages applied since the last reading and
 * the queue's depth (when `depth` can tell), into `counts`, then calls `tick`.
 */
export class StatsTicker {
  private timer: NodeJS.Timeout | null = null;
  private at = Date.now();
  private applied = 0;

  constructor(
    private readonly counts: CollectorCounts,
    private readonly depth: () => Promise<number | null>,
    private readonly tick: () => void,
  ) {}

  start(seconds: number): void {
    this.stop();
    this.at = Date.now();
    this.applied = this.counts.applied;
    this.timer = setInterval(() => void this.read(), seconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Reads the queue's depth now into `counts` (kept as it was when it cannot be read); resolves with it. */
  async readDepth(): Promise<number | null> {
    try {
      const d = await this.depth();
      if (d !== null) this.counts.queueDepth = d;
    } catch {
      /* the next reading tries again */
    }
    return this.counts.queueDepth;
  }

  private async read(): Promise<void> {
    const now = Date.now();
    const c = this.counts;
    c.rate = Math.round(((c.applied - this.applied) * 1000) / Math.max(1, now - this.at));
    this.at = now;
    this.applied = c.applied;
    await this.readDepth();
    this.tick();
  }
}

/** What a collector prints as (util.inspect, JSON): its masked URL, exchange, queue, status and store. */
export function printForm(c: {
  readonly options: {
    readonly url: unknown;
    readonly exchange: string;
    readonly queue: string;
    readonly store: unknown;
  };
  readonly status: string;
}): Record<string, unknown> {
  return {
    url: c.options.url,
    exchange: c.options.exchange,
    queue: c.options.queue,
    status: c.status,
    store: c.options.store,
  };
}
