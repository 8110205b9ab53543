import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import { setOwn } from '@contexture/context/protocol';
import type { Refusal } from './store-applier.js';

/**
 * Sends a delivery to the dead-letter queue `queue` (persistent, with its headers, and why in
 * `x-contexture-error`, where it was going in `x-contexture-rkey` and `x-contexture-exchange`);
 * resolves once the broker confirmed it.
 */
export function deadLetter(ch: ConfirmChannel, queue: string, msg: ConsumeMessage, bad: Refusal[]): Promise<void> {
  const kinds = [...new Set(bad.map((b) => b.kind))].join(', ');
  const headers: Record<string, unknown> = copyHeaders(msg.properties.headers) ?? {};
  headers['x-contexture-error'] = kinds;
  headers['x-contexture-rkey'] = msg.fields.routingKey;
  headers['x-contexture-exchange'] = msg.fields.exchange;
  return new Promise((resolve, reject) => {
    ch.sendToQueue(
      queue,
      msg.content,
      { headers, contentType: msg.properties.contentType, messageId: msg.properties.messageId, persistent: true },
      (err: unknown) => {
        if (err) reject(err instanceof Error ? err : new Error(String(err)));
        else resolve();
      },
    );
  });
}

/** AMQP headers as a plain object with own keys only (a `__proto__` header stays data). */
export function copyHeaders(headers: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (headers === undefined || headers === null) return undefined;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(headers)) setOwn(out, k, headers[k]);
  return out;
}
