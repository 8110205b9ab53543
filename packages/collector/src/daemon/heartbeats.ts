import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import {
  APP_ID,
  CONTENT_TYPE_JSON,
  HEARTBEAT_RKEY,
  HEARTBEAT_TYPE,
  encodeHeartbeat,
  parseHeartbeat,
  type Heartbeat,
} from '@contexture/context/protocol';
import type { RegistryEntry, RegistryMetrics } from '../registry/registry.js';

/** What the collector needs of a registry: the `Registry` fits. */
export interface HeartbeatRegistry {
  beat(entry: RegistryEntry, metrics?: RegistryMetrics): Promise<void>;
  unregister(id: string): Promise<boolean>;
  /** Takes entries expired (handlers that died without saying so) out of its index. */
  cleanupExpired?(): Promise<number>;
}

/**
 * Every how many of its own heartbeats the collector takes expired entries out of the registry's
 * index: a handler killed without its `stopped` heartbeat leaves its id there, and each listing
 * (a /metrics scrape) reads every id.
 */
export const CLEANUP_EVERY = 10;

/** Counters of the heartbeat side of a collector. */
export interface HeartbeatStats {
  /** Heartbeats of others received (and written to the registry when there is one). */
  received: number;
  /** Bodies on the heartbeat key that were not heartbeats. */
  invalid: number;
  /** Registry writes that failed (the next heartbeat writes again). */
  registryErrors: number;
  /** Own heartbeats published. */
  sent: number;
}

/**
 * The collector's heartbeats: it keeps the registry from the handlers' heartbeats it consumes, and
 * announces itself the same way (on the bus, and straight into the registry).
 */
export class CollectorHeartbeats {
  readonly id = `collector-${randomUUID()}`;
  readonly counts: HeartbeatStats = { received: 0, invalid: 0, registryErrors: 0, sent: 0 };
  private readonly startedAt = Date.now() / 1000;
  private timer: NodeJS.Timeout | null = null;
  /** Own heartbeats since the registry's index was last cleaned. */
  private sinceCleanup = 0;

  constructor(
    private readonly registry: HeartbeatRegistry | null,
    private readonly interval: number,
    private readonly name: string,
    private readonly exchange: string,
  ) {}

  /** A heartbeat delivery: into the registry (a `stopped` one takes the entry out). Never rejects. */
  async handle(msg: ConsumeMessage): Promise<void> {
    if (msg.fields.routingKey !== HEARTBEAT_RKEY) return;
    const h = parseHeartbeat(msg.content);
    if (h === null) {
      this.counts.invalid++;
      return;
    }
    if (h.id === this.id) return; // its own, back through its queue
    this.counts.received++;
    if (this.registry === null) return;
    try {
      if (h.state === 'stopped') await this.registry.unregister(h.id);
      else await this.registry.beat(...entryOf(h));
    } catch {
      this.counts.registryErrors++;
    }
  }

  /** Starts announcing: now, then every interval. */
  start(channel: () => ConfirmChannel | null, stats: () => Record<string, number>): void {
    if (this.interval === 0 || this.timer !== null) return;
    const tick = () => void this.announce('running', channel(), stats());
    tick();
    this.timer = setInterval(tick, this.interval);
    this.timer.unref();
  }

  /** Stops announcing and says so (bus and registry). */
  async stop(channel: ConfirmChannel | null, stats: Record<string, number>): Promise<void> {
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
    await this.announce('stopped', channel, stats);
  }

  private async announce(
    state: Heartbeat['state'],
    ch: ConfirmChannel | null,
    stats: Record<string, number>,
  ): Promise<void> {
    const h: Heartbeat = {
      type: HEARTBEAT_TYPE,
      id: this.id,
      kind: 'collector',
      name: this.name,
      host: os.hostname(),
      pid: process.pid,
      state,
      interval: this.interval,
      started_at: this.startedAt,
      time: Date.now() / 1000,
      stats,
    };
    if (ch !== null) {
      try {
        ch.publish(this.exchange, HEARTBEAT_RKEY, Buffer.from(encodeHeartbeat(h)), {
          contentType: CONTENT_TYPE_JSON,
          type: HEARTBEAT_TYPE,
          appId: APP_ID,
          timestamp: Math.floor(h.time),
          expiration: String(3 * this.interval),
          headers: { hostname: h.host },
        });
        this.counts.sent++;
      } catch {
        /* the channel is closing: the next heartbeat goes on the next one */
      }
    }
    if (this.registry === null) return;
    try {
      if (state === 'stopped') await this.registry.unregister(this.id);
      else await this.registry.beat(...entryOf(h));
      if (state === 'running' && ++this.sinceCleanup >= CLEANUP_EVERY && this.registry.cleanupExpired) {
        this.sinceCleanup = 0;
        await this.registry.cleanupExpired();
      }
    } catch {
      this.counts.registryErrors++;
    }
  }
}

/** A heartbeat as a registry entry and its metrics. */
export function entryOf(h: Heartbeat): [RegistryEntry, RegistryMetrics] {
  const entry: RegistryEntry = {
    id: h.id,
    kind: h.kind,
    info: { interval: h.interval, started_at: h.started_at, sent_at: h.time },
  };
  if (h.name !== '') entry.name = h.name;
  if (h.host !== '') entry.host = h.host;
  if (h.pid > 0) entry.pid = h.pid;
  return [entry, h.stats];
}
