/**
 * The acknowledgements of deliveries let go of one by one (see `AmqpSource.holdDeliveries`), in
 * whatever order their holders release them: each batch is acknowledged with one `multiple` ack
 * for the run of delivery tags that follows the last tag acknowledged so, and one ack each for
 * those beyond a delivery still held. A reader that takes every delivery in turn (`messages()`)
 * sends one ack per batch, as a reader that does not hold them; one that holds some (`objects()`,
 * open objects) sends one per delivery only for those released past a held one.
 */
import type * as amqp from 'amqplib';

/**
 * How many tags acknowledged one by one beyond a held delivery are followed at most: past it (a
 * delivery held for a very long time), every ack is sent on its own from then on, the same as
 * before the run could be followed, and no more memory is taken.
 */
const MOST_FOLLOWED = 10_000;

export class ReleasedAcks {
  /** Every delivery up to this tag is acknowledged. */
  private through = 0;
  /** Tags above `through` acknowledged on their own; null once more than MOST_FOLLOWED were. */
  private above: Set<number> | null = new Set();

  /** Acknowledges the deliveries of `released` (each released once, none acknowledged yet) on `channel`. */
  ack(channel: amqp.Channel, released: amqp.ConsumeMessage[]): void {
    const above = this.above;
    if (above === null) {
      for (const msg of released) channel.ack(msg);
      return;
    }
    released.sort((a, b) => a.fields.deliveryTag - b.fields.deliveryTag);
    // The run right after `through`: released now, or acknowledged on its own before.
    let i = 0;
    let last: amqp.ConsumeMessage | undefined;
    let through = this.through;
    for (;;) {
      const next = through + 1;
      if (i < released.length && released[i]!.fields.deliveryTag === next) last = released[i++];
      else if (!above.delete(next)) break;
      through = next;
    }
    // Every tag of the run at or below `last` that was not acknowledged before is one of `released`.
    if (last !== undefined) channel.ack(last, true);
    this.through = through;
    for (; i < released.length; i++) {
      const msg = released[i]!;
      channel.ack(msg);
      above.add(msg.fields.deliveryTag);
    }
    if (above.size > MOST_FOLLOWED) this.above = null;
  }
}
