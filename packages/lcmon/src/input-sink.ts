import type { BusMessage, Malformed, MessageMeta } from '@contexture/context/protocol';
import type { InputPlace } from './options.js';

/**
 * Where a source (the broker, or a stream of lines) hands its input, synchronously and message by
 * message; the source asks `ready` between batches and waits on `whenReady()` while it is false.
 */
export interface InputSink {
  /**
   * A valid message: a context's, or a note without `obj_id` and `obj` (the Python handler's
   * announcement, say), which is printed but has nothing to collate. `text` is its exact JSON text,
   * on one line, when the source has it (a plain JSON body); undefined when only the parsed value is
   * known.
   */
  message(message: BusMessage, meta: MessageMeta, text: string | undefined): void;
  /** A line or body that is not a valid message. */
  malformed(problem: Malformed, place: InputPlace): void;
  /** False while the consumer cannot take more (output backed up). */
  readonly ready: boolean;
  /** Resolves once `ready` is true again (or the sink stopped). */
  whenReady(): Promise<void>;
  /** True once the consumer has had enough: the source stops and leaves the rest unread or unacknowledged. */
  readonly stopped: boolean;
}
