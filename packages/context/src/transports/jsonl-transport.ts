/**
 * Step 4 of a message's way out: Context → BoundedBuffer → Publisher → **Transport** → broker.
 * The JSON-lines transport: no broker, one line per message to a file or standard output.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { encodeEntry, publishTime, type Entry } from '../entry.js';
import { envelopeLine } from '../protocol/envelope.js';
import type { Grouping, Transport } from './transport.js';

/**
 * Writes each message as one JSON line in the `lcmon -v` form (`{"rkey","headers","object"}`) to
 * standard output (`jsonl:-`) or appends it to a file (`jsonl:/path`). No broker needed: this is
 * the embedded default, and `lcmon -sc` reads it back.
 */
export class JsonlTransport extends EventEmitter implements Transport {
  readonly grouping: Grouping = 'any';
  private stream: Writable | null = null;
  private readonly target: string;

  constructor(url: string) {
    super();
    this.target = jsonlTarget(url);
  }

  get open(): boolean {
    return this.stream !== null;
  }

  async connect(): Promise<void> {
    if (this.target === '-') {
      if (this.gone) throw Object.assign(new Error('standard output closed'), { permanent: true });
      this.attach(process.stdout, false);
      return;
    }
    const stream = fs.createWriteStream(this.target, { flags: 'a' });
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', reject);
    });
    this.attach(stream, true);
  }

  private attach(stream: Writable, owned: boolean): void {
    const onError = (err: NodeJS.ErrnoException) => {
      if (this.stream !== stream) return;
      this.stream = null;
      stream.off('error', onError);
      stream.off('drain', onDrain);
      // Errors that come after are the same failure: keep them from becoming uncaught.
      stream.on('error', () => {});
      if (owned) stream.destroy();
      // A reader that went away (EPIPE on a pipe) does not come back: say so, so the handler stops.
      if (!owned && (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED')) {
        this.gone = true;
        this.emit('close', Object.assign(new Error(`standard output closed (${err.code})`), { permanent: true }));
        return;
      }
      this.emit('close', err);
    };
    const onDrain = () => this.emit('drain');
    stream.on('error', onError);
    stream.on('drain', onDrain);
    this.owned = owned;
    this.stream = stream;
  }

  private gone = false;
  private owned = false;

  send(entries: readonly Entry[], handlerIdJson: string, qlen: number, done: (err?: Error) => void): boolean {
    const stream = this.stream;
    if (stream === null) {
      done(new Error('not open'));
      return false;
    }
    const now = publishTime();
    let text = '';
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      text += `${envelopeLine(e.route.rkey, e.route.headersJson, encodeEntry(e, handlerIdJson, now, qlen))}\n`;
    }
    // A write after the one that failed fails as the stream was destroyed: it is the first
    // failure (ENOSPC, EIO, …) that says why.
    return stream.write(text, (err) => done(err ? (stream.errored ?? err) : undefined));
  }

  async close(): Promise<void> {
    const stream = this.stream;
    this.stream = null;
    if (stream === null || !this.owned) return;
    await new Promise<void>((resolve) => stream.end(() => resolve()));
  }

  destroy(): void {
    const stream = this.stream;
    this.stream = null;
    if (stream !== null && this.owned) stream.destroy();
  }
}

/** The path of a `jsonl:` URL: `-` for standard output. */
export function jsonlTarget(url: string): string {
  const rest = url.slice('jsonl:'.length);
  if (rest === '-' || rest === '' || rest === '//-') return '-';
  if (rest.startsWith('//')) return decodeURIComponent(rest.slice(2));
  return rest;
}
