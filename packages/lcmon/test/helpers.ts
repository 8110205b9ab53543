import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { amqpUrl } from '@contexture/test-support';

/** The built CLI, run as users run it. */
export const LCMON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/bin/lcmon.js');

/** What a finished lcmon run left. */
export interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout split into lines, without the empty last one. */
  lines: string[];
}

const running = new Set<Lcmon>();

// A test that fails half-way must not leave an lcmon running (it would keep mocha alive).
afterEach(() => {
  for (const l of running) if (l.child.exitCode === null && l.child.signalCode === null) l.child.kill('SIGKILL');
  running.clear();
});

/** A running lcmon, with its output as it comes. */
export class Lcmon {
  stdout = '';
  stderr = '';
  readonly exited: Promise<Outcome>;
  private listeners: Array<() => void> = [];

  constructor(readonly child: ChildProcessWithoutNullStreams) {
    running.add(this);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      this.stdout += s;
      this.notify();
    });
    child.stderr.on('data', (s: string) => {
      this.stderr += s;
      this.notify();
    });
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        this.notify();
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr, lines: splitLines(this.stdout) });
      });
    });
  }

  get lines(): string[] {
    return splitLines(this.stdout);
  }

  /** Resolves once `check` holds on the output so far; rejects (with the output) if lcmon exits first or after `timeoutMs`. */
  until(check: (l: Lcmon) => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    if (check(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let done = false;
      const timer = setTimeout(
        () =>
          finish(
            new Error(
              `timed out waiting for ${what}\nstdout: ${this.stdout.slice(-2000)}\nstderr: ${this.stderr.slice(-2000)}`,
            ),
          ),
        timeoutMs,
      );
      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== listener);
        if (err) reject(err);
        else resolve();
      };
      const listener = () => {
        if (check(this)) finish();
        else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          finish(
            new Error(
              `lcmon exited (${this.child.exitCode ?? this.child.signalCode}) before ${what}\nstdout: ${this.stdout.slice(-2000)}\nstderr: ${this.stderr.slice(-2000)}`,
            ),
          );
        }
      };
      this.listeners.push(listener);
      this.child.once('exit', listener);
    });
  }

  /** Waits for lcmon's note that it consumes (the queue is declared and bound); returns the queue name. */
  async ready(): Promise<string> {
    await this.until((l) => /^lcmon: (listening on|consuming queue) /m.test(l.stderr), 'the ready line on stderr');
    const m = /^lcmon: (?:listening on .*, queue (\S+)|consuming queue "([^"]+)")/m.exec(this.stderr)!;
    return m[1] ?? m[2]!;
  }

  untilLines(n: number, timeoutMs?: number): Promise<void> {
    return this.until((l) => l.lines.length >= n, `${n} lines on stdout`, timeoutMs);
  }

  /** Ctrl-C, and the outcome. */
  async interrupt(): Promise<Outcome> {
    this.child.kill('SIGINT');
    return this.exited;
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }
}

export function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Starts lcmon with `args`; `stdin` is written and closed when given, else left open. */
export function start(
  args: string[],
  options: { stdin?: string | Buffer; env?: Record<string, string | undefined> } = {},
): Lcmon {
  const env: Record<string, string | undefined> = {
    ...process.env,
    NO_COLOR: undefined,
    FORCE_COLOR: undefined,
    CONTEXTURE_URL: amqpUrl(),
    ...options.env,
  };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const child = spawn(process.execPath, [LCMON, ...args], { env: env as NodeJS.ProcessEnv, stdio: 'pipe' });
  const l = new Lcmon(child);
  child.stdin.on('error', () => {});
  if (options.stdin !== undefined) child.stdin.end(options.stdin);
  return l;
}

/** Runs lcmon to the end over `stdin` (text or bytes; empty when not given). */
export function run(
  args: string[],
  stdin: string | Buffer = '',
  env?: Record<string, string | undefined>,
): Promise<Outcome> {
  return start(args, { stdin, env }).exited;
}

/** Parses every stdout line as JSON (the test fails on a line that is not). */
export function json(lines: string[]): any[] {
  return lines.map((l) => JSON.parse(l));
}

/** A temporary directory removed by the returned function. */
export function tempDir(): { dir: string; file: (name: string, text?: string) => string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'lcmon-test-'));
  return {
    dir,
    file: (name, text) => {
      const p = path.join(dir, name);
      if (text !== undefined) writeFileSync(p, text);
      return p;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Starts lcmon with stdin from a file and stdout into a file (as `lcmon ... < in > out`). */
export function startToFile(args: string[], outFile: string): { l: Lcmon; closed: Promise<void> } {
  const env: Record<string, string | undefined> = { ...process.env, CONTEXTURE_URL: amqpUrl() };
  delete env.NO_COLOR;
  delete env.FORCE_COLOR;
  const child = spawn(process.execPath, [LCMON, ...args], {
    env: env as NodeJS.ProcessEnv,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out = createWriteStream(outFile);
  child.stdout.pipe(out);
  const closed = new Promise<void>((resolve) => out.on('close', () => resolve()));
  const l = new Lcmon(child);
  return { l, closed };
}

/** One context message body. */
export interface Body {
  obj_id: string;
  obj: Record<string, unknown>;
  seq?: number;
  status?: string;
  action?: string;
  elapsed?: number;
  time_in?: number;
  [k: string]: unknown;
}

/**
 * The messages of one context's life: born with `fields`, one update per entry of `updates`, then
 * finished. Times are fixed so that outputs compare exactly.
 */
export function lifecycle(
  id: string,
  fields: Record<string, unknown>,
  updates: Array<Record<string, unknown>>,
  t0 = 1_700_000_000,
): Body[] {
  const out: Body[] = [{ obj_id: id, obj: fields, status: 'born', seq: 0, time_in: t0, handler_id: 'h-1' }];
  for (const [i, u] of updates.entries()) {
    out.push({ obj_id: id, obj: u, seq: i + 1, time_in: t0 + (i + 1) / 10, handler_id: 'h-1' });
  }
  const last = updates.length + 1;
  out.push({
    obj_id: id,
    obj: {},
    status: 'finished',
    elapsed: last / 10,
    seq: last,
    time_in: t0 + last / 10,
    handler_id: 'h-1',
  });
  return out;
}

/** `lcmon -v` lines of bodies. */
export function envelopes(
  bodies: Body[],
  rkey = 'web.handle',
  headers: Record<string, unknown> = { hostname: 'box-1' },
): string {
  return `${bodies.map((b) => JSON.stringify({ rkey, headers, object: b })).join('\n')}\n`;
}

/** A plain amqplib publisher: the independent source of traffic. */
export class Publisher {
  private constructor(
    private readonly conn: amqp.ChannelModel,
    readonly channel: amqp.ConfirmChannel,
  ) {}

  static async open(exchange?: string, type: 'topic' | 'headers' = 'topic'): Promise<Publisher> {
    const conn = await amqp.connect(amqpUrl());
    const channel = await conn.createConfirmChannel();
    if (exchange !== undefined) await channel.assertExchange(exchange, type, { durable: true });
    return new Publisher(conn, channel);
  }

  /** Publishes bodies (objects are serialised; strings and Buffers go as they are) and waits for the broker's confirms. */
  async publish(
    exchange: string,
    rkey: string,
    bodies: Array<Body | string | Buffer>,
    options: { headers?: Record<string, unknown>; contentType?: string } = {},
  ): Promise<void> {
    for (const b of bodies) {
      const content = Buffer.isBuffer(b) ? b : Buffer.from(typeof b === 'string' ? b : JSON.stringify(b));
      this.channel.publish(exchange, rkey, content, {
        contentType: options.contentType ?? 'application/json',
        headers: options.headers ?? { hostname: 'box-1' },
      });
    }
    await this.channel.waitForConfirms();
  }

  async close(): Promise<void> {
    await this.conn.close().catch(() => {});
  }
}

/** True when the named queue exists on the broker (a passive declare on a throwaway channel). */
export async function queueExists(name: string): Promise<boolean> {
  const conn = await amqp.connect(amqpUrl());
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    try {
      await ch.checkQueue(name);
      return true;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return false;
      // 405: exclusive to another connection, which means it exists.
      if ((err as { code?: number }).code === 405) return true;
      throw err;
    }
  } finally {
    await conn.close().catch(() => {});
  }
}

/**
 * What the Python contexture's AMQP handler (1.3) publishes of itself, as its `json.dumps` writes
 * it, on routing key `default` with content type `text/plain`: no `obj_id` and no `obj`. First the
 * announcement it sends when it starts (its environment, then the fields every message gets), then
 * the one it sends when it stops.
 */
export const PY_ANNOUNCEMENT =
  '{"host": "box-1", "pid": 4242, "argv": ["worker.py", "--once"], "tid": 140230, "contexture": "1.3.0", "time_out": 1700000000.52, "time_in": 1700000000.5, "qtime": 0.02, "qlen": 0, "handler_id": "76bb5a4e-34b7-43a0-8ffc-19e448d33ea0"}';
export const PY_STOPPING =
  '{"stopping": true, "time_out": 1700000009.01, "time_in": 1700000009.0, "qtime": 0.01, "qlen": 0, "handler_id": "76bb5a4e-34b7-43a0-8ffc-19e448d33ea0"}';
