// Shared helpers of the benchmarks: service URLs, unique names, timing, percentiles.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';

export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/%2F';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export function uniqueName(prefix) {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/**
 * Reads the JSON lines a child process writes on `stream`: `next()` resolves with the next one
 * (in order, waiting for it if need be).
 */
export function jsonLines(stream) {
  const lines = [];
  let waiting = null;
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop();
    for (const p of parts) lines.push(JSON.parse(p));
    waiting?.();
  });
  return async function next() {
    while (lines.length === 0) await new Promise((r) => (waiting = r));
    return lines.shift();
  };
}

/** Prints one result line. */
export function report(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export const round = (x, digits = 2) => Number(x.toFixed(digits));

/** Runs fn() `rounds` times and returns the best (lowest) duration in ms: the least disturbed by the shared machine. */
export async function best(rounds, fn) {
  let min = Infinity;
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await fn();
    min = Math.min(min, performance.now() - t0);
  }
  return min;
}

/** Deletes every key under a prefix (SCAN, never KEYS). */
export async function removeKeys(prefix) {
  const redis = new Redis(REDIS_URL);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
  redis.disconnect();
}
