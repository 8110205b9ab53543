/**
 * The text of a `ctx.log.*` message: `{field}` and `{a.b}` replaced by the context's fields, the
 * arguments appended. It never throws: a value that cannot be made text (its getters, toString(),
 * toJSON() or inspect method throw, a hostile Proxy) is written as {@link UNDESCRIBABLE}, and the
 * rest of the message is kept.
 */
import { inspect } from 'node:util';

/** What stands in a message for a value that cannot be made text. */
export const UNDESCRIBABLE = '(cannot be described)';

const INSPECT = { depth: 2, breakLength: Infinity } as const;

function lookup(fields: Record<string, unknown>, path: string): unknown {
  let v: unknown = fields;
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** A value as `inspect()` shows it, or {@link UNDESCRIBABLE}. */
function inspected(v: unknown): string {
  try {
    return inspect(v, INSPECT);
  } catch {
    return UNDESCRIBABLE;
  }
}

/** A field's value in a message: an object as its JSON (else as `inspect()` shows it), anything else as its text. */
function fieldText(v: unknown): string {
  try {
    if (typeof v === 'object' && v !== null) {
      try {
        const json = JSON.stringify(v);
        if (typeof json === 'string') return json;
      } catch {
        /* a cycle, a bigint, a hostile toJSON(): shown as inspect() shows it */
      }
      return inspected(v);
    }
    return String(v);
  } catch {
    return inspected(v);
  }
}

export function formatMessage(fields: Record<string, unknown>, format: unknown, args: unknown[]): string {
  let text =
    typeof format === 'string'
      ? format.replace(/\{([A-Za-z_$][\w$]*(?:\.[\w$]+)*)\}/g, (whole, path: string) => {
          let v: unknown;
          try {
            v = lookup(fields, path);
          } catch {
            return UNDESCRIBABLE;
          }
          return v === undefined ? whole : fieldText(v);
        })
      : inspected(format);
  for (const a of args) text += ` ${typeof a === 'string' ? a : inspected(a)}`;
  return text;
}
