import { execFile, execFileSync } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** The script that starts and stops the test RabbitMQ cluster (it ships in the repository, not in dist/). */
const SCRIPT = fileURLToPath(new URL('../../cluster/rabbitmq-cluster.sh', import.meta.url));

/** The node names of the test cluster test/cluster/rabbitmq-cluster.sh starts, in port order. */
export const RABBITMQ_CLUSTER_NODES: readonly string[] = Object.freeze([
  'rabbit-c1@localhost',
  'rabbit-c2@localhost',
  'rabbit-c3@localhost',
]);

/**
 * The AMQP URLs of the RabbitMQ cluster the tests use, one per node: `RABBITMQ_CLUSTER_URLS`
 * (comma-separated), or the three nodes test/cluster/rabbitmq-cluster.sh starts on 5681-5683.
 */
export function rabbitClusterUrls(): string[] {
  const list =
    process.env.RABBITMQ_CLUSTER_URLS ??
    [5681, 5682, 5683].map((port) => `amqp://guest:guest@127.0.0.1:${port}/%2F`).join(',');
  return list
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
}

/** The node name (`rabbit-c2@localhost`) of the test cluster's node behind `url`, by its port. */
export function rabbitClusterNode(url: string): string {
  const i = rabbitClusterUrls().findIndex((u) => new URL(u).port === new URL(url).port);
  if (i < 0 || i >= RABBITMQ_CLUSTER_NODES.length) throw new Error(`no test cluster node at port ${new URL(url).port}`);
  return RABBITMQ_CLUSTER_NODES[i]!;
}

/**
 * Runs `rabbitmqctl -n NODE …args` as the cluster script does (the caller's Erlang cookie, not the
 * system broker's): `stop_app` and `start_app` take one node of the cluster down and up.
 */
export async function rabbitClusterCtl(node: string, ...args: string[]): Promise<void> {
  await exec('bash', [SCRIPT, 'ctl', node, ...args], { timeout: 120_000 });
}

let started = false;

/** Resolves true when every node answers the AMQP header with a Connection.Start. */
async function nodesAnswer(): Promise<boolean> {
  const probes = rabbitClusterUrls().map(
    (url) =>
      new Promise<boolean>((resolve) => {
        const u = new URL(url);
        const socket = net.connect({ host: u.hostname, port: Number(u.port || 5672) });
        const done = (ok: boolean) => {
          socket.destroy();
          resolve(ok);
        };
        socket.setTimeout(3000, () => done(false));
        socket.once('connect', () => socket.write(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1')));
        socket.once('data', (chunk: Buffer) => done(chunk[0] === 1));
        socket.once('error', () => done(false));
      }),
  );
  return (await Promise.all(probes)).every(Boolean);
}

/**
 * Makes sure the test RabbitMQ cluster answers: when `RABBITMQ_CLUSTER_URLS` is not set and the
 * local one is down, starts it with test/cluster/rabbitmq-cluster.sh (rabbitmq-server must be
 * installed; it leaves the broker on 5672 alone) and stops it in {@link stopRabbitCluster}.
 * Null, or one line saying what is wrong.
 */
export async function ensureRabbitCluster(): Promise<string | null> {
  const where = rabbitClusterUrls()
    .map((u) => new URL(u).host)
    .join(', ');
  if (process.env.RABBITMQ_CLUSTER_URLS !== undefined)
    return (await nodesAnswer()) ? null : `the RabbitMQ cluster at ${where} (RABBITMQ_CLUSTER_URLS) does not answer`;
  try {
    // `status` checks that the three nodes run as one cluster; `start` does nothing when they do.
    execFileSync('bash', [SCRIPT, 'status'], { stdio: 'ignore', timeout: 30_000 });
    return null;
  } catch {
    /* below */
  }
  try {
    execFileSync('bash', [SCRIPT, 'start'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 180_000 });
    started = true;
  } catch (err) {
    const why = String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim();
    return `the test RabbitMQ cluster at ${where} is down and could not be started (${why}): run 'test/cluster/rabbitmq-cluster.sh start' or set RABBITMQ_CLUSTER_URLS`;
  }
  return (await nodesAnswer()) ? null : `the test RabbitMQ cluster at ${where} started but does not answer`;
}

/** Stops the test RabbitMQ cluster if {@link ensureRabbitCluster} started it. */
export function stopRabbitCluster(): void {
  if (!started) return;
  started = false;
  execFileSync('bash', [SCRIPT, 'stop'], { stdio: 'ignore', timeout: 120_000 });
}
