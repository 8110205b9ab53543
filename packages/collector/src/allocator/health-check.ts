import type { HealthReport } from './allocator-options.js';

/** What {@link checkEach} needs of the allocator. */
export interface HealthTarget {
  keys(): Promise<string[]>;
  markUnhealthy(keys: string, duration: number): Promise<number>;
  markHealthy(keys: readonly string[]): Promise<number>;
}

/**
 * The body of `Allocator.checkHealth()`: runs `check` on every resource, at most `concurrency` at
 * once; a failing resource is marked unhealthy at once, the healthy ones together at the end.
 */
export async function checkEach(
  pool: HealthTarget,
  check: (key: string) => boolean | Promise<boolean>,
  concurrency: number,
  duration: number,
): Promise<HealthReport> {
  const keys = await pool.keys();
  const healthy: string[] = [];
  const unhealthy: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++]!;
      let ok = false;
      try {
        ok = (await check(key)) === true;
      } catch {
        ok = false;
      }
      if (ok) {
        healthy.push(key);
      } else {
        unhealthy.push(key);
        await pool.markUnhealthy(key, duration);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, keys.length) }, worker));
  for (let i = 0; i < healthy.length; i += 1000) await pool.markHealthy(healthy.slice(i, i + 1000));
  return { healthy: healthy.sort(), unhealthy: unhealthy.sort() };
}
