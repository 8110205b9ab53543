import type { BusMessage, CollatedObject, WireMessage } from '@contexture/context/protocol';

/** A message with what it travelled with: what {@link messages} yields and what `lcmon -v` prints. */
export interface MonitorMessage {
  /** Routing key; null when unknown (a plain body read back from a file). */
  rkey: string | null;
  /** AMQP headers ({} when none). */
  headers: Record<string, unknown>;
  /**
   * The message body: a context's message, or a note without `obj_id` and `obj` (the Python
   * handler's start-up announcement, say; tell them apart with `isNote`).
   */
  object: BusMessage;
}

/** A collated object with its context: what `objects({ verbose: true })` yields and `lcmon -c -v` prints. */
export interface VerboseObject {
  /** The object's fields. */
  object: Record<string, unknown>;
  headers: Record<string, unknown>;
  rkey: string | null;
  /** ISO time of `born` (or of the transient message); null when unknown. */
  start: string | null;
  /** ISO time of `finished`; null when it never finished. */
  end: string | null;
  /** Seconds from born to finished; null when unknown. */
  elapsed: number | null;
  /** The context's `obj_id`. */
  id: string;
  /** Present, and false, only on an object given out before all of it arrived. */
  complete?: false;
  /** How many of its messages never arrived, when known and more than 0. */
  missing?: number;
  /** The messages folded into it, with `captureMessages`. */
  messages?: WireMessage[];
}

/** Unix seconds as an ISO 8601 time (UTC, milliseconds); null when absent or out of range. */
export function isoTime(seconds: number | undefined): string | null {
  if (seconds === undefined) return null;
  const ms = seconds * 1000;
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return null;
  return new Date(ms).toISOString();
}

/** The verbose shape of a collated object; `object` replaces its fields (after `-k`/`-t`/`-z`). */
export function verboseObject(o: CollatedObject, object: unknown = o.object): VerboseObject {
  const out: VerboseObject = {
    object: object as Record<string, unknown>,
    headers: o.headers ?? {},
    rkey: o.rkey ?? null,
    start: isoTime(o.start),
    end: isoTime(o.end),
    elapsed: o.elapsed ?? null,
    id: o.id,
  };
  if (!o.complete) {
    out.complete = false;
    if (o.missing > 0) out.missing = o.missing;
  }
  if (o.messages !== undefined) out.messages = o.messages;
  return out;
}

/**
 * What a plain (not verbose) collated object given out before all of it arrived is printed as: its
 * fields stay as they are under `object`, beside the keys of the verbose shape that say so. (Marking
 * the fields themselves would mix a mark into the user's data.)
 */
export interface IncompleteObject {
  /** The object's fields (after `-k`/`-t`/`-z`). */
  object: unknown;
  /** The context's `obj_id`. */
  id: string;
  complete: false;
  /** How many of its messages never arrived, when known and more than 0. */
  missing?: number;
}

/**
 * The bare object's fields; an object given out before all of it arrived is wrapped instead, as
 * `{object, id, complete: false, missing?}` ({@link IncompleteObject}), so that its own fields are
 * never touched.
 */
export function plainObject(o: CollatedObject, object: unknown = o.object): unknown {
  if (o.complete) return object;
  const out: IncompleteObject = { object, id: o.id, complete: false };
  if (o.missing > 0) out.missing = o.missing;
  return out;
}
