import { isUtf8 } from 'node:buffer';
import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import {
  envelopeLine,
  parseLine,
  type LineInfo,
  stringifyJson,
  type Malformed,
  type MessageMeta,
  type ParsedLine,
} from '@contexture/context/protocol';
import { nestedDeeper } from '../depth.js';
import { LineSkipper, MAX_LINE } from '../line-source.js';
import type { InputPlace } from '../options.js';
import type { CollateJob, CollateResult, CollateSpec, FlushJob } from './collate-worker.js';
import type { WorkerSpec } from './line-worker.js';

/** Most bytes per chunk (whole lines; a longer line makes a longer chunk). */
const CHUNK = 1 << 20;
/** Chunks in flight. */
const IN_FLIGHT = 4;
/** The Collator's defaults, shared out between the workers. */
const MAX_OPEN = 100_000;
const REMEMBER_COMPLETED = 100_000;
/** Envelope prefixes remembered at most; streams mostly have one. */
const MAX_PREFIXES = 16;
/** `{"obj_id":"` */
const BODY_START = Buffer.from('{"obj_id":"', 'latin1');

/** Where the merged results go, in input order. */
export interface CollateSink {
  /** One output document, with its newline. */
  output(doc: string): void;
  malformed(problem: Malformed, place: InputPlace): void;
  messages(n: number): void;
  /** Objects open now, over every share. */
  open(n: number): void;
  readonly ready: boolean;
  whenReady(): Promise<void>;
  readonly stopped: boolean;
}

/** The results of one chunk: one per worker, and the main thread's (lines it found malformed). */
interface Pending {
  parts: CollateResult[];
  need: number;
}

/** FNV-1a over a string's char codes; the bytes of an ASCII id hash the same. */
function hashOf(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const QUOTE = 34;

/** True when the `j` at `k` is that of `"obj_id"` or `"object"`. */
function keyAt(b: Uint8Array, k: number): boolean {
  if (b[k - 3] !== QUOTE || b[k - 2] !== 111 || b[k - 1] !== 98) return false;
  const c = b[k + 1];
  if (c === 95) return b[k + 2] === 105 && b[k + 3] === 100 && b[k + 4] === QUOTE; // _id"
  return c === 101 && b[k + 2] === 99 && b[k + 3] === 116 && b[k + 4] === QUOTE; // ect"
}

/**
 * `lcmon -sc` on several cores. Objects are independent of each other, so the `obj_id`s are shared
 * out between workers (by a hash of the id), each folding its share with a {@link Collator} of its
 * own. The main thread cuts stdin into chunks of whole lines in memory shared with the workers and
 * routes each line: from its bytes when they show its `obj_id` for certain, else by parsing it
 * (a line that is not a message is reported from here). Every object comes back with the line
 * number of the message that completed it, and the shares are merged by it: the output is the one
 * collator's over the whole input, malformed reports included. At the end, the objects still held
 * are merged by the line at which they began to wait for missing messages, then (with
 * `--flush-incomplete`) those that never finished by the line that opened them: again the one
 * collator's order. One difference: the limits on objects open at once (`maxOpen`) and on
 * completed ids remembered (`rememberCompleted`) are shared out between the workers, so past
 * 100,000 objects open at once, which one is evicted first can differ.
 */
export class ParallelCollator {
  private readonly workers: Worker[];
  private readonly n: number;
  private readonly results = new Map<number, Pending>();
  private readonly opens: number[];
  /** Each share's late messages so far (see {@link late}). */
  private readonly lates: number[];
  private failed: Error | undefined;
  /** The workers are being stopped: their exit is no failure. */
  private ending = false;
  private wake: (() => void) | undefined;
  private sent = 0;
  private next = 0;
  private lineNo = 0;
  private reading: Promise<void> = Promise.resolve();
  private flushed: CollateResult[] = [];
  /** Input since the last chunk handed over, in the pieces it came in. */
  private pieces: Uint8Array[] = [];
  private size = 0;
  /** Canonical envelope prefixes (printable ASCII) read from lines parsed here, as text and bytes. */
  private readonly prefixes: string[] = [];
  private readonly prefixBytes: Buffer[] = [];
  /** Where the next backslash of the chunk being routed is (Infinity: none). */
  private nextBackslash = -1;
  private readonly maxDepth: number;

  constructor(
    spec: WorkerSpec & { flushIncomplete: boolean },
    private readonly sink: CollateSink,
  ) {
    this.n = Math.max(1, Math.min(4, availableParallelism()));
    this.maxDepth = spec.maxDepth;
    this.opens = new Array<number>(this.n).fill(0);
    this.lates = new Array<number>(this.n).fill(0);
    const workerData: CollateSpec = {
      ...spec,
      maxOpen: Math.ceil(MAX_OPEN / this.n),
      rememberCompleted: Math.ceil(REMEMBER_COMPLETED / this.n),
    };
    this.workers = Array.from({ length: this.n }, (_, share) => {
      const w = new Worker(new URL('./collate-worker.js', import.meta.url), { workerData });
      w.on('message', (r: CollateResult) => this.onResult(share, r));
      w.on('error', (err) => {
        this.failed ??= err;
        this.poke();
      });
      // A worker gone without an error (killed, exited) would leave the chunks it held unanswered.
      w.on('exit', (code) => {
        if (this.ending) return;
        this.failed ??= new Error(`a collation worker stopped (exit code ${code})`);
        this.poke();
      });
      return w;
    });
  }

  /** Reads the stream to its end (every result put out), or until the sink stops or `signal` aborts. */
  read(stream: Readable, signal: AbortSignal): Promise<void> {
    this.reading = this.readAll(stream, signal);
    return this.reading;
  }

  /**
   * Ends: waits for the chunks in flight and puts them out, then, with `flush` (while the sink takes
   * output), gives out what the workers still hold (waiting objects, then with `includeOpen` the
   * ones that never finished), and stops the workers. Resolves with a worker's failure, if one
   * failed (then what it held is not given out), else undefined.
   */
  async finish(flush: boolean, includeOpen: boolean): Promise<Error | undefined> {
    try {
      await this.reading.catch(() => {});
      await this.waitFor(0);
      if (this.failed !== undefined) return this.failed;
      if (!flush || this.sink.stopped) return undefined;
      const job: FlushJob = { type: 'flush', includeOpen };
      this.flushed = [];
      for (const w of this.workers) w.postMessage(job);
      while (this.flushed.length < this.n && this.failed === undefined) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
      if (this.failed !== undefined) return this.failed;
      const parts = this.flushed;
      // The waiting objects of every share, then the open ones.
      this.merge(
        parts.map((r) => ({
          ...r,
          ends: r.ends.slice(0, r.waiting),
          positions: r.positions.slice(0, r.waiting),
          malformed: [],
        })),
      );
      if (includeOpen && !this.sink.stopped) {
        this.merge(
          parts.map((r) => {
            const at = r.waiting ?? 0;
            const from = at === 0 ? 0 : r.ends[at - 1]!;
            return {
              ...r,
              text: r.text.slice(from),
              ends: r.ends.slice(at).map((e) => e - from),
              positions: r.positions.slice(at),
              malformed: [],
            };
          }),
        );
      }
      return undefined;
    } finally {
      this.ending = true;
      await Promise.all(this.workers.map((w) => w.terminate()));
    }
  }

  /** Messages that came after their object was given out (not in it), over every share. */
  get late(): number {
    let n = 0;
    for (const l of this.lates) n += l;
    return n;
  }

  private onResult(share: number, r: CollateResult): void {
    this.lates[share] = r.late;
    if (r.id === -1) {
      this.flushed.push(r);
      this.poke();
      return;
    }
    this.opens[share] = r.open;
    this.add(r, this.n + 1);
  }

  private add(r: CollateResult, need: number): void {
    let p = this.results.get(r.id);
    if (p === undefined) this.results.set(r.id, (p = { parts: [], need }));
    p.parts.push(r);
    if (p.parts.length < p.need) return;
    if (this.wake !== undefined) {
      this.poke();
    } else if (this.drain() && this.sent === this.next) {
      // Put out as they come, not only when the reader next waits: input may pause. The workers
      // are free while input is slow to come: hand over the lines held so far.
      this.sendHeld();
    }
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Puts out every chunk whose results are all in, in order; false once the sink has stopped. */
  private drain(): boolean {
    for (;;) {
      if (this.sink.stopped) return false;
      const p = this.results.get(this.next);
      if (p === undefined || p.parts.length < p.need) return true;
      this.results.delete(this.next);
      let messages = 0;
      for (const r of p.parts) messages += r.messages;
      this.sink.messages(messages);
      this.merge(p.parts);
      let open = 0;
      for (const o of this.opens) open += o;
      this.sink.open(open);
      this.next++;
    }
  }

  /** Puts out the documents and malformed lines of several shares in the order of their line numbers. */
  private merge(parts: CollateResult[]): void {
    const sink = this.sink;
    const k = parts.length;
    const doc = new Array<number>(k).fill(0);
    const bad = new Array<number>(k).fill(0);
    for (;;) {
      let best = -1;
      let bestAt = Infinity;
      let isBad = false;
      for (let w = 0; w < k; w++) {
        const r = parts[w]!;
        if (doc[w]! < r.positions.length && r.positions[doc[w]!]! < bestAt) {
          best = w;
          bestAt = r.positions[doc[w]!]!;
          isBad = false;
        }
        if (bad[w]! < r.malformed.length && r.malformed[bad[w]!]![2] < bestAt) {
          best = w;
          bestAt = r.malformed[bad[w]!]![2];
          isBad = true;
        }
      }
      if (best === -1) return;
      const r = parts[best]!;
      if (isBad) {
        const [kind, detail, line] = r.malformed[bad[best]!++]!;
        sink.malformed(detail === undefined ? { kind } : { kind, detail }, { line });
      } else {
        const i = doc[best]!++;
        sink.output(r.text.slice(i === 0 ? 0 : r.ends[i - 1]!, r.ends[i]!));
      }
      if (sink.stopped) return;
    }
  }

  private async waitFor(inFlight: number): Promise<void> {
    for (;;) {
      if (!this.drain()) return;
      if (this.sent - this.next <= inFlight || this.failed !== undefined) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  /** Hands over the whole lines held; false when there is none. */
  private sendHeld(): boolean {
    const pieces = this.pieces;
    let k = pieces.length - 1;
    let cut = -1;
    for (; k >= 0; k--) {
      cut = pieces[k]!.lastIndexOf(10);
      if (cut !== -1) break;
    }
    if (cut === -1) return false;
    // The line begun after the last newline goes on in the pieces after it (none has a newline):
    // they are held with it.
    const tail = pieces[k]!;
    const held = pieces.slice(k + 1);
    if (cut + 1 < tail.length) held.unshift(tail.subarray(cut + 1));
    let rest = 0;
    for (const p of held) rest += p.length;
    const whole = pieces.slice(0, k);
    whole.push(tail.subarray(0, cut + 1));
    this.send(whole, this.size - rest);
    this.pieces = held;
    this.size = rest;
    return true;
  }

  /**
   * The share of a line from its bytes, when they show its `obj_id` for certain; -1 when the line
   * must be parsed to know. Certain: the line is a plain body starting `{"obj_id":"`, or a known
   * envelope prefix and then such a body; after that `"obj_id"`, neither `"obj_id"` nor `"object"`
   * occurs in the line (no second `obj_id` in the body, no second `object` in the envelope); the
   * line holds no backslash (so no key is spelled with escapes); the id is printable ASCII. If such
   * a line is JSON, that id is its message's `obj_id`.
   */
  private route(b: Buffer, t: string, s: number, e: number): number {
    if (this.nextBackslash < s) {
      const k = t.indexOf('\\', s);
      this.nextBackslash = k === -1 ? Infinity : k;
    }
    if (this.nextBackslash < e) return -1;
    let body = -1;
    if (b[s + 2] === 111) {
      body = s;
    } else {
      for (const p of this.prefixBytes) {
        const n = p.length;
        if (e - s <= n) continue;
        let i = 0;
        while (i < n && b[s + i] === p[i]) i++;
        if (i === n) {
          body = s + n;
          break;
        }
      }
      if (body === -1) return -1;
    }
    if (e - body <= BODY_START.length) return -1;
    for (let i = 0; i < BODY_START.length; i++) if (b[body + i] !== BODY_START[i]) return -1;
    const idFrom = body + BODY_START.length;
    const quote = t.indexOf('"', idFrom);
    if (quote >= e || quote === idFrom || quote === -1) return -1;
    for (let k = t.indexOf('j', quote); k !== -1 && k < e; k = t.indexOf('j', k + 1)) if (keyAt(b, k)) return -1;
    let h = 0x811c9dc5;
    for (let i = idFrom; i < quote; i++) {
      const c = b[i]!;
      if (c > 126 || c < 32) return -1;
      h = Math.imul(h ^ c, 0x01000193);
    }
    return (h >>> 0) % this.n;
  }

  /** The share of a line parsed here, or -1 (reported) when it is not a message. */
  private parsed(b: Buffer, s: number, e: number, malformed: CollateResult['malformed']): number {
    // Bytes that are not UTF-8 are reported, never read as U+FFFD.
    if (!isUtf8(b.subarray(s, e))) {
      malformed.push(['not UTF-8', undefined, this.lineNo]);
      return -1;
    }
    // A BOM inside the input is kept: that line is not JSON.
    const line = b.toString('utf8', s, e);
    // Blank lines (spaces, tabs) are not input.
    if (line.charCodeAt(0) <= 32 && line.trim().length === 0) return -1;
    const info: LineInfo = { envelope: false };
    const parsed = parseLine(line, info);
    if ((parsed as ParsedLine).message === undefined) {
      const m = parsed as Malformed;
      malformed.push([m.kind, m.detail, this.lineNo]);
      return -1;
    }
    // Reported here, as a worker would: its headers are not to be serialised.
    const depth = this.maxDepth;
    if (depth > 0 && nestedDeeper(line, info.envelope ? depth + 1 : depth)) {
      malformed.push(['too deep', `more than ${depth} levels`, this.lineNo]);
      return -1;
    }
    const { message, meta } = parsed as ParsedLine;
    this.learn(line, meta);
    // A note (no obj_id) has no object: any share skips it, and counts it as a message read.
    return hashOf(message.obj_id ?? '') % this.n;
  }

  private learn(line: string, meta: MessageMeta): void {
    if (this.prefixes.length >= MAX_PREFIXES || (meta.rkey === undefined && meta.headers === undefined)) return;
    const p = envelopeLine(meta.rkey ?? null, stringifyJson(meta.headers ?? {})!, '').slice(0, -1);
    if (!line.startsWith(p) || !/^[\x20-\x7e]*$/.test(p) || this.prefixes.includes(p)) return;
    this.prefixes.push(p);
    this.prefixBytes.push(Buffer.from(p, 'latin1'));
  }

  /** Routes the lines of a chunk and hands each worker its share, in memory they all read. */
  private send(pieces: readonly Uint8Array[], size: number): void {
    const bytes = new Uint8Array(new SharedArrayBuffer(size));
    let at = 0;
    for (const p of pieces) {
      bytes.set(p, at);
      at += p.length;
    }
    const id = this.sent++;
    // One byte per character: the searches run on the text, the offsets are the bytes'.
    const buf = Buffer.from(bytes.buffer, 0, size);
    // The chunk as Latin-1 text, one character per byte: V8 finds a character in it faster than
    // Buffer#indexOf finds a byte (no call through a JavaScript wrapper).
    const t = buf.toString('latin1');
    this.nextBackslash = -1;
    const shares: number[][] = Array.from({ length: this.n }, () => []);
    const malformed: CollateResult['malformed'] = [];
    // A byte order mark at the start of the input is not part of its first line (as with -s).
    let start = id === 0 && size >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
    while (start < size) {
      let nl = t.indexOf('\n', start);
      if (nl === -1) nl = size;
      this.lineNo++;
      // CR before LF is not part of the line, nor at the very end of the input.
      const end = nl > start && bytes[nl - 1] === 13 ? nl - 1 : nl;
      if (end > start) {
        let to = buf[start] === 123 ? this.route(buf, t, start, end) : -1;
        if (to === -1) to = this.parsed(buf, start, end, malformed);
        if (to !== -1) shares[to]!.push(start, end, this.lineNo);
      }
      start = nl + 1;
    }
    for (let w = 0; w < this.n; w++) {
      const lines = Float64Array.from(shares[w]!);
      const job: CollateJob = { type: 'chunk', id, bytes, lines };
      this.workers[w]!.postMessage(job, [lines.buffer]);
    }
    this.add({ id, text: '', ends: [], positions: [], malformed, messages: 0, open: 0, late: 0 }, this.n + 1);
  }

  /** A line too large to read: reported in its place, as one line. */
  private tooLarge(): void {
    const id = this.sent++;
    this.lineNo++;
    const r: CollateResult = {
      id,
      text: '',
      ends: [],
      positions: [],
      malformed: [['too large', `more than ${MAX_LINE} bytes`, this.lineNo]],
      messages: 0,
      open: 0,
      late: 0,
    };
    this.add(r, 1);
  }

  private async readAll(stream: Readable, signal: AbortSignal): Promise<void> {
    const sink = this.sink;
    const onAbort = () => {
      stream.destroy();
      this.poke();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    const skip = new LineSkipper();
    try {
      if (signal.aborted) return;
      for await (const chunk of stream) {
        const buf = skip.rest(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
        if (buf === null) continue;
        this.pieces.push(buf);
        this.size += buf.length;
        // Gather up to CHUNK while input keeps coming or the workers are busy; a pipe that pauses
        // (a live `... | lcmon -sc`) gets its lines handled at once.
        if (this.size < CHUNK && (stream.readableLength > 0 || this.sent > this.next)) continue;
        this.sendHeld();
        if (this.size > MAX_LINE) {
          // What is held now is the start of one line (the whole lines before it went above).
          this.pieces = [];
          this.size = 0;
          skip.skipping = true;
          this.tooLarge();
        }
        await this.waitFor(IN_FLIGHT);
        if (this.failed !== undefined) throw this.failed;
        if (!this.drain()) return;
        if (!sink.ready) await Promise.race([sink.whenReady(), aborted]);
        if (sink.stopped || signal.aborted) return;
      }
      if (this.size > 0) {
        this.send(this.pieces, this.size);
        this.pieces = [];
        this.size = 0;
      }
      await this.waitFor(0);
      if (this.failed !== undefined) throw this.failed;
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }
}
