import { expect } from 'chai';
import amqp from 'amqplib';
import { Context, Handler } from '@contexture/context';
import { HEARTBEAT_RKEY } from '@contexture/context/protocol';
import { amqpUrl, Cleanup, uniqueName, waitUntil } from '@contexture/test-support';
import { json, run, start } from './helpers.js';

describe('lcmon --handlers, and heartbeats in the stream (RabbitMQ)', function () {
  this.timeout(30_000);
  const cleanup = new Cleanup();
  let exchange: string;

  beforeEach(() => {
    exchange = cleanup.exchange(uniqueName('lcmon-hb'));
  });
  afterEach(() => cleanup.run());

  const handler = () => {
    const h = new Handler({ url: amqpUrl(), exchange, heartbeatInterval: 200, logger: null });
    cleanup.defer(() => h.close());
    return h;
  };

  async function collectorHeartbeat(): Promise<void> {
    // What a collector announces (its own counters), published as a collector does.
    const conn = await amqp.connect(amqpUrl());
    const ch = await conn.createChannel();
    const body = {
      type: 'heartbeat',
      id: 'collector-1234',
      kind: 'collector',
      name: 'contexture.collector',
      host: 'box-2',
      pid: 77,
      state: 'running',
      interval: 5000,
      started_at: 1,
      time: Date.now() / 1000,
      stats: { rate: 1500, queue_depth: 3, dead_lettered: 1, reconnects: 0 },
    };
    ch.publish(exchange, HEARTBEAT_RKEY, Buffer.from(JSON.stringify(body)), {
      contentType: 'application/json',
      type: 'heartbeat',
    });
    ch.publish(exchange, HEARTBEAT_RKEY, Buffer.from('{"type":"heartbeat","broken":'), {
      contentType: 'application/json',
    });
    await ch.close();
    await conn.close();
  }

  it('lists live handlers and collectors as a table, and as JSON lines with -v; a handler that closed is left out', async () => {
    const h1 = handler();
    const h2 = handler();
    const gone = handler();
    new Context({ name: 'app.one', handler: h1 }).x = 1;
    new Context({ name: 'app.two', handler: h2 }).x = 1;
    new Context({ name: 'app.gone', handler: gone }).x = 1;
    const table = start(['-e', exchange, '--handlers', '--wait', '2500']);
    const lines = start(['-e', exchange, '--handlers', '--wait', '2500', '-v']);
    await Promise.all(
      [table, lines].map((l) => l.until((x) => /listening for heartbeats/.test(x.stderr), 'lcmon to listen')),
    );
    await collectorHeartbeat();
    await gone.close();
    const [t, v] = await Promise.all([table.exited, lines.exited]);
    expect(t.code).to.equal(0, t.stderr);
    expect(t.lines[0]!.split(/\s+/)).to.deep.equal([
      'KIND',
      'ID',
      'NAME',
      'HOST',
      'PID',
      'QUEUED',
      'DROPPED',
      'RATE/S',
      'RECONNECTS',
      'SEEN',
    ]);
    const rows = t.lines.slice(1).map((l) => l.split(/\s{2,}/));
    expect(rows.map((r) => r[0])).to.deep.equal(['collector', 'handler', 'handler']);
    expect(rows[0]!.slice(1, 8)).to.deep.equal([
      'collector-1234',
      'contexture.collector',
      'box-2',
      '77',
      '3',
      '1',
      '1500',
    ]);
    expect(rows.slice(1).map((r) => r[4])).to.deep.equal([String(process.pid), String(process.pid)]);
    expect(t.stderr).to.match(/3 live handler\(s\) and collector\(s\) heard .* 1 invalid heartbeat\(s\) ignored/);
    const docs = json(v.lines);
    expect(docs.map((d) => d.id).sort()).to.deep.equal(['collector-1234', h1.id, h2.id].sort());
    for (const d of docs.filter((x) => x.kind === 'handler')) {
      expect(d).to.include({ type: 'heartbeat', state: 'running', pid: process.pid, interval: 200 });
      expect(d.stats).to.include.keys('queued', 'dropped', 'published', 'published_per_s', 'reconnects');
      expect(d.seen_ago).to.be.a('number');
    }
  });

  it('plain lcmon never shows heartbeats nor counts them as malformed', async () => {
    const l = start(['-e', exchange, '--stats']);
    await l.ready();
    const h = handler();
    const ctx = new Context({ name: 'app.data', handler: h });
    ctx.x = 1;
    await l.untilLines(2);
    // Three heartbeats go by, then one more data message on the same channel: once lcmon has
    // printed it, it has read the heartbeats before it.
    await waitUntil(() => h.stats().heartbeats >= 3, 'three heartbeats sent', 10_000);
    ctx.y = 2;
    await l.untilLines(3);
    const r = await l.interrupt();
    expect(json(r.lines).map((m) => m.obj_id)).to.have.length(3);
    expect(json(r.lines).every((m) => m.obj_id === Context.idOf(ctx))).to.equal(true);
    expect(r.stderr).to.match(/, 3 printed, 0 malformed/);
    expect(Context.idOf(ctx)).to.be.a('string'); // held to here: no finish from the garbage collector
  });

  it('--wait needs --handlers; --handlers refuses options of the stream', async () => {
    for (const args of [
      ['--wait', '100'],
      ['--handlers', '-c'],
      ['--handlers', '-s'],
      ['--handlers', '-r', 'a.#'],
      ['--handlers', '-e', ''],
      ['-q', ''],
    ]) {
      const r = await run(['-e', exchange, ...args]);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.stderr, args.join(' ')).to.not.match(/internal error/);
    }
  });
});
