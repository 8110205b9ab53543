import type { Redis, Result } from 'ioredis';
import { defineScripts } from '../lua-loader.js';

type Arg = string | number;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    contextureLockAcquire(...keysAndArgs: Arg[]): Result<[fence: number, entries: number] | null, Context>;
    contextureLockRelease(...keysAndArgs: Arg[]): Result<number, Context>;
    contextureLockExtend(...keysAndArgs: Arg[]): Result<number, Context>;
    contextureSetIf(...keysAndArgs: Arg[]): Result<[number, string | null], Context>;
  }
}

const SCRIPTS = {
  'lock-acquire': ['contextureLockAcquire', 2],
  'lock-release': ['contextureLockRelease', 1],
  'lock-extend': ['contextureLockExtend', 1],
  'set-if': ['contextureSetIf', 1],
} as const;

/** Registers the lock scripts on a client. */
export function defineLockCommands(redis: Redis): void {
  defineScripts(redis, SCRIPTS);
}
