import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import { setOwn } from '@contexture/context/protocol';
import type { Refusal } from './store-applier.js';

/**
 * Sends a delivery to the dead-letter queue `queue` (persistent, with its headers and properties,
 * and why in `x-contexture-error`, where it was going in `x-contexture-rkey` and
 * `x-contexture-exchange`); resolves once the broker confirmed it. Headers that cannot be sent
 * again as they came (amqplib reads a `!` key of a nested table as its type mark and refuses
 * one it does not know) go as JSON text in `x-contexture-headers` instead: the delivery still
 * reaches the queue, never stays unacknowledged for want of it.
 */
export function deadLetter(ch: ConfirmChannel, queue: string, msg: ConsumeMessage, bad: Refusal[]): Promise<void> {
  const kinds = [...new Set(bad.map((b) => b.kind))].join(', ');
  const ours = (headers: Record<string, unknown>) => {
    headers['x-contexture-error'] = kinds;
    headers['x-contexture-rkey'] = msg.fields.routingKey;
    headers['x-contexture-exchange'] = msg.fields.exchange;
    return headers;
  };
  const p = msg.properties;
  // What the publisher said of the body, kept (not its expiry, nor its user-id, which the broker
  // checks against this connection's user).
  const options = {
    contentType: p.contentType,
    contentEncoding: p.contentEncoding,
    messageId: p.messageId,
    correlationId: p.correlationId,
    type: p.type,
    appId: p.appId,
    timestamp: p.timestamp,
    priority: p.priority,
    persistent: true,
  };
  return new Promise((resolve, reject) => {
    const confirmed = (err: unknown) => {
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve();
    };
    try {
      ch.sendToQueue(queue, msg.content, { ...options, headers: ours(copyHeaders(p.headers) ?? {}) }, confirmed);
    } catch {
      // Encoding failed (nothing was sent): the headers as text.
      const headers = ours({});
      const text = headersText(p.headers);
      if (text !== undefined) headers['x-contexture-headers'] = text;
      ch.sendToQueue(queue, msg.content, { ...options, headers }, confirmed);
    }
  });
}

/** Headers as JSON text (a BigInt as its digits), or undefined when even that fails (nested too deep). */
function headersText(headers: Record<string, unknown> | undefined): string | undefined {
  try {
    return JSON.stringify(headers ?? {}, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  } catch {
    return undefined;
  }
}

/** AMQP headers as a plain object with own keys only (a `__proto__` header stays data). */
export function copyHeaders(headers: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (headers === undefined || headers === null) return undefined;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(headers)) setOwn(out, k, headers[k]);
  return out;
}
