/**
 * A queued context message: everything but the publish-time fields, with the `obj` part already
 * serialised at the moment of the change (so later mutation of the object changes nothing queued).
 */
import type { Route } from './route.js';

export interface Entry {
  readonly route: Route;
  readonly idJson: string;
  readonly seq: number;
  readonly objJson: string;
  readonly status: 'born' | 'transient' | 'finished' | undefined;
  readonly action: 'delete' | undefined;
  readonly messageJson: string | undefined;
  readonly level: string | undefined;
  readonly elapsed: number | undefined;
  /** Unix seconds. */
  readonly timeIn: number;
  /** The AMQP `message_id`, `<obj_id>:<seq>`. */
  readonly messageId: string;
  /** Times the broker refused it (nack). */
  attempts: number;
  /**
   * Sent on a connection that was lost before the broker confirmed it: it may have been delivered,
   * so dropping it later is counted apart (`droppedUnconfirmed`).
   */
  unconfirmed?: boolean;
}

/** How many of `entries` may have been delivered (sent, never confirmed). */
export function countUnconfirmed(entries: Iterable<Entry>): number {
  let n = 0;
  for (const e of entries) if (e.unconfirmed === true) n++;
  return n;
}

/** Serialises an entry into the wire body, adding the publish-time fields. */
export function encodeEntry(e: Entry, handlerIdJson: string, timeOut: number, qlen: number): string {
  let s = `{"obj_id":${e.idJson},"obj":${e.objJson}`;
  if (e.status !== undefined) s += `,"status":"${e.status}"`;
  if (e.action !== undefined) s += ',"action":"delete"';
  if (e.messageJson !== undefined) s += `,"message":${e.messageJson},"level":"${e.level}"`;
  if (e.elapsed !== undefined) s += `,"elapsed":${e.elapsed}`;
  return (
    s +
    ',"seq":' +
    e.seq +
    ',"handler_id":' +
    handlerIdJson +
    ',"time_in":' +
    e.timeIn +
    ',"time_out":' +
    timeOut +
    ',"qtime":' +
    Math.max(0, timeOut - e.timeIn) +
    ',"qlen":' +
    qlen +
    '}'
  );
}

const timeOrigin = performance.timeOrigin / 1000;

/** Unix seconds with sub-millisecond resolution. */
export function unixNow(): number {
  return timeOrigin + performance.now() / 1000;
}
