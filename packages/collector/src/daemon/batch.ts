import type { ConfirmChannel, ConsumeMessage } from 'amqplib';

/** Deliveries applied together (one store call), then acknowledged together. */
export interface Batch {
  ch: ConfirmChannel;
  /** Deliveries of the project's own traffic (heartbeats): acknowledged in order, not counted as data. */
  reserved: number;
  msgs: ConsumeMessage[];
  /** Deliveries to leave unacknowledged (not dead-lettered), null when none. */
  failed: Set<ConsumeMessage> | null;
  done: boolean;
}

/** Batches applied at once: one being applied while the next gathers deliveries (and one more to hide the round trip). */
export const MAX_BATCHES = 2;
