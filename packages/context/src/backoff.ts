/** Capped exponential backoff with jitter: the delays of a reconnect or retry loop. */
export interface BackoffOptions {
  /** Delay (ms) before the first retry, before jitter. */
  initialDelay: number;
  /** Longest delay (ms), jitter included. */
  maxDelay: number;
  /** Each delay is this many times the one before (until the cap). */
  factor: number;
  /** Fraction (0–1) of the delay drawn at random either way. */
  jitter: number;
}

/**
 * The delay (ms, an integer ≥ 0) before retry number `attempt` (1 for the first; below 1 counts as
 * 1): `initialDelay * factor ** (attempt - 1)`, ± `jitter` of it at random, never over `maxDelay`.
 * The one delay function of every reconnect and retry loop, as amqplib `lib/recovery.js`
 * `calculateDelay`. The base is capped at `maxDelay / (1 + jitter)` rather than the sum being
 * clamped to `maxDelay`: once the cap is reached the delays stay spread (a clamp would pile half of
 * them onto `maxDelay` itself, and reconnecting clients would retry in step).
 *
 * @param random a source of numbers in [0, 1), for tests.
 * @example
 * const delay = backoffDelay(3, { initialDelay: 100, maxDelay: 5000, factor: 2, jitter: 0.2 }); // 320–480
 */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  const cappedBase = o.maxDelay / (1 + o.jitter);
  const base = Math.min(cappedBase, o.initialDelay * o.factor ** (Math.max(1, attempt) - 1));
  const spread = base * o.jitter;
  const offset = spread > 0 ? (random() * 2 - 1) * spread : 0;
  return Math.max(0, Math.round(base + offset));
}
