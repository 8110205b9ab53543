/**
 * Notices a broker that went silent in twice the AMQP heartbeat. amqplib checks what it received
 * once per heartbeat interval and gives up after two empty checks in a row, so a connection that
 * stalls just after a check is only declared dead after two to three intervals (20 to 30 s at a
 * 10 s heartbeat). The broker sends a heartbeat every half interval when it has nothing else to
 * send, so a healthy connection is never silent for more than about one interval: silence for two
 * is a dead peer, found here within a quarter of a second of it.
 */
import type { ChannelModel } from 'amqplib';

/** A socket as amqplib holds it: what the watchdog reads and cuts. */
interface Watched {
  readonly bytesRead: number;
  destroy(err?: Error): void;
  once(event: 'close', listener: () => void): unknown;
}

/**
 * Cuts the connection of `model` (with an error saying why, which amqplib reports as the
 * connection's error and close) once nothing has come from the broker for twice the negotiated
 * heartbeat. Does nothing when no heartbeat was negotiated. The timer is unref'ed and stops with
 * the socket.
 */
export function watchSilence(model: ChannelModel): void {
  const conn = (model as unknown as { connection?: { heartbeat?: number; stream?: Watched } }).connection;
  const seconds = conn?.heartbeat ?? 0;
  const stream = conn?.stream;
  if (!(seconds > 0) || stream === undefined || typeof stream.bytesRead !== 'number') return;
  const limit = seconds * 2000;
  const tick = Math.min(250, limit / 8);
  let seen = stream.bytesRead;
  let since = performance.now();
  let last = since;
  const timer = setInterval(() => {
    const now = performance.now();
    const late = now - last > tick * 4;
    last = now;
    if (stream.bytesRead !== seen || late) {
      // A tick this late means the program held the event loop: what the broker sent meanwhile
      // waits, unread, behind the timers. It is not the broker's silence; look again from now.
      seen = stream.bytesRead;
      since = now;
    } else if (now - since >= limit) {
      clearInterval(timer);
      stream.destroy(new Error(`Heartbeat timeout: nothing from the broker for ${seconds * 2} s`));
    }
  }, tick);
  timer.unref();
  stream.once('close', () => clearInterval(timer));
}
