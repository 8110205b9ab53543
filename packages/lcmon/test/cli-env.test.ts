import { expect } from 'chai';
import { Cleanup, uniqueName } from '@contexture/test-support';
import { envelopes, json, lifecycle, Publisher, run, start } from './helpers.js';

const A = lifecycle('env-a', { url: '/a', n: 1 }, [{ n: 2 }]);
const A_OBJECT = { url: '/a', n: 2 };

describe('lcmon reads the CONTEXTURE_* environment the collector and the Handler read (RabbitMQ)', function () {
  this.timeout(30_000);
  const cleanup = new Cleanup();
  let pub: Publisher;

  beforeEach(async () => {
    pub = await Publisher.open();
    cleanup.defer(() => pub.close());
  });
  afterEach(() => cleanup.run());

  it('CONTEXTURE_EXCHANGE names the exchange when -e does not', async () => {
    const exchange = cleanup.exchange(uniqueName('lcmon-env'));
    const l = start(['-c'], { env: { CONTEXTURE_EXCHANGE: exchange } });
    await l.ready();
    expect(l.stderr).to.contain(`exchange "${exchange}" (topic)`);
    await pub.publish(exchange, 'web.handle', A);
    await l.untilLines(1);
    const r = await l.interrupt();
    expect(r.code).to.equal(0);
    expect(json(r.lines)).to.deep.equal([A_OBJECT]);
  });

  it('-e wins over CONTEXTURE_EXCHANGE', async () => {
    const fromEnv = cleanup.exchange(uniqueName('lcmon-env'));
    const fromFlag = cleanup.exchange(uniqueName('lcmon-flag'));
    await pub.channel.assertExchange(fromEnv, 'topic', { durable: true });
    const l = start(['-c', '-e', fromFlag], { env: { CONTEXTURE_EXCHANGE: fromEnv } });
    await l.ready();
    expect(l.stderr).to.contain(`exchange "${fromFlag}" (topic)`);
    // What goes to the exchange of the environment is not heard; what goes to the flag's is.
    await pub.publish(fromEnv, 'web.handle', lifecycle('env-not', { url: '/no' }, []));
    await pub.publish(fromFlag, 'web.handle', A);
    await l.untilLines(1);
    const r = await l.interrupt();
    expect(json(r.lines)).to.deep.equal([A_OBJECT]);
  });

  it('CONTEXTURE_EXCHANGE_TYPE=headers declares (and so watches) a headers exchange; without it the same exchange is a type mismatch (78)', async () => {
    const exchange = cleanup.exchange(uniqueName('lcmon-hdr'));
    await pub.channel.assertExchange(exchange, 'headers', { durable: true });
    const mismatch = await run(['-c'], undefined, { CONTEXTURE_EXCHANGE: exchange });
    expect(mismatch.code, mismatch.stderr).to.equal(78);
    expect(mismatch.stderr).to.contain(`exchange "${exchange}"`);
    const l = start(['-c'], { env: { CONTEXTURE_EXCHANGE: exchange, CONTEXTURE_EXCHANGE_TYPE: 'headers' } });
    await l.ready();
    expect(l.stderr).to.contain(`exchange "${exchange}" (headers), arguments {}`);
    await pub.publish(exchange, 'ignored', A, { headers: { hostname: 'box-1', service: 'web' } });
    await l.untilLines(1);
    const r = await l.interrupt();
    expect(json(r.lines)).to.deep.equal([A_OBJECT]);
  });

  it('a CONTEXTURE_EXCHANGE_TYPE lcmon cannot use is a usage error (2); -a or --exchange-type win over it', async () => {
    const bad = await run(['-c'], undefined, { CONTEXTURE_EXCHANGE_TYPE: 'fanout' });
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.contain("CONTEXTURE_EXCHANGE_TYPE must be 'topic' or 'headers', got 'fanout'");
    const both = await run(['-a', 'service=web', '--exchange-type', 'topic'], undefined, {});
    expect(both.code).to.equal(2);
    expect(both.stderr).to.contain('-a binds to a headers exchange');
    // -a makes it a headers exchange whatever the environment says.
    const exchange = cleanup.exchange(uniqueName('lcmon-hdr'));
    const l = start(['-c', '-a', 'service=web'], {
      env: { CONTEXTURE_EXCHANGE: exchange, CONTEXTURE_EXCHANGE_TYPE: 'topic' },
    });
    await l.ready();
    expect(l.stderr).to.contain(`exchange "${exchange}" (headers), arguments {"x-match":"all","service":"web"}`);
    const r = await l.interrupt();
    expect(r.code).to.equal(0);
  });

  it('-s (stdin) and --handlers ignore what they do not use: no conflict with CONTEXTURE_EXCHANGE', async () => {
    const saved = await run(['-sc'], envelopes(A), { CONTEXTURE_EXCHANGE: 'not-used', CONTEXTURE_EXCHANGE_TYPE: 'x' });
    expect(saved.code, saved.stderr).to.equal(0);
    expect(json(saved.lines)).to.deep.equal([A_OBJECT]);
    const exchange = cleanup.exchange(uniqueName('lcmon-hb'));
    const handlers = await run(['--handlers', '--wait', '200'], undefined, { CONTEXTURE_EXCHANGE: exchange });
    expect(handlers.code, handlers.stderr).to.equal(0);
    expect(handlers.stderr).to.contain(`exchange "${exchange}"`);
  });
});
