import type { Malformed } from '@contexture/context/protocol';
import type { InputPlace } from '../options.js';
import type { Diagnostics } from './diagnostics.js';

/**
 * Counts malformed input by kind and reports the first of each kind on stderr, with where it was
 * (line number, or routing key); the rest are only counted, and summed up at the end.
 */
export class MalformedReport {
  private readonly counts = new Map<string, number>();
  total = 0;

  constructor(private readonly diag: Diagnostics) {}

  add(problem: Malformed, place: InputPlace): void {
    const n = this.counts.get(problem.kind) ?? 0;
    this.counts.set(problem.kind, n + 1);
    this.total++;
    if (n > 0) return;
    const where =
      place.line !== undefined ? `line ${place.line}` : `message with routing key ${JSON.stringify(place.rkey ?? '')}`;
    const detail = problem.detail !== undefined ? ` (${JSON.stringify(problem.detail).slice(1, -1)})` : '';
    this.diag.warn(`${where}: skipped, ${problem.kind}${detail}; more "${problem.kind}" input is counted, not shown`);
  }

  /** The end-of-input line, or undefined when all input was good. */
  summary(): string | undefined {
    if (this.total === 0) return undefined;
    const kinds = [...this.counts].map(([k, n]) => `${k}: ${n}`).join(', ');
    return `skipped ${this.total} malformed input${this.total === 1 ? '' : 's'} (${kinds})`;
  }
}
