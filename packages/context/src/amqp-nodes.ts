/**
 * The nodes of a RabbitMQ cluster as one `url` option: a URL, a comma-separated list of them or an
 * array. Every (re)connect goes to the next one in turn; what is said of them names `host:port`
 * only, never a password.
 */
import { hostPort, redactUrl, strayAt } from './redact.js';

/** What {@link parseAmqpUrls} makes of a `url` option: the URLs, or why it is refused. */
export type AmqpUrlList = { ok: true; urls: string[] } | { ok: false; why: string };

const AMQP_PROTOCOLS: readonly string[] = ['amqp:', 'amqps:'];

/**
 * Splits a `url` option into URLs and checks each: a string is split on commas (a comma inside a
 * user or password must be written `%2C`), an array is taken entry by entry. A refusal names the
 * entry by its position only: the text of one that does not parse may hold part of a password.
 *
 * @example
 * parseAmqpUrls('amqp://u:p@rabbit1,amqp://u:p@rabbit2'); // { ok: true, urls: [ …two URLs ] }
 */
export function parseAmqpUrls(value: unknown, protocols: readonly string[] = AMQP_PROTOCOLS): AmqpUrlList {
  let entries: unknown[];
  if (typeof value === 'string') entries = value.split(',').map((s) => s.trim());
  else if (Array.isArray(value)) entries = value.map((s) => (typeof s === 'string' ? s.trim() : s));
  else return { ok: false, why: 'must be a URL, a comma-separated list of URLs or an array of them' };
  if (entries.length === 0 || (entries.length === 1 && entries[0] === '')) return { ok: false, why: 'names no URL' };
  const want = protocols.map((p) => `${p}//`).join(' or ');
  const urls: string[] = [];
  for (const [i, entry] of entries.entries()) {
    // A list names the entry (`url entry 2 of 3 is …`); a single URL needs no subject (`url is …`).
    const which = entries.length === 1 ? '' : `entry ${i + 1} of ${entries.length} `;
    if (typeof entry !== 'string' || entry === '') return { ok: false, why: `${which}is empty or not a string` };
    let u: URL;
    try {
      u = new URL(entry);
      // An '@' past the host is a password that was not percent-encoded: it would be taken for a host.
      if (strayAt(entry)) throw new TypeError('an @ after the host');
    } catch {
      return {
        ok: false,
        why: `${which}is not a URL that parses (expected ${want}host:port; characters such as / : @ ? # , in a user or password must be percent-encoded)`,
      };
    }
    // The scheme is not repeated: in `user:secret@host` the URL parser takes `user:` for it.
    if (!protocols.includes(u.protocol)) return { ok: false, why: `${which}is not a URL of ${want}` };
    if (u.hostname === '') return { ok: false, why: `${which}names no host` };
    if (u.port === '0') return { ok: false, why: `${which}names port 0` };
    urls.push(entry);
  }
  return { ok: true, urls };
}

/** `host:port` of an AMQP URL (5671 for amqps, 5672 for amqp by default). */
export function amqpHostPort(url: string): string {
  return hostPort(url, /^amqps:/i.test(url) ? 5671 : 5672);
}

/** The URLs with their passwords masked, comma-joined: what a list is shown as. */
export function redactUrls(urls: readonly string[]): string {
  return urls.map(redactUrl).join(',');
}

/**
 * The round of reconnect attempt number `attempt` (1-based) over `nodes` nodes: what the backoff
 * grows with, once per full round, so that a node lost is followed at once by a try of the next.
 */
export function nodeRound(attempt: number, nodes: number): number {
  return Math.max(1, Math.ceil(attempt / Math.max(1, nodes)));
}

/**
 * The nodes a client connects to, in turn: {@link AmqpNodes.current} is where the next connect
 * goes, {@link AmqpNodes.advance} moves on after a failed connect or a lost connection. Keeps the
 * URLs in a private field: printing it (util.inspect, JSON.stringify) shows `host:port` only.
 */
export class AmqpNodes {
  readonly #urls: readonly string[];
  #index = 0;

  constructor(urls: readonly string[]) {
    if (urls.length === 0) throw new RangeError('AmqpNodes: no URL');
    this.#urls = Object.freeze([...urls]);
  }

  /** How many nodes there are. */
  get size(): number {
    return this.#urls.length;
  }

  /** The URL (with its password) of the node the next connect goes to. */
  get current(): string {
    return this.#urls[this.#index]!;
  }

  /** `host:port` of {@link current}. */
  get where(): string {
    return amqpHostPort(this.current);
  }

  /** Every node as `host:port`, comma-separated. */
  get all(): string {
    return this.#urls.map(amqpHostPort).join(', ');
  }

  /** Moves on to the next node (the first after the last). */
  advance(): void {
    this.#index = (this.#index + 1) % this.#urls.length;
  }

  /**
   * The round of attempt number `attempt` (1-based): the backoff grows once per full round of the
   * nodes, so a node lost is followed at once by a try of the next one.
   */
  round(attempt: number): number {
    return nodeRound(attempt, this.#urls.length);
  }

  toJSON(): { nodes: string } {
    return { nodes: this.all };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `AmqpNodes(${this.all})`;
  }
}
