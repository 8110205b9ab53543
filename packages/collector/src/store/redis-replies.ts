/**
 * Reading what Redis answers the store: the state hash as a StoredContext (toRecord()), a field's
 * stored text as a value, and the hash's own entries (status, times) as the store's types.
 */
import { isPlainObject, setOwn } from '@contexture/context/protocol';
import { CollectorError } from '../internal/errors.js';
import { decodeValue, inKeyOrder, ownValue } from './json.js';
import type { KnownField } from './known-contexts.js';
import { label } from './redis-failure.js';
import type { ContextStatus, StoredContext } from './types.js';

const STATUS: Record<string, ContextStatus> = { born: 'born', finished: 'finished', transient: 'transient' };

/**
 * A field's stored text as a value (`own`: the store's own, see ownValue(); else a plain copy);
 * text that is not JSON (foreign data under the store's prefix) is LC_STORE_CORRUPT.
 */
export function storedValue(id: string, name: string | null, text: string, own = true): unknown {
  try {
    return own ? ownValue(text) : decodeValue(text);
  } catch (err) {
    throw new CollectorError(
      'LC_STORE_CORRUPT',
      `context store: ${name === null ? 'the headers' : `field ${label(name)}`} of ${label(id)} is not JSON (foreign data under the store's prefix?)`,
      { cause: err },
    );
  }
}

/** The value of `name` in a flat field/value list (HGETALL's reply); undefined when absent. */
export function hashEntry(flat: readonly string[], name: string): string | undefined {
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === name) return flat[i + 1];
  return undefined;
}

export function toNumber(v: string | null | undefined): number | null {
  if (v === null || v === undefined || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

export function toSeconds(ms: string | null | undefined): number | null {
  const n = toNumber(ms);
  return n === null ? null : n / 1000;
}

export function toStatus(v: string | null | undefined): ContextStatus | null {
  return v === null || v === undefined ? null : (STATUS[v] ?? null);
}

/** The JSON text of a stored '<seq>:<JSON>' value; null for a tombstone or no value. */
export function valueText(stored: string | null): string | null {
  if (stored === null) return null;
  const text = stored.slice(stored.indexOf(':') + 1);
  return text === '' ? null : text;
}

/**
 * A record from the state hash as a flat field/value list; null when it has no version (yet).
 * With `known` (what the store knows of the fields), the values are the store's own, frozen: a
 * field whose text is the one known takes the known value, and the others are noted there. With
 * `fields` (the fields of the version the hash is of, known), `flat` holds only the rest.
 */
export function toRecord(
  id: string,
  flat: string[],
  known?: Map<string, KnownField>,
  fields?: ReadonlyMap<string, KnownField>,
): StoredContext | null {
  const context: Record<string, unknown> = {};
  const own = new Map<string, string>();
  if (fields !== undefined) {
    // The context's own fields, known: `flat` holds the rest.
    for (const [name, f] of fields)
      if (f.text !== '') setOwn(context, name, (f.value ??= storedValue(id, name, f.text)));
  }
  for (let i = 0; i < flat.length; i += 2) {
    const key = flat[i]!;
    const value = flat[i + 1]!;
    if (key.charCodeAt(0) === 46 /* . */) {
      const text = valueText(value);
      if (text === null) continue;
      const name = key.slice(1);
      if (known === undefined) {
        setOwn(context, name, storedValue(id, name, text, false));
        continue;
      }
      let f = known.get(name);
      if (f === undefined || f.text !== text) {
        // Noted once it reads: text that is not JSON is never known.
        f = { text, value: storedValue(id, name, text) };
        known.set(name, f);
      }
      setOwn(context, name, (f.value ??= storedValue(id, name, text)));
    } else {
      own.set(key, value);
    }
  }
  // Known fields the hash no longer holds are known to be absent.
  if (known !== undefined)
    for (const [name, f] of known) if (f.text !== '' && !Object.hasOwn(context, name)) known.set(name, { text: '' });
  const version = Number(own.get('#v') ?? 0);
  if (!(version > 0)) return null;
  const hd = own.get('#hd');
  const headers = hd === undefined ? null : storedValue(id, null, hd, false);
  return {
    id,
    version,
    context: inKeyOrder(context),
    status: toStatus(own.get('#st')),
    rkey: own.get('#rk') ?? null,
    headers: isPlainObject(headers) ? headers : null,
    born_at: toNumber(own.get('#ba')),
    updated_at: toSeconds(own.get('#ua')),
    finished_at: toNumber(own.get('#fa')),
    incarnation: own.get('#in') ?? '',
  };
}
