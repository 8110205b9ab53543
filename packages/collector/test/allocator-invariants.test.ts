import { Cleanup, uniqueName } from '@contexture/test-support';
import { expect } from 'chai';
import type { Cluster, Redis } from 'ioredis';
import { Allocator } from '../src/allocator/allocator.js';
import type { Allocation } from '../src/allocator/allocation.js';
import { invariants, snapshot } from './support/allocator-invariants.js';
import { prng } from './support/allocator-helpers.js';
import { BACKENDS } from './support/backends.js';

/**
 * Random sequences of every pool operation from three allocators (three owners) on one pool, with
 * the pool's rules checked from its Redis keys after EVERY operation. Short timeouts make holds,
 * resources, bindings and unhealthy periods expire during the run, so the sequences go through
 * reclaiming and gc as well. A failure names its seed and step. The sharded runs check every shard,
 * and that each resource sits in its own shard only.
 */
for (const backend of BACKENDS)
  describe(`Allocator invariants under random operation sequences (${backend.name})`, () => {
    let cleanup: Cleanup;
    let prefix: string;
    let client: Redis | Cluster;

    beforeEach(() => {
      cleanup = new Cleanup();
      prefix = `${uniqueName('test-alloc-inv')}:`;
      backend.removeKeys(cleanup, `${prefix}*`);
      client = backend.client();
      cleanup.defer(() => client.quit());
    });
    afterEach(async () => cleanup.run());

    const runs = [1, 2, 3, 4].map((seed) => ({ seed, shards: 1 }));
    runs.push({ seed: 5, shards: 3 }, { seed: 6, shards: 3 });
    for (const shared of [false, true]) {
      for (const { seed, shards } of runs) {
        const title = `${shared ? 'shared' : 'exclusive'} pool${shards > 1 ? ` of ${shards} shards` : ''}`;
        it(`${title}, seed ${seed}: 400 steps`, async () => {
          const rand = prng(seed * 7919 + (shared ? 1 : 0));
          const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
          const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
          const universe = Array.from({ length: 12 }, (_, i) => `r${i}`);
          const names = ['n0', 'n1', 'n2', 'n3'];
          const subset = () => universe.filter(() => rand() < 0.3);
          const allocators = [0, 1, 2].map((i) => {
            const a = new Allocator({
              redis: client,
              prefix,
              pool: `seq${seed}`,
              shared,
              shards,
              owner: `owner-${i}`,
              reclaimLimit: int(1, 3),
            });
            cleanup.defer(() => a.close());
            return a;
          });
          const live: Allocation[] = [];
          const lastFence = new Map<number, number>();
          const ops: Array<[string, (a: Allocator) => Promise<unknown>]> = [
            [
              'extend',
              (a) =>
                a.extend(subset(), {
                  timeout: rand() < 0.3 ? int(5, 60) : undefined,
                  priority: rand() < 0.5 ? int(-2, 2) : undefined,
                }),
            ],
            ['extend', (a) => a.extend(subset())],
            ['assign', (a) => (rand() < 0.3 ? a.assign(subset()) : a.extend([pick(universe)]))],
            ['shrink', (a) => a.shrink(subset().slice(0, 2))],
            ['clear', (a) => (rand() < 0.1 ? a.clear() : a.size())],
            [
              'malloc',
              (a) =>
                malloc(a, () =>
                  a.malloc({
                    timeout: int(5, 80),
                    name: rand() < 0.4 ? pick(names) : undefined,
                    cacheTimeout: int(5, 200),
                    priority: rand() < 0.2 ? int(-2, 2) : undefined,
                  }),
                ),
            ],
            ['malloc', (a) => malloc(a, () => a.malloc({ timeout: int(5, 80) }))],
            [
              'mallocKey',
              (a) =>
                malloc(a, () =>
                  a.mallocKey(pick(universe), { timeout: int(5, 80), name: rand() < 0.3 ? pick(names) : undefined }),
                ),
            ],
            ['free', async () => (live.length > 0 ? live.splice(int(0, live.length - 1), 1)[0]!.free() : null)],
            ['free stale', async () => (live.length > 0 ? live[int(0, live.length - 1)]!.free() : null)],
            ['freeKeys', (a) => a.freeKeys(subset())],
            ['update', async () => (live.length > 0 ? live[int(0, live.length - 1)]!.update(int(5, 80)) : null)],
            ['bind', (a) => a.bind(pick(names), pick(universe), { timeout: int(5, 200) })],
            ['unbind', (a) => a.unbind(pick(names))],
            ['bindingsFor', (a) => a.bindingsFor(pick(universe))],
            ['markUnhealthy', (a) => a.markUnhealthy(subset().slice(0, 2), int(5, 60))],
            ['markHealthy', (a) => a.markHealthy(subset().slice(0, 2))],
            ['gc', (a) => a.gc(int(1, 6))],
            ['pause', () => new Promise((r) => setTimeout(r, int(1, 15)))],
          ];

          async function shardInvariants(a: Allocator, shared: boolean): Promise<string[]> {
            const bad: string[] = [];
            for (const [n, keys] of a.shardKeys.entries()) {
              bad.push(...(await invariants(client, keys, shared)).map((b) => `shard ${n}: ${b}`));
              for (const key of (await snapshot(client, keys)).resources.keys())
                if (a.shardOf(key) !== n) bad.push(`${key} is in shard ${n}, belongs in ${a.shardOf(key)}`);
            }
            return bad;
          }

          async function malloc(a: Allocator, call: () => Promise<Allocation | null>): Promise<void> {
            const got = await call();
            if (got === null) return;
            if (!shared) {
              // the new hold is the resource's only holder, with a fence above every earlier one of its shard
              const shard = a.shardOf(got.key);
              expect(got.fence).to.be.greaterThan(lastFence.get(shard) ?? 0);
              lastFence.set(shard, got.fence);
              const keys = a.shardKeys[shard]!;
              expect((await snapshot(client, keys)).held.get(got.key)).to.equal(`${got.fence}:${a.owner}`);
              live.push(got);
            }
          }

          for (let step = 0; step < 400; step++) {
            const [what, op] = pick(ops);
            await op(pick(allocators));
            const bad = await shardInvariants(allocators[0]!, shared);
            expect(bad, `seed ${seed}, step ${step} (${what})`).to.deep.equal([]);
          }
          // finally every resource comes back: free everything and run gc past all expiries
          for (const a of live) await a.free();
          await allocators[0]!.markHealthy(await allocators[0]!.keys());
          for (const keys of allocators[0]!.shardKeys) {
            const s = await snapshot(client, keys);
            expect(s.held.size).to.equal(0);
            expect(s.free.size).to.equal(s.resources.size);
          }
        });
      }
    }
  });
