import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Context, Handler } from '../src/index.js';

describe('using / await using: Context and Handler', () => {
  it('a Context finishes when its using block ends; a Handler closes when its await using block ends, having written everything', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ctx-dispose-'));
    try {
      const file = path.join(dir, 'out.jsonl');
      let handler!: Handler;
      {
        await using h = new Handler({ url: `jsonl:${file}`, heartbeatInterval: 0, logger: null });
        handler = h;
        {
          using ctx = new Context({ name: 'app.scoped', handler: h, context: { a: 1 } });
          ctx.b = 2;
        }
        expect(h.stats().status).to.not.equal('closed');
      }
      expect(handler.stats()).to.include({ status: 'closed', enqueued: 3, published: 3, dropped: 0 });
      const lines = (await readFile(file, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).object);
      expect(lines.map((o) => [o.seq, o.status ?? null])).to.deep.equal([
        [0, 'born'],
        [1, null],
        [2, 'finished'],
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
