import type { Writable } from 'node:stream';
import { HEARTBEAT_RKEY, parseHeartbeat, type Heartbeat } from '@contexture/context/protocol';
import { AmqpSource } from '../amqp-source.js';
import { LcmonError } from '../errors.js';
import type { ResolvedOptions } from '../options.js';
import { jsonLine } from '../safe-json.js';
import { EXIT, exitStatusFor } from './exit-codes.js';

/** What `lcmon --handlers` needs. */
export interface HandlersConfig {
  /** Connection options; the binding is the heartbeat key whatever they say. */
  amqp: ResolvedOptions;
  /** How long (ms) to listen: a little more than the publishers' heartbeat interval. */
  wait: number;
  /** JSON lines instead of a table. */
  verbose: boolean;
}

/** A heartbeat as listed: when it was heard, by this process's clock. */
interface Seen {
  h: Heartbeat;
  at: number;
}

const COLUMNS = ['KIND', 'ID', 'NAME', 'HOST', 'PID', 'QUEUED', 'DROPPED', 'RATE/S', 'RECONNECTS', 'SEEN'] as const;

/** The row of one heartbeat: handlers and collectors report their own counters. */
function row(s: Seen, now: number): string[] {
  const { h } = s;
  const st = h.stats;
  const n = (v: number | undefined) => (v === undefined ? '-' : String(Math.round(v * 10) / 10));
  const collector = h.kind === 'collector';
  return [
    h.kind,
    h.id.length > 40 ? `${h.id.slice(0, 39)}…` : h.id,
    h.name,
    h.host,
    String(h.pid),
    n(collector ? st.queue_depth : st.queued),
    n(collector ? st.dead_lettered : st.dropped),
    n(collector ? st.rate : st.published_per_s),
    n(st.reconnects),
    `${((now - s.at) / 1000).toFixed(1)}s ago`,
  ];
}

/** Pads columns to their widest cell; control characters (a heartbeat is untrusted input) become '?'. */
export function table(rows: string[][]): string {
  const clean = rows.map((r) => r.map((c) => c.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')));
  const widths = COLUMNS.map((_, i) => Math.max(...clean.map((r) => r[i]!.length)));
  return `${clean.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n')}\n`;
}

/**
 * `lcmon --handlers`: listens to the heartbeats on the exchange for `wait` ms (or until Ctrl-C) and
 * lists the live handlers and collectors heard, as a table or (with -v) JSON lines. One that said
 * it stopped is left out. Returns the exit status.
 */
export async function listHandlers(
  cfg: HandlersConfig,
  io: { stdout: Writable; stderr: Writable; signal: AbortSignal },
): Promise<number> {
  let source: AmqpSource;
  try {
    source = await AmqpSource.open({
      ...cfg.amqp,
      queue: undefined,
      bindingKeys: [HEARTBEAT_RKEY],
      bindingArgs: undefined,
      exchangeType: 'topic',
      noAck: true,
    });
  } catch (err) {
    const e =
      err instanceof LcmonError
        ? err
        : new LcmonError('LC_BROKER_DECLARE_FAILED', String((err as Error)?.message ?? err));
    io.stderr.write(`lcmon: ${e.message}\n`);
    return exitStatusFor(e.code);
  }
  const seen = new Map<string, Seen>();
  let invalid = 0;
  try {
    await source.channel.consume(
      source.queue,
      (msg) => {
        if (msg === null || msg.fields.routingKey !== HEARTBEAT_RKEY) return;
        const h = parseHeartbeat(msg.content);
        if (h === null) {
          invalid++;
          return;
        }
        if (h.state === 'stopped') seen.delete(h.id);
        else seen.set(h.id, { h, at: Date.now() });
      },
      { noAck: true },
    );
    io.stderr.write(
      `lcmon: listening for heartbeats on ${source.where}, exchange "${cfg.amqp.exchange}", for ${(cfg.wait / 1000).toFixed(1)} s\n`,
    );
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, cfg.wait);
      io.signal.addEventListener('abort', done, { once: true });
      function done() {
        clearTimeout(t);
        io.signal.removeEventListener('abort', done);
        resolve();
      }
    });
  } finally {
    await source.close();
  }
  const now = Date.now();
  const list = [...seen.values()].sort(
    (a, b) => a.h.kind.localeCompare(b.h.kind) || a.h.name.localeCompare(b.h.name) || a.h.id.localeCompare(b.h.id),
  );
  if (cfg.verbose) {
    for (const s of list) io.stdout.write(`${jsonLine({ ...s.h, seen_ago: Math.round(now - s.at) / 1000 })}\n`);
  } else if (list.length > 0) {
    io.stdout.write(table([[...COLUMNS], ...list.map((s) => row(s, now))]));
  }
  io.stderr.write(
    `lcmon: ${list.length} live handler(s) and collector(s) heard on "${cfg.amqp.exchange}" in ${(cfg.wait / 1000).toFixed(1)} s${invalid > 0 ? `; ${invalid} invalid heartbeat(s) ignored` : ''}\n`,
  );
  return EXIT.OK;
}
