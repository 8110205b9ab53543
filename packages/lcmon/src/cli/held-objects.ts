import type { Collator } from '@contexture/context/protocol';
import type { AmqpSource, HeldDelivery } from '../amqp-source.js';

/**
 * `lcmon -q NAME -c`: a delivery is acknowledged only once every object it carried a message of
 * is out (printed, or dropped to keep consuming), so that `-n`, a broken pipe or a stop without
 * `--flush-incomplete` leaves the messages of unprinted objects in the queue for the next run.
 *
 * Held deliveries count against the prefetch: once they fill it the broker sends no more, and
 * objects that never finish would stop consumption for good (and come back every run). So when
 * they reach it, the oldest open objects are forced out (printed as incomplete with
 * `--flush-incomplete`, else dropped and counted) until a delivery is free again.
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
  ) {
    source.holdDeliveries(() => this.relieve());
  }

  /** After the collator folded a message of the delivery being handed on. */
  added(id: string): void {
    const d = this.source.current;
    if (d === undefined || !this.collator.isOpen(id)) return;
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
    while (this.source.held >= this.source.prefetch) {
      if (!this.collator.evictOldest()) return;
      if (this.forced++ === 0) this.onFirstForced();
    }
  }
}
