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
  // Ended by a signal the program does not handle (docker stop, Ctrl-C), Node emits no `exit`:
  // what is buffered is said, then the signal ends the process as it would have.
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

/** The signals that end a process by default and that a program can handle. */
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

function onSignal(signal: NodeJS.Signals): void {
  // Another listener handles it (a graceful shutdown of the program's own): it decides, and
  // `exit` says what is left if the program exits.
  if (process.listenerCount(signal) > 1) return;
  for (const w of live) w._atExit();
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  try {
    process.kill(process.pid, signal);
  } catch {
    process.exit(128 + (signal === 'SIGHUP' ? 1 : signal === 'SIGINT' ? 2 : 15));
  }
}

/** Stops calling `h` at exit (it closed). */
export function unwatchExit(h: ExitWatcher): void {
  live.delete(h);
}
