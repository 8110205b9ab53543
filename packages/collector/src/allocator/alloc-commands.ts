import { luaSource } from '../lua-loader.js';
import { LuaScript } from '../lua-script.js';

/** Every allocator script takes the pool's ten keys (see alloc-lib.lua). */
export const ALLOC_KEY_COUNT = 10;

/** An allocator script: alloc-lib.lua (the shared helpers and key layout) followed by its own file. */
function script<T>(name: string): LuaScript<T> {
  return new LuaScript<T>(
    `${luaSource('alloc-lib')}\n${luaSource(name)}`,
    ALLOC_KEY_COUNT,
    `allocator ${name.slice('alloc-'.length)}`,
  );
}

/** The allocator's Lua scripts (`src/lua/alloc-*.lua`); their headers say what they take and return. */
export const ALLOC_SCRIPTS = {
  extend: script<[added: number, removed: number]>('alloc-extend'),
  shrink: script<number>('alloc-shrink'),
  clear: script<number>('alloc-clear'),
  malloc: script<[key: string, fence: number, expires: number] | null>('alloc-malloc'),
  free: script<number[]>('alloc-free'),
  update: script<number>('alloc-update'),
  bind: script<number>('alloc-bind'),
  bindings: script<string[]>('alloc-bindings'),
  health: script<number>('alloc-health'),
  gc: script<[removed: number, returned: number, healed: number, unbound: number, repaired: number]>('alloc-gc'),
} as const;
