/**
 * Bytes that are not UTF-8. A wire body and a saved line are JSON text, which is UTF-8; decoding
 * other bytes as U+FFFD would change the values silently and make ids that differ (`a\xff`,
 * `a\xfe`) one context. Readers report such a body or line as malformed (`not UTF-8`) instead.
 */
import { isUtf8 } from 'node:buffer';

/**
 * The most bytes of a line that spans chunks {@link Utf8Lines} keeps to check it whole: readers
 * refuse longer lines as too large.
 */
const MAX_HELD = 16 * 1024 * 1024;

/**
 * The lines of `bytes` (split at each LF, numbered from 0) that are not UTF-8, or null when every
 * one is (the usual case, checked in one pass over the whole).
 */
export function invalidUtf8Lines(bytes: Uint8Array): Set<number> | null {
  if (isUtf8(bytes)) return null;
  const bad = new Set<number>();
  let start = 0;
  for (let line = 0; start <= bytes.length; line++) {
    let nl = bytes.indexOf(10, start);
    if (nl === -1) nl = bytes.length;
    if (!isUtf8(bytes.subarray(start, nl))) bad.add(line);
    start = nl + 1;
  }
  return bad;
}

/**
 * Follows a stream of bytes read in chunks and tells which of its lines (numbered from 1, split
 * at each LF, as a reader that splits the decoded text counts them) are not UTF-8. A chunk may end
 * inside a character: the bytes of the line in progress are checked once the line is whole.
 */
export class Utf8Lines {
  /** The number of the line the next byte belongs to. */
  private line = 1;
  /** The bytes of that line read so far (references to the chunks, not copies). */
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  /** The line in progress passed {@link MAX_HELD}: not checked (a reader reports it too large). */
  private overlong = false;
  private readonly bad = new Set<number>();

  /** Takes the next chunk of the stream. */
  push(chunk: Uint8Array): void {
    const first = chunk.indexOf(10);
    if (first === -1) {
      this.hold(chunk);
      return;
    }
    this.hold(chunk.subarray(0, first));
    this.endLine();
    const last = chunk.lastIndexOf(10);
    if (last > first) {
      // Whole lines, between the first LF and the last.
      const whole = invalidUtf8Lines(chunk.subarray(first + 1, last));
      if (whole !== null) for (const k of whole) this.bad.add(this.line + k);
      this.line += countLf(chunk, first + 1, last) + 1;
    }
    this.hold(chunk.subarray(last + 1));
  }

  /** The stream ended: its last line, if it has no LF, is checked. */
  end(): void {
    if (this.heldBytes > 0 || this.overlong) this.endLine();
  }

  /**
   * True when line `n` (numbered from 1) was not UTF-8; asked in increasing order, after the chunk
   * that ended the line was pushed.
   */
  invalid(n: number): boolean {
    if (this.bad.size === 0) return false;
    // In increasing order: the lines before `n` were skipped by the reader (too large).
    for (const k of this.bad) {
      if (k > n) break;
      this.bad.delete(k);
      if (k === n) return true;
    }
    return false;
  }

  private hold(bytes: Uint8Array): void {
    if (bytes.length === 0 || this.overlong) return;
    if (this.heldBytes + bytes.length > MAX_HELD) {
      this.overlong = true;
      this.held = [];
      this.heldBytes = 0;
      return;
    }
    this.held.push(bytes);
    this.heldBytes += bytes.length;
  }

  private endLine(): void {
    if (!this.overlong && this.heldBytes > 0) {
      const bytes = this.held.length === 1 ? this.held[0]! : Buffer.concat(this.held);
      if (!isUtf8(bytes)) this.bad.add(this.line);
    }
    this.held = [];
    this.heldBytes = 0;
    this.overlong = false;
    this.line++;
  }
}

function countLf(bytes: Uint8Array, from: number, to: number): number {
  let n = 0;
  for (let i = bytes.indexOf(10, from); i !== -1 && i < to; i = bytes.indexOf(10, i + 1)) n++;
  return n;
}
