import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built `contexture-collector` program. */
export const COLLECTOR_BIN = fileURLToPath(new URL('../src/bin/contexture-collector.js', import.meta.url));

/** A `contexture-collector` process started by a test. */
export interface RunningBin {
  child: ChildProcess;
  /** What it wrote on stderr so far. */
  stderr(): string;
  /** Its exit status once it ended (null when a signal ended it). */
  exited: Promise<number | null>;
  /** Its exit status and the signal that ended it, if one did. */
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `contexture-collector args…` with `env` over this process's environment; stdout is ignored. */
export function startBin(args: string[], env: Record<string, string> = {}): RunningBin {
  const child = spawn(process.execPath, [COLLECTOR_BIN, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, stderr: () => err, exited: ended.then((e) => e.code), ended };
}
