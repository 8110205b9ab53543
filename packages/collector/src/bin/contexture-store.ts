#!/usr/bin/env node
import { CommanderError } from 'commander';
import { createStoreProgram } from '../daemon/store-cli.js';

try {
  await createStoreProgram().parseAsync(process.argv);
} catch (err) {
  process.exitCode =
    err instanceof CommanderError
      ? err.code === 'commander.helpDisplayed' || err.code === 'commander.version'
        ? 0
        : err.exitCode === 1
          ? 2
          : err.exitCode
      : 70;
  if (!(err instanceof CommanderError)) process.stderr.write(`contexture-store: ${(err as Error)?.stack ?? err}\n`);
}
// Every store was closed (or could not be): timers of a client still waiting on a Redis that does
// not answer must not hold the process past it.
process.exit();
