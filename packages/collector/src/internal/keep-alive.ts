/**
 * Clients this package makes itself (from a URL or a list of nodes) never keep the process alive on
 * their own, as the Handler of `@contexture/context` does not: their sockets and their reconnect and
 * slot-refresh timers are unref'ed, and a command under way holds the process (one ref'ed timer
 * per client while any is) until it is answered or fails. A one-shot script ends once its last
 * call is answered, whether or not it calls `close()`; one that awaits a call never ends before the
 * answer, Redis away or not. A client the caller gives is left as it is.
 */
import type { Cluster, Redis } from 'ioredis';
import type { RedisClient } from './cluster.js';

/** The longest a timer can wait; it is cleared long before. */
const HOLD_MS = 2 ** 31 - 1;

/** The clients made to let the process go when idle (their subscribers are made so too). */
const idle = new WeakSet<object>();

/** Whether `client` was made by {@link unrefWhenIdle}. */
export function isUnrefWhenIdle(client: RedisClient): boolean {
  return idle.has(client);
}

interface Unrefable {
  unref?: () => unknown;
}

/**
 * Makes `field` of `target` unref what is assigned to it (a socket, a timer) from now on, and what
 * it holds already. ioredis assigns a new socket at every connect and a new timer at every
 * reconnect or slot refresh: each is let go as it comes.
 */
function unrefAssigned(
  target: object,
  field: string,
  letGo: (v: unknown) => void = (v) => (v as Unrefable | null | undefined)?.unref?.(),
): void {
  let value = (target as Record<string, unknown>)[field];
  letGo(value);
  Object.defineProperty(target, field, {
    configurable: true,
    enumerable: true,
    get: () => value,
    set: (v: unknown) => {
      value = v;
      letGo(v);
    },
  });
}

/** A connection of a Cluster's own (to a node, or a subscriber's): let go like the Cluster. */
const letNodeGo = (v: unknown): void => {
  if (typeof v === 'object' && v !== null && 'sendCommand' in v) unrefNode(v as Redis, false);
};

/** Holds the process while a command of `client` is under way: counted once per command, however often ioredis resends it. */
function holdWhileBusy(client: Redis | Cluster): void {
  const counted = new WeakSet<object>();
  let busy = 0;
  let hold: NodeJS.Timeout | null = null;
  const send = client.sendCommand.bind(client) as (...args: unknown[]) => unknown;
  const wrapped = (command: { promise?: Promise<unknown> }, ...rest: unknown[]): unknown => {
    const promise = command?.promise;
    if (promise !== undefined && !counted.has(command)) {
      counted.add(command);
      if (busy++ === 0) hold = setInterval(() => {}, HOLD_MS);
      const done = (): void => {
        if (--busy === 0 && hold !== null) {
          clearInterval(hold);
          hold = null;
        }
      };
      promise.then(done, done);
    }
    return send(command, ...rest);
  };
  Object.defineProperty(client, 'sendCommand', { configurable: true, writable: true, value: wrapped });
}

/** One connection to one Redis: its socket and timers let go, its commands held while under way. */
function unrefNode(redis: Redis, hold: boolean): void {
  if (idle.has(redis)) return;
  idle.add(redis);
  for (const field of ['stream', 'reconnectTimeout', 'socketTimeoutTimer']) unrefAssigned(redis, field);
  if (hold) holdWhileBusy(redis);
}

/**
 * Lets the process exit while `client`, made by this package, is idle (see above). On a Cluster the
 * connections to its nodes are let go as they are made; commands are held at the Cluster.
 */
export function unrefWhenIdle(client: RedisClient): RedisClient {
  if ((client as { isCluster?: boolean }).isCluster === true) {
    const cluster = client as Cluster;
    if (idle.has(cluster)) return client;
    idle.add(cluster);
    for (const field of ['reconnectTimeout', 'slotsTimer']) unrefAssigned(cluster, field);
    for (const node of cluster.nodes('all')) unrefNode(node, false);
    cluster.on('+node', (node: Redis) => unrefNode(node, false));
    // Its subscribers are connections of their own, made when a subscription needs one: the one
    // for SUBSCRIBE (kept in `subscriber.subscriber`), and one per master for SSUBSCRIBE (in the
    // sharded group, each announced by '+subscriber'). Internals of ioredis 5: absent, nothing done.
    const { subscriber } = cluster as unknown as { subscriber?: object };
    if (typeof subscriber === 'object' && subscriber !== null) unrefAssigned(subscriber, 'subscriber', letNodeGo);
    cluster.on('+subscriber', () => {
      const group = (cluster as unknown as { shardedSubscribers?: { shardedSubscribers?: Map<string, unknown> } })
        .shardedSubscribers?.shardedSubscribers;
      if (group instanceof Map) for (const s of group.values()) letNodeGo((s as { instance?: unknown })?.instance);
    });
    holdWhileBusy(cluster);
    return client;
  }
  unrefNode(client as Redis, true);
  return client;
}
