import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Cluster, type ClusterOptions } from 'ioredis';
import { ensureRabbitCluster, stopRabbitCluster } from './rabbitmq-cluster.js';

/** URL of the RabbitMQ the tests use: `AMQP_URL`, or the local default. */
export function amqpUrl(): string {
  return process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/%2F';
}

/** URL of the Redis the tests use: `REDIS_URL`, or the local default. */
export function redisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
}

/**
 * The nodes (`host:port`) of the Redis Cluster the tests use: `REDIS_CLUSTER_NODES` (comma-separated),
 * or the three masters test/cluster/redis-cluster.sh starts on 7000-7002.
 */
export function redisClusterNodes(): string[] {
  const list = process.env.REDIS_CLUSTER_NODES ?? '127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002';
  return list
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
}

/** An ioredis Cluster on the test cluster's nodes; the caller closes it. */
export function clusterClient(options: ClusterOptions = {}): Cluster {
  return new Cluster(
    redisClusterNodes().map((n) => {
      const at = n.lastIndexOf(':');
      return { host: n.slice(0, at), port: Number(n.slice(at + 1)) };
    }),
    options,
  );
}

function endpoint(url: string, defaultPort: number): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname || '127.0.0.1', port: Number(u.port || defaultPort) };
}

/** Resolves when a TCP connection to host:port opens, rejects with the socket error otherwise. */
function probeTcp(host: string, port: number, timeoutMs = 3000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const done = (err?: Error) => {
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    socket.setTimeout(timeoutMs, () => done(new Error('timed out')));
    socket.once('connect', () => done());
    socket.once('error', done);
  });
}

/** Sends an AMQP protocol header and waits for the broker's Connection.Start: the broker is up, not just the port. */
function probeAmqp(host: string, port: number, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const done = (err?: Error) => {
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    socket.setTimeout(timeoutMs, () => done(new Error('no answer to the AMQP header')));
    socket.once('connect', () => socket.write(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1')));
    socket.once('data', (chunk: Buffer) => (chunk[0] === 1 ? done() : done(new Error('not an AMQP 0-9-1 broker'))));
    socket.once('error', done);
    socket.once('end', () => done(new Error('closed the connection')));
  });
}

function probeRedis(host: string, port: number, timeoutMs = 3000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const done = (err?: Error) => {
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    socket.setTimeout(timeoutMs, () => done(new Error('no answer to PING')));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (chunk: Buffer) =>
      chunk.toString().startsWith('+PONG') ? done() : done(new Error(chunk.toString().trim())),
    );
    socket.once('error', done);
  });
}

function dockerAvailable(): boolean {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

type Stoppable = { stop(): Promise<unknown> };
const started: Stoppable[] = [];

async function startWithTestcontainers(which: 'rabbitmq' | 'redis'): Promise<string> {
  const { GenericContainer, Wait } = await import('testcontainers');
  if (which === 'rabbitmq') {
    const c = await new GenericContainer('rabbitmq:3.13-alpine')
      .withExposedPorts(5672)
      .withWaitStrategy(Wait.forLogMessage(/Server startup complete/))
      .start();
    started.push(c);
    return `amqp://guest:guest@${c.getHost()}:${c.getMappedPort(5672)}/%2F`;
  }
  const c = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start();
  started.push(c);
  return `redis://${c.getHost()}:${c.getMappedPort(6379)}`;
}

/**
 * Makes sure RabbitMQ and Redis answer. Where one does not and a Docker engine is present, starts
 * it with testcontainers and points `AMQP_URL` / `REDIS_URL` at it; otherwise throws an error whose
 * message is one line saying how to start it.
 */
export async function ensureServices(): Promise<void> {
  const problems: string[] = [];
  const amqp = endpoint(amqpUrl(), 5672);
  try {
    await probeAmqp(amqp.host, amqp.port);
  } catch (err) {
    if (dockerAvailable()) process.env.AMQP_URL = await startWithTestcontainers('rabbitmq');
    else
      problems.push(
        `RabbitMQ at ${amqp.host}:${amqp.port} does not answer (${(err as Error).message}): start it with 'rabbitmq-server -detached' or set AMQP_URL`,
      );
  }
  const redis = endpoint(redisUrl(), 6379);
  try {
    await probeRedis(redis.host, redis.port);
  } catch (err) {
    if (dockerAvailable()) process.env.REDIS_URL = await startWithTestcontainers('redis');
    else
      problems.push(
        `Redis at ${redis.host}:${redis.port} does not answer (${(err as Error).message}): start it with 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ""' or set REDIS_URL`,
      );
  }
  const cluster = await ensureCluster();
  if (cluster !== null) problems.push(cluster);
  const rabbitCluster = await ensureRabbitCluster();
  if (rabbitCluster !== null) problems.push(rabbitCluster);
  if (problems.length > 0) throw new Error(problems.join('; '));
}

/** The script that starts and stops the test cluster (it ships in the repository, not in dist/). */
const CLUSTER_SCRIPT = fileURLToPath(new URL('../../cluster/redis-cluster.sh', import.meta.url));
let startedCluster = false;

/** True when every node of the test cluster answers and says the cluster is ok. */
async function clusterOk(): Promise<boolean> {
  const client = clusterClient({ lazyConnect: true, clusterRetryStrategy: () => null });
  // A cluster that is down (not started yet) is the answer here, not an error to print.
  client.on('error', () => {});
  try {
    await client.connect();
    const info = String(await client.cluster('INFO'));
    return /cluster_state:ok/.test(info) && client.nodes('master').length === redisClusterNodes().length;
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/**
 * Makes sure the test Redis Cluster answers: when `REDIS_CLUSTER_NODES` is not set and the local
 * one is down, starts it with test/cluster/redis-cluster.sh (redis-server and redis-cli must be
 * installed) and stops it in {@link stopServices}. Null, or one line saying what is wrong.
 */
async function ensureCluster(): Promise<string | null> {
  if (await clusterOk()) return null;
  const nodes = redisClusterNodes().join(', ');
  if (process.env.REDIS_CLUSTER_NODES !== undefined)
    return `the Redis Cluster at ${nodes} (REDIS_CLUSTER_NODES) does not answer or is not ok`;
  try {
    execFileSync('bash', [CLUSTER_SCRIPT, 'start'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
    startedCluster = true;
  } catch (err) {
    const why = String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim();
    return `the test Redis Cluster at ${nodes} is down and could not be started (${why}): run 'test/cluster/redis-cluster.sh start' or set REDIS_CLUSTER_NODES`;
  }
  return (await clusterOk()) ? null : `the test Redis Cluster at ${nodes} started but is not ok`;
}

/** Stops what {@link ensureServices} started. */
export async function stopServices(): Promise<void> {
  await Promise.all(started.splice(0).map((c) => c.stop()));
  stopRabbitCluster();
  if (startedCluster) {
    startedCluster = false;
    execFileSync('bash', [CLUSTER_SCRIPT, 'stop'], { stdio: 'ignore', timeout: 60_000 });
  }
}

export { probeAmqp, probeRedis, probeTcp };
