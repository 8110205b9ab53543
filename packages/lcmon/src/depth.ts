/**
 * True when the JSON text `text` (one that parsed) nests objects and arrays deeper than `limit`
 * levels: the same answer as `depthExceeds` of `@contexture/context/protocol` on its value (the
 * outermost value is level 1), found on the text, without walking the value. A deeper value would
 * overflow the stack of whatever recurses into it later (serialising, `-t`, `-z`, printing).
 */
export function nestedDeeper(text: string, limit: number): boolean {
  // Every level takes at least two characters.
  if (limit <= 0 || text.length <= 2 * limit) return false;
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      // Skip the string, with its escapes.
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 92) i++;
        else if (d === 34) break;
      }
    } else if (c === 123 || c === 91) {
      if (++depth > limit) return true;
    } else if (c === 125 || c === 93) {
      depth--;
    }
  }
  return false;
}
