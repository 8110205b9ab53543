import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';
import { probeRedis } from './services.js';

/**
 * A redis-server of the test's own, on a free loopback port, with an append-only file fsynced on
 * every write in a temporary folder: a test can stop it and start it again (a real restart) without
 * touching the shared Redis, and without Redis itself losing what it acknowledged.
 */
export class TempRedis {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'contexture-redis-'));
  port = 0;

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--save',
      '',
      '--daemonize',
      'yes',
      '--pidfile',
      path.join(this.dir, 'redis.pid'),
      '--logfile',
      path.join(this.dir, 'redis.log'),
    ];
    execFileSync('redis-server', args, { stdio: 'ignore' });
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await probeRedis('127.0.0.1', this.port, 1000);
        return;
      } catch (err) {
        if (Date.now() > deadline)
          throw new Error(`redis-server on port ${this.port} did not start: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** SHUTDOWN (the AOF is already on disk); resolves once the port is closed. */
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      const c = spawn('redis-cli', ['-p', String(this.port), 'shutdown'], { stdio: 'ignore' });
      c.on('close', () => resolve());
      c.on('error', () => resolve());
    });
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      try {
        await probeRedis('127.0.0.1', this.port, 500);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server on port ${this.port} did not stop`);
  }

  /**
   * Kills the server with SIGKILL (no shutdown, no last write: what it acknowledged is in the
   * fsynced AOF); resolves once the port is closed. `start()` brings it back on the same port.
   */
  async kill(): Promise<void> {
    const pid = Number(fs.readFileSync(path.join(this.dir, 'redis.pid'), 'utf8').trim());
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      try {
        await probeRedis('127.0.0.1', this.port, 500);
      } catch {
        fs.rmSync(path.join(this.dir, 'redis.pid'), { force: true });
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server on port ${this.port} did not die`);
  }

  async destroy(): Promise<void> {
    await this.stop().catch(() => {});
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
