/**
 * Timers for any duration. Node's timers take at most 2^31 − 1 ms: a longer delay fires after 1 ms
 * (with a `TimeoutOverflowWarning`), so a timeout, ttl or interval of 25 days or more would end at
 * once, or run every millisecond. These wait a longer delay in steps instead.
 */

/** The longest delay (ms) Node's `setTimeout` and `setInterval` take. */
export const MAX_TIMER_DELAY = 2 ** 31 - 1;

/** A timer of {@link setLongTimeout} or {@link setLongInterval}. */
export interface LongTimer {
  /** Stops it; idempotent. */
  clear(): void;
}

/**
 * `setTimeout(fn, ms)` for any `ms`: a delay longer than Node's timers take is waited in steps.
 * With `ref` false, the timer does not keep the process alive.
 */
export function setLongTimeout(fn: () => void, ms: number, ref = true): LongTimer {
  let t: NodeJS.Timeout;
  const wait = (left: number): void => {
    const step = Math.min(left, MAX_TIMER_DELAY);
    t = setTimeout(() => (left > step ? wait(left - step) : fn()), step);
    if (!ref) t.unref();
  };
  wait(ms);
  return { clear: () => clearTimeout(t) };
}

/**
 * `setInterval(fn, ms)` for any `ms`: each wait longer than Node's timers take is made in steps.
 * With `ref` false, the timer does not keep the process alive.
 */
export function setLongInterval(fn: () => void, ms: number, ref = true): LongTimer {
  if (ms <= MAX_TIMER_DELAY) {
    const t = setInterval(fn, ms);
    if (!ref) t.unref();
    return { clear: () => clearInterval(t) };
  }
  let t: LongTimer;
  const next = (): void => {
    t = setLongTimeout(
      () => {
        // The next wait starts first: as with setInterval, a throwing `fn` does not end the timer.
        next();
        fn();
      },
      ms,
      ref,
    );
  };
  next();
  return { clear: () => t.clear() };
}
