import type { Collator } from '@contexture/context/protocol';
import type { AmqpSource, HeldDelivery } from './amqp-source.js';

/**
 * Objects collated from a named queue (`lcmon -q NAME -c`, `objects({ queue })`): a delivery is
 * acknowledged only once every object it carried a message of is out (printed or taken by the
 * reader, or dropped to keep consuming), so that `-n`, a broken pipe, a reader that stops or a
 * crash leaves the messages of objects not given out in the queue for the next run.
 *
 * Held deliveries count against the prefetch: once they fill it the broker sends no more, and
 * objects that never finish would stop consumption for good (and come back every run). So when
 * they reach it, the oldest open objects are forced out (given out as incomplete with
 * `flushIncomplete`, else dropped and counted) until a delivery is free again, unless `mayForce`
 * says to wait (a reader that has objects still to take frees deliveries by taking them).
 */
export class HeldObjects {
  private readonly byId = new Map<string, HeldDelivery[]>();
  /** Open objects forced out to keep consuming. */
  forced = 0;
  /** Of those, the ones dropped unprinted. */
  dropped = 0;

  constructor(
    private readonly source: AmqpSource,
    private readonly collator: Collator,
    /** Called once, the first time objects are forced out. */
    private readonly onFirstForced: () => void,
    /** False while forcing objects out would not free deliveries (see the class). */
    private readonly mayForce: () => boolean = () => true,
  ) {
    source.holdDeliveries(() => this.relieve());
  }

  /**
   * After the collator folded a message of the delivery being handed on: held while its object is
   * open, or (`waiting`) given out by the collator and not yet out of the caller's hands.
   */
  added(id: string, waiting = false): void {
    const d = this.source.current;
    if (d === undefined || !(waiting || this.collator.isOpen(id))) return;
    let list = this.byId.get(id);
    if (list === undefined) this.byId.set(id, (list = []));
    else if (list[list.length - 1] === d) return;
    list.push(d);
    this.source.hold(d);
  }

  /**
   * The object `id` is out: given out by the collator, or (`dropped`) dropped unprinted by it. Its
   * deliveries are free.
   */
  out(id: string, dropped = false): void {
    if (dropped) this.dropped++;
    const list = this.byId.get(id);
    if (list === undefined) return;
    this.byId.delete(id);
    for (const d of list) this.source.release(d);
  }

  /** Held deliveries reached the prefetch: forces out the oldest open objects until one is free. */
  private relieve(): void {
    while (this.source.held >= this.source.prefetch && this.mayForce()) {
      if (!this.collator.evictOldest()) return;
      if (this.forced++ === 0) this.onFirstForced();
    }
  }
}
