import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { uniqueName, waitUntil } from '@contexture/test-support';
import { expect } from 'chai';
import { Cluster, Redis } from 'ioredis';
import { byMaster } from '../src/internal/cluster.js';
import { CollectorError } from '../src/internal/errors.js';
import { LuaScript } from '../src/internal/lua-script.js';
import { RedisLock } from '../src/locks/redis-lock.js';
import { RedisContextStore } from '../src/store/redis-store.js';
import { TaskQueue } from '../src/tasks/task-queue.js';
import { masterOf, nodeAddress } from './support/backends.js';

/** The script that starts the test clusters; REDIS_CLUSTER_PORT and REDIS_CLUSTER_DIR pick ports and directory. */
const SCRIPT = fileURLToPath(new URL('../../../../test/cluster/redis-cluster.sh', import.meta.url));
/** A password in the nodes' URLs (their default user takes any): no error may repeat it. */
const SECRET = 'cluster-fault-secret';

/** True when nothing listens on 127.0.0.1:`port` and it can be bound. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The first of three ports, from 7100 on, free with their cluster bus ports (port + 10000). */
async function freeBase(): Promise<number> {
  for (let base = 7100; base < 7400; base += 10) {
    const ports = [base, base + 1, base + 2];
    const all = await Promise.all([...ports, ...ports.map((p) => p + 10_000)].map(portFree));
    if (all.every(Boolean)) return base;
  }
  throw new Error('no three free ports (and their bus ports) between 7100 and 7400 for a throwaway Redis Cluster');
}

/** True when something accepts a connection on 127.0.0.1:`port`. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Has every node on `ports` serve its own slots while another is down (cluster-require-full-coverage no). */
async function servingAlone(ports: number[]): Promise<void> {
  for (const port of ports) {
    const node = new Redis({ host: '127.0.0.1', port });
    await node.config('SET', 'cluster-require-full-coverage', 'no');
    node.disconnect();
  }
}

/**
 * A throwaway 3-master Redis Cluster of its own (test/cluster/redis-cluster.sh on other ports and
 * in another directory), for what must not disturb the shared test cluster: flushing the scripts of
 * every master, and killing one. One master is killed with SIGKILL while a RedisContextStore and a
 * RedisLock work on keys of every master: calls to its slots fail with a CollectorError naming the
 * cluster's seeds (never the password), calls to the other masters' slots go on; restarted on its
 * port and directory (its nodes.conf keeps its identity and slots), the same clients reach its
 * slots again. Then the node a task queue's caller is subscribed on stalls (SIGSTOP) while its
 * query waits: the outcome, told through that node, still reaches the query.
 */
describe('A throwaway Redis Cluster of its own (3 masters): scripts flushed, a master killed', function () {
  this.timeout(120_000);
  let base = 0;
  let dir = '';
  const env = () => ({ ...process.env, REDIS_CLUSTER_PORT: String(base), REDIS_CLUSTER_DIR: dir });
  const closers: Array<() => unknown> = [];

  before(async () => {
    base = await freeBase();
    dir = mkdtempSync(path.join(os.tmpdir(), 'contexture-cluster-fault-'));
    execFileSync('bash', [SCRIPT, 'start'], { env: env(), stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
  });
  after(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    if (base !== 0) execFileSync('bash', [SCRIPT, 'stop'], { env: env(), stdio: 'ignore', timeout: 60_000 });
  });

  it('runMany() after SCRIPT FLUSH on every master: the script is loaded where its calls went (SCRIPT LOAD alone reaches one node)', async () => {
    const client = new Cluster([0, 1, 2].map((i) => ({ host: '127.0.0.1', port: base + i })));
    closers.push(() => client.quit());
    await client.ping();
    const script = new LuaScript<string>("redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1]", 1);
    const keys = Array.from({ length: 30 }, (_, i) => `flushed:{k${i}}`);
    const groups = byMaster(client, keys, (k) => k);
    expect(groups).to.have.length(3);
    for (const group of groups) {
      // No master knows the script: the calls are answered NOSCRIPT, and sent again once loaded.
      await Promise.all(client.nodes('master').map((node) => node.script('FLUSH')));
      const replies = await script.runMany(
        client,
        group.map((k) => [k, `v-${k}`]),
      );
      expect(replies).to.deep.equal(group.map((k) => [null, `v-${k}`]));
    }
    expect(await client.get(keys[0]!)).to.equal(`v-${keys[0]}`);
  });

  it('calls to the dead master fail clearly (LC_REDIS_UNAVAILABLE naming the seeds), the others go on, and the same clients recover when it returns', async () => {
    const ports = [base, base + 1, base + 2];
    const seeds = ports.map((p) => `127.0.0.1:${p}`);
    // Every master keeps serving its own slots while one is down (the default stops the whole
    // cluster once the loss is agreed on): what fails is then exactly the dead master's slots.
    await servingAlone(ports);
    const urls = seeds.map((s) => `redis://default:${SECRET}@${s}`);
    const prefix = `${uniqueName('cfault')}:`;
    const store = new RedisContextStore({ redis: urls, prefix });
    closers.push(() => store.close());
    const locks = new RedisLock({ redis: urls, prefix, owner: 'fault' });
    closers.push(() => locks.close());
    const client = store.redis as Cluster;
    await client.ping();

    // Contexts and locks on every master; the victim is the master of the second port.
    const victim = seeds[1]!;
    const ids = Array.from({ length: 60 }, (_, i) => `c${i}`);
    const ctxKey = (id: string) => `${prefix}ctx:{${id}}`;
    const onVictim = ids.filter((id) => masterOf(client, ctxKey(id)) === victim);
    const elsewhere = ids.filter((id) => masterOf(client, ctxKey(id)) !== victim);
    expect(new Set(ids.map((id) => masterOf(client, ctxKey(id)))).size).to.equal(3);
    const lockOnVictim = ids.find((n) => masterOf(client, locks.key(`l-${n}`)) === victim)!;
    const lockElsewhere = ids.find((n) => masterOf(client, locks.key(`l-${n}`)) !== victim)!;
    expect(lockOnVictim).to.be.a('string');
    expect(lockElsewhere).to.be.a('string');

    // The run: rounds of writes to every context, recording what failed, until told to stop.
    const failures: Array<{ id: string; err: unknown }> = [];
    let rounds = 0;
    let cleanRoundsAfter = Number.POSITIVE_INFINITY; // rounds counted from here must fail nothing
    let cleanRounds = 0;
    let stop = false;
    const run = (async () => {
      while (!stop) {
        const round = rounds;
        const outcomes = await Promise.allSettled(ids.map((id) => store.set(id, { round })));
        let failed = 0;
        for (const [i, o] of outcomes.entries()) {
          if (o.status === 'rejected') {
            failures.push({ id: ids[i]!, err: o.reason });
            failed++;
          }
        }
        rounds++;
        if (round >= cleanRoundsAfter && failed === 0) cleanRounds++;
      }
    })();
    closers.push(async () => {
      stop = true;
      await run;
    });
    await waitUntil(() => rounds >= 2, 'two rounds of writes');
    expect(failures).to.deep.equal([]);

    // Kill the victim mid-run.
    const pidFile = path.join(dir, String(base + 1), 'redis.pid');
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    process.kill(pid, 'SIGKILL');
    // Gone once its port refuses connections (a killed daemon may linger as a zombie until reaped).
    await waitUntil(async () => !(await accepts(base + 1)), 'the killed master to be gone');

    const expectClear = (err: unknown, what: string) => {
      expect(err, what).to.be.instanceOf(CollectorError);
      const e = err as CollectorError;
      expect(e.code, `${what}: ${e.message}`).to.equal('LC_REDIS_UNAVAILABLE');
      expect(e.message, what).to.include(`${seeds.join(', ')} (cluster)`);
      expect(e.message, what).to.not.include(SECRET);
      // Sent back (MOVED) to the dead master until ioredis gave up: the message says which master.
      if (/MOVED/.test(e.message))
        expect(e.message, what).to.match(new RegExp(`is served by ${victim}, which did not answer`));
      expect(JSON.stringify((e.cause as { command?: unknown } | undefined)?.command ?? null), what).to.not.include(
        SECRET,
      );
    };
    // Its slots fail, with a clear error; the other masters' slots answer.
    const caught = async (p: Promise<unknown>): Promise<unknown> =>
      p.then(
        () => null,
        (err: unknown) => err,
      );
    // (all at once: ioredis gives up on each after its redirection retries)
    const [gets, lockErr, status] = await Promise.all([
      Promise.all(onVictim.slice(0, 3).map((id) => caught(store.get(id)))),
      caught(locks.lock(`l-${lockOnVictim}`)),
      locks.status(`l-${lockOnVictim}`),
    ]);
    for (const [i, err] of gets.entries()) {
      expectClear(err, `get ${onVictim[i]}`);
      expect((err as Error).message).to.match(/^context store get of "c\d+": Redis at /);
    }
    expectClear(lockErr, 'lock on the dead master');
    expect(status).to.equal('unavailable');
    for (const id of elsewhere.slice(0, 3)) expect((await store.get(id))?.context).to.have.property('round');
    const held = await locks.lock(`l-${lockElsewhere}`, { ttl: 60_000 });
    expect(held).to.not.equal(null);
    expect(await held!.release()).to.equal(true);
    await waitUntil(() => failures.length > 0, 'the run to meet the dead master');

    // A script no master knows yet (as after a restart or SCRIPT FLUSH), run on a live master's
    // keys while one master is dead: loaded where it can be, its calls go through.
    const fresh = new LuaScript<string>(`-- ${uniqueName('fresh')}\nreturn ARGV[1]`, 1);
    const liveGroup = byMaster(client, elsewhere.map(ctxKey), (k) => k)[0]!;
    expect(liveGroup.length).to.be.greaterThan(0);
    expect(
      await fresh.runMany(
        client,
        liveGroup.map((k) => [k, `v-${k}`]),
      ),
    ).to.deep.equal(liveGroup.map((k) => [null, `v-${k}`]));

    // Back on the same port and directory: nodes.conf gives it its identity and slots again (its
    // data is gone: the test cluster persists nothing). The arguments are the script's.
    const port = String(base + 1);
    const nodeDir = path.join(dir, port);
    execFileSync(
      'redis-server',
      [
        '--port',
        port,
        '--bind',
        '127.0.0.1',
        '--daemonize',
        'yes',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        path.join(nodeDir, 'nodes.conf'),
        '--cluster-node-timeout',
        '2000',
        '--dir',
        nodeDir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--logfile',
        path.join(nodeDir, 'redis.log'),
        '--pidfile',
        path.join(nodeDir, 'redis.pid'),
      ],
      { stdio: 'ignore', timeout: 10_000 },
    );
    // The same clients reach its slots again, by themselves (`back`: a context the run does not write).
    const back = Array.from({ length: 100 }, (_, i) => `back${i}`).find(
      (id) => masterOf(client, ctxKey(id)) === victim,
    )!;
    await waitUntil(
      async () =>
        store.set(back, { back: true }).then(
          () => true,
          () => false,
        ),
      'a write to the restarted master',
      30_000,
      50,
    );
    expect(store.redis).to.equal(client, 'no new client');
    expect((await store.get(back))?.context).to.deep.equal({ back: true });
    const again = await locks.lock(`l-${lockOnVictim}`, { ttl: 60_000 });
    expect(again).to.not.equal(null);
    expect(await again!.release()).to.equal(true);
    // And the run goes on: whole rounds without a failure.
    cleanRoundsAfter = rounds;
    await waitUntil(() => cleanRounds >= 2, 'two rounds of writes without a failure', 30_000);
    stop = true;
    await run;

    // Every failure of the run was the dead master's, and said so clearly.
    const victims = new Set(onVictim);
    for (const f of failures) {
      expect(victims.has(f.id), `${f.id} failed but its master is alive`).to.equal(true);
      expectClear(f.err, `set ${f.id}`);
    }
    for (const id of ids) expect((await store.get(id))?.context, id).to.not.equal(undefined);
  });

  it("a query's subscriber node stalled while it waits: the outcome, told through that node, still reaches it", async () => {
    const ports = [base, base + 1, base + 2];
    const seeds = ports.map((p) => `127.0.0.1:${p}`);
    // The node restarted by the test before lacks the setting.
    await servingAlone(ports);
    const urls = seeds.map((s) => `redis://default:${SECRET}@${s}`);
    const prefix = `${uniqueName('tqfault')}:`;
    const namespace = uniqueName('ns');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const worker = new TaskQueue({
      redis: urls,
      prefix,
      namespace,
      handler: {
        slow: async () => {
          await gate;
          return { ok: 1 };
        },
      },
    });
    closers.push(() => worker.close());
    const stop = new AbortController();
    const listening = worker.listen(['slow'], { concurrency: 32, signal: stop.signal });
    closers.push(async () => {
      release();
      stop.abort();
      await listening;
    });
    const client = worker.redis as Cluster;
    await client.ping();
    // The namespace's keys (its tasks and their outcomes) are on one master, which stays up.
    const home = masterOf(client, `${prefix}tq:{${namespace}}:x`);

    // A caller whose subscriber is on another node (ioredis picks one at random): up to 20 tries.
    let caller: TaskQueue | null = null;
    let waiting: Promise<unknown> | null = null;
    let taskId = '';
    let subNode: Redis | null = null;
    for (let attempt = 0; attempt < 20 && subNode === null; attempt++) {
      const q = new TaskQueue({ redis: urls, prefix, namespace, recheckInterval: 200 });
      const id = uniqueName('task');
      const p = q.query({ id, name: 'slow', policy: 'remote', timeout: 20_000 });
      p.catch(() => {});
      const channel = `${prefix}tq:{${namespace}}:r:${q.id}`;
      let found: Redis | undefined;
      await waitUntil(async () => {
        for (const node of (q.redis as Cluster).nodes('master')) {
          if (((await node.pubsub('CHANNELS', channel)) as string[]).length > 0) found = node;
        }
        return found !== undefined;
      }, "the caller's subscription");
      if (nodeAddress(found!) !== home) {
        caller = q;
        waiting = p;
        taskId = id;
        subNode = found!;
      } else {
        await q.close();
      }
    }
    expect(subNode, 'a subscriber away from the namespace').to.not.equal(null);
    closers.push(() => caller!.close());
    // The worker has the task (and those of the callers given up before): they wait at the gate.
    await waitUntil(
      async () => (await client.hget(`${prefix}tq:{${namespace}}:t:${taskId}`, 'status')) === 'running',
      'the task running',
    );

    // Stall the subscriber's node (SIGSTOP: its connections stay open, nothing tells the caller's
    // subscriber), then let the task end: its outcome, told through that node, never arrives; the
    // query reads it back (recheckInterval).
    const port = Number(nodeAddress(subNode!).split(':')[1]);
    const pid = Number(readFileSync(path.join(dir, String(port), 'redis.pid'), 'utf8').trim());
    process.kill(pid, 'SIGSTOP');
    closers.push(() => process.kill(pid, 'SIGCONT'));
    release();
    expect(await waiting).to.deep.equal({ ok: 1 });
    process.kill(pid, 'SIGCONT');
  });
});
