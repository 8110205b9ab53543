import { loadScripts, script } from '../internal/scripts.js';

/** What sync.lua answers (see its header): version, status, answers, first, records, hash, incarnation, known. */
export type SyncReply = [string, string | null, string, number, string[], string[] | null, string, number];

/**
 * The store's Lua scripts (`src/lua/store/`); their headers say what they take and return. The
 * store reads their failures itself, so it runs them with `call()` / `runMany()`.
 */
export const STORE_SCRIPTS = loadScripts('store', {
  /** Applies bus messages to one or more contexts; the first argument is the number of keys. */
  apply: script<number[]>(null, 'store apply', { lib: true }),
  /**
   * apply.lua for the contexts of several slots of one cluster master in one call (Redis 7: the
   * script declares allow-cross-slot-keys).
   */
  applyAcrossSlots: script<number[]>(null, 'store apply', {
    lib: true,
    file: 'apply',
    flags: 'allow-cross-slot-keys',
  }),
  write: script<Array<number | string>>(2, 'store write', { lib: true }),
  sync: script<SyncReply | null>(2, 'store sync'),
  remove: script<number>(2, 'store remove'),
  restore: script<string>(2, 'store restore', { lib: true }),
  prune: script<[number, number]>(2, 'store prune'),
});
