import type { Diagnostics } from './diagnostics.js';

/** What the status line shows. */
export interface StatsSnapshot {
  messages: number;
  outputs: number;
  malformed: number;
  /** Objects open in collation; undefined without -c. */
  open: number | undefined;
}

/**
 * `--stats`: on a terminal, a status line on stderr redrawn every second (messages/s, open objects,
 * malformed count); everywhere, one summary line at the end.
 */
export class StatsLine {
  private timer: NodeJS.Timeout | undefined;
  private lastMessages = 0;
  private lastAt = 0;
  private readonly startedAt = Date.now();

  constructor(
    private readonly diag: Diagnostics,
    private readonly snapshot: () => StatsSnapshot,
    private readonly everyMs = 1000,
  ) {}

  start(): void {
    if (!this.diag.tty) return;
    this.lastAt = Date.now();
    this.timer = setInterval(() => this.tick(), this.everyMs);
    this.timer.unref();
  }

  /** Stops the live line and prints the summary. */
  finish(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.diag.clearStatus();
    const s = this.snapshot();
    const secs = Math.max(0.001, (Date.now() - this.startedAt) / 1000);
    const open = s.open !== undefined ? `, ${s.open} object${s.open === 1 ? '' : 's'} open` : '';
    this.diag.note(
      `${s.messages} messages in ${secs.toFixed(1)} s (${Math.round(s.messages / secs)}/s), ${s.outputs} printed, ${s.malformed} malformed${open}`,
    );
  }

  private tick(): void {
    const now = Date.now();
    const s = this.snapshot();
    const rate = Math.round(((s.messages - this.lastMessages) * 1000) / Math.max(1, now - this.lastAt));
    this.lastMessages = s.messages;
    this.lastAt = now;
    const open = s.open !== undefined ? ` · ${s.open} open` : '';
    this.diag.status(
      `lcmon: ${rate} msg/s${open} · ${s.malformed} malformed · ${s.messages} messages · ${s.outputs} printed`,
    );
  }
}
