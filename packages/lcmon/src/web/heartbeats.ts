import { HEARTBEAT_RKEY, parseHeartbeat, type Heartbeat } from '@contexture/context/protocol';
import { AmqpSource } from '../amqp-source.js';
import type { ResolvedOptions } from '../options.js';

/** A live handler or collector as the page lists it: its last heartbeat and how long ago it came. */
export interface HeardHandler extends Heartbeat {
  /** Seconds since its last heartbeat. */
  seen_ago: number;
}

/**
 * The handlers and collectors heard on the exchange, kept from their heartbeats as `lcmon
 * --handlers` lists them: one that said it stopped, or that missed three heartbeats, is left out.
 * Listens on an anonymous queue of its own, bound to the heartbeat key only.
 */
/** Handlers kept at most; past it the one heard longest ago is forgotten. */
const MAX_HANDLERS = 2_000;
/** The longest heartbeat interval believed (ms): a handler silent three times this long is gone. */
const MAX_INTERVAL = 600_000;

export class HeartbeatWatch {
  private readonly seen = new Map<string, { h: Heartbeat; at: number }>();
  /** Bodies on the heartbeat key that were not heartbeats. */
  invalid = 0;

  private constructor(private readonly source: AmqpSource) {}

  static async open(amqp: ResolvedOptions): Promise<HeartbeatWatch> {
    const source = await AmqpSource.open({
      ...amqp,
      queue: undefined,
      bindingKeys: [HEARTBEAT_RKEY],
      bindingArgs: undefined,
      exchangeType: 'topic',
      noAck: true,
    });
    const w = new HeartbeatWatch(source);
    try {
      await source.channel.consume(
        source.queue,
        (msg) => {
          if (msg === null || msg.fields.routingKey !== HEARTBEAT_RKEY) return;
          const h = parseHeartbeat(msg.content);
          if (h === null) w.invalid++;
          else if (h.state === 'stopped') w.seen.delete(h.id);
          else {
            // Kept in the order last heard: the first entry is the one heard longest ago.
            w.seen.delete(h.id);
            w.seen.set(h.id, { h, at: Date.now() });
            if (w.seen.size > MAX_HANDLERS) w.seen.delete(w.seen.keys().next().value as string);
          }
        },
        { noAck: true },
      );
    } catch (err) {
      await source.close();
      throw err;
    }
    return w;
  }

  /** The live ones, sorted by kind, name and id. */
  list(now: number = Date.now()): HeardHandler[] {
    const out: HeardHandler[] = [];
    for (const [id, s] of this.seen) {
      if (now - s.at > 3 * Math.min(Math.max(s.h.interval, 1000), MAX_INTERVAL)) this.seen.delete(id);
      else out.push({ ...s.h, seen_ago: Math.round(now - s.at) / 1000 });
    }
    return out.sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  close(): Promise<void> {
    return this.source.close();
  }
}
