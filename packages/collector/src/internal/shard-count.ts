import type { RedisClient } from './cluster.js';

/**
 * The check that every client of a namespace spread over parts (a registry's, a task queue's, an
 * allocator pool's shards) says the same number of parts. A client that said another number would write where the others never
 * read and read where they never write: what it registers or queues would be lost to them, with no
 * error anywhere. The first client to ask stores its number at `key` (SET NX, no expiry: it lasts
 * as the namespace does); every client compares once, before its first call that depends on it,
 * and a client with another number fails with `mismatch(stored)` (every call, until the key says
 * its number: to change the number of parts, drain the namespace and delete the key).
 */
export class ShardCount {
  /** True once the stored number is this client's: no call needs to wait for the check any more. */
  ok = false;
  private pending: Promise<void> | null = null;

  constructor(
    private readonly redis: RedisClient,
    /** Where the number is kept (in the slot of the namespace's first part). */
    readonly key: string,
    private readonly count: number,
    private readonly mismatch: (stored: string) => Error,
  ) {}

  /** Resolves once the stored number is this client's; rejects with the mismatch, or as Redis failed. */
  check(): Promise<void> {
    this.pending ??= this.compare().then(
      () => {
        this.ok = true;
      },
      (err: unknown) => {
        // Asked again by the next call: Redis may be back, or the key changed.
        this.pending = null;
        throw err;
      },
    );
    return this.pending;
  }

  private async compare(): Promise<void> {
    const mine = String(this.count);
    // Twice at most: a key deleted between the SET and the GET is set again.
    for (let attempt = 0; ; attempt++) {
      if ((await this.redis.set(this.key, mine, 'NX')) === 'OK') return;
      const stored = await this.redis.get(this.key);
      if (stored === mine) return;
      if (stored !== null || attempt > 0) throw this.mismatch(String(stored));
    }
  }
}
