import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PAGE_HEADERS, PageFiles, pageJson, redactText } from '@contexture/context/internal';
import { CollectorError } from '../internal/errors.js';
import { allContexts } from '../store/all-contexts.js';
import type { RedisContextStore } from '../store/redis-store.js';
import type { ContextStatus, ContextSummary, ContextWatch } from '../store/types.js';

/** Options of {@link StoreWebServer}. */
export interface StoreWebServerOptions {
  store: RedisContextStore;
  host: string;
  /** 0 for any free port. */
  port: number;
  /** What the page says it shows (Redis as `host:port` and the prefix); never credentials. */
  source: string;
  /**
   * The most rows `/api/contexts` returns; the ones past it are counted (up to `maxCounted`).
   * @default 1000
   */
  maxRows?: number;
  /**
   * How many matching contexts past `maxRows` are counted before the count stops (`more` then
   * says "at least").
   * @default 10000
   */
  maxCounted?: number;
  /**
   * Pages following a context live at once; more are refused (503) until one closes.
   * @default 64
   */
  maxWatchers?: number;
  /**
   * Events of one context kept for a page that reads slower than they come; past it the oldest
   * are dropped (the page loads the context whole on the next one).
   * @default 1000
   */
  maxQueue?: number;
}

/** dist/src/daemon → the package's web/. */
const ROOT = new URL('../../../web/', import.meta.url);

const STATUSES = new Set(['born', 'finished', 'transient', 'none']);

/** A request the page made wrong: answered 400 with `message`. */
class BadRequest extends Error {}

/**
 * The HTTP side of `contexture-store web`: the page; `/api/source` (what it shows); `/api/contexts?q=&status=` (the stored
 * contexts whose id or routing key holds `q`, capped, with a count of the others);
 * `/api/context?id=ID` (its record and delta history); `/events?id=ID` (Server-Sent Events: `ready`
 * once the watch is live, then each `change`, `reset` and `deleted` event of the store's `watch()`).
 */
export class StoreWebServer {
  private readonly server: http.Server;
  private readonly files: PageFiles;
  private readonly watchers = new Set<{ watch: ContextWatch; res: http.ServerResponse }>();
  private readonly maxRows: number;
  private readonly maxCounted: number;
  private readonly maxWatchers: number;
  private readonly maxQueue: number;
  private keepAlive: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: StoreWebServerOptions) {
    this.maxRows = opts.maxRows ?? 1000;
    this.maxCounted = opts.maxCounted ?? 10_000;
    this.maxWatchers = opts.maxWatchers ?? 64;
    this.maxQueue = opts.maxQueue ?? 1000;
    this.files = new PageFiles(ROOT);
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.fail(res, err));
    });
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
    // A comment now and then keeps proxies and idle timeouts from closing a quiet stream.
    this.keepAlive = setInterval(() => {
      for (const w of this.watchers) w.res.write(': keep-alive\n\n');
    }, 15_000);
    this.keepAlive.unref();
    const a = this.server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}/`;
  }

  /** Ends every page's stream, closes their watches and stops listening. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.keepAlive);
      const watches = [...this.watchers];
      this.watchers.clear();
      for (const w of watches) w.res.end();
      await Promise.all(watches.map((w) => w.watch.close()));
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        this.server.closeAllConnections();
      });
    })();
    return this.closing;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // The checks every request passes first, and the page's own files.
    const url = this.files.serve(req, res, this.opts.host);
    if (url === undefined) return;
    const q = url.searchParams;
    switch (url.pathname) {
      case '/api/source':
        return this.json(res, 200, { source: this.opts.source });
      case '/api/contexts':
        return this.json(res, 200, await this.contexts(q.get('q') ?? '', q.get('status') ?? ''));
      case '/api/context': {
        const id = q.get('id') ?? '';
        const context = await this.opts.store.get(id);
        if (context === null) return this.json(res, 404, { error: `no context ${JSON.stringify(id)}` });
        // Deleted in between: no history rather than an error.
        const history = (await this.opts.store.history(id)) ?? [];
        return this.json(res, 200, { context, history });
      }
      case '/events':
        return this.follow(res, q.get('id') ?? '');
      default:
        res.writeHead(404, { ...PAGE_HEADERS, 'Content-Type': 'text/plain' }).end('not found\n');
    }
  }

  private json(res: http.ServerResponse, status: number, body: unknown): void {
    // Made before anything is sent: one that cannot be made (foreign data nested thousands deep
    // under the prefix) fails the request with its status, not an empty 200.
    const text = pageJson(body);
    res.writeHead(status, { ...PAGE_HEADERS, 'Content-Type': 'application/json' }).end(text);
  }

  /** A failed request: 400 for what the page asked wrong, 503 when Redis is away, 500 else; never a password. */
  private fail(res: http.ServerResponse, err: unknown): void {
    const code = err instanceof CollectorError ? err.code : undefined;
    const status =
      err instanceof BadRequest || code === 'LC_STORE_INVALID_ARGUMENT'
        ? 400
        : code === 'LC_REDIS_UNAVAILABLE'
          ? 503
          : 500;
    const error = redactText((err as Error)?.message ?? String(err));
    if (res.headersSent) res.end();
    else this.json(res, status, { error });
  }

  /** The contexts whose id or routing key holds `text` (and of `status`), the first `maxRows` found. */
  private async contexts(text: string, status: string) {
    if (status !== '' && !STATUSES.has(status))
      throw new BadRequest(`status must be one of born, finished, transient, none (not ${JSON.stringify(status)})`);
    const wanted = status === '' ? undefined : status === 'none' ? null : (status as ContextStatus);
    const rows: ContextSummary[] = [];
    let more = 0;
    let stopped = false;
    for await (const row of allContexts(this.opts.store, wanted === undefined ? {} : { status: wanted })) {
      if (text !== '' && !row.id.includes(text) && !(row.rkey ?? '').includes(text)) continue;
      if (rows.length < this.maxRows) rows.push(row);
      else if (++more >= this.maxCounted) {
        stopped = true;
        break;
      }
    }
    return { items: rows, more, moreAtLeast: stopped };
  }

  /** Streams the store's events of one context to the page until either side closes. */
  private async follow(res: http.ServerResponse, id: string): Promise<void> {
    if (this.watchers.size >= this.maxWatchers)
      return this.json(res, 503, { error: `${this.maxWatchers} pages follow contexts already; close one` });
    // Throws for a bad id before anything is sent: the page gets a 400.
    const watch = this.opts.store.watch(id, { keepAlive: false, maxQueue: this.maxQueue });
    const entry = { watch, res };
    this.watchers.add(entry);
    res.on('close', () => {
      this.watchers.delete(entry);
      void watch.close();
    });
    res.writeHead(200, { ...PAGE_HEADERS, 'Content-Type': 'text/event-stream', Connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    const closed = new Promise<void>((resolve) => res.once('close', resolve));
    // A page that does not read holds the stream back; the watch then drops the oldest events
    // past its queue, which the page sees as a gap in versions (it loads the context whole anyway).
    const send = async (event: string, body: unknown) => {
      if (!res.write(`event: ${event}\ndata: ${pageJson(body)}\n\n`))
        await Promise.race([once(res, 'drain').catch(() => {}), closed]);
    };
    try {
      await watch.ready;
      await send('ready', { id });
      for await (const event of watch) await send(event.type, event);
    } catch (err) {
      await send('failed', { error: redactText((err as Error)?.message ?? String(err)) });
    } finally {
      this.watchers.delete(entry);
      await watch.close();
      res.end();
    }
  }
}
