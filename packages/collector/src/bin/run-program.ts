import { type Command, CommanderError } from 'commander';

/**
 * Runs one of the package's programs as a command: exit status 0 for --help and --version, 2 for
 * a usage error, the program's own status for the errors it throws, 70 (with the stack on stderr,
 * after `name: `) for anything else. Then it exits: every client was closed (or could not be), and
 * the timers of one still waiting on a server that does not answer must not hold the process.
 */
export async function runProgram(name: string, program: Command): Promise<never> {
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    process.exitCode =
      err instanceof CommanderError
        ? err.code === 'commander.helpDisplayed' || err.code === 'commander.version'
          ? 0
          : err.exitCode === 1
            ? 2
            : err.exitCode
        : 70;
    if (!(err instanceof CommanderError)) process.stderr.write(`${name}: ${(err as Error)?.stack ?? err}\n`);
  }
  process.exit();
}
