import net from 'node:net';

/**
 * A loopback TCP proxy between a client and a real server, for fault tests: `cut()` drops every
 * connection and refuses new ones until `restore()`; `stall()` keeps connections open but stops
 * forwarding bytes until `restore()`; `mute()` forwards the client's bytes but holds the server's
 * replies until `restore()` (what the server did is done; the client never hears of it).
 */
export class FaultProxy {
  private server: net.Server | null = null;
  private pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private mode: 'pass' | 'cut' | 'stall' | 'mute' = 'pass';
  /** Connections accepted so far (refused ones included). */
  accepted = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** Starts listening on 127.0.0.1 and a free port; returns the port. */
  async listen(): Promise<number> {
    const server = net.createServer((client) => this.onClient(client));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as net.AddressInfo).port;
  }

  get port(): number {
    return (this.server!.address() as net.AddressInfo).port;
  }

  /** Number of live proxied connections. */
  get connections(): number {
    return this.pairs.size;
  }

  cut(): void {
    this.mode = 'cut';
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  stall(): void {
    this.mode = 'stall';
    for (const { client, upstream } of this.pairs) {
      client.pause();
      upstream.pause();
    }
  }

  mute(): void {
    this.mode = 'mute';
    for (const { upstream } of this.pairs) upstream.pause();
  }

  restore(): void {
    const was = this.mode;
    this.mode = 'pass';
    if (was === 'stall' || was === 'mute') {
      for (const { client, upstream } of this.pairs) {
        if (was === 'stall') client.resume();
        upstream.resume();
      }
    }
  }

  async close(): Promise<void> {
    this.cut();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private onClient(client: net.Socket): void {
    this.accepted++;
    client.on('error', () => {});
    if (this.mode === 'cut') {
      client.destroy();
      return;
    }
    const upstream = net.connect({ host: this.targetHost, port: this.targetPort });
    upstream.on('error', () => {});
    const pair = { client, upstream };
    this.pairs.add(pair);
    const drop = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
    if (this.mode === 'stall') client.pause();
    if (this.mode === 'stall' || this.mode === 'mute') upstream.pause();
  }
}
