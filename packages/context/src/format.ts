/** The text of a `ctx.log.*` message: `{field}` and `{a.b}` replaced by the context's fields, the arguments appended. */
import { inspect } from 'node:util';

function lookup(fields: Record<string, unknown>, path: string): unknown {
  let v: unknown = fields;
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

export function formatMessage(fields: Record<string, unknown>, format: string, args: unknown[]): string {
  let text = String(format).replace(/\{([A-Za-z_$][\w$]*(?:\.[\w$]+)*)\}/g, (whole, path: string) => {
    const v = lookup(fields, path);
    if (v === undefined) return whole;
    if (typeof v === 'object' && v !== null) {
      try {
        return JSON.stringify(v);
      } catch {
        return String(v);
      }
    }
    return String(v);
  });
  for (const a of args) text += ` ${typeof a === 'string' ? a : inspect(a, { depth: 2, breakLength: Infinity })}`;
  return text;
}
