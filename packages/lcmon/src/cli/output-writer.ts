import type { Writable } from 'node:stream';

/**
 * Batches output lines and writes them to stdout once per turn of the event loop, in one
 * `write()`; reports `ready = false` while stdout is backed up, so the source stops reading (and
 * acknowledging) until it drains. A closed pipe (`lcmon | head -1`) is not an error: `broken`
 * turns true, output is dropped, and `onBroken` tells the program to stop.
 */
export class OutputWriter {
  private parts: Array<string | Uint8Array> = [];
  private hasBytes = false;
  private scheduled = false;
  private blocked = false;
  private waiters: Array<() => void> = [];
  /** True once stdout cannot be written (EPIPE and the like). */
  broken = false;

  constructor(
    private readonly out: Writable,
    private readonly onBroken: (err: Error) => void,
    /** Called before each write (to clear a status line drawn on the same terminal). */
    private readonly beforeWrite?: () => void,
  ) {
    out.on('error', this.onError);
  }

  /** Queues one output document (without its newline). */
  line(text: string): void {
    this.parts.push(`${text}\n`);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Queues text made of whole output lines (each ending in a newline). */
  text(chunk: string): void {
    this.parts.push(chunk);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Queues bytes made of whole output lines (UTF-8, each ending in a newline); they must not change after. */
  bytes(chunk: Uint8Array): void {
    this.parts.push(chunk);
    this.hasBytes = true;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Writes what is queued now. */
  readonly flush = (): void => {
    this.scheduled = false;
    if (this.parts.length === 0) return;
    const parts = this.parts;
    const hasBytes = this.hasBytes;
    this.parts = [];
    this.hasBytes = false;
    if (this.broken) return;
    this.beforeWrite?.();
    try {
      let ok: boolean;
      if (parts.length === 1) {
        ok = this.out.write(parts[0]!);
      } else if (!hasBytes) {
        ok = this.out.write(parts.join(''));
      } else {
        // Strings and bytes: one write of bytes, joined once.
        ok = this.out.write(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))));
      }
      if (!ok && !this.blocked) {
        this.blocked = true;
        this.out.once('drain', this.onDrain);
      }
    } catch (err) {
      this.onError(err as Error);
    }
  };

  /** False while stdout is backed up or broken. */
  get ready(): boolean {
    return !this.blocked;
  }

  /** Resolves once stdout has drained (or broke). */
  whenReady(): Promise<void> {
    if (!this.blocked) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Flushes and resolves once everything queued has been handed to the OS (or stdout broke). */
  async end(): Promise<void> {
    this.flush();
    if (this.broken || this.out.destroyed) return;
    await new Promise<void>((resolve) => {
      try {
        this.out.write('', () => resolve());
      } catch {
        resolve();
      }
    });
  }

  /** Stops listening to stdout. */
  detach(): void {
    this.out.off('drain', this.onDrain);
    // The error listener stays: a late EPIPE must not become an uncaught exception.
  }

  private readonly onDrain = (): void => {
    this.blocked = false;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  };

  private readonly onError = (err: Error): void => {
    if (this.broken) return;
    this.broken = true;
    this.parts = [];
    this.onDrain();
    this.onBroken(err);
  };
}
