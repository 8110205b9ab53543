import { Chalk, type ChalkInstance } from 'chalk';

/** A stream that may be a terminal. */
export interface MaybeTty {
  isTTY?: boolean;
  getColorDepth?(env?: Record<string, string | undefined>): number;
}

/**
 * Colour level (0 none, 1 basic, 2 256, 3 truecolor) for a stream: `--color` / `--no-color` first,
 * then `FORCE_COLOR` (0/false = off, 1/true/empty, 2, 3), then `NO_COLOR` (set and not empty =
 * off), then whether the stream is a TTY. FORCE_COLOR outranks NO_COLOR as in Node itself.
 */
export function colourLevel(
  flag: boolean | undefined,
  env: Record<string, string | undefined>,
  stream: MaybeTty,
): 0 | 1 | 2 | 3 {
  if (flag === false) return 0;
  const depth = (): 1 | 2 | 3 => {
    const d = stream.isTTY === true && typeof stream.getColorDepth === 'function' ? stream.getColorDepth(env) : 4;
    return d >= 24 ? 3 : d >= 8 ? 2 : 1;
  };
  const force = env.FORCE_COLOR;
  if (flag === true) {
    if (force === '2' || force === '3') return Number(force) as 2 | 3;
    return depth();
  }
  if (force !== undefined) {
    if (force === '0' || force.toLowerCase() === 'false') return 0;
    if (force === '2' || force === '3') return Number(force) as 2 | 3;
    return 1;
  }
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  return stream.isTTY === true ? depth() : 0;
}

/** A chalk instance at `level`. */
export function chalkAt(level: 0 | 1 | 2 | 3): ChalkInstance {
  return new Chalk({ level });
}

const TOKEN =
  /("(?:[^"\\]|\\.)*")(\s*:)?|\b(?:true|false|null)\b|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\bNaN\b|-?\bInfinity\b/g;

/** Colours a (pretty-printed, already escaped) JSON text: keys, strings, numbers (NaN and Infinity too), literals. */
export function colourJson(text: string, c: ChalkInstance): string {
  return text.replace(TOKEN, (match: string, str: string | undefined, colon: string | undefined) => {
    if (str !== undefined) return colon !== undefined ? c.blue(str) + colon : c.green(str);
    if (match === 'null') return c.dim(match);
    if (match === 'true' || match === 'false') return c.yellow(match);
    return c.cyan(match);
  });
}
