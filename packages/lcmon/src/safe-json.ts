import { stringifyJson } from '@contexture/context/protocol';

/**
 * Characters a JSON document may carry raw (JSON.stringify leaves them as they are) that a terminal
 * or a line-oriented tool would act on: DEL and the C1 controls (U+0080-U+009F, where U+009B is
 * CSI on terminals that take 8-bit controls), the line and paragraph separators (U+2028, U+2029)
 * and the bidirectional formatting controls (U+061C, U+200E, U+200F, U+202A-U+202E,
 * U+2066-U+2069) that reorder what is displayed. C0 controls (ESC included) are already escaped by
 * JSON itself. CR and LF appear raw only between tokens of a multi-line document.
 */
const UNSAFE_TEST = /[\n\r\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;
const UNSAFE_ALL = /[\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;
const NEWLINE = /[\n\r]/;

function escapeChar(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/**
 * Makes a JSON text safe for a terminal: every character of the unsafe set becomes its `\uXXXX`
 * escape. In valid JSON those characters can only stand inside strings, so the escaped text parses
 * to the same value.
 */
export function escapeJson(text: string): string {
  return text.replace(UNSAFE_ALL, escapeChar);
}

/**
 * One JSON document on one safe line. `text` is the document's JSON text when it is already at
 * hand (a body as it arrived): it is reused unless it spans lines. Otherwise `value` is serialised.
 */
export function jsonLine(value: unknown, text?: string): string {
  if (text !== undefined) {
    if (!UNSAFE_TEST.test(text)) return text;
    if (!NEWLINE.test(text)) return escapeJson(text);
  }
  const out = stringifyJson(value) ?? 'null';
  return UNSAFE_TEST.test(out) ? escapeJson(out) : out;
}

/** A document pretty-printed over several lines (two-space indent), escaped the same way. */
export function prettyJson(value: unknown): string {
  const out = stringifyJson(value, 2) ?? 'null';
  return escapeJson(out);
}
