import { setOwn } from './own.js';

/**
 * Pulls keys out of an object, searching breadth-first at any depth: `key` takes the first match,
 * `*key` takes every match as an array (one match is given as the value itself). A key not found
 * is given as an empty list, as the Python lcmon prints it (`{"nope": []}`).
 *
 * @example
 * extractKeys({ elapsed: 1, obj: { elapsed: 2 } }, ['elapsed'])   // { elapsed: 1 }
 * extractKeys({ elapsed: 1, obj: { elapsed: 2 } }, ['*elapsed'])  // { elapsed: [1, 2] }
 * extractKeys({ elapsed: 1 }, ['nope', 'elapsed'])                 // { nope: [], elapsed: 1 }
 */
export function extractKeys(value: unknown, keys: readonly string[]): Record<string, unknown> {
  const wanted = new Map<string, boolean>();
  for (const k of keys) {
    if (k.startsWith('*')) wanted.set(k.slice(1), true);
    else if (!wanted.has(k)) wanted.set(k, false);
  }
  const found = new Map<string, unknown[]>();
  let pendingFirst = 0;
  for (const all of wanted.values()) if (!all) pendingFirst++;
  const anyAll = pendingFirst < wanted.size;

  let level: unknown[] = [value];
  while (level.length > 0 && (anyAll || pendingFirst > 0)) {
    const next: unknown[] = [];
    for (const node of level) {
      if (typeof node !== 'object' || node === null) continue;
      if (Array.isArray(node)) {
        for (const item of node) next.push(item);
        continue;
      }
      for (const k in node) {
        if (!Object.hasOwn(node, k)) continue;
        const v = (node as Record<string, unknown>)[k];
        const all = wanted.get(k);
        if (all !== undefined) {
          const list = found.get(k);
          if (list === undefined) {
            found.set(k, [v]);
            if (!all) pendingFirst--;
          } else if (all) {
            list.push(v);
          }
        }
        if (typeof v === 'object' && v !== null) next.push(v);
      }
    }
    level = next;
  }
  const out: Record<string, unknown> = {};
  for (const [k, all] of wanted) {
    const list = found.get(k);
    if (list === undefined) setOwn(out, k, []);
    else if (!all) setOwn(out, k, list[0]);
    else setOwn(out, k, list.length === 1 ? list[0] : list);
  }
  return out;
}
