import { inspect } from 'node:util';
import { expect } from 'chai';
import { LcmonError, messages } from '@contexture/lcmon';
import { amqpUrl, Cleanup, FaultProxy, uniqueName } from '@contexture/test-support';
import { json, lifecycle, Publisher, run, start } from './helpers.js';

const A = lifecycle('a', { url: '/a', n: 1 }, [{ n: 2 }]);

/** The test broker's URL (its user and password) at another port. */
function urlAt(port: number): string {
  const u = new URL(amqpUrl());
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString();
}

describe('lcmon and the monitor library: the nodes of a cluster as a URL list', () => {
  const cleanup = new Cleanup();
  let exchange: string;
  let pub: Publisher;
  let dead: FaultProxy;

  beforeEach(async () => {
    exchange = cleanup.exchange(uniqueName('lcmon-nodes'));
    pub = await Publisher.open(exchange);
    cleanup.defer(() => pub.close());
    // A node that refuses every connection (a proxy of the real broker, cut).
    const u = new URL(amqpUrl());
    dead = new FaultProxy(u.hostname, Number(u.port || 5672));
    await dead.listen();
    dead.cut();
    cleanup.defer(() => dead.close());
  });
  afterEach(() => cleanup.run());

  it('lcmon -u "dead,live" consumes from the live node; CONTEXTURE_URL takes the same list', async () => {
    const byFlag = start(['-u', `${urlAt(dead.port)},${amqpUrl()}`, '-e', exchange]);
    const byEnv = start(['-e', exchange], { env: { CONTEXTURE_URL: `${urlAt(dead.port)},${amqpUrl()}` } });
    await Promise.all([byFlag.ready(), byEnv.ready()]);
    await pub.publish(exchange, 'web.nodes', A);
    await Promise.all([byFlag.untilLines(A.length), byEnv.untilLines(A.length)]);
    const [r, e] = await Promise.all([byFlag.interrupt(), byEnv.interrupt()]);
    expect(json(r.lines)).to.deep.equal(A);
    expect(json(e.lines)).to.deep.equal(A);
    expect(dead.accepted).to.equal(2);
    const password = new URL(amqpUrl()).password;
    expect(r.stderr + e.stderr).to.not.contain(`:${password}@`);
  });

  it('every node unreachable: one line naming each by host:port, exit 69; a bad entry: exit 2, named by position', async () => {
    const r = await run(['-u', 'amqp://watcher:s3cr3t-pw@127.0.0.1:1/%2F,amqp://watcher:s3cr3t-pw@127.0.0.1:2/%2F']);
    expect(r.code).to.equal(69);
    expect(r.stderr).to.equal(
      'lcmon: cannot reach RabbitMQ at any of 2 nodes: 127.0.0.1:1 (ECONNREFUSED), 127.0.0.1:2 (ECONNREFUSED)\n',
    );
    const bad = await run(['-u', 'amqp://watcher:s3cr3t-pw@127.0.0.1:1/%2F,watcher:s3cr3t-pw@127.0.0.1']);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/url entry 2 of 2 is not a URL/);
    expect(r.stderr + bad.stderr).to.not.match(/s3cr3t/);
  });

  it('messages({ url: [dead, live] }) opens on the live node; printed, the stream shows no password', async () => {
    const stream = messages({ url: [urlAt(dead.port), amqpUrl()], exchange });
    cleanup.defer(() => stream.close());
    await stream.open();
    const u = new URL(amqpUrl());
    expect(stream.where).to.equal(`${u.hostname}:${u.port || 5672}`);
    expect(inspect(stream, { depth: 8 })).to.not.contain(`:${u.password}@`);
    await pub.publish(exchange, 'web.lib', A.slice(0, 1));
    for await (const m of stream) {
      expect(m.object).to.deep.equal(A[0]);
      break;
    }
    let caught: unknown;
    try {
      messages({ url: [amqpUrl(), 'http://watcher:s3cr3t@x'] });
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(LcmonError);
    expect((caught as LcmonError).code).to.equal('LC_MONITOR_INVALID_OPTION');
    expect((caught as LcmonError).message).to.equal('url entry 2 of 2 is not a URL of amqp:// or amqps://');
  });
});
