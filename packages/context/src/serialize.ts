import { ContextError } from './errors.js';

/**
 * JSON of one field value, taken now. `undefined` becomes `null`; a function, a symbol, a BigInt
 * or a circular structure throws a `ContextError` (`LC_CONTEXT_NOT_SERIALIZABLE`) naming the field.
 * Functions nested inside objects are left out, as JSON.stringify does.
 */
export function fieldJson(field: string, value: unknown): string {
  const t = typeof value;
  if (t === 'function' || t === 'symbol' || t === 'bigint') {
    throw new ContextError('LC_CONTEXT_NOT_SERIALIZABLE', `field '${field}': a ${t} cannot be sent as JSON`, { field });
  }
  if (value === undefined) return 'null';
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    const why = /circular/i.test((err as Error).message) ? 'it is circular' : (err as Error).message;
    throw new ContextError('LC_CONTEXT_NOT_SERIALIZABLE', `field '${field}' cannot be sent as JSON: ${why}`, {
      field,
      cause: err,
    });
  }
  return json === undefined ? 'null' : json;
}

const SIMPLE_KEY = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** JSON of an object key. */
export function keyJson(key: string): string {
  return SIMPLE_KEY.test(key) ? `"${key}"` : JSON.stringify(key);
}
