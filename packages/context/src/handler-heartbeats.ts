import os from 'node:os';
import path from 'node:path';
import type { HandlerStats } from './handler.js';
import { HEARTBEAT_RKEY, HEARTBEAT_TYPE, encodeHeartbeat, type Heartbeat } from './protocol/heartbeat.js';
import type { Transport } from './transports/transport.js';

/** What {@link HandlerHeartbeats} asks of its Handler. */
export interface HeartbeatHost {
  transport(): Transport | null;
  /** The heartbeat to publish now (`Handler.heartbeat()`). */
  heartbeat(state: Heartbeat['state']): Heartbeat;
  /** True when a periodic heartbeat may go now: connected, and the broker not blocking publishers. */
  mayBeat(): boolean;
}

/**
 * A Handler's heartbeats: who it is and its counters, published on the reserved routing key
 * outside the buffer, now and every `interval` ms while connected to a broker (0: never).
 * JSON-lines transports carry none.
 */
export class HandlerHeartbeats {
  /** Heartbeats published. */
  sent = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly startedAt = Date.now() / 1000;
  private last: { at: number; published: number } | null = null;

  constructor(
    private readonly id: string,
    private readonly interval: number,
    private readonly host: HeartbeatHost,
  ) {}

  /** The heartbeat of a handler whose counters are `stats`, with the publish rate since the last one sent. */
  build(state: Heartbeat['state'], stats: HandlerStats): Heartbeat {
    const now = Date.now();
    const published = stats.published;
    const last = this.last;
    const rate = last === null || now <= last.at ? 0 : ((published - last.published) * 1000) / (now - last.at);
    return {
      type: HEARTBEAT_TYPE,
      id: this.id,
      kind: 'handler',
      name: programName(),
      host: os.hostname(),
      pid: process.pid,
      state,
      interval: this.interval,
      started_at: this.startedAt,
      time: now / 1000,
      stats: {
        queued: stats.queued,
        in_flight: stats.inFlight,
        enqueued: stats.enqueued,
        published,
        dropped: stats.dropped,
        published_per_s: Math.round(rate * 10) / 10,
        reconnects: stats.reconnects,
        blocked: stats.blocked ? 1 : 0,
      },
    };
  }

  /** Publishes a heartbeat now and every `interval` ms after (on brokers only). */
  start(): void {
    if (this.interval === 0 || this.host.transport()?.sendControl === undefined) return;
    this.beat('running');
    if (this.timer !== null) return;
    this.timer = setInterval(() => {
      // Not while the broker blocks publishers: it would stop reading this connection altogether.
      if (this.host.mayBeat()) this.beat('running');
    }, this.interval);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Publishes one heartbeat, if the transport carries them. */
  beat(state: Heartbeat['state']): void {
    const t = this.host.transport();
    if (t?.sendControl === undefined || this.interval === 0) return;
    const h = this.host.heartbeat(state);
    // Three missed intervals make a heartbeat stale: queues drop it by themselves then.
    if (t.sendControl(HEARTBEAT_RKEY, encodeHeartbeat(h), HEARTBEAT_TYPE, 3 * this.interval)) {
      this.sent++;
      this.last = { at: h.time * 1000, published: h.stats.published! };
    }
  }
}

/** The program's name for heartbeats: its main module's file name. */
function programName(): string {
  const main = process.argv[1];
  return main ? path.basename(main) : process.title;
}
