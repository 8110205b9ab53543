/**
 * Helpers for building objects out of untrusted keys. A key such as `__proto__` or `constructor`
 * coming off the bus must become an ordinary own property, never reach a prototype.
 */

/** Sets `obj[key] = value` as an own data property, whatever the key. */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

/** True for a non-null, non-array object. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
