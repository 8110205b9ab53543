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
  /** The context's id (`obj_id`); the AMQP `message_id` is `<obj_id>:<seq>` ({@link messageIdOf}). */
  readonly id: string;
  /** Times the broker refused it (nack). */
  attempts: number;
  /**
   * Sent on a connection that was lost before the broker confirmed it: it may have been delivered,
   * so dropping it later is counted apart (`droppedUnconfirmed`).
   */
  unconfirmed?: boolean;
}

/** The AMQP `message_id` of an entry: `<obj_id>:<seq>`, made when it is sent. */
export function messageIdOf(e: Entry): string {
  return `${e.id}:${e.seq}`;
}

/** How many of `entries` may have been delivered (sent, never confirmed). */
export function countUnconfirmed(entries: Iterable<Entry>): number {
  let n = 0;
  for (const e of entries) if (e.unconfirmed === true) n++;
  return n;
}

/** When a unit of messages goes out: `time_out`, taken once for all of them ({@link publishTime}). */
export interface PublishTime {
  /** Unix time in whole microseconds. */
  readonly micros: number;
  /** The same as JSON seconds. */
  readonly json: string;
}

/** Now, as the `time_out` of the messages sent together now. */
export function publishTime(): PublishTime {
  const micros = Math.round(unixNow() * 1e6);
  return { micros, json: microsJson(micros) };
}

/** Serialises an entry into the wire body, adding the publish-time fields. */
export function encodeEntry(e: Entry, handlerIdJson: string, out: PublishTime, qlen: number): string {
  let s = `{"obj_id":${e.idJson},"obj":${e.objJson}`;
  if (e.status !== undefined) s += `,"status":"${e.status}"`;
  if (e.action !== undefined) s += ',"action":"delete"';
  if (e.messageJson !== undefined) s += `,"message":${e.messageJson},"level":"${e.level}"`;
  if (e.elapsed !== undefined)
    s += `,"elapsed":${e.elapsed >= 0 ? microsJson(Math.round(e.elapsed * 1e6)) : e.elapsed}`;
  const timeIn = Math.round(e.timeIn * 1e6);
  return (
    s +
    ',"seq":' +
    e.seq +
    ',"handler_id":' +
    handlerIdJson +
    ',"time_in":' +
    microsJson(timeIn) +
    ',"time_out":' +
    out.json +
    ',"qtime":' +
    microsJson(Math.max(0, out.micros - timeIn)) +
    ',"qlen":' +
    qlen +
    '}'
  );
}

let lastSecond = -1;
let lastSecondJson = '';

/**
 * `micros` (a whole, non-negative number of microseconds) as JSON seconds: `1796543210.000125`.
 * Made of two integers rather than by the engine's shortest float form, which costs a publisher
 * more than the rest of a message's encoding; the whole seconds of a Unix time change once a
 * second, so their digits are kept.
 */
export function microsJson(micros: number): string {
  const seconds = Math.floor(micros / 1e6);
  const fraction = micros - seconds * 1e6;
  let head: string;
  if (seconds < 1e9) head = `${seconds}`;
  else if (seconds === lastSecond) head = lastSecondJson;
  else {
    head = `${seconds}`;
    lastSecond = seconds;
    lastSecondJson = head;
  }
  if (fraction === 0) return head;
  // 1e6 + fraction has seven digits: the last six are the fraction with its leading zeros.
  return `${head}.${`${1e6 + fraction}`.slice(1)}`;
}

const timeOrigin = performance.timeOrigin / 1000;

/** Unix seconds with sub-millisecond resolution. */
export function unixNow(): number {
  return timeOrigin + performance.now() / 1000;
}
