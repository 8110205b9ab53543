import { PAGE_HEADERS, PageFiles, pageJson } from '@contexture/context/internal';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HeartbeatWatch } from './heartbeats.js';
import type { LiveState } from './live-state.js';

/** Options of {@link WebServer}. */
export interface WebServerOptions {
  host: string;
  /** 0 for any free port. */
  port: number;
  state: LiveState;
  /** The heartbeat listener; undefined when the input is not the broker (`-s`). */
  heartbeats?: HeartbeatWatch;
  /** What the page says it watches (exchange and binding, or stdin); never credentials. */
  source: string;
  /** How long (ms) finished objects take to fade out, as the state keeps them. */
  fadeMs: number;
  /**
   * How often (ms) changes are sent: an object changed by many messages in between is sent once.
   * @default 100
   */
  flushEveryMs?: number;
  /**
   * Bytes a page may have unread before updates to it are dropped (counted; the page gets a fresh
   * snapshot once it caught up).
   * @default 4194304
   */
  maxBacklog?: number;
}

const ROOT = new URL('../../../web/', import.meta.url);

interface Client {
  res: http.ServerResponse;
  /** Updates not sent because the page fell behind. */
  dropped: number;
  /** Fell behind: gets a snapshot once drained. */
  behind: boolean;
  /** When its unread bytes went past the backlog (0: they are not past it). */
  overSince: number;
}

/** Pages following `/events` at once; more are answered 503 (each holds a snapshot while it reads it). */
const MAX_PAGES = 64;
/** A page whose unread bytes stay past the backlog this long (ms) is not reading: its stream is ended. */
const STALL_MS = 30_000;

/** JSON for the page, or undefined when it cannot be made (a text past V8's longest string). */
function tryJson(body: unknown): string | undefined {
  try {
    return pageJson(body);
  } catch {
    return undefined;
  }
}

/**
 * The HTTP side of `lcmon --web`: the page, `/events` (Server-Sent Events: a `hello` snapshot, then
 * coalesced `update`s and a `stats` event every second) and `/api/object?id=ID` (one object with its
 * history).
 */
export class WebServer {
  private readonly server: http.Server;
  private readonly clients = new Set<Client>();
  private readonly files: PageFiles;
  private timers: NodeJS.Timeout[] = [];
  private readonly maxBacklog: number;
  private lastMessages = 0;
  private lastAt = Date.now();
  private rate = 0;
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: WebServerOptions) {
    this.maxBacklog = opts.maxBacklog ?? 4 * 1024 * 1024;
    this.files = new PageFiles(ROOT);
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  /** Listens; resolves with the page's URL. */
  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const flush = setInterval(() => this.flush(), this.opts.flushEveryMs ?? 100);
    const stats = setInterval(() => this.stats(), 1000);
    flush.unref();
    stats.unref();
    this.timers = [flush, stats];
    const a = this.server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}/`;
  }

  /** Ends every page's stream and stops listening. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      for (const t of this.timers) clearInterval(t);
      for (const c of this.clients) c.res.end();
      this.clients.clear();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    // The checks every request passes first, and the page's own files.
    const url = this.files.serve(req, res, this.opts.host);
    if (url === undefined) return;
    if (url.pathname === '/events') {
      if (this.clients.size >= MAX_PAGES) {
        res
          .writeHead(503, { ...PAGE_HEADERS, 'Content-Type': 'text/plain', 'Retry-After': '5' })
          .end(`more than ${MAX_PAGES} pages follow this stream\n`);
        return;
      }
      this.subscribe(res);
      return;
    }
    if (url.pathname === '/api/object') {
      const d = this.opts.state.detail(url.searchParams.get('id') ?? '');
      const text = d === undefined ? undefined : tryJson(d);
      const [status, body] =
        d === undefined
          ? [404, pageJson({ error: 'no such object (finished and faded, or dropped)' })]
          : text === undefined
            ? [500, pageJson({ error: 'the object and its history are too large to send' })]
            : [200, text];
      res.writeHead(status, { ...PAGE_HEADERS, 'Content-Type': 'application/json' }).end(body);
      return;
    }
    res.writeHead(404, { ...PAGE_HEADERS, 'Content-Type': 'text/plain' }).end('not found\n');
  }

  private subscribe(res: http.ServerResponse): void {
    res.writeHead(200, { ...PAGE_HEADERS, 'Content-Type': 'text/event-stream', Connection: 'keep-alive' });
    const c: Client = { res, dropped: 0, behind: false, overSince: 0 };
    this.clients.add(c);
    res.on('close', () => this.clients.delete(c));
    res.on('drain', () => {
      if (c.behind) {
        c.behind = false;
        this.hello(c);
      }
    });
    res.write('retry: 2000\n\n');
    this.hello(c);
  }

  private hello(c: Client): void {
    const head = { source: this.opts.source, fadeMs: this.opts.fadeMs };
    const objects = this.opts.state.snapshot();
    if (this.send(c, 'hello', { ...head, objects, ...this.statsBody(c) })) return;
    // Too large for one text (objects of megabytes): the snapshot goes an object at a time.
    this.send(c, 'hello', { ...head, objects: [], ...this.statsBody(c) });
    this.sendEach(c, objects, []);
  }

  /** Updates of `changed` one object each (one too large even alone counted as dropped), then `gone`. */
  private sendEach(c: Client, changed: readonly unknown[], gone: readonly string[]): void {
    for (const o of changed) if (!this.send(c, 'update', { changed: [o], gone: [] })) c.dropped++;
    if (gone.length > 0) this.send(c, 'update', { changed: [], gone });
  }

  /** Writes one event; false when its JSON cannot be made (nothing is written then). */
  private send(c: Client, event: string, body: unknown): boolean {
    const text = tryJson(body);
    if (text === undefined) return false;
    c.res.write(`event: ${event}\ndata: ${text}\n\n`);
    return true;
  }

  /** Whether `c` reads too slowly for more now (it gets a snapshot once drained). */
  private lagging(c: Client): boolean {
    if (c.behind || c.res.writableLength > this.maxBacklog) {
      c.behind = true;
      return true;
    }
    return false;
  }

  private flush(): void {
    this.opts.state.tick();
    const { changed, gone } = this.opts.state.takeDirty();
    if (changed.length === 0 && gone.length === 0) return;
    // Made once, for the first page that reads (undefined: too large for one text).
    let data: string | undefined | null = null;
    for (const c of this.clients) {
      if (this.lagging(c)) {
        c.dropped += changed.length + gone.length;
        continue;
      }
      if (data === null) {
        const text = tryJson({ changed, gone });
        data = text === undefined ? undefined : `event: update\ndata: ${text}\n\n`;
      }
      if (data === undefined) this.sendEach(c, changed, gone);
      else c.res.write(data);
    }
  }

  private statsBody(c: Client): Record<string, unknown> {
    return {
      counters: {
        ...this.opts.state.counters(),
        rate: this.rate,
        droppedByLink: c.dropped,
        // The server's own memory, so that its bound can be seen from the page.
        heapMiB: Math.round(process.memoryUsage().heapUsed / 104857.6) / 10,
      },
      handlers: this.opts.heartbeats?.list() ?? null,
    };
  }

  private stats(): void {
    const now = Date.now();
    const { messages } = this.opts.state.counters();
    this.rate = Math.round(((messages - this.lastMessages) * 1000) / Math.max(1, now - this.lastAt));
    this.lastMessages = messages;
    this.lastAt = now;
    for (const c of this.clients) {
      if (c.res.writableLength <= this.maxBacklog) c.overSince = 0;
      else if (c.overSince === 0) c.overSince = now;
      else if (now - c.overSince > STALL_MS) {
        // Not reading at all: what it holds is freed; a live page's EventSource comes back.
        this.clients.delete(c);
        c.res.destroy();
        continue;
      }
      if (!this.lagging(c)) this.send(c, 'stats', this.statsBody(c));
    }
  }
}
