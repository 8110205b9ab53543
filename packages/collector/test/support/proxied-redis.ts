import { Redis, type RedisOptions } from 'ioredis';
import { FaultProxy, redisUrl, type Cleanup } from '@contexture/test-support';

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
