import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import amqp from 'amqplib';
import { CONTENT_TYPE_NDJSON } from '@contexture/context/protocol';
import { amqpUrl, Cleanup, FaultProxy, uniqueName } from '@contexture/test-support';
import {
  json,
  lifecycle,
  Publisher,
  PY_ANNOUNCEMENT,
  PY_STOPPING,
  queueExists,
  run,
  start,
  startToFile,
  tempDir,
  type Body,
} from './helpers.js';

const A = lifecycle('a', { url: '/a', n: 1 }, [{ n: 2 }, { tags: ['x'] }, { n: 3 }]);
const B = lifecycle('b', { url: '/b' }, [{ status_code: 200 }], 1_700_000_100);
const C = lifecycle('c', { url: '/c' }, [{ n: 1 }, { n: 2 }], 1_700_000_200);
const A_OBJECT = { url: '/a', n: 3, tags: ['x'] };
const B_OBJECT = { url: '/b', status_code: 200 };

const execFileAsync = promisify(execFile);

describe('lcmon live (RabbitMQ)', () => {
  const cleanup = new Cleanup();
  let pub: Publisher;
  let exchange: string;

  beforeEach(async () => {
    exchange = cleanup.exchange(uniqueName('lcmon-x'));
    pub = await Publisher.open(exchange);
    cleanup.defer(() => pub.close());
  });
  afterEach(() => cleanup.run());

  it('prints each message as published, one JSON line each, and -v adds rkey and headers', async () => {
    const l = start(['-e', exchange]);
    const lv = start(['-e', exchange, '-v']);
    await Promise.all([l.ready(), lv.ready()]);
    await pub.publish(exchange, 'web.handle', A, { headers: { hostname: 'box-1', tier: 2 } });
    await Promise.all([l.untilLines(A.length), lv.untilLines(A.length)]);
    const [r, rv] = await Promise.all([l.interrupt(), lv.interrupt()]);
    expect(json(r.lines)).to.deep.equal(A);
    expect(json(rv.lines)).to.deep.equal(
      A.map((object) => ({ rkey: 'web.handle', headers: { hostname: 'box-1', tier: 2 }, object })),
    );
  });

  it('prints a message without obj_id (the Python handler announcing itself) plain and with -v; -c leaves it out, not as malformed', async () => {
    const l = start(['-e', exchange]);
    const lv = start(['-e', exchange, '-v']);
    const lc = start(['-e', exchange, '-c', '--stats']);
    await Promise.all([l.ready(), lv.ready(), lc.ready()]);
    // As the Python contexture's handler (1.3) publishes it: routing key `default`, text/plain.
    const python = { contentType: 'text/plain', headers: { hostname: 'box-1' } };
    await pub.publish(exchange, 'default', [PY_ANNOUNCEMENT, PY_STOPPING], python);
    await pub.publish(exchange, 'web.handle', A);
    const n = 2 + A.length;
    await Promise.all([l.untilLines(n), lv.untilLines(n), lc.untilLines(1)]);
    const [r, rv, rc] = await Promise.all([l.interrupt(), lv.interrupt(), lc.interrupt()]);
    expect(r.lines).to.deep.equal([PY_ANNOUNCEMENT, PY_STOPPING, ...A.map((b) => JSON.stringify(b))]);
    expect(json(rv.lines)).to.deep.equal([
      { rkey: 'default', headers: { hostname: 'box-1' }, object: JSON.parse(PY_ANNOUNCEMENT) },
      { rkey: 'default', headers: { hostname: 'box-1' }, object: JSON.parse(PY_STOPPING) },
      ...A.map((object) => ({ rkey: 'web.handle', headers: { hostname: 'box-1' }, object })),
    ]);
    expect(json(rc.lines)).to.deep.equal([{ url: '/a', n: 3, tags: ['x'] }]);
    for (const x of [r, rv, rc]) expect(x.stderr).to.not.include('skipped');
    expect(rc.stderr).to.match(new RegExp(`${n} messages in .*, 1 printed, 0 malformed`));
    // With -q -c, a note's delivery is acknowledged: it has no object to wait for.
    const q = cleanup.queue(uniqueName('lcmon-py'));
    await pub.channel.assertQueue(q, { durable: false });
    await pub.channel.bindQueue(q, exchange, '#');
    await pub.publish(exchange, 'default', [PY_ANNOUNCEMENT, PY_STOPPING], python);
    await pub.publish(exchange, 'web.handle', A);
    const queued = await run(['-q', q, '-c', '-n', '1']);
    expect(queued.code).to.equal(0);
    expect(json(queued.lines)).to.deep.equal([{ url: '/a', n: 3, tags: ['x'] }]);
    expect(queued.stderr).to.not.include('skipped');
    expect((await pub.channel.checkQueue(q)).messageCount).to.equal(0);
  });

  it('Ctrl-C cancels, closes the connection (the queue goes), says Bye. and exits 0', async () => {
    const l = start(['-e', exchange]);
    const queue = await l.ready();
    expect(await queueExists(queue)).to.equal(true);
    const r = await l.interrupt();
    expect(r.code).to.equal(0);
    expect(r.stderr.trimEnd().split('\n').pop()).to.equal('Bye.');
    expect(await queueExists(queue)).to.equal(false);
  });

  it('-c collates live; out-of-order, duplicated and batched (ndjson) messages give the same objects', async () => {
    const inOrder = start(['-e', exchange, '-r', 'in.order', '-c', '-v']);
    const messy = start(['-e', exchange, '-r', 'messy', '-c', '-v']);
    await Promise.all([inOrder.ready(), messy.ready()]);
    await pub.publish(exchange, 'in.order', [...A, ...B, ...C]);
    // Reversed, with duplicates, and B's messages packed into one ndjson batch message.
    await pub.publish(exchange, 'messy', [...A].reverse().concat([A[0]!, A[2]!]));
    await pub.publish(
      exchange,
      'messy',
      [`${B.map((b) => JSON.stringify(b)).join('\n')}\n`, B.map((b) => JSON.stringify(b)).join('\n')],
      {
        contentType: CONTENT_TYPE_NDJSON,
      },
    );
    await pub.publish(exchange, 'messy', [C[2]!, C[0]!, C[3]!, C[1]!, C[1]!]);
    await Promise.all([inOrder.untilLines(3), messy.untilLines(3)]);
    const [r1, r2] = await Promise.all([inOrder.interrupt(), messy.interrupt()]);
    const strip = (o: any) => ({ ...o, rkey: undefined });
    expect(json(r2.lines).map(strip)).to.deep.equal(json(r1.lines).map(strip));
    expect(json(r1.lines).map((o) => o.object)).to.deep.equal([
      { url: '/a', n: 3, tags: ['x'] },
      { url: '/b', status_code: 200 },
      { url: '/c', n: 2 },
    ]);
  });

  it('--trace: live, the messages and the objects of one trace only', async () => {
    const t1 = '4bf92f3577b34da6a3ce929d0e0e4736';
    const t2 = '0af7651916cd43dd8448eb211c80319c';
    const X = lifecycle('x', { url: '/x', trace_id: t1, span_id: '00f067aa0ba902b7' }, [{ n: 1 }]);
    const Y = lifecycle('y', { url: '/y', trace_id: t2, span_id: 'b7ad6b7169203331' }, [{ n: 2 }]);
    const l = start(['-e', exchange, '--trace', t1]);
    const lc = start(['-e', exchange, '-c', '--trace', t1]);
    await Promise.all([l.ready(), lc.ready()]);
    await pub.publish(exchange, 'web.y', Y, {
      headers: { hostname: 'h', traceparent: `00-${t2}-b7ad6b7169203331-01` },
    });
    await pub.publish(exchange, 'web.a', A);
    await pub.publish(exchange, 'web.x', X, {
      headers: { hostname: 'h', traceparent: `00-${t1}-00f067aa0ba902b7-01` },
    });
    // The last message of all: once it is out, everything before it was seen (one queue, in order).
    await pub.publish(exchange, 'web.b', B, {
      headers: { hostname: 'h', traceparent: `00-${t1}-53995c3f42cd8ad8-01` },
    });
    await Promise.all([l.untilLines(X.length + B.length), lc.untilLines(2)]);
    const [r, rc] = await Promise.all([l.interrupt(), lc.interrupt()]);
    expect(json(r.lines)).to.deep.equal([...X, ...B]);
    expect(json(rc.lines)).to.deep.equal([{ url: '/x', trace_id: t1, span_id: '00f067aa0ba902b7', n: 1 }, B_OBJECT]);
  });

  it('unpacks ndjson batch messages into their messages', async () => {
    const l = start(['-e', exchange]);
    await l.ready();
    await pub.publish(exchange, 'batch', [`${A.map((b) => JSON.stringify(b)).join('\n')}\n`], {
      contentType: CONTENT_TYPE_NDJSON,
    });
    await l.untilLines(A.length);
    const r = await l.interrupt();
    expect(json(r.lines)).to.deep.equal(A);
  });

  it('counts and reports malformed messages once per kind while valid traffic goes on', async () => {
    const l = start(['-e', exchange, '-c']);
    await l.ready();
    await pub.publish(exchange, 'web.bad', [
      'not json',
      '{"obj_id":"x","obj":[]}',
      Buffer.from([0xff, 0xfe]),
      'nope again',
      '{"obj":{}}',
      '',
    ]);
    await pub.publish(exchange, 'web.proto', [
      '{"__proto__":{"obj_id":"p"},"obj":{}}',
      '{"obj_id":"pp","status":"transient","seq":0,"obj":{"__proto__":{"admin":true}}}',
    ]);
    await pub.publish(exchange, 'web.ok', B);
    await l.untilLines(2);
    const r = await l.interrupt();
    expect(r.code).to.equal(0);
    expect(r.lines).to.deep.equal(['{"__proto__":{"admin":true}}', '{"url":"/b","status_code":200}']);
    const warnings = r.stderr.split('\n').filter((x) => x.includes('skipped,'));
    expect(warnings).to.deep.equal([
      'lcmon: warning: message with routing key "web.bad": skipped, not JSON; more "not JSON" input is counted, not shown',
      'lcmon: warning: message with routing key "web.bad": skipped, obj not an object; more "obj not an object" input is counted, not shown',
      'lcmon: warning: message with routing key "web.bad": skipped, not UTF-8; more "not UTF-8" input is counted, not shown',
      'lcmon: warning: message with routing key "web.bad": skipped, obj_id missing; more "obj_id missing" input is counted, not shown',
      'lcmon: warning: message with routing key "web.bad": skipped, empty; more "empty" input is counted, not shown',
    ]);
    expect(r.stderr).to.include(
      'skipped 7 malformed inputs (not JSON: 2, obj not an object: 1, not UTF-8: 1, obj_id missing: 2, empty: 1)',
    );
  });

  it('a message nested 100,000 levels deep is skipped once as too deep and acknowledged; -p, -c and -q go on', async function () {
    this.timeout(60_000);
    const deep = `{"obj_id":"deep","obj":{"v":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}},"status":"transient","seq":0}`;
    const traffic: Array<Body | string> = [A[0]!, deep, ...A.slice(1), ...B];
    const q = cleanup.queue(uniqueName('lcmon-deep'));
    await pub.channel.assertQueue(q, { durable: false });
    await pub.channel.bindQueue(q, exchange, 'web.#');
    const pretty = start(['-e', exchange, '-r', 'web.deep', '-p']);
    const collate = start(['-e', exchange, '-r', 'web.deep', '-c', '--flush-incomplete']);
    await Promise.all([pretty.ready(), collate.ready()]);
    await pub.publish(exchange, 'web.deep', traffic);
    const queued = start(['-q', q, '-c']);
    await Promise.all([
      pretty.until((x) => (x.stdout.match(/^}$/gm) ?? []).length >= A.length + B.length, 'every other message'),
      collate.untilLines(2),
      queued.untilLines(2),
    ]);
    const outcomes = await Promise.all([pretty.interrupt(), collate.interrupt(), queued.interrupt()]);
    expect(JSON.parse(`[${outcomes[0].stdout.replace(/\n}\n(?=.)/g, '\n},\n')}]`)).to.deep.equal([...A, ...B]);
    for (const r of outcomes.slice(1)) expect(json(r.lines)).to.deep.equal([A_OBJECT, B_OBJECT]);
    for (const r of outcomes) {
      expect(r.code).to.equal(0);
      const warnings = r.stderr.split('\n').filter((x) => x.includes('skipped,'));
      expect(warnings).to.deep.equal([
        'lcmon: warning: message with routing key "web.deep": skipped, too deep (more than 64 levels); more "too deep" input is counted, not shown',
      ]);
      expect(r.stderr).to.include('skipped 1 malformed input (too deep: 1)');
    }
    // The deep message was acknowledged with the rest: the next run on the queue never sees it.
    expect((await pub.channel.checkQueue(q)).messageCount).to.equal(0);
    await pub.publish(exchange, 'web.deep', C);
    const again = await run(['-q', q, '-c', '-n', '1']);
    expect(again.code).to.equal(0);
    expect(json(again.lines)).to.deep.equal([{ url: '/c', n: 2 }]);
    expect(again.stderr).to.not.include('too deep');
  });

  it('-r binds each routing key given; other keys never arrive', async () => {
    const l = start(['-e', exchange, '-r', 'web.#', 'db.*.slow', '-k', 'obj_id']);
    await l.ready();
    await pub.publish(exchange, 'other.thing', [{ obj_id: 'no1', obj: {} }]);
    await pub.publish(exchange, 'web.a.b', [{ obj_id: 'yes1', obj: {} }]);
    await pub.publish(exchange, 'db.x.fast', [{ obj_id: 'no2', obj: {} }]);
    await pub.publish(exchange, 'db.x.slow', [{ obj_id: 'yes2', obj: {} }]);
    await pub.publish(exchange, 'web', [{ obj_id: 'yes3', obj: {} }]);
    await l.untilLines(3);
    const r = await l.interrupt();
    expect(json(r.lines).map((m) => m.obj_id)).to.deep.equal(['yes1', 'yes2', 'yes3']);
  });

  it('-a / -x bind to a headers exchange: x-match all and any; digit values become integers', async () => {
    const hx = cleanup.exchange(uniqueName('lcmon-hx'));
    await pub.channel.assertExchange(hx, 'headers', { durable: true });
    const all = start(['-e', hx, '-a', 'app=web', 'tier=2', '-k', 'obj_id']);
    const any = start(['-e', hx, '-a', 'app=web', 'tier=2', '-x', 'any', '-k', 'obj_id']);
    await Promise.all([all.ready(), any.ready()]);
    expect(all.stderr).to.include(`exchange "${hx}" (headers), arguments {"x-match":"all","app":"web","tier":2}`);
    await pub.publish(hx, '', [{ obj_id: 'both', obj: {} }], { headers: { app: 'web', tier: 2 } });
    await pub.publish(hx, '', [{ obj_id: 'app-only', obj: {} }], { headers: { app: 'web', tier: 3 } });
    await pub.publish(hx, '', [{ obj_id: 'string-tier', obj: {} }], { headers: { app: 'db', tier: '2' } });
    await pub.publish(hx, '', [{ obj_id: 'last', obj: {} }], { headers: { app: 'web', tier: 2 } });
    await Promise.all([all.untilLines(2), any.untilLines(3)]);
    const [ra, rn] = await Promise.all([all.interrupt(), any.interrupt()]);
    expect(json(ra.lines).map((m) => m.obj_id)).to.deep.equal(['both', 'last']);
    expect(json(rn.lines).map((m) => m.obj_id)).to.deep.equal(['both', 'app-only', 'last']);
  });

  it('-a on a topic exchange stops with one line naming the type clash, exit 78', async () => {
    const r = await run(['-e', exchange, '-a', 'app=web']);
    expect(r.code).to.equal(78);
    expect(r.stderr).to.match(new RegExp(`exchange "${exchange}" .* exists with another type`));
  });

  it('-q consumes an existing queue as it is bound, warns that this is destructive, and leaves what it did not print', async () => {
    const q = cleanup.queue(uniqueName('lcmon-q'));
    await pub.channel.assertQueue(q, { durable: false });
    await pub.channel.bindQueue(q, exchange, 'web.#');
    const bodies: Body[] = Array.from({ length: 10 }, (_, i) => ({
      obj_id: `q${i}`,
      obj: { i },
      status: 'transient',
      seq: 0,
    }));
    await pub.publish(exchange, 'web.q', bodies);
    const r = await run(['-q', q, '-n', '4']);
    expect(r.code).to.equal(0);
    expect(json(r.lines).map((m) => m.obj.i)).to.deep.equal([0, 1, 2, 3]);
    expect(r.stderr).to.match(new RegExp(`warning: consuming queue "${q}" takes its messages away`));
    const left = await pub.channel.checkQueue(q);
    expect(left.messageCount).to.equal(6);
    const rest = await run(['-q', q, '-n', '6']);
    expect(json(rest.lines).map((m) => m.obj.i)).to.deep.equal([4, 5, 6, 7, 8, 9]);
  });

  it('-q -c acknowledges only the messages of objects it printed: one finishing after -n stays in the queue', async () => {
    const q = cleanup.queue(uniqueName('lcmon-qc'));
    await pub.channel.assertQueue(q, { durable: false });
    await pub.channel.bindQueue(q, exchange, 'web.#');
    // A opens before B and finishes after -n 1 has stopped at B.
    await pub.publish(exchange, 'web.qc', [A[0]!, A[1]!, ...B]);
    const first = await run(['-q', q, '-c', '-n', '1']);
    expect(first.code).to.equal(0);
    expect(json(first.lines)).to.deep.equal([B_OBJECT]);
    // B's messages were acknowledged, A's two went back to the queue.
    expect((await pub.channel.checkQueue(q)).messageCount).to.equal(2);
    await pub.publish(exchange, 'web.qc', A.slice(2));
    const second = await run(['-q', q, '-c', '-n', '1']);
    expect(json(second.lines)).to.deep.equal([A_OBJECT]);
    expect((await pub.channel.checkQueue(q)).messageCount).to.equal(0);
    // An ndjson batch that -n stops in the middle of goes back whole: none of it is lost.
    const batch = `${[...B, ...C].map((b) => JSON.stringify(b)).join('\n')}\n`;
    await pub.publish(exchange, 'web.qc', [batch], { contentType: CONTENT_TYPE_NDJSON });
    const cut = await run(['-q', q, '-c', '-n', '1']);
    expect(json(cut.lines)).to.deep.equal([B_OBJECT]);
    expect((await pub.channel.checkQueue(q)).messageCount).to.equal(1);
    const whole = await run(['-q', q, '-c', '-n', '2']);
    expect(json(whole.lines)).to.deep.equal([B_OBJECT, { url: '/c', n: 2 }]);
  });

  it('-q -c -n: of objects given out together (gap timeouts expiring at once), those past -n stay in the queue', async () => {
    const q = cleanup.queue(uniqueName('lcmon-qexp'));
    await pub.channel.assertQueue(q, { durable: false });
    await pub.channel.bindQueue(q, exchange, 'web.#');
    // Two objects that finish with a message missing: both wait 5 s, then go out incomplete.
    const gapped = [...lifecycle('x', { x: 1 }, [{ x: 2 }]), ...lifecycle('y', { y: 1 }, [{ y: 2 }])].filter(
      (m) => m.seq !== 1,
    );
    await pub.publish(exchange, 'web.exp', gapped);
    const r = await run(['-q', q, '-c', '-n', '1']);
    expect(r.code).to.equal(0);
    expect(json(r.lines)).to.deep.equal([{ object: { x: 1 }, id: 'x', complete: false, missing: 1 }]);
    // x's two messages were acknowledged; y's were not printed and went back.
    expect((await pub.channel.checkQueue(q)).messageCount).to.equal(2);
  });

  it('-q -c with more unfinished objects than the prefetch forces the oldest out and goes on consuming', async function () {
    this.timeout(60_000);
    const q = cleanup.queue(uniqueName('lcmon-qfull'));
    await pub.channel.assertQueue(q, { durable: false });
    await pub.channel.bindQueue(q, exchange, 'web.#');
    // 1,100 objects that never finish (the prefetch is 1,000), then B.
    const opens: Body[] = Array.from({ length: 1100 }, (_, i) => ({
      obj_id: `open-${i}`,
      obj: { i },
      status: 'born',
      seq: 0,
    }));
    await pub.publish(exchange, 'web.full', [...opens, ...B]);
    const l = start(['-q', q, '-c']);
    await l.untilLines(1, 30_000);
    const r = await l.interrupt();
    expect(r.code).to.equal(0);
    expect(json(r.lines)).to.deep.equal([B_OBJECT]);
    expect(r.stderr).to.match(/unfinished objects hold 1000 messages, the prefetch: the oldest are forced out/);
    const total = /forced out (\d+) unfinished objects to keep consuming \((\d+) dropped unprinted\)/.exec(r.stderr);
    expect(total, r.stderr).to.not.equal(null);
    const forced = Number(total![1]);
    expect(Number(total![2])).to.equal(forced);
    expect(forced).to.be.greaterThan(100);
    // The dropped objects' messages were acknowledged; the ones still open at Ctrl-C went back.
    expect((await pub.channel.checkQueue(q)).messageCount).to.equal(1100 - forced);
    // With --flush-incomplete, the objects forced out are printed as incomplete, oldest first.
    await pub.publish(exchange, 'web.full', [...opens.slice(0, 200), ...C]);
    const f = start(['-q', q, '-c', '--flush-incomplete']);
    await f.until((x) => x.lines.some((line) => line.includes('/c')), 'C', 30_000);
    const rf = await f.interrupt();
    const printed = json(rf.lines);
    const forcedOut = printed.slice(
      0,
      printed.findIndex((o) => o.url === '/c'),
    );
    expect(forcedOut.length).to.be.greaterThan(0);
    for (const o of forcedOut) expect(o).to.include({ complete: false });
    expect(rf.stderr).to.match(/forced out \d+ unfinished objects? to keep consuming \(0 dropped unprinted\)/);
    // Everything was printed at last (Ctrl-C with --flush-incomplete): nothing is left.
    expect((await pub.channel.checkQueue(q)).messageCount).to.equal(0);
  });

  it('-q with a queue that does not exist: one line, exit 66', async () => {
    const r = await run(['-q', uniqueName('lcmon-missing')]);
    expect(r.code).to.equal(66);
    expect(r.stderr).to.match(/queue "lcmon-missing-[0-9a-f]+" does not exist on 127\.0\.0\.1:5672/);
  });

  it('--ttl sets the message TTL of the anonymous queue (600000 ms by default), as the broker reports it', async () => {
    // The broker enforces the TTL; what lcmon owes is declaring it. rabbitmqctl reads the queue's
    // arguments back from the broker itself.
    const ttlOf = async (args: string[]): Promise<unknown> => {
      const l = start(['-e', exchange, '-r', 'ttl', ...args]);
      const queue = await l.ready();
      const { stdout } = await execFileAsync(
        'rabbitmqctl',
        ['-q', 'list_queues', 'name', 'arguments', '--formatter', 'json'],
        { timeout: 60_000 },
      );
      await l.interrupt();
      const q = (JSON.parse(stdout) as Array<{ name: string; arguments: Array<[string, string, unknown]> }>).find(
        (x) => x.name === queue,
      );
      expect(q, `queue ${queue} in rabbitmqctl list_queues`).to.not.equal(undefined);
      return q!.arguments.find((a) => a[0] === 'x-message-ttl')?.[2];
    };
    expect(await ttlOf(['--ttl', '1234'])).to.equal(1234);
    expect(await ttlOf([])).to.equal(600000);
  });

  it('-n exits 0 after N documents', async () => {
    const l = start(['-e', exchange, '-c', '-n', '2']);
    await l.ready();
    await pub.publish(exchange, 'web.n', [...A, ...B, ...C]);
    const r = await l.exited;
    expect(r.code).to.equal(0);
    expect(json(r.lines)).to.have.length(2);
    expect(r.stderr).to.not.include('Bye.');
  });

  it('-k, -t, -z and -p work live as on stdin', async () => {
    const l = start(['-e', exchange, '-c', '-k', 'url', 'n', 'missing', '-t', 'n', '-z', '-p']);
    await l.ready();
    await pub.publish(exchange, 'web.k', [...A, ...B]);
    await l.until((x) => (x.stdout.match(/^}$/gm) ?? []).length >= 2, 'two documents');
    const r = await l.interrupt();
    expect(r.stdout).to.equal('{\n  "url": "/a"\n}\n{\n  "url": "/b"\n}\n');
  });

  it('--flush-incomplete prints the open objects on Ctrl-C', async () => {
    const l = start(['-e', exchange, '-c', '--flush-incomplete']);
    await l.ready();
    await pub.publish(exchange, 'web.f', [...B, ...A.slice(0, 2)]);
    await l.untilLines(1);
    const r = await l.interrupt();
    expect(json(r.lines)).to.deep.equal([
      { url: '/b', status_code: 200 },
      { object: { url: '/a', n: 2 }, id: 'a', complete: false },
    ]);
    expect(r.stderr.trimEnd().split('\n').pop()).to.equal('Bye.');
  });

  it('--stats ends with a summary of what it saw', async () => {
    const l = start(['-e', exchange, '-c', '--stats']);
    await l.ready();
    await pub.publish(exchange, 'web.s', [...A, 'junk']);
    await l.untilLines(1);
    await l.until((x) => x.stderr.includes('skipped,'), 'the malformed report');
    const r = await l.interrupt();
    expect(r.stderr).to.match(/lcmon: 5 messages in [\d.]+ s \(\d+\/s\), 1 printed, 1 malformed, 0 objects open/);
  });

  it('ends quietly with status 0 when its reader goes away (lcmon | head -1)', async () => {
    const l = start(['-e', exchange]);
    await l.ready();
    await pub.publish(exchange, 'web.e', A);
    await l.untilLines(1);
    l.child.stdout.destroy();
    const many: Body[] = Array.from({ length: 2000 }, (_, i) => ({
      obj_id: `e${i}`,
      obj: { i },
      status: 'transient',
      seq: 0,
    }));
    await pub.publish(exchange, 'web.e', many);
    const r = await l.exited;
    expect(r.code).to.equal(0);
    expect(r.stderr).to.not.match(/EPIPE|Error|at /);
  });

  it('an unreachable broker: one line naming host and port, never the password, exit 69', async () => {
    const r = await run(['-u', 'amqp://watcher:s3cr3t-pw@127.0.0.1:1/%2F']);
    expect(r.code).to.equal(69);
    expect(r.stderr).to.equal('lcmon: cannot reach RabbitMQ at 127.0.0.1:1: ECONNREFUSED\n');
    const h = await run(['-H', 'localhost.invalid']);
    expect(h.code).to.equal(69);
    expect(h.stderr).to.match(/^lcmon: cannot reach RabbitMQ at localhost\.invalid:5672: \S+\n$/);
    expect(h.stderr + r.stderr)
      .to.not.include('s3cr3t')
      .and.not.include('guest:guest');
    // Not a URL of the broker at all: a bad argument (exit 2), said without repeating it.
    for (const bad of ['watcher:s3cr3t-pw@127.0.0.1', 'http://watcher:s3cr3t-pw@127.0.0.1', 'amqp//127.0.0.1']) {
      const u = await run(['-u', bad]);
      expect(u.code, bad).to.equal(2);
      expect(u.stderr, bad).to.match(/url must be an amqp:\/\/ or amqps:\/\/ URL/);
      expect(u.stderr, bad).to.not.match(/s3cr3t|watcher/);
    }
    // A password with an unencoded / ? or # parses as host:port: refused, the password not said.
    for (const bad of ['1234/s3cr3t', '1234?s3cr3t', '1234#s3cr3t']) {
      const u = await run(['-u', `amqp://watcher:${bad}@127.0.0.1:5672/%2F`]);
      expect(u.code, bad).to.equal(2);
      expect(u.stderr, bad).to.match(/url is not a URL that parses .*must be percent-encoded/);
      expect(u.stderr, bad).to.not.match(/s3cr3t/);
    }
  });

  it('a vhost the broker will not open: one line saying so, exit 77 (refused), not "cannot reach"', async () => {
    const u = new URL(amqpUrl());
    u.pathname = `/${uniqueName('no-vhost')}`;
    const r = await run(['-u', u.toString(), '-e', exchange]);
    expect(r.code, r.stderr).to.equal(77);
    expect(r.stderr).to.match(/^lcmon: RabbitMQ at \S+ refused to open the vhost "no-vhost-[^"]+" for this user/);
  });

  it('-H builds the guest URL for a host; -u and CONTEXTURE_URL name the broker', async () => {
    const byHost = start(['-H', '127.0.0.1', '-e', exchange], {
      env: { CONTEXTURE_URL: 'amqp://guest:guest@127.0.0.1:1/%2F' },
    });
    const byUrl = start(['-u', amqpUrl(), '-e', exchange], {
      env: { CONTEXTURE_URL: 'amqp://guest:guest@127.0.0.1:1/%2F' },
    });
    await Promise.all([byHost.ready(), byUrl.ready()]);
    expect(byHost.stderr).to.include('listening on 127.0.0.1:5672');
    await pub.publish(exchange, 'web.h', B);
    await Promise.all([byHost.untilLines(B.length), byUrl.untilLines(B.length)]);
    const [r1, r2] = await Promise.all([byHost.interrupt(), byUrl.interrupt()]);
    expect(json(r1.lines)).to.deep.equal(B);
    expect(json(r2.lines)).to.deep.equal(B);
  });

  it('round trip: lcmon -v > f while a stream is published, then lcmon -sc < f gives what lcmon -c printed live', async () => {
    const tmp = tempDir();
    cleanup.defer(() => tmp.remove());
    const saved = tmp.file('saved.jsonl');
    const { l: saver, closed } = startToFile(['-e', exchange, '-v'], saved);
    const live = start(['-e', exchange, '-c']);
    const liveVerbose = start(['-e', exchange, '-c', '-v']);
    await Promise.all([saver.ready(), live.ready(), liveVerbose.ready()]);
    const many: Body[] = [];
    for (let i = 0; i < 50; i++)
      many.push(...lifecycle(`rt${i}`, { i, url: `/r/${i}` }, [{ step: 1 }, { step: 2, i: i * 2 }], 1_700_000_000 + i));
    // Interleave contexts, with a duplicate now and then, as a busy publisher would.
    const mixed = many
      .map((m, k) => ({ m, k: (k % 4) * 1000 + k }))
      .sort((x, y) => x.k - y.k)
      .map((x) => x.m);
    await pub.publish(exchange, 'web.rt', mixed.slice(0, 100), { headers: { hostname: 'box-1' } });
    await pub.publish(exchange, 'api.rt', mixed.slice(100).concat(mixed.slice(10, 20)), {
      headers: { hostname: 'box-2' },
    });
    await Promise.all([live.untilLines(50), liveVerbose.untilLines(50)]);
    const [rl, rv] = await Promise.all([live.interrupt(), liveVerbose.interrupt()]);
    // Wait until the saver has written every message, then stop it.
    await saver.untilLines(mixed.length + 10);
    const rs = await saver.interrupt();
    await closed;
    expect(rs.code).to.equal(0);
    const text = readFileSync(saved, 'utf8');
    const back = await run(['-sc'], text);
    const backVerbose = await run(['-sc', '-v'], text);
    expect(back.lines).to.have.length(50);
    expect(back.lines).to.deep.equal(rl.lines);
    expect(backVerbose.lines).to.deep.equal(rv.lines);
    expect(json(backVerbose.lines)[0].headers).to.have.property('hostname');
  });
});

describe('lcmon live: connection lost', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('says so in one line and exits 69 when the connection breaks', async () => {
    const exchange = cleanup.exchange(uniqueName('lcmon-x'));
    const broker = new URL(amqpUrl());
    const proxy = new FaultProxy(broker.hostname, Number(broker.port || 5672));
    const port = await proxy.listen();
    cleanup.defer(() => proxy.close());
    broker.host = `127.0.0.1:${port}`;
    const l = start(['-u', broker.toString(), '-e', exchange]);
    await l.ready();
    proxy.cut();
    const r = await l.exited;
    expect(r.code).to.equal(69);
    expect(r.stderr).to.match(new RegExp(`lcmon: connection to RabbitMQ at 127\\.0\\.0\\.1:${port} lost`));
    expect(r.stderr).to.not.include('guest:guest');
  });

  it('a broker that goes silent is taken as lost in about 10 s (not the 20 to 30 s of amqplib alone): one line, exit 69', async () => {
    const exchange = cleanup.exchange(uniqueName('lcmon-x'));
    const broker = new URL(amqpUrl());
    const proxy = new FaultProxy(broker.hostname, Number(broker.port || 5672));
    const port = await proxy.listen();
    cleanup.defer(() => proxy.close());
    broker.host = `127.0.0.1:${port}`;
    const l = start(['-u', broker.toString(), '-e', exchange]);
    await l.ready();
    const t0 = performance.now();
    proxy.stall();
    // Generous: nearly twice the 10 s.
    const bound = new Promise<null>((resolve) => setTimeout(() => resolve(null), 18_000).unref());
    const r = await Promise.race([l.exited, bound]);
    expect(r, 'the silent broker noticed within 18 s').to.not.equal(null);
    console.log(`      (silent broker noticed after ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    expect(r!.code).to.equal(69);
    expect(r!.stderr).to.match(
      new RegExp(`lcmon: connection to RabbitMQ at 127\\.0\\.0\\.1:${port} lost: .*Heartbeat timeout`),
    );
  });

  it('says so and exits 69 when the broker cancels the consumer (its queue deleted)', async () => {
    const exchange = cleanup.exchange(uniqueName('lcmon-x'));
    const q = cleanup.queue(uniqueName('lcmon-q'));
    const conn = await amqp.connect(amqpUrl());
    cleanup.defer(() => conn.close().catch(() => {}));
    const ch = await conn.createChannel();
    await ch.assertQueue(q, { durable: false });
    const l = start(['-q', q]);
    await l.ready();
    await ch.deleteQueue(q);
    const r = await l.exited;
    expect(r.code).to.equal(69);
    expect(r.stderr).to.match(/cancelled the consumer/);
    void exchange;
  });
});
