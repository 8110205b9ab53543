/**
 * How the package's classes print: `util.inspect`, `console.log` and `JSON.stringify` of a store,
 * lock, allocator, registry, task queue, shared context or collector show a short description
 * (where Redis is, its prefix, its state), never its client, whose options hold the password.
 */
import { inspect } from 'node:util';

/**
 * Gives the instances of `cls` a print form: `describe(instance)` is what `util.inspect` shows
 * (after the class's name) and what `JSON.stringify` writes.
 */
export function printable<T extends object>(
  cls: { readonly prototype: T; readonly name: string },
  describe: (self: T) => Record<string, unknown>,
): void {
  Object.defineProperty(cls.prototype, 'toJSON', {
    value(this: T) {
      return describe(this);
    },
    configurable: true,
    writable: true,
  });
  Object.defineProperty(cls.prototype, inspect.custom, {
    value(this: T, _depth: number, options: object) {
      return `${cls.name} ${inspect(describe(this), options)}`;
    },
    configurable: true,
    writable: true,
  });
}
