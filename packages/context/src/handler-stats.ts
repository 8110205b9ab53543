/** The lifecycle and the counters of a Handler (handler.ts), as `status` and `stats()` give them. */

/** Lifecycle of a Handler. */
export type HandlerStatus = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'closing' | 'closed';

/** Counters of a Handler; `enqueued = published + dropped + queued + inFlight` at every moment. */
export interface HandlerStats {
  status: HandlerStatus;
  /** Messages accepted from contexts. */
  enqueued: number;
  /** Messages the broker (or the file) confirmed. */
  published: number;
  /** Messages dropped: buffer overflow, refused by the broker three times, or left at close. */
  dropped: number;
  /**
   * The part of `dropped` that had been sent and never confirmed (a connection lost before the
   * broker's confirm, or still in flight at close): these may have been delivered all the same.
   * `dropped - droppedUnconfirmed` were certainly not.
   */
  droppedUnconfirmed: number;
  /** Messages waiting in the buffer. */
  queued: number;
  /** Messages sent and not yet confirmed. */
  inFlight: number;
  /** Successful connections after the first. */
  reconnects: number;
  /** The last connection or publish error (passwords masked), or null. */
  lastError: string | null;
  /** True while the broker asks publishers to stop (resource alarm). */
  blocked: boolean;
  /** Heartbeats published (see `heartbeatInterval`). */
  heartbeats: number;
}
