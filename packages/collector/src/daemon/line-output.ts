/**
 * JSON lines on stdout for the `contexture-store` program: one write per document, waiting for
 * `drain` when the pipe is backed up; a closed pipe (`contexture-store list | head -1`) is not an
 * error: `broken` turns true and the rest is dropped.
 */
import { once } from 'node:events';
import { stringifyJson } from '@contexture/context/protocol';

export class LineOutput {
  /** True once stdout cannot be written (EPIPE and the like). */
  broken = false;

  constructor(private readonly out: NodeJS.WritableStream) {
    // The listener stays: a late EPIPE must not become an uncaught exception.
    out.on('error', () => {
      this.broken = true;
    });
  }

  /**
   * Writes one document as a line: JSON as the store keeps it (NaN, Infinity and integers past
   * 2^53 as the Python contexture writes them, see stringifyJson()).
   */
  async write(doc: unknown): Promise<void> {
    if (this.broken) return;
    // once() rejects on 'error': the pipe broke while backed up.
    if (!this.out.write(`${stringifyJson(doc)}\n`)) await once(this.out, 'drain').catch(() => {});
  }

  /** Resolves once what was written is handed to the OS (or stdout broke). */
  async end(): Promise<void> {
    if (this.broken) return;
    await new Promise<void>((resolve) => {
      try {
        this.out.write('', () => resolve());
      } catch {
        resolve();
      }
    });
  }
}
