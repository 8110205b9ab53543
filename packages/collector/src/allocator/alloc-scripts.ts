import { loadScripts, type ScriptSpec, script } from '../internal/scripts.js';

/** Every allocator script takes the pool's ten keys (see lua/allocator/lib.lua). */
export const ALLOC_KEY_COUNT = 10;

/** An allocator script: lib.lua (the shared helpers and key layout) followed by its own file. */
function alloc<T>(name: string): ScriptSpec<T> {
  return script<T>(ALLOC_KEY_COUNT, `allocator ${name}`, { lib: true });
}

/** The allocator's Lua scripts (`src/lua/allocator/`); their headers say what they take and return. */
export const ALLOC_SCRIPTS = loadScripts('allocator', {
  extend: alloc<[added: number, removed: number]>('extend'),
  shrink: alloc<number>('shrink'),
  clear: alloc<number>('clear'),
  malloc: alloc<[key: string, fence: number, expires: number] | null>('malloc'),
  free: alloc<number[]>('free'),
  update: alloc<number>('update'),
  bind: alloc<number>('bind'),
  bindings: alloc<string[]>('bindings'),
  health: alloc<number>('health'),
  gc: alloc<[removed: number, returned: number, healed: number, unbound: number, repaired: number]>('gc'),
});
