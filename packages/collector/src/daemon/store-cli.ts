import { createRequire } from 'node:module';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { redactText } from '@contexture/context/internal';
import { CollectorError } from '../internal/errors.js';
import type { RestoredContext } from '../store/options.js';
import { RedisContextStore } from '../store/redis-store.js';
import { LineOutput } from './line-output.js';
import { addRedisOptions, EXIT, nonEmpty, redisTarget } from './redis-cli-options.js';
import {
  deleteCommand,
  exportCommand,
  getCommand,
  historyCommand,
  importCommand,
  type ListFilter,
  listCommand,
  Refusal,
  type StoreRun,
  syncCommand,
  watchCommand,
  webCommand,
} from './store-commands.js';
import { type ListenAddress, parseListenAddress } from '@contexture/context/internal';

/** Where the `contexture-store` program reads and writes, and when `watch` stops; tests pass their own. */
export interface StoreProgramIO {
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  stdin?: NodeJS.ReadableStream;
  /** Resolves when `watch` should stop (SIGTERM / SIGINT by default). */
  stopSignal?: Promise<unknown>;
}

/** This package's version (dist/src/daemon → the package's own package.json). */
const VERSION = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;

const EXAMPLES = `
Output is JSON: get, sync and delete print one document; list, history, watch and export print
JSON lines (one context, version or change a line); import prints {"imported", "malformed"}.

Examples:
  contexture-store list --status born                 # the open contexts
  contexture-store list --match 'order-*' | jq .id    # ids matching a glob
  contexture-store get r1 | jq .context               # one context's fields
  contexture-store sync r1 3                          # what a client at version 3 needs
  contexture-store history r1                         # its kept versions, one a line
  contexture-store watch r1 r2                        # its changes as they come; Ctrl-C stops
  contexture-store export > saved.jsonl               # every context, one a line
  contexture-store --prefix copy: import < saved.jsonl
  contexture-store web 8080                           # a page over the store: http://127.0.0.1:8080/
  contexture-store --redis-cluster 10.0.0.1:7000,10.0.0.2:7000 list

Exit status: 0 done (watch, web: stopped by SIGINT / SIGTERM); 2 bad arguments; 65 import: some
lines were malformed (the others were imported); 66 no such context; 69 Redis unreachable (web:
the address cannot be listened on); 70 internal error; 74 reading stdin failed; 78 Redis is a
cluster (or not) other than the options say.`;

/** The exit status of a failure of the store (its CollectorError code). */
function statusOf(err: unknown): number {
  const code = err instanceof CollectorError ? err.code : undefined;
  switch (code) {
    case 'LC_STORE_INVALID_ARGUMENT':
      return EXIT.USAGE;
    case 'LC_STORE_NOT_FOUND':
      return EXIT.NO_INPUT;
    case 'LC_STORE_CORRUPT':
      return EXIT.DATA_ERR;
    case 'LC_REDIS_UNAVAILABLE':
      return EXIT.UNAVAILABLE;
    case 'LC_REDIS_CLUSTER_MISMATCH':
      return EXIT.CONFIG;
    default:
      return EXIT.SOFTWARE;
  }
}

function listenAddress(value: string): ListenAddress {
  const address = parseListenAddress(value);
  if (address === undefined)
    throw new InvalidArgumentError('must be [HOST:]PORT: a port 0-65535, after a host name or address if given');
  return address;
}

function version(value: string): number | null {
  if (value === 'none') return null;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError("must be an integer >= 0, or 'none' for a client that has nothing");
  return n;
}

/** The first SIGTERM or SIGINT. */
function signals(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const first = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', first);
      process.off('SIGINT', first);
      resolve(signal);
    };
    process.on('SIGTERM', first);
    process.on('SIGINT', first);
  });
}

/**
 * The `contexture-store` program: reads and writes the Redis context store from the shell. Its
 * Redis options also read the environment (`CONTEXTURE_REDIS_URL`, `CONTEXTURE_REDIS_CLUSTER`,
 * `CONTEXTURE_REDIS_PREFIX`).
 *
 * @example
 * await createStoreProgram().parseAsync(process.argv);
 */
export function createStoreProgram(io: StoreProgramIO = {}): Command {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const say = (line: string) => void stderr.write(`contexture-store: ${line}\n`);
  const program = new Command('contexture-store')
    .description('Read and write the Redis context store the collector keeps: list, get, sync, watch, export, import.')
    .configureOutput({ writeOut: (s) => void stdout.write(s), writeErr: (s) => void stderr.write(s) });
  addRedisOptions(program)
    .version(VERSION, '-V, --version')
    .showHelpAfterError('(contexture-store --help lists the commands)')
    .addHelpText('after', EXAMPLES)
    .exitOverride();

  /**
   * Runs `body` on a store made from the program's options; says a failure in one line and throws
   * it as a CommanderError carrying its exit status.
   */
  const withStore = async <T>(body: (run: StoreRun) => Promise<T>, pending?: Map<string, RestoredContext>) => {
    const opts = program.opts<{ redis: string; redisCluster?: string; prefix: string }>();
    const target = redisTarget(program, opts);
    if (!target.ok) {
      const line = `${target.option} ${target.why}${target.env === undefined ? '' : ` (from ${target.env})`}`;
      say(line);
      throw new CommanderError(EXIT.USAGE, 'LC_STORE_CLI_INVALID_OPTION', line);
    }
    let store: RedisContextStore;
    try {
      store = new RedisContextStore({
        redis: target.redis,
        prefix: opts.prefix,
        ...(pending === undefined ? {} : { restoreProvider: (id: string) => pending.get(id) ?? null }),
      });
    } catch (err) {
      const line = redactText((err as Error)?.message ?? String(err));
      say(line);
      throw new CommanderError(EXIT.USAGE, 'LC_STORE_CLI_INVALID_OPTION', line);
    }
    const out = new LineOutput(stdout);
    try {
      return await body({
        store,
        out,
        say,
        stdin: io.stdin ?? process.stdin,
        stop: () => io.stopSignal ?? signals(),
        source: `${target.at}, prefix ${JSON.stringify(opts.prefix)}`,
      });
    } catch (err) {
      if (err instanceof CommanderError) {
        if (err instanceof Refusal) say(err.message);
        throw err;
      }
      const line = redactText((err as Error)?.message ?? String(err));
      say(line);
      throw new CommanderError(statusOf(err), (err as CollectorError)?.code ?? 'LC_STORE_CLI_FAILED', line);
    } finally {
      await out.end();
      await store.close();
    }
  };

  const filters = (c: Command) =>
    c
      .addOption(
        new Option('--status <status>', 'only contexts of this status (none: those without one)').choices([
          'born',
          'finished',
          'transient',
          'none',
        ]),
      )
      .addOption(new Option('--match <glob>', 'only ids matching this glob (*, ?, [...], \\ as in Redis)'))
      .addOption(new Option('--rkey <glob>', 'only routing keys matching this glob'));

  filters(
    program.command('list').description('the contexts, one summary a line (id, version, status, rkey, times)'),
  ).action((o: ListFilter) => withStore((run) => listCommand(run, o)));

  program
    .command('get')
    .description('one context: its fields, version, status, routing key, headers, times and incarnation')
    .argument('<id>', 'the context id', nonEmpty)
    .action((id: string) => withStore((run) => getCommand(run, id)));

  program
    .command('sync')
    .description('what a client at VERSION needs: {type: full | delta | no_change, ...}')
    .argument('<id>', 'the context id', nonEmpty)
    .argument('<version>', "the client's version (an integer >= 0), or 'none'", version)
    .option('--incarnation <incarnation>', "the incarnation of the client's copy (from an earlier answer)")
    .action((id: string, v: number | null, o: { incarnation?: string }) =>
      withStore((run) => syncCommand(run, id, v, o.incarnation)),
    );

  program
    .command('history')
    .description('the versions whose deltas the store keeps, oldest first, one change a line')
    .argument('<id>', 'the context id', nonEmpty)
    .action((id: string) => withStore((run) => historyCommand(run, id)));

  program
    .command('watch')
    .description('the changes of these contexts as they happen, one a line, until SIGINT / SIGTERM')
    .argument('<id...>', 'context ids (a context made later is watched too)')
    .action((ids: string[]) => {
      if (ids.some((id) => id === '')) {
        say('a context id must not be empty');
        throw new CommanderError(EXIT.USAGE, 'LC_STORE_CLI_INVALID_ARGUMENT', 'a context id must not be empty');
      }
      return withStore((run) => watchCommand(run, ids));
    });

  program
    .command('web')
    .description(
      'serves a page over the store (the contexts; one with its history, followed live) until SIGINT / SIGTERM',
    )
    .argument(
      '<address>',
      '[HOST:]PORT to listen on (host 127.0.0.1 unless given; port 0: any free one)',
      listenAddress,
    )
    .action((address: ListenAddress) => withStore((run) => webCommand(run, address)));

  program
    .command('delete')
    .description('removes a context and its deltas')
    .argument('<id>', 'the context id', nonEmpty)
    .action((id: string) => withStore((run) => deleteCommand(run, id)));

  filters(
    program.command('export').description('every context (or those the filters keep) as get prints it, one a line'),
  ).action((o: ListFilter) => withStore((run) => exportCommand(run, o)));

  program
    .command('import')
    .description(
      'restores the contexts of an export read on stdin, keeping version, times and incarnation; malformed lines are counted and skipped',
    )
    .action(() => {
      const pending = new Map<string, RestoredContext>();
      return withStore(async (run) => {
        const counts = await importCommand(run, pending);
        await run.out.write(counts);
        if (counts.malformed > 0) {
          const line = `imported ${counts.imported} contexts; ${counts.malformed} malformed lines skipped`;
          throw new Refusal(EXIT.DATA_ERR, 'LC_STORE_CLI_MALFORMED', line);
        }
      }, pending);
    });

  return program;
}
