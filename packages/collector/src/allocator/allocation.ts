/** What an {@link Allocation} asks of the allocator that made it. */
export interface AllocationHost {
  updateHold(allocation: Allocation, timeout?: number): Promise<boolean>;
  freeHold(allocation: Allocation): Promise<boolean>;
}

/**
 * One resource handed out by `Allocator.malloc()` or `mallocKey()`.
 *
 * In an exclusive pool it is a hold: only this allocation (its allocator's owner token and its
 * `fence`) can update or free it, and it ends by itself at `expiresAt` unless updated. In a shared
 * pool it holds nothing (`fence` and `expiresAt` are 0; `update()` and `free()` do nothing).
 *
 * @example
 * const a = await allocator.malloc({ timeout: 30_000 });
 * if (a) {
 *   try { await use(a.key); } finally { await a.free(); }
 * }
 */
export class Allocation {
  /** Not a property: logging an allocation (JSON, util.inspect) must not reach the client and its password. */
  readonly #host: AllocationHost;

  /**
   * @param key the resource
   * @param owner the owner token of the hold
   * @param fence fencing token: strictly increasing per pool (per shard of a sharded pool) across holds (0 in shared pools)
   * @param expiresAt end of the hold, ms on the Redis server's clock (0 in shared pools)
   */
  constructor(
    host: AllocationHost,
    readonly key: string,
    readonly owner: string,
    readonly fence: number,
    public expiresAt: number,
  ) {
    this.#host = host;
  }

  /**
   * Extends the hold to `timeout` ms from now (the allocator's default timeout when omitted).
   * Resolves false when the hold was lost: it expired, or the resource left the pool.
   */
  update(timeout?: number): Promise<boolean> {
    return this.#host.updateHold(this, timeout);
  }

  /** Ends the hold. Resolves false when it had been lost already (nothing else is freed then). */
  free(): Promise<boolean> {
    return this.#host.freeHold(this);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.free();
  }
}
