import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

const sources = new Map<string, string>();

/** The text of `src/lua/<name>.lua`, read once; the scripts ship in the package beside the compiled tree. */
export function luaSource(name: string): string {
  let text = sources.get(name);
  if (text === undefined) {
    text = readFileSync(new URL(`../../src/lua/${name}.lua`, import.meta.url), 'utf8');
    sources.set(name, text);
  }
  return text;
}

/**
 * Registers scripts on a client with `defineCommand` (once per client; ioredis then runs them by
 * EVALSHA): `table` maps a script file name to its command name and number of keys.
 */
export function defineScripts(
  redis: Redis,
  table: Readonly<Record<string, readonly [command: string, numberOfKeys: number]>>,
): void {
  for (const [name, [command, numberOfKeys]] of Object.entries(table)) {
    if (typeof (redis as unknown as Record<string, unknown>)[command] === 'function') continue;
    redis.defineCommand(command, { numberOfKeys, lua: luaSource(name) });
  }
}
