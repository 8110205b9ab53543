import { execFileSync } from 'node:child_process';
import net from 'node:net';

/** URL of the RabbitMQ the tests use: `AMQP_URL`, or the local default. */
export function amqpUrl(): string {
  return process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/%2F';
}

/** URL of the Redis the tests use: `REDIS_URL`, or the local default. */
export function redisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
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
  if (problems.length > 0) throw new Error(problems.join('; '));
}

/** Stops what {@link ensureServices} started. */
export async function stopServices(): Promise<void> {
  await Promise.all(started.splice(0).map((c) => c.stop()));
}

export { probeAmqp, probeRedis, probeTcp };
