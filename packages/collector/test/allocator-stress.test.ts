import { Cleanup, uniqueName, waitUntil } from '@contexture/test-support';
import { expect } from 'chai';
import type { Cluster, Redis } from 'ioredis';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Allocator } from '../src/allocator/allocator.js';
import { invariants, snapshot } from './support/allocator-invariants.js';
import { untilRedisTime } from './support/allocator-helpers.js';
import { type Backend, CLUSTER, SINGLE } from './support/backends.js';

const CLIENT = fileURLToPath(new URL('./support/allocator-client.js', import.meta.url));

interface Hold {
  owner: string;
  key: string;
  fence: number;
  start: number;
  end: number;
  ok: boolean;
}

/**
 * 20 client processes hammer one exclusive pool of 8 resources; 6 of them are killed with SIGKILL
 * while they hold a resource. Never two holders of one resource at once: per resource, the holds
 * sorted by fencing token do not overlap. Every hold of a killed client comes back in the first
 * gc() after it expired. The pool is whole on both backends, and spread over 3 shards on the
 * cluster (fences then increase per shard, which is per resource all the same).
 */
const RUNS: Array<[Backend, number]> = [
  [SINGLE, 1],
  [CLUSTER, 1],
  [CLUSTER, 3],
];
for (const [backend, shards] of RUNS)
  describe(`Allocator under 20 client processes, some killed with SIGKILL (${backend.name}${shards > 1 ? `, ${shards} shards` : ''})`, function () {
    this.timeout(120_000);
    let cleanup: Cleanup;
    let prefix: string;
    let client: Redis | Cluster;

    beforeEach(() => {
      cleanup = new Cleanup();
      prefix = `${uniqueName('test-alloc-stress')}:`;
      backend.removeKeys(cleanup, `${prefix}*`);
      client = backend.client();
      cleanup.defer(() => client.quit());
    });
    afterEach(async () => cleanup.run());

    it('never has two holders of one resource and returns the killed clients holds in one gc', async () => {
      const pool = 'stress';
      const admin = new Allocator({ redis: client, prefix, pool, shards });
      const heldValues = async (): Promise<string[]> => {
        const all = await Promise.all(admin.shardKeys.map((k) => client.hgetall(k.held)));
        return all.flatMap((h) => Object.values(h));
      };
      const resources = Array.from({ length: 8 }, (_, i) => `res-${i}`);
      await admin.extend(resources);
      const HOLD = 4_000;

      const children: Array<{ owner: string; proc: ChildProcess; victim: boolean; exited: Promise<unknown> }> = [];
      for (let i = 0; i < 20; i++) {
        const victim = i % 10 < 3; // 6 victims; they hold longer, so that a kill finds them holding
        const owner = `client-${i}`;
        const proc = spawn(
          process.execPath,
          [CLIENT, prefix, pool, owner, String(HOLD), victim ? '20' : '0', victim ? '60' : '4', String(shards)],
          {
            env: { ...process.env, ...backend.env() },
            stdio: ['ignore', 'ignore', 'inherit'],
          },
        );
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        children.push({ owner, proc, victim, exited });
        cleanup.defer(() => proc.kill('SIGKILL'));
      }
      // let them all run and contend for a while
      await waitUntil(
        async () => (await client.llen(`${prefix}records`)) >= 600,
        'the clients to record 600 holds',
        60_000,
      );

      // kill each victim while Redis shows it holding a resource
      for (const c of children.filter((x) => x.victim)) {
        await waitUntil(
          async () => {
            if (!(await heldValues()).some((v) => v.endsWith(`:${c.owner}`))) return false;
            c.proc.kill('SIGKILL');
            return true;
          },
          `${c.owner} to hold something`,
          30_000,
          1,
        );
        await c.exited;
      }
      // the others stop on their own
      await client.set(`${prefix}stop`, '1');
      await Promise.all(children.map((c) => c.exited));

      const records: Hold[] = (await client.lrange(`${prefix}records`, 0, -1)).map((r) => JSON.parse(r));
      const valid = records.filter((r) => r.ok);
      expect(valid.length).to.be.greaterThan(500);
      // fences are unique per pool shard
      expect(new Set(records.map((r) => `${admin.shardOf(r.key)}:${r.fence}`)).size).to.equal(records.length);
      // per resource, holds in fence order never overlap
      const byKey = new Map<string, Hold[]>();
      for (const r of valid) byKey.set(r.key, [...(byKey.get(r.key) ?? []), r]);
      let checked = 0;
      for (const [key, holds] of byKey) {
        holds.sort((a, b) => a.fence - b.fence);
        for (let i = 1; i < holds.length; i++) {
          const [prev, next] = [holds[i - 1]!, holds[i]!];
          expect(
            prev.end,
            `${key}: fence ${prev.fence} (${prev.owner}) ends after fence ${next.fence} (${next.owner}) starts`,
          ).to.be.at.most(next.start);
          checked++;
        }
      }
      expect(checked).to.be.greaterThan(400);

      // what remains held belongs to killed clients only, and comes back in one gc after expiry
      const snaps = await Promise.all(admin.shardKeys.map((k) => snapshot(client, k)));
      const killed = new Set(children.filter((c) => c.victim).map((c) => c.owner));
      const leftover = snaps.flatMap((s) => [...s.held.entries()]);
      expect(leftover.length).to.be.at.least(1);
      for (const [, v] of leftover) expect(killed.has(v.slice(v.indexOf(':') + 1)), v).to.equal(true);
      const consistent = async () => {
        for (const k of admin.shardKeys) expect(await invariants(client, k)).to.deep.equal([]);
      };
      await consistent();
      await untilRedisTime(client, Math.max(...snaps.flatMap((s) => [...s.holdExpiry.values()])));
      const gc = await admin.gc(100);
      expect(gc.returned).to.equal(leftover.length);
      expect(await admin.stats()).to.include({ size: 8, free: 8, held: 0 });
      await consistent();
    });
  });
