import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const FIXTURE = fileURLToPath(new URL('../../test/fixtures/close-unreachable.mjs', import.meta.url));

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('closing with Redis unreachable (a real process)', function () {
  this.timeout(20_000);

  for (const wait of [0, 300, 1500]) {
    it(`store, lock, allocator, registry and task queue close and the process exits 0 by itself (commands in flight, closed after ${wait} ms)`, async () => {
      const port = await deadPort();
      const t0 = Date.now();
      const child = spawn(process.execPath, [FIXTURE], { env: { ...process.env, REDIS: `redis://127.0.0.1:${port}`, WAIT: String(wait) }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (b) => (out += b));
      child.stderr.on('data', (b) => (err += b));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code, err).to.equal(0);
      expect(out).to.equal('closed\n');
      // The wait, then at most the 2 s given to a connection attempt under way: not a 10 s command timeout.
      expect(Date.now() - t0, err).to.be.below(wait + 5_000);
    });
  }
});
