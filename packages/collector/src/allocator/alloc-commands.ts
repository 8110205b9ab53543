import type { Redis, Result } from 'ioredis';
import { luaSource } from '../lua-loader.js';

type Arg = string | number;

/** The allocator's Lua scripts (`src/lua/alloc-*.lua`), registered on an ioredis client. */
declare module 'ioredis' {
  interface RedisCommander<Context> {
    contextureAllocExtend(...keysAndArgs: Arg[]): Result<[number, number], Context>;
    contextureAllocShrink(...keysAndArgs: Arg[]): Result<number, Context>;
    contextureAllocClear(...keysAndArgs: Arg[]): Result<number, Context>;
    contextureAllocMalloc(...keysAndArgs: Arg[]): Result<[string, number, number] | null, Context>;
    contextureAllocFree(...keysAndArgs: Arg[]): Result<number[], Context>;
    contextureAllocUpdate(...keysAndArgs: Arg[]): Result<number, Context>;
    contextureAllocBind(...keysAndArgs: Arg[]): Result<number, Context>;
    contextureAllocBindings(...keysAndArgs: Arg[]): Result<string[], Context>;
    contextureAllocHealth(...keysAndArgs: Arg[]): Result<number, Context>;
    contextureAllocGc(...keysAndArgs: Arg[]): Result<[number, number, number, number, number], Context>;
  }
}

/** Every allocator script takes the pool's ten keys (see alloc-lib.lua). */
export const ALLOC_KEY_COUNT = 10;

/** Script file → command name. */
const SCRIPTS = {
  'alloc-extend': 'contextureAllocExtend',
  'alloc-shrink': 'contextureAllocShrink',
  'alloc-clear': 'contextureAllocClear',
  'alloc-malloc': 'contextureAllocMalloc',
  'alloc-free': 'contextureAllocFree',
  'alloc-update': 'contextureAllocUpdate',
  'alloc-bind': 'contextureAllocBind',
  'alloc-bindings': 'contextureAllocBindings',
  'alloc-health': 'contextureAllocHealth',
  'alloc-gc': 'contextureAllocGc',
} as const;

/**
 * Registers the allocator scripts on a client (once per client; ioredis runs them by EVALSHA).
 * Each script is alloc-lib.lua (the shared helpers and key layout) followed by its own file.
 */
export function defineAllocCommands(redis: Redis): void {
  const lib = luaSource('alloc-lib');
  for (const [name, command] of Object.entries(SCRIPTS)) {
    if (typeof (redis as unknown as Record<string, unknown>)[command] === 'function') continue;
    redis.defineCommand(command, { numberOfKeys: ALLOC_KEY_COUNT, lua: `${lib}\n${luaSource(name)}` });
  }
}
