import { printable } from '../internal/printable.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Gauge, Registry as PromRegistry } from 'prom-client';
import { redactText } from '@contexture/context/internal';
import { CollectorError } from '../internal/errors.js';
import type { Collector } from './collector.js';
import { type CollectorMetrics, collectorMetrics, type EntryLister } from './collector-metrics.js';
import { LinkHealth, type PingableRedis } from './link-health.js';

/** Options of {@link MetricsServer}. */
export interface MetricsServerOptions {
  collector: Collector;
  /** The store's Redis client (`store.redis`): `/healthz` watches it and PINGs it. */
  redis: PingableRedis;
  /** Where Redis is, as `/healthz` shows it (`host:port`; never a URL with its password). @default undefined */
  redisAt?: string;
  /** The registry of live handlers (a `Registry`), counted in `contexture_registry_entries`; null for none. @default null */
  entries?: EntryLister | null;
  /** The port to listen on; 0 for any free one (`url` then says which). */
  port: number;
  /** The address to listen on. @default '127.0.0.1' */
  host?: string;
  /** Also serve the process's own metrics (`process_*`, `nodejs_*`: memory, CPU, event loop lag). @default true */
  processMetrics?: boolean;
}

/** Why an address cannot be listened on, in words (from the error's code). */
function listenFailure(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return 'the address is already in use';
    case 'EACCES':
      return 'permission denied (a port below 1024 needs privileges)';
    case 'EADDRNOTAVAIL':
      return 'the address is not one of this host';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the host name does not resolve';
    default:
      return redactText(err.message);
  }
}

/** `host:port`, with an IPv6 address in brackets. */
const hostPort = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

/**
 * An HTTP server of a collector's metrics and health, for Prometheus and for probes (a container's
 * liveness or readiness): `GET /metrics`, the Prometheus text format of a prom-client registry of
 * its own (see {@link collectorMetrics}), and `GET /healthz`, 200 while the collector consumes from
 * RabbitMQ and Redis answers, else 503, with a JSON body saying which link is down, since when and
 * why (see {@link LinkHealth}). What `contexture-collector --metrics-port` runs.
 *
 * @example
 * const server = await MetricsServer.listen({ collector, redis: store.redis, port: 9464 });
 * // curl http://127.0.0.1:9464/metrics
 * await server.close();
 */
export class MetricsServer implements AsyncDisposable {
  /** The prom-client registry of the collector's metrics (never prom-client's global one); `/metrics` serves the process's metrics beside them. */
  readonly registry = new PromRegistry();
  readonly health: LinkHealth;
  private readonly metrics: CollectorMetrics;
  private readonly server: http.Server;
  private closing: Promise<void> | null = null;
  /** The process's metrics (CPU, memory, event loop, GC), shared by every server of the process. */
  private processRegistry: PromRegistry | null = null;

  private constructor(private readonly options: MetricsServerOptions) {
    this.health = new LinkHealth({ collector: options.collector, redis: options.redis, redisAt: options.redisAt });
    this.metrics = collectorMetrics(options.collector, { registry: this.registry, entries: options.entries ?? null });
    const health = this.health;
    new Gauge({
      name: 'contexture_collector_up',
      help: 'Whether the collector is connected, by link: rabbitmq (consuming), redis (answers a PING)',
      labelNames: ['link'],
      registers: [this.registry],
      async collect() {
        const r = await health.check();
        this.set({ link: 'rabbitmq' }, r.rabbitmq.up ? 1 : 0);
        this.set({ link: 'redis' }, r.redis.up ? 1 : 0);
      },
    });
    if (options.processMetrics !== false) this.processRegistry = processMetricsRegistry();
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  /**
   * Makes the server and listens.
   * @throws {CollectorError} `LC_METRICS_LISTEN_FAILED` when the address cannot be listened on (in
   * use, not allowed, not this host's), saying why in one line; the error's `cause` keeps the
   * system's error (its `code`, e.g. `EADDRINUSE`).
   */
  static async listen(options: MetricsServerOptions): Promise<MetricsServer> {
    const port = options.port;
    if (!Number.isSafeInteger(port) || port < 0 || port > 65_535)
      throw new CollectorError(
        'LC_DAEMON_INVALID_OPTION',
        `metrics port must be an integer from 0 to 65535, got ${port}`,
      );
    const host = options.host ?? '127.0.0.1';
    const s = new MetricsServer({ ...options, host });
    try {
      await new Promise<void>((resolve, reject) => {
        s.server.once('error', reject);
        s.server.listen(port, host, () => {
          s.server.off('error', reject);
          // Once listening, an error is a connection the server could not accept (out of file
          // descriptors): the server goes on listening, and the collector must not stop for it.
          s.server.on('error', () => {});
          resolve();
        });
      });
    } catch (err) {
      s.stopWatching();
      const why = listenFailure(err as NodeJS.ErrnoException);
      throw new CollectorError('LC_METRICS_LISTEN_FAILED', `cannot serve metrics on ${hostPort(host, port)}: ${why}`, {
        cause: err,
      });
    }
    return s;
  }

  /** The server's base URL, e.g. `http://127.0.0.1:9464` (the port it got, when asked for 0). */
  get url(): string {
    const a = this.server.address() as AddressInfo | null;
    const host = this.options.host ?? '127.0.0.1';
    return `http://${hostPort(host, a?.port ?? this.options.port)}`;
  }

  /** Stops listening and ends open connections; idempotent, the same promise to every caller. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.stopWatching();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private stopWatching(): void {
    this.metrics.close();
    this.health.close();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        send(405, 'text/plain; charset=utf-8', 'only GET and HEAD\n');
        return;
      }
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/metrics') {
        const own = await this.registry.metrics();
        const proc = this.processRegistry === null ? '' : await this.processRegistry.metrics();
        send(200, this.registry.contentType, proc === '' ? own : `${own}\n${proc}`);
      } else if (path === '/healthz') {
        const report = await this.health.check();
        send(report.status === 'ok' ? 200 : 503, 'application/json', `${JSON.stringify(report)}\n`);
      } else send(404, 'text/plain; charset=utf-8', 'not found: this server has /metrics and /healthz\n');
    } catch (err) {
      // A metric that failed to collect: said, without a stack (and without a password).
      if (!res.headersSent)
        send(500, 'text/plain; charset=utf-8', `${redactText((err as Error)?.message ?? String(err))}\n`);
      else res.destroy();
    }
  }
}

let processRegistry: PromRegistry | null = null;

/**
 * One registry of prom-client's default metrics for the whole process: they watch the process
 * (a GC observer, an event-loop delay histogram) and prom-client offers no way to stop them, so a
 * server made per call would leave them behind at each close.
 */
function processMetricsRegistry(): PromRegistry {
  if (processRegistry === null) {
    processRegistry = new PromRegistry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

// Its options hold the Redis client (and its password): it prints as where it serves.
printable(MetricsServer, (s) => ({ url: s.url }));
