import { Readable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import { expect } from 'chai';
import { ParallelCollator, type CollateSink } from '../src/cli/parallel-collate.js';
import { envelopes, lifecycle } from './helpers.js';

describe('lcmon -sc on several cores: a collation worker that stops', function () {
  this.timeout(30_000);

  it('ending then gives its failure (never a quiet success), without waiting for the worker', async () => {
    const docs: string[] = [];
    const sink: CollateSink = {
      output: (doc) => docs.push(doc),
      malformed: () => {},
      messages: () => {},
      open: () => {},
      ready: true,
      whenReady: () => Promise.resolve(),
      stopped: false,
    };
    const collator = new ParallelCollator(
      { verbose: false, pretty: false, colourLevel: 0, maxDepth: 64, flushIncomplete: true },
      sink,
    );
    // Objects that never finish: the workers hold them until the end's flush.
    const open = ['o1', 'o2', 'o3', 'o4'].flatMap((id) => lifecycle(id, { n: 1 }, [{ n: 2 }]).slice(0, 2));
    await collator.read(Readable.from([Buffer.from(envelopes(open))]), new AbortController().signal);
    expect(docs).to.deep.equal([]);
    // One worker stops (as a thread killed or exiting would) before the end asks it for what it holds.
    const workers = (collator as unknown as { workers: Worker[] }).workers;
    await workers[0]!.terminate();
    const failed = await collator.finish(true, true);
    expect(failed).to.be.instanceOf(Error);
    expect(failed!.message).to.match(/collation worker stopped/);
  });
});
