import { loadScripts, script } from '../internal/scripts.js';

/** The lock's Lua scripts (`src/lua/locks/`); their headers say what they take and return. */
export const LOCK_SCRIPTS = loadScripts('locks', {
  /** `lock()`: fence, or null when the key exists. */
  acquire: script<number | null>(3, 'lock acquire'),
  /** `rlock()`: [fence, re-entries], or null when another owner holds it. */
  reenter: script<[fence: number, entries: number] | null>(3, 'lock reenter'),
  release: script<number>(2, 'lock release'),
  extend: script<number>(2, 'lock extend'),
  setIf: script<[written: number, current: string | null]>(1, 'lock setIf'),
});
