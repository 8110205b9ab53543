import type { ChalkInstance } from 'chalk';
import {
  envelopeLine,
  stringifyJson,
  type BusMessage,
  type CollatedObject,
  type MessageMeta,
} from '@contexture/context/protocol';
import { jsonLine, prettyJson } from '../safe-json.js';
import { plainObject, verboseObject } from '../shapes.js';
import type { Transform } from '../transform.js';
import { colourJson } from './colour.js';

/** How output documents are shaped. */
export interface FormatOptions {
  /** `-v`: messages as `{rkey, headers, object}`, objects with headers, rkey, times and id. */
  verbose: boolean;
  /** `-p`: several lines per document, two-space indent. */
  pretty: boolean;
  /** Colours for `-p` output; undefined for none. JSON lines are never coloured. */
  colour: ChalkInstance | undefined;
  /**
   * `-k` / `-t` / `-z`, applied to the message body or the object's fields; with `-c -v -k`, to the
   * whole verbose record.
   */
  transform: Transform | undefined;
}

/**
 * Turns messages and collated objects into output documents (text without the final newline), or
 * undefined when `-z` left nothing. The common case, a message printed whole, reuses the body's
 * own JSON text instead of serialising it again.
 */
export class Formatter {
  constructor(private readonly o: FormatOptions) {}

  message(message: BusMessage, meta: MessageMeta, text: string | undefined): string | undefined {
    const { verbose, pretty, transform } = this.o;
    if (transform === undefined && !pretty) {
      if (!verbose) return jsonLine(message, text);
      const line = envelopeLine(meta.rkey ?? null, stringifyJson(meta.headers ?? {})!, text ?? stringifyJson(message)!);
      return jsonLine({ rkey: meta.rkey ?? null, headers: meta.headers ?? {}, object: message }, line);
    }
    let value: unknown = message;
    if (transform !== undefined) {
      value = transform(message);
      if (value === undefined) return undefined;
    }
    if (verbose) value = { rkey: meta.rkey ?? null, headers: meta.headers ?? {}, object: value };
    return this.render(value);
  }

  object(o: CollatedObject): string | undefined {
    if (this.o.verbose && this.o.transform?.extracts === true) {
      // -c -v -k: the keys are searched breadth-first in the whole record, as the Python lcmon
      // does (its rkey, headers, times and id first, then the object's fields); what is found is
      // what is printed.
      const found = this.o.transform(verboseObject(o));
      return found === undefined ? undefined : this.render(found);
    }
    let fields: unknown = o.object;
    if (this.o.transform !== undefined) {
      fields = this.o.transform(fields);
      if (fields === undefined) return undefined;
    }
    return this.render(this.o.verbose ? verboseObject(o, fields) : plainObject(o, fields));
  }

  private render(value: unknown): string {
    if (!this.o.pretty) return jsonLine(value);
    const text = prettyJson(value);
    return this.o.colour !== undefined ? colourJson(text, this.o.colour) : text;
  }
}
