import { readFileSync } from 'node:fs';
import type { Redis, Result } from 'ioredis';

type Arg = string | number;

/** The store's Lua scripts, registered on an ioredis client with `defineCommand`. */
declare module 'ioredis' {
  interface RedisCommander<Context> {
    contextureCtxApply(...keysAndArgs: Arg[]): Result<number[], Context>;
    contextureCtxWrite(...keysAndArgs: Arg[]): Result<[number, number], Context>;
    contextureCtxSync(...keysAndArgs: Arg[]): Result<SyncReply | null, Context>;
    contextureCtxRemove(...keysAndArgs: Arg[]): Result<number, Context>;
    contextureCtxRestore(...keysAndArgs: Arg[]): Result<number, Context>;
    contextureCtxPrune(...keysAndArgs: Arg[]): Result<[number, number], Context>;
  }
}

/** What sync.lua answers (see its header). */
export type SyncReply = ['n', string] | ['d', string, string | null, string[]] | ['f', string[]];

/** Script name → [command name, number of keys (null: the first argument gives it)]. */
const SCRIPTS = {
  apply: ['contextureCtxApply', null],
  write: ['contextureCtxWrite', 2],
  sync: ['contextureCtxSync', 2],
  remove: ['contextureCtxRemove', 2],
  restore: ['contextureCtxRestore', 2],
  prune: ['contextureCtxPrune', 2],
} as const;

let sources: Map<string, string> | null = null;

/** Reads the .lua files once; they ship in the package (`src/lua`), beside the compiled code's tree. */
function load(): Map<string, string> {
  if (sources === null) {
    const loaded = new Map<string, string>();
    for (const name of Object.keys(SCRIPTS)) {
      loaded.set(name, readFileSync(new URL(`../../../src/lua/${name}.lua`, import.meta.url), 'utf8'));
    }
    sources = loaded;
  }
  return sources;
}

/** Registers the scripts on a client (once per client; ioredis runs them by EVALSHA). */
export function defineStoreCommands(redis: Redis): void {
  const lua = load();
  for (const [name, [command, numberOfKeys]] of Object.entries(SCRIPTS)) {
    if (typeof (redis as unknown as Record<string, unknown>)[command] === 'function') continue;
    redis.defineCommand(command, { numberOfKeys: numberOfKeys ?? undefined, lua: lua.get(name)! });
  }
}
