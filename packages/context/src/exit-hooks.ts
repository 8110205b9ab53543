/** What the process's exit hooks call on a live Handler. */
export interface ExitWatcher {
  /** The program has nothing left to do: drain first, with `wait: true`. */
  _beforeExit(): void;
  /** The process exits: say on stderr what is still buffered. */
  _atExit(): void;
}

const live = new Set<ExitWatcher>();
let installed = false;

/** Calls `h` at `beforeExit` and `exit` until {@link unwatchExit}. */
export function watchExit(h: ExitWatcher): void {
  live.add(h);
  if (installed) return;
  installed = true;
  // `wait: true`: when the program has nothing left to do, drain before letting it exit.
  process.on('beforeExit', () => {
    for (const w of live) w._beforeExit();
  });
  // Nothing is lost silently: what is still buffered when the process exits is said on stderr.
  process.on('exit', () => {
    for (const w of live) w._atExit();
  });
}

/** Stops calling `h` at exit (it closed). */
export function unwatchExit(h: ExitWatcher): void {
  live.delete(h);
}
