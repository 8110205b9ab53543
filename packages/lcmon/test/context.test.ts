import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { configure, Context } from '@contexture/context';
import { amqpUrl, Cleanup, uniqueName } from '@contexture/test-support';
import { json, run, start, startToFile, tempDir } from './helpers.js';

describe('lcmon with messages published by Context', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('shows the messages of a Context, collates them into its final object, and round-trips them through -v and -sc', async () => {
    const exchange = cleanup.exchange(uniqueName('lcmon-ctx'));
    const tmp = tempDir();
    cleanup.defer(() => tmp.remove());
    const saved = tmp.file('ctx.jsonl');
    const messages = start(['-e', exchange, '-r', 'web.#', '-v']);
    const collated = start(['-e', exchange, '-c', '-v']);
    const { l: saver, closed } = startToFile(['-e', exchange, '-v'], saved);
    await Promise.all([messages.ready(), collated.ready(), saver.ready()]);

    const handler = configure({ url: amqpUrl(), exchange });
    cleanup.defer(() => handler.close());
    const ctx = new Context({ name: 'web.handle', context: { url: '/ctx', n: 0 } }) as Context &
      Record<string, unknown>;
    ctx.n = 1;
    ctx.status_code = 200;
    ctx.n = 2;
    ctx.finish();
    const other = new Context({ name: 'api.call', context: { who: 'other' } }) as Context & Record<string, unknown>;
    other.done = true;
    other.finish();
    await handler.flush();

    await Promise.all([messages.untilLines(5), collated.untilLines(2), saver.untilLines(8)]);
    const [rm, rc, rs] = await Promise.all([messages.interrupt(), collated.interrupt(), saver.interrupt()]);
    await closed;
    expect(rs.code).to.equal(0);

    const ms = json(rm.lines);
    expect(ms).to.have.length(5);
    expect(ms.map((m) => m.rkey)).to.deep.equal(Array(5).fill('web.handle'));
    expect(ms[0].headers).to.have.property('hostname');
    expect(ms.map((m) => [m.object.status ?? null, m.object.seq])).to.deep.equal([
      ['born', 0],
      [null, 1],
      [null, 2],
      [null, 3],
      ['finished', 4],
    ]);

    const objs = json(rc.lines);
    const web = objs.find((o) => o.rkey === 'web.handle');
    expect(web.object).to.deep.equal({ url: '/ctx', n: 2, status_code: 200 });
    expect(web.start).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(web.elapsed).to.be.a('number');
    expect(objs.find((o) => o.rkey === 'api.call').object).to.deep.equal({ who: 'other', done: true });

    const back = await run(['-sc', '-v'], readFileSync(saved, 'utf8'));
    expect(back.lines).to.deep.equal(rc.lines);
  });
});
