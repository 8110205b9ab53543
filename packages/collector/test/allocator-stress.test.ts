import { Cleanup, uniqueName, waitUntil } from '@contexture/test-support';
import { expect } from 'chai';
import type { Cluster, Redis } from 'ioredis';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Allocator } from '../src/allocator/allocator.js';
import { invariants, snapshot } from './support/allocator-invariants.js';
import { untilRedisTime } from './support/allocator-helpers.js';
import { BACKENDS } from './support/backends.js';

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
 * gc() after it expired.
 */
for (const backend of BACKENDS)
  describe(`Allocator under 20 client processes, some killed with SIGKILL (${backend.name})`, function () {
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
      const admin = new Allocator({ redis: client, prefix, pool });
      const resources = Array.from({ length: 8 }, (_, i) => `res-${i}`);
      await admin.extend(resources);
      const HOLD = 4_000;

      const children: Array<{ owner: string; proc: ChildProcess; victim: boolean; exited: Promise<unknown> }> = [];
      for (let i = 0; i < 20; i++) {
        const victim = i % 10 < 3; // 6 victims; they hold longer, so that a kill finds them holding
        const owner = `client-${i}`;
        const proc = spawn(
          process.execPath,
          [CLIENT, prefix, pool, owner, String(HOLD), victim ? '20' : '0', victim ? '60' : '4'],
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
            const held = await client.hgetall(admin.redisKeys.held);
            if (!Object.values(held).some((v) => v.endsWith(`:${c.owner}`))) return false;
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
      // fences are unique per pool
      expect(new Set(records.map((r) => r.fence)).size).to.equal(records.length);
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
      const s = await snapshot(client, admin.redisKeys);
      const killed = new Set(children.filter((c) => c.victim).map((c) => c.owner));
      const leftover = [...s.held.entries()];
      expect(leftover.length).to.be.at.least(1);
      for (const [, v] of leftover) expect(killed.has(v.slice(v.indexOf(':') + 1)), v).to.equal(true);
      expect(await invariants(client, admin.redisKeys)).to.deep.equal([]);
      await untilRedisTime(client, Math.max(...s.holdExpiry.values()));
      const gc = await admin.gc(100);
      expect(gc.returned).to.equal(leftover.length);
      expect(await admin.stats()).to.include({ size: 8, free: 8, held: 0 });
      expect(await invariants(client, admin.redisKeys)).to.deep.equal([]);
    });
  });
