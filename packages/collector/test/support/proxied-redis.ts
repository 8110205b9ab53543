import { Redis, type RedisOptions } from 'ioredis';
import { FaultProxy, redisUrl, waitUntil, type Cleanup } from '@contexture/test-support';

/** A FaultProxy in front of the test's Redis, and ioredis clients that connect through it. */
export interface ProxiedRedis {
  proxy: FaultProxy;
  /** The proxy's port on 127.0.0.1. */
  port: number;
  /** A client through the proxy (its errors ignored: the test cuts and stalls it on purpose). */
  client(options?: RedisOptions): Redis;
}

/** See {@link ProxiedRedis}; `cleanup` closes the proxy and disconnects the clients. */
export async function proxiedRedis(cleanup: Cleanup): Promise<ProxiedRedis> {
  const u = new URL(redisUrl());
  const proxy = new FaultProxy(u.hostname, Number(u.port || 6379));
  const port = await proxy.listen();
  cleanup.defer(() => proxy.close());
  return {
    proxy,
    port,
    client(options: RedisOptions = {}): Redis {
      const client = new Redis(`redis://127.0.0.1:${port}`, options);
      client.on('error', () => {});
      cleanup.defer(() => client.disconnect());
      return client;
    },
  };
}

/**
 * `call` (sent through `proxy`, muted: replies held back) with its reply lost: once `ran` says
 * Redis has run it, the connection is cut, then the proxy lets traffic through again. Resolves
 * with the call's value or error.
 */
export async function loseReply<T, E = unknown>(
  proxy: FaultProxy,
  call: Promise<T>,
  ran: () => Promise<boolean>,
): Promise<{ v?: T; err?: E }> {
  const outcome = call.then(
    (v) => ({ v }),
    (err: E) => ({ err }),
  );
  await waitUntil(ran, 'Redis to run the call', 10_000);
  proxy.cut();
  proxy.restore();
  return outcome;
}
