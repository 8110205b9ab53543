import type { Cleanup } from './cleanup.js';
import { FaultProxy } from './fault-proxy.js';
import { amqpUrl } from './services.js';

/** The test broker's URL (with its credentials), pointed at a proxy on 127.0.0.1:`port` instead. */
export function proxiedAmqpUrl(port: number): string {
  const u = new URL(amqpUrl());
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString();
}

/** A {@link FaultProxy} in front of the test broker, listening; closed by `cleanup`. */
export async function brokerProxy(cleanup: Cleanup): Promise<FaultProxy> {
  const u = new URL(amqpUrl());
  const proxy = new FaultProxy(u.hostname, Number(u.port || 5672));
  await proxy.listen();
  cleanup.defer(() => proxy.close());
  return proxy;
}
