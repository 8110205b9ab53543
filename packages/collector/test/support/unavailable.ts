import { expect } from 'chai';
import { CollectorError } from '../../src/internal/errors.js';

/**
 * Runs `calls` at once against a Redis that cannot be reached (127.0.0.1:`port`) and expects each
 * to reject with a CollectorError LC_REDIS_UNAVAILABLE whose message is `<prefix><what>: ` and then where
 * Redis is and why, with the client's error as `cause`, and `secret` (the URL's password) nowhere.
 */
export async function expectUnavailable(
  calls: ReadonlyArray<readonly [what: string, call: () => Promise<unknown>]>,
  port: number,
  secret: string,
  prefix = '',
): Promise<void> {
  // All at once: each fails when the client's next connection attempt does.
  const outcomes = await Promise.allSettled(calls.map(([, call]) => call()));
  const escapeRe = (text: string): string => text.replace(/[.*+?^${}()|[\]\\"]/g, '\\$&');
  for (const [i, [what]] of calls.entries()) {
    const outcome = outcomes[i]!;
    expect(outcome.status, what).to.equal('rejected');
    const err = (outcome as PromiseRejectedResult).reason as CollectorError;
    expect(err, what).to.be.instanceOf(CollectorError);
    expect(err.code, what).to.equal('LC_REDIS_UNAVAILABLE');
    expect(err.message, what).to.match(
      new RegExp(
        `^${escapeRe(prefix + what)}: (no connection to Redis at 127\\.0\\.0\\.1:${port}|Redis at 127\\.0\\.0\\.1:${port} failed: .+)$`,
      ),
    );
    expect(err.message, what).to.not.include(secret);
    expect(err.cause, what).to.be.instanceOf(Error);
    expect(JSON.stringify((err.cause as { command?: unknown }).command ?? null), what).to.not.include(secret);
  }
}
