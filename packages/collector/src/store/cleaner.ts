import { type LongTimer, setLongTimeout } from '../internal/timers.js';
import type { CleanupResult } from './types.js';

/** Counters of a {@link Cleaner}. */
export interface CleanerStats {
  runs: number;
  errors: number;
  lastError: unknown;
  lastResult: CleanupResult | null;
}

/**
 * Runs a cleanup periodically on an unref'ed timer. The interval can change at any time, also
 * while a run is in progress: the next run is scheduled with the interval current when the last
 * run ended (or, when it is waiting, re-scheduled from the last run's end at once).
 */
export class Cleaner {
  private timer: LongTimer | null = null;
  private interval: number;
  private running: Promise<void> | null = null;
  private active = false;
  private lastEnd = Date.now();
  readonly stats: CleanerStats = { runs: 0, errors: 0, lastError: null, lastResult: null };

  constructor(
    private readonly run: () => Promise<CleanupResult>,
    interval: number,
    private readonly onError: ((err: unknown) => void) | null,
  ) {
    this.interval = interval;
  }

  get started(): boolean {
    return this.active;
  }

  get currentInterval(): number {
    return this.interval;
  }

  start(interval?: number): void {
    if (interval !== undefined) this.interval = interval;
    this.active = true;
    this.lastEnd = Date.now();
    this.schedule();
  }

  setInterval(interval: number): void {
    this.interval = interval;
    if (!this.active) {
      this.start();
      return;
    }
    // Waiting: re-arm from the last run's end with the new interval. Running: the run's end does.
    if (this.running === null) this.schedule();
  }

  stop(): void {
    this.active = false;
    this.timer?.clear();
    this.timer = null;
  }

  /** Stops and waits for a run in progress. */
  async close(): Promise<void> {
    this.stop();
    await this.running;
  }

  private schedule(): void {
    this.timer?.clear();
    this.timer = null;
    if (!this.active) return;
    const delay = Math.max(0, this.lastEnd + this.interval - Date.now());
    this.timer = setLongTimeout(() => this.tick(), delay, false);
  }

  private tick(): void {
    this.timer = null;
    this.running = (async () => {
      try {
        this.stats.lastResult = await this.run();
        this.stats.runs++;
      } catch (err) {
        this.stats.errors++;
        this.stats.lastError = err;
        try {
          this.onError?.(err);
        } catch {
          /* a throwing listener must not stop the cleaner */
        }
      } finally {
        this.running = null;
        this.lastEnd = Date.now();
        this.schedule();
      }
    })();
  }
}
