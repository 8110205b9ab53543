import type { Writable } from 'node:stream';
import type { ChalkInstance } from 'chalk';
import { escapeJson } from '../safe-json.js';

/**
 * Everything lcmon says on stderr: one line per note, warning or error, all starting with
 * `lcmon: `, and (with `--stats` on a terminal) a status line redrawn in place, which is cleared
 * before any other line is written. What a line quotes of a message (a status, a routing key) is
 * escaped as stdout escapes it: DEL, the C1 controls and the bidirectional marks become `\uXXXX`.
 */
export class Diagnostics {
  private statusShown = false;

  constructor(
    private readonly err: Writable & { isTTY?: boolean },
    private readonly c: ChalkInstance,
  ) {}

  /** True when stderr is a terminal (where a status line can be redrawn). */
  get tty(): boolean {
    return this.err.isTTY === true;
  }

  note(text: string): void {
    this.write(`lcmon: ${escapeJson(text)}`);
  }

  warn(text: string): void {
    this.write(this.c.yellow(`lcmon: warning: ${escapeJson(text)}`));
  }

  error(text: string): void {
    this.write(this.c.red(`lcmon: ${escapeJson(text)}`));
  }

  /** A line as it is (`Bye.`). */
  plain(text: string): void {
    this.write(text);
  }

  /** Draws the status line in place (terminals only). */
  status(text: string): void {
    if (!this.tty) return;
    this.safeWrite(`\r\x1b[2K${this.c.dim(text)}`);
    this.statusShown = true;
  }

  clearStatus(): void {
    if (!this.statusShown) return;
    this.statusShown = false;
    this.safeWrite('\r\x1b[2K');
  }

  private write(line: string): void {
    this.clearStatus();
    this.safeWrite(`${line}\n`);
  }

  private safeWrite(text: string): void {
    try {
      if (!this.err.destroyed) this.err.write(text);
    } catch {
      /* stderr gone: nothing left to tell */
    }
  }
}
