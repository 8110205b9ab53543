/**
 * Heartbeats: what handlers and collectors say of themselves every few seconds, on a routing key
 * reserved for the project's own traffic. Readers of context messages skip every reserved key; the
 * collector keeps its registry from heartbeats, and `lcmon --handlers` lists them.
 */
import { RESERVED_RKEY_PREFIX } from './message.js';
import { isPlainObject, setOwn } from './own.js';

/** The routing key of heartbeats. */
export const HEARTBEAT_RKEY = `${RESERVED_RKEY_PREFIX}heartbeat`;
/** The AMQP `type` property of a heartbeat message. */
export const HEARTBEAT_TYPE = 'heartbeat';

/** One heartbeat. Times are unix seconds. */
export interface Heartbeat {
  type: 'heartbeat';
  /** The handler's uuid (its messages' `handler_id`), or the collector's id. */
  id: string;
  /** `handler` or `collector` (others may come). */
  kind: string;
  /** The program (its main module's file name) or the collector's queue. */
  name: string;
  host: string;
  pid: number;
  /** `running`, or `stopped` for the last heartbeat of a closing publisher. */
  state: 'running' | 'stopped';
  /** ms until the next heartbeat. */
  interval: number;
  started_at: number;
  time: number;
  /** Counters and rates (all numbers): queued, dropped, published, published_per_s, reconnects, … */
  stats: Record<string, number>;
}

/** True when a routing key is the project's own traffic (not a context's messages). */
export function isReservedRkey(rkey: string | undefined): boolean {
  return rkey?.startsWith(RESERVED_RKEY_PREFIX) === true;
}

/** The JSON body of a heartbeat. */
export function encodeHeartbeat(h: Heartbeat): string {
  return JSON.stringify(h);
}

const MAX_TEXT = 1024;

/**
 * Reads a heartbeat body (untrusted); null when it is not one. Unknown fields are dropped, stats
 * keep their finite numbers only, and no key can reach a prototype.
 */
export function parseHeartbeat(body: string | Uint8Array): Heartbeat | null {
  if (body.length > 65_536) return null;
  let v: unknown;
  try {
    v = JSON.parse(typeof body === 'string' ? body : Buffer.from(body).toString('utf8'));
  } catch {
    return null;
  }
  if (!isPlainObject(v) || v.type !== HEARTBEAT_TYPE) return null;
  const text = (x: unknown): x is string => typeof x === 'string' && x.length > 0 && x.length <= MAX_TEXT;
  const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
  if (!text(v.id) || !text(v.kind) || !num(v.time)) return null;
  const stats: Record<string, number> = {};
  if (isPlainObject(v.stats)) {
    for (const k of Object.keys(v.stats)) {
      const n = v.stats[k];
      if (num(n) && k.length <= 128) setOwn(stats, k, n);
    }
  }
  return {
    type: 'heartbeat',
    id: v.id,
    kind: v.kind,
    name: text(v.name) ? v.name : '',
    host: text(v.host) ? v.host : '',
    pid: Number.isSafeInteger(v.pid) && (v.pid as number) >= 0 ? (v.pid as number) : 0,
    state: v.state === 'stopped' ? 'stopped' : 'running',
    interval: num(v.interval) && v.interval > 0 ? v.interval : 0,
    started_at: num(v.started_at) ? v.started_at : v.time,
    time: v.time,
    stats,
  };
}
