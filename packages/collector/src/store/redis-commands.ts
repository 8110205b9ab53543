import type { Redis, Result } from 'ioredis';
import { luaSource } from '../lua-loader.js';

type Arg = string | number;

/** The store's Lua scripts, registered on an ioredis client with `defineCommand`. */
declare module 'ioredis' {
  interface RedisCommander<Context> {
    contextureCtxApply(...keysAndArgs: Arg[]): Result<number[], Context>;
    contextureCtxWrite(...keysAndArgs: Arg[]): Result<Array<number | string>, Context>;
    contextureCtxSync(...keysAndArgs: Arg[]): Result<SyncReply | null, Context>;
    contextureCtxRemove(...keysAndArgs: Arg[]): Result<number, Context>;
    contextureCtxRestore(...keysAndArgs: Arg[]): Result<string, Context>;
    contextureCtxPrune(...keysAndArgs: Arg[]): Result<[number, number], Context>;
  }
}

/** What sync.lua answers (see its header): version, status, answers, first, records, hash, incarnation, known. */
export type SyncReply = [string, string | null, string, number, string[], string[] | null, string, number];

/** Script name → [command name, number of keys (null: the first argument gives it)]. */
const SCRIPTS = {
  apply: ['contextureCtxApply', null],
  write: ['contextureCtxWrite', 2],
  sync: ['contextureCtxSync', 2],
  remove: ['contextureCtxRemove', 2],
  restore: ['contextureCtxRestore', 2],
  prune: ['contextureCtxPrune', 2],
} as const;

/** Scripts that start with ctx-lib.lua (the helpers they share). */
const WITH_LIB: ReadonlySet<string> = new Set(['apply', 'write', 'restore']);

/** Registers the scripts on a client (once per client; ioredis runs them by EVALSHA). */
export function defineStoreCommands(redis: Redis): void {
  for (const [name, [command, numberOfKeys]] of Object.entries(SCRIPTS)) {
    if (typeof (redis as unknown as Record<string, unknown>)[command] === 'function') continue;
    const lua = WITH_LIB.has(name) ? `${luaSource('ctx-lib')}\n${luaSource(name)}` : luaSource(name);
    redis.defineCommand(command, { numberOfKeys: numberOfKeys ?? undefined, lua });
  }
}
