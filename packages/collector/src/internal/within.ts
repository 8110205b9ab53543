/**
 * Resolves with what `p` gives, or with `fallback` when `p` fails or has not settled after `ms`
 * (never rejects; the timer does not hold the process).
 */
export function within<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(fallback), ms);
    timer.unref();
    const done = (v: T) => {
      clearTimeout(timer);
      resolve(v);
    };
    p.then(done, () => done(fallback));
  });
}
