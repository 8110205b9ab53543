/**
 * What each subcommand of `contexture-store` does, on an open store: they print JSON (one document,
 * or JSON lines) and throw a {@link Refusal} for what the user asked that cannot be done.
 */
import { createInterface } from 'node:readline';
import { isPlainObject, parseJson } from '@contexture/context/protocol';
import { redactText } from '@contexture/context/internal';
import { CommanderError } from 'commander';
import { CollectorError } from '../internal/errors.js';
import { globToRegExp } from '../store/glob.js';
import { allContexts } from '../store/all-contexts.js';
import type { RestoredContext } from '../store/options.js';
import type { RedisContextStore } from '../store/redis-store.js';
import type { ContextStatus, ContextSummary } from '../store/types.js';
import type { LineOutput } from './line-output.js';
import type { ListenAddress } from '@contexture/context/internal';
import { EXIT } from './redis-cli-options.js';
import { StoreWebServer } from './store-web.js';

/** A refusal the program says in one line (`message`) and exits with (`exitCode`). */
export class Refusal extends CommanderError {}

/** What a subcommand works with. */
export interface StoreRun {
  store: RedisContextStore;
  out: LineOutput;
  /** One line on stderr, after `contexture-store: `. */
  say: (line: string) => void;
  stdin: NodeJS.ReadableStream;
  /**
   * Resolves when the program should stop (SIGTERM / SIGINT); only `watch` asks, so that the
   * other subcommands end on a signal as any program does.
   */
  stop: () => Promise<unknown>;
  /** Where the store is, as messages say it: Redis as `host:port` (no login) and the key prefix. */
  source: string;
}

/** The filters of `list` and `export`. */
export interface ListFilter {
  status?: ContextStatus | 'none';
  match?: string;
  rkey?: string;
}

function notFound(id: string): Refusal {
  return new Refusal(EXIT.NO_INPUT, 'LC_STORE_NOT_FOUND', `no context ${JSON.stringify(id)}`);
}

/** Every context the filter keeps, page by page (ids matched here, the rest by the store). */
async function* summaries(store: RedisContextStore, filter: ListFilter): AsyncGenerator<ContextSummary> {
  const ids = filter.match === undefined ? null : globToRegExp(filter.match);
  const status = filter.status === 'none' ? null : filter.status;
  const options = {
    ...(status === undefined ? {} : { status }),
    ...(filter.rkey === undefined ? {} : { rkey: filter.rkey }),
  };
  for await (const row of allContexts(store, options)) if (ids === null || ids.test(row.id)) yield row;
}

export async function listCommand(run: StoreRun, filter: ListFilter): Promise<void> {
  for await (const row of summaries(run.store, filter)) {
    if (run.out.broken) return;
    await run.out.write(row);
  }
}

export async function getCommand(run: StoreRun, id: string): Promise<void> {
  const record = await run.store.get(id);
  if (record === null) throw notFound(id);
  await run.out.write(record);
}

export async function syncCommand(
  run: StoreRun,
  id: string,
  version: number | null,
  incarnation: string | undefined,
): Promise<void> {
  const answer = await run.store.sync(id, version, incarnation ?? null);
  if (answer === null) throw notFound(id);
  await run.out.write(answer);
}

export async function historyCommand(run: StoreRun, id: string): Promise<void> {
  const events = await run.store.history(id);
  if (events === null) throw notFound(id);
  for (const e of events) await run.out.write(e);
}

export async function deleteCommand(run: StoreRun, id: string): Promise<void> {
  if (!(await run.store.delete(id))) throw notFound(id);
  await run.out.write({ id, deleted: true });
}

/** Prints every change of the contexts as JSON lines until the stop signal. */
export async function watchCommand(run: StoreRun, ids: readonly string[]): Promise<void> {
  const watches = [...new Set(ids)].map((id) => run.store.watch(id));
  const closeAll = () => Promise.all(watches.map((w) => w.close()));
  const stop = run.stop().then(() => true);
  try {
    // A signal while Redis has not taken the subscriptions yet stops as well.
    if (await Promise.race([Promise.all(watches.map((w) => w.ready)).then(() => false), stop])) return;
    run.say(`watching ${watches.length} context${watches.length === 1 ? '' : 's'}; Ctrl-C stops`);
    const pump = Promise.all(
      watches.map(async (w) => {
        for await (const event of w) {
          await run.out.write(event);
          // A closed stdout ends every watch: nobody reads them any more.
          if (run.out.broken) await closeAll();
        }
      }),
    );
    await Promise.race([stop, pump]);
  } finally {
    await closeAll();
  }
}

export async function exportCommand(run: StoreRun, filter: ListFilter): Promise<void> {
  for await (const row of summaries(run.store, filter)) {
    if (run.out.broken) break;
    // Deleted between the listing and now: nothing to move.
    const record = await run.store.get(row.id);
    if (record === null) continue;
    await run.out.write(record);
  }
}

/** What an export line must hold to be imported: a context, its id and version; the rest is checked by restore(). */
function importable(text: string): RestoredContext & { id: string } {
  let doc: unknown;
  try {
    doc = parseJson(text);
  } catch {
    throw new Error('not JSON');
  }
  if (!isPlainObject(doc)) throw new Error('not a JSON object');
  if (typeof doc.id !== 'string' || doc.id === '') throw new Error('no "id" (a non-empty string)');
  if (!isPlainObject(doc.context)) throw new Error('no "context" (an object)');
  if (!Number.isSafeInteger(doc.version) || (doc.version as number) < 1)
    throw new Error('no "version" (an integer >= 1)');
  return doc as unknown as RestoredContext & { id: string };
}

/** Errors shown one by one; past this, only counted. */
const SHOWN = 20;

/**
 * Restores every line of stdin (an `export`), in order. A malformed line is counted, said on stderr
 * with its number, and skipped: the others are imported. Resolves to the counts.
 */
export async function importCommand(
  run: StoreRun,
  pending: Map<string, RestoredContext>,
): Promise<{ imported: number; malformed: number }> {
  let imported = 0;
  let malformed = 0;
  let n = 0;
  const lines = createInterface({ input: run.stdin, crlfDelay: Number.POSITIVE_INFINITY });
  // A read error may end the lines first (readline closes on it): it is checked after them too.
  let readError: Refusal | null = null;
  const readFailed = new Promise<never>((_, reject) =>
    run.stdin.once('error', (err: Error) => {
      readError = new Refusal(EXIT.IO_ERR, 'LC_STORE_CLI_STDIN', `reading stdin failed: ${redactText(err.message)}`);
      reject(readError);
    }),
  );
  readFailed.catch(() => {});
  const skip = (why: string) => {
    malformed++;
    if (malformed <= SHOWN) run.say(`line ${n}: ${why}; skipped`);
  };
  const iterator = lines[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), readFailed]);
      if (next.done) break;
      n++;
      const text = next.value.trim();
      if (text === '') continue;
      let doc: RestoredContext & { id: string };
      try {
        doc = importable(text);
      } catch (err) {
        skip((err as Error).message);
        continue;
      }
      pending.set(doc.id, doc);
      try {
        await run.store.restore(doc.id);
        imported++;
      } catch (err) {
        const code = err instanceof CollectorError ? err.code : undefined;
        if (code === 'LC_STORE_RESTORE_FAILED' || code === 'LC_STORE_INVALID_ARGUMENT')
          skip(redactText((err as Error).message));
        else throw err;
      } finally {
        pending.delete(doc.id);
      }
    }
  } catch (err) {
    // readline passes the read error on as it is.
    throw readError ?? err;
  } finally {
    lines.close();
  }
  if (readError !== null) throw readError;
  if (malformed > SHOWN) run.say(`… and ${malformed - SHOWN} more malformed lines`);
  return { imported, malformed };
}

/** Serves the page over the store at `address` until the stop signal; says its URL on stderr. */
export async function webCommand(run: StoreRun, address: ListenAddress): Promise<void> {
  const server = new StoreWebServer({ store: run.store, ...address, source: run.source });
  const stop = run.stop();
  try {
    let url: string;
    try {
      url = await server.listen();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // The system's refusal (in use, not this machine's, a host name that does not resolve): 69.
      const system = typeof e.code === 'string' && /^E[A-Z0-9]+$/.test(e.code);
      throw new Refusal(
        system ? EXIT.UNAVAILABLE : EXIT.SOFTWARE,
        'LC_STORE_CLI_LISTEN',
        `cannot listen on ${address.host}:${address.port}: ${e.code ?? e.message}`,
      );
    }
    run.say(`web view on ${url} (${run.source}); Ctrl-C stops`);
    await stop;
  } finally {
    await server.close();
  }
}
