import { readFileSync } from 'node:fs';
import { LuaScript } from './lua-script.js';

/**
 * The one way a concern registers its Lua scripts. Each concern (store, locks, allocator, registry,
 * tasks) keeps its scripts in `src/lua/<concern>/<file>.lua`, each opening with a KEYS / ARGV /
 * returns header, and declares them in one table:
 *
 * ```ts
 * export const LOCK_SCRIPTS = loadScripts('locks', {
 *   acquire: script<number | null>(2, 'lock acquire'),
 *   setIf: script<[number, string | null]>(1, 'lock setIf', { file: 'set-if' }),
 * });
 * ```
 *
 * Every entry becomes a {@link LuaScript}, run by EVALSHA with the NOSCRIPT fallback. A concern
 * whose scripts share helpers keeps them in `lib.lua`, put in front of the scripts that ask for it.
 */
export interface ScriptSpec<T> {
  /** How many of the arguments are keys; null: the first argument of each call says it. */
  readonly keys: number | null;
  /** What errors call it ("lock acquire", …). */
  readonly name: string;
  /** The file's name without `.lua`; default: the table key in kebab case. */
  readonly file?: string;
  /** Put the concern's `lib.lua` in front of the script. */
  readonly lib?: boolean;
  /**
   * Redis 7 script flags, declared in a `#!lua flags=…` first line (e.g. `allow-cross-slot-keys`,
   * for a call on a cluster whose keys are in several slots of one master).
   */
  readonly flags?: string;
  /** The reply's type as ioredis gives it (never set: it carries `T`). */
  readonly reply?: T;
}

/** An entry of a script table (see {@link loadScripts}). */
export function script<T>(
  keys: number | null,
  name: string,
  options: { file?: string; lib?: boolean; flags?: string } = {},
): ScriptSpec<T> {
  return { keys, name, ...options };
}

const sources = new Map<string, string>();

/** The text of `src/lua/<concern>/<file>.lua`, read once; the scripts ship in the package beside dist/. */
function source(concern: string, file: string): string {
  const path = `${concern}/${file}`;
  let text = sources.get(path);
  if (text === undefined) {
    text = readFileSync(new URL(`../../../src/lua/${path}.lua`, import.meta.url), 'utf8');
    sources.set(path, text);
  }
  return text;
}

/** `setIf` → `set-if`. */
function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Loads a concern's script table (see {@link ScriptSpec}): one {@link LuaScript} per entry. */
export function loadScripts<const Table extends Record<string, ScriptSpec<unknown>>>(
  concern: string,
  table: Table,
): { readonly [K in keyof Table]: LuaScript<Table[K] extends ScriptSpec<infer T> ? T : never> } {
  const out: Record<string, LuaScript<unknown>> = {};
  for (const [key, spec] of Object.entries(table)) {
    const own = source(concern, spec.file ?? kebab(key));
    const body = spec.lib === true ? `${source(concern, 'lib')}\n${own}` : own;
    const lua = spec.flags === undefined ? body : `#!lua flags=${spec.flags}\n${body}`;
    out[key] = new LuaScript(lua, spec.keys, spec.name);
  }
  return out as { readonly [K in keyof Table]: LuaScript<Table[K] extends ScriptSpec<infer T> ? T : never> };
}
