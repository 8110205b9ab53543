import { extractKeys, setOwn } from '@contexture/context/protocol';

/**
 * Removes every property named in `keys`, at any depth (inside arrays too). Returns new objects;
 * the input is left as it is.
 */
export function trimKeys(value: unknown, keys: ReadonlySet<string>): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((v) => trimKeys(v, keys));
  const out: Record<string, unknown> = {};
  for (const k in value) {
    if (!Object.hasOwn(value, k) || keys.has(k)) continue;
    setOwn(out, k, trimKeys((value as Record<string, unknown>)[k], keys));
  }
  return out;
}

function isEmpty(v: unknown): boolean {
  if (v === null || v === undefined || v === '') return true;
  if (typeof v !== 'object') return false;
  if (Array.isArray(v)) return v.length === 0;
  for (const k in v) if (Object.hasOwn(v, k)) return false;
  return true;
}

/**
 * Drops empty values (null, "", [] and {}) at any depth, after emptying what is inside them first;
 * 0 and false are values. Returns undefined when nothing is left.
 */
export function dropEmpty(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return isEmpty(value) ? undefined : value;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (const v of value) {
      const kept = dropEmpty(v);
      if (kept !== undefined) out.push(kept);
    }
    return out.length === 0 ? undefined : out;
  }
  const out: Record<string, unknown> = {};
  let any = false;
  for (const k in value) {
    if (!Object.hasOwn(value, k)) continue;
    const kept = dropEmpty((value as Record<string, unknown>)[k]);
    if (kept !== undefined) {
      setOwn(out, k, kept);
      any = true;
    }
  }
  return any ? out : undefined;
}

/** What `-k`, `-t` and `-z` ask for. */
export interface TransformSpec {
  keys?: readonly string[];
  trim?: readonly string[];
  dropEmpty?: boolean;
}

/** What {@link makeTransform} builds; `extracts` is true when it extracts keys (`-k`). */
export type Transform = ((value: unknown) => unknown) & { readonly extracts?: boolean };

/**
 * Builds the function applied to each message or object, in the CLI's order: extract keys, trim
 * keys, drop empties. Returns undefined when there is nothing to do, and the function returns
 * undefined for a value that is left empty with `dropEmpty` (it is then not printed).
 */
export function makeTransform(spec: TransformSpec): Transform | undefined {
  const keys = spec.keys !== undefined && spec.keys.length > 0 ? spec.keys : undefined;
  const trim = spec.trim !== undefined && spec.trim.length > 0 ? new Set(spec.trim) : undefined;
  const drop = spec.dropEmpty === true;
  if (keys === undefined && trim === undefined && !drop) return undefined;
  const transform = (value: unknown): unknown => {
    let v = value;
    if (keys !== undefined) v = extractKeys(v, keys);
    if (trim !== undefined) v = trimKeys(v, trim);
    if (drop) v = dropEmpty(v);
    return v;
  };
  return Object.assign(transform, { extracts: keys !== undefined });
}
