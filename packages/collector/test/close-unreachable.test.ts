import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { Cleanup, freePort, redisUrl, TempRedis, uniqueName } from '@contexture/test-support';
import { CLUSTER, keysMatching } from './support/backends.js';

const FIXTURE = fileURLToPath(new URL('../../test/fixtures/close-unreachable.mjs', import.meta.url));
const USERS = ['store', 'lock', 'allocator', 'registry', 'tasks'];

/** Runs the fixture; resolves with its exit code, the outcome of each call, stderr and the time taken. */
async function runFixture(
  env: Record<string, string>,
): Promise<{ code: number | null; outcomes: Record<string, string>; err: string; ms: number }> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [FIXTURE], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (err += b));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, outcomes: out === '' ? {} : (JSON.parse(out) as Record<string, string>), err, ms: Date.now() - t0 };
}

describe('closing every Redis user (a real process)', function () {
  this.timeout(20_000);

  for (const wait of [0, 300, 1500]) {
    it(`Redis unreachable: close() ends every in-flight command and the process exits 0 by itself (closed after ${wait} ms)`, async () => {
      const port = await freePort();
      const r = await runFixture({
        MODE: 'unreachable',
        REDIS: `redis://127.0.0.1:${port}`,
        WAIT: String(wait),
        PREFIX: 'unused:',
      });
      expect(r.code, r.err).to.equal(0);
      expect(Object.keys(r.outcomes).sort()).to.deep.equal([...USERS].sort());
      for (const name of USERS) expect(r.outcomes[name], name).to.match(/^failed: /);
      // The wait, then at most the 2 s given to a connection attempt under way: not a 10 s command timeout.
      expect(r.ms, r.err).to.be.below(wait + 5_000);
    });
  }

  it('Redis reachable but new (it knows no script: each call is sent again as EVAL): every call is answered before the QUIT', async () => {
    // A server of the test's own: a new one answers NOSCRIPT to every first EVALSHA.
    const server = new TempRedis();
    await server.start();
    try {
      const r = await runFixture({ MODE: 'reachable', REDIS: server.url, PREFIX: 'fresh:' });
      expect(r.code, r.err).to.equal(0);
      for (const name of USERS) expect(r.outcomes[name], name).to.equal('answered');
    } finally {
      await server.destroy();
    }
  });

  it('Redis reachable: what was sent before close() is answered, then the process exits 0', async () => {
    const prefix = `${uniqueName('close')}:`;
    const r = await runFixture({ MODE: 'reachable', REDIS: redisUrl(), PREFIX: prefix });
    const redis = new Redis(redisUrl());
    try {
      expect(r.code, r.err).to.equal(0);
      for (const name of USERS) expect(r.outcomes[name], name).to.equal('answered');
      expect(await redis.keys(`${prefix}*`)).to.not.have.length(0);
    } finally {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  });

  it('a Redis Cluster none of whose nodes answers: close() ends every in-flight command and the process exits 0 by itself', async () => {
    const ports = [await freePort(), await freePort()];
    const r = await runFixture({
      MODE: 'unreachable',
      REDIS_CLUSTER: ports.map((p) => `127.0.0.1:${p}`).join(','),
      WAIT: '300',
      PREFIX: 'unused:',
    });
    expect(r.code, r.err).to.equal(0);
    expect(Object.keys(r.outcomes).sort()).to.deep.equal([...USERS].sort());
    for (const name of USERS) expect(r.outcomes[name], name).to.match(/^failed: /);
    expect(r.ms, r.err).to.be.below(300 + 5_000);
  });

  it('a Redis Cluster: what was sent before close() is answered, then the process exits 0', async () => {
    const prefix = `${uniqueName('close')}:`;
    const cleanup = new Cleanup();
    CLUSTER.removeKeys(cleanup, `${prefix}*`);
    const cluster = CLUSTER.client();
    cleanup.defer(() => cluster.quit());
    try {
      const r = await runFixture({ MODE: 'reachable', ...CLUSTER.env(), PREFIX: prefix });
      expect(r.code, r.err).to.equal(0);
      for (const name of USERS) expect(r.outcomes[name], name).to.equal('answered');
      expect(await keysMatching(cluster, `${prefix}*`)).to.not.have.length(0);
    } finally {
      await cleanup.run();
    }
  });
});
