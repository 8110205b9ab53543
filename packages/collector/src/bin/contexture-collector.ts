#!/usr/bin/env node
import { CommanderError } from 'commander';
import { createProgram } from '../daemon/cli.js';

try {
  await createProgram().parseAsync(process.argv);
} catch (err) {
  process.exitCode =
    err instanceof CommanderError
      ? err.code === 'commander.helpDisplayed' || err.code === 'commander.version'
        ? 0
        : err.exitCode === 1
          ? 2
          : err.exitCode
      : 70;
  if (!(err instanceof CommanderError)) process.stderr.write(`contexture-collector: ${(err as Error)?.stack ?? err}\n`);
}
// Everything was closed in order (or could not be): timers of clients still waiting on a server that
// does not answer must not hold the process past it.
process.exit();
