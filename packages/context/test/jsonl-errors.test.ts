import { expect } from 'chai';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { waitUntil } from '@contexture/test-support';
import { Context, Handler } from '../src/index.js';

/** A handler on `url` whose warnings are kept. */
function handlerOn(
  url: string,
  reconnect = { initialDelay: 50, maxDelay: 200 },
): { handler: Handler; warnings: string[] } {
  const warnings: string[] = [];
  const handler = new Handler({
    url,
    heartbeatInterval: 0,
    reconnect,
    logger: { warn: (m: string) => warnings.push(m) },
  });
  return { handler, warnings };
}

describe('jsonl:/path that cannot be written', function () {
  this.timeout(30_000);
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'jsonl-errors-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('a file that cannot be opened: the program goes on, one clear warning names the path and why, and the lines are written once it can be', async () => {
    const file = path.join(dir, 'missing', 'out.jsonl');
    const { handler, warnings } = handlerOn(`jsonl:${file}`);
    try {
      const ctx = new Context({ name: 'app.write', handler, context: { a: 1 } });
      ctx.b = 2;
      ctx.finish();
      await waitUntil(() => warnings.length > 0, 'a warning');
      expect(warnings[0])
        .to.contain(file)
        .and.match(/ENOENT/);
      expect(handler.stats()).to.include({ status: 'disconnected', dropped: 0 });
      expect(handler.stats().lastError).to.match(/ENOENT/);
      await mkdir(path.dirname(file));
      await waitUntil(() => handler.stats().published === 3, 'the three lines written');
      const lines = (await readFile(file, 'utf8')).trim().split('\n');
      expect(lines.map((l) => JSON.parse(l).object.seq)).to.deep.equal([0, 1, 2]);
      expect(warnings).to.have.length(2, 'one warning for the outage, one for its end');
      expect(warnings[1]).to.match(/publishing to .* again after .* 0 message\(s\) dropped/);
    } finally {
      await handler.close();
    }
  });

  it('a write that fails (a full device): no crash, clear warnings naming the path and why and saying what was dropped, every message counted', async () => {
    // A maxDelay far above the test's pauses: a connection never holds long enough to reset the backoff.
    const { handler, warnings } = handlerOn('jsonl:/dev/full', { initialDelay: 20, maxDelay: 10_000 });
    let dropEvents = 0;
    handler.on('drop', (n: number) => (dropEvents += n));
    const attempts: number[] = [];
    handler.on('reconnecting', (_delay: number, attempt: number) => attempts.push(attempt));
    try {
      const ctx = new Context({ name: 'app.full', handler, context: { a: 1 } });
      for (let i = 0; i < 5; i++) ctx.n = i;
      ctx.finish();
      await waitUntil(() => handler.stats().dropped === 7, 'the seven messages counted as dropped');
      const warning = warnings.find((w) => /ENOSPC/.test(w));
      expect(warning).to.match(/^contexture: cannot publish to jsonl:\/dev\/full \(ENOSPC: no space left on device/);
      expect(handler.stats()).to.include({ enqueued: 7, published: 0, dropped: 7, queued: 0 });
      expect(dropEvents).to.equal(7);
      // Dropped after failing three times: said, not only counted.
      expect(warnings.find((w) => /could not be sent and were dropped/.test(w))).to.match(
        /^contexture: 7 message\(s\) could not be sent and were dropped \(ENOSPC/,
      );
      // Refused again within 10 s of that warning: said when the handler closes, not lost.
      new Context({ name: 'app.full', handler, context: { b: 1 } }).finish();
      await waitUntil(() => handler.stats().dropped === 9, 'the two more counted as dropped');
      expect(warnings.filter((w) => /could not be sent/.test(w))).to.have.length(1);
      await handler.close();
      expect(warnings.filter((w) => /could not be sent/.test(w)).at(-1)).to.match(
        /^contexture: 2 message\(s\) could not be sent and were dropped \(ENOSPC/,
      );
      // The file opened again each time (once at least for each batch) and failed at its first
      // write: the backoff grew rather than starting over at each opening.
      expect(attempts.length).to.be.at.least(2);
      expect(attempts).to.deep.equal(attempts.map((_, i) => i + 1));
    } finally {
      await handler.close();
    }
  });
});
