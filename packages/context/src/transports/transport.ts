/**
 * Step 4 of a message's way out: Context → BoundedBuffer → Publisher → **Transport** → broker.
 * The interface the publisher sends through; `amqp-transport.ts` (RabbitMQ) and
 * `jsonl-transport.ts` (JSON lines to a file or standard output) implement it.
 */
import type { EventEmitter } from 'node:events';
import type { Entry } from '../entry.js';

/** How a transport wants entries grouped into one send. */
export type Grouping = 'single' | 'route' | 'any';

/**
 * A connection to somewhere messages go. Emits `close` (with the error, if any) when the
 * connection is lost, `blocked` / `unblocked` when the peer asks to stop for a while, and `drain`
 * after `send` returned false.
 */
export interface Transport extends EventEmitter {
  readonly grouping: Grouping;
  /** Opens the connection (and declares what must exist). Rejects when it cannot. */
  connect(): Promise<void>;
  /**
   * Sends entries as one unit. `done` is called once: without an error when the peer has them,
   * with one when it refused them or the connection failed first. Returns false when the caller
   * should wait for `drain` before sending more.
   */
  send(entries: readonly Entry[], handlerIdJson: string, qlen: number, done: (err?: Error) => void): boolean;
  /**
   * Publishes one message of the project's own (a heartbeat) outside the buffer, without a
   * confirm; false when it could not be sent now. Transports that carry no such messages lack it.
   */
  sendControl?(rkey: string, body: string, type: string, expiration: number): boolean;
  /** `host:port` of the peer (the node connected to, or the next tried), for messages; absent for files. */
  readonly where?: string;
  /** How many peers a transport takes turns at (the nodes of a cluster); absent means one. */
  readonly nodes?: number;
  /**
   * The largest message body (bytes) the peer takes, once it said so (RabbitMQ's
   * `max_message_size`, learned from the reason it closed a channel for); null or absent while
   * unknown. `send` throws an error with `tooLarge: true` for a unit whose body is larger.
   */
  readonly maxMessageSize?: number | null;
  /** True while connected and able to send. */
  readonly open: boolean;
  /** Closes gracefully (what was sent is flushed). */
  close(): Promise<void>;
  /** Drops the connection at once. */
  destroy(): void;
}
