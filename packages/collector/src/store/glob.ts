import { CollectorError } from '../internal/errors.js';

/**
 * Redis-style glob patterns (`*`, `?`, `[abc]`, `[^a-z]`, `\x`), compiled to a RegExp, so the
 * memory store and the Redis store filter `list({ rkey })` alike; also used to escape a key prefix
 * for SCAN MATCH.
 */
export function globToRegExp(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[\\s\\S]*';
    else if (c === '?') re += '[\\s\\S]';
    else if (c === '\\' && i + 1 < pattern.length) re += escapeRe(pattern[++i]!);
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith('^');
      if (negate) body = body.slice(1);
      let cls = '';
      for (let j = 0; j < body.length; j++) {
        const b = body[j]!;
        if (b === '\\' && j + 1 < body.length) cls += escapeInClass(body[++j]!);
        else if (b === '-' && j > 0 && j < body.length - 1) cls += '-';
        else cls += escapeInClass(b);
      }
      re += `[${negate ? '^' : ''}${cls}]`;
      i = end;
    } else re += escapeRe(c);
  }
  try {
    return new RegExp(`${re}$`, 'u');
  } catch (err) {
    // A class whose range runs backwards (`[z-a]`), say.
    throw new CollectorError(
      'LC_STORE_INVALID_ARGUMENT',
      `${JSON.stringify(pattern.slice(0, 80))} is not a glob pattern (${(err as Error).message})`,
      { cause: err },
    );
  }
}

/** `c` as a literal outside a class: with the `u` flag, only syntax characters may be escaped. */
function escapeRe(c: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c;
}

/** `c` as a literal inside a class, where `-` makes a range. */
function escapeInClass(c: string): string {
  return c === '-' ? '\\-' : escapeRe(c);
}

/** Escapes a literal for use inside a Redis MATCH pattern. */
export function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
