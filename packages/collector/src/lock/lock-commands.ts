import { luaSource } from '../lua-loader.js';
import { LuaScript } from '../lua-script.js';

/** The lock's Lua scripts (`src/lua/lock-*.lua`, `set-if.lua`); their headers say what they take and return. */
export const LOCK_SCRIPTS = {
  /** `lock()`: fence, or null when the key exists. */
  acquire: new LuaScript<number | null>(luaSource('lock-acquire'), 2, 'lock acquire'),
  /** `rlock()`: [fence, re-entries], or null when another owner holds it. */
  reenter: new LuaScript<[fence: number, entries: number] | null>(luaSource('lock-reenter'), 2, 'lock reenter'),
  release: new LuaScript<number>(luaSource('lock-release'), 1, 'lock release'),
  extend: new LuaScript<number>(luaSource('lock-extend'), 1, 'lock extend'),
  setIf: new LuaScript<[written: number, current: string | null]>(luaSource('set-if'), 1, 'lock setIf'),
} as const;
