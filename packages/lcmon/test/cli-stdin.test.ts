import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { Collator, isMalformed, parseLine, type Malformed, type ParsedLine } from '@contexture/context/protocol';
import { waitUntil } from '@contexture/test-support';
import {
  envelopes,
  json,
  LCMON,
  lifecycle,
  PY_ANNOUNCEMENT,
  PY_STOPPING,
  run,
  start,
  tempDir,
  type Body,
} from './helpers.js';

const A = lifecycle('a', { url: '/a', n: 1 }, [{ n: 2 }, { tags: ['x'], nested: { n: 9 } }, { n: 3 }]);
const B = lifecycle('b', { url: '/b' }, [{ status_code: 200 }], 1_700_000_100);
const T: Body = { obj_id: 't', obj: { kind: 'transient', v: 1 }, status: 'transient', seq: 0, time_in: 1_700_000_200 };

/** Deterministic shuffle, so that a failure replays. */
function shuffle<X>(items: X[], seed: number): X[] {
  const a = items.slice();
  let s = seed;
  for (let i = a.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

describe('lcmon -s (stdin)', () => {
  it('prints every message body as one JSON line, from -v envelopes and from plain bodies alike', async () => {
    const plain = `${A.map((b) => JSON.stringify(b)).join('\n')}\n`;
    const fromPlain = await run(['-s'], plain);
    const fromEnvelopes = await run(['-s'], envelopes(A));
    expect(fromPlain.code).to.equal(0);
    expect(json(fromPlain.lines)).to.deep.equal(A);
    expect(fromEnvelopes.code).to.equal(0);
    expect(fromEnvelopes.stdout).to.equal(fromPlain.stdout);
    expect(fromPlain.stderr).to.equal('');
  });

  it('a line over 16 MiB is skipped and reported as too large without being held whole, with or without -c; the lines after it keep their numbers', async function () {
    this.timeout(60_000);
    const valid = JSON.stringify({ obj_id: 'big', obj: { v: 1 }, status: 'transient', seq: 0 });
    const huge = 'x'.repeat(17 * 1024 * 1024);
    for (const args of [['-s'], ['-sc']]) {
      const r = await run(args, `${huge}\n${valid}\nnot json\n${huge}`);
      expect(r.code, args.join(' ')).to.equal(0);
      expect(
        json(r.lines).map((o) => (o.obj ?? o).v),
        args.join(' '),
      ).to.deep.equal([1]);
      expect(r.stderr, args.join(' ')).to.match(/line 1: skipped, too large/);
      expect(r.stderr, args.join(' ')).to.match(/line 3: skipped, not JSON/);
      expect(r.stderr, args.join(' ')).to.match(/skipped 3 malformed inputs \(too large: 2, not JSON: 1\)/);
    }
  });

  it('lines longer than one read of a pipe come out whole: byte for byte with -s, every field with -sc, after a too-large line too', async function () {
    this.timeout(120_000);
    // 60 lines of 300-360 KiB: a line spans several 64 KiB reads, and the reader's 1 MiB chunks end inside one.
    const line = (i: number) =>
      `${JSON.stringify({ obj_id: `L${i}`, obj: { a: 'z'.repeat(300 * 1024 + i * 1000) }, status: 'transient' })}\n`;
    const input = Array.from({ length: 60 }, (_, i) => line(i)).join('');
    const plain = await run(['-s'], input);
    expect(plain.code).to.equal(0);
    expect(plain.stderr).to.equal('');
    expect(plain.stdout === input, 'the output is the input').to.equal(true);
    const folded = await run(['-sc'], input);
    expect(folded.code).to.equal(0);
    expect(folded.stderr).to.equal('');
    expect(json(folded.lines).map((o) => o.a.length)).to.deep.equal(
      Array.from({ length: 60 }, (_, i) => 300 * 1024 + i * 1000),
    );
    // A line just under the limit right after one over it.
    const good = JSON.stringify({ obj_id: 'g', obj: { a: '' }, status: 'transient' });
    const ys = 'y'.repeat(16 * 1024 * 1024 - 100 - good.length);
    const near = good.replace('"a":""', `"a":"${ys}"`);
    for (const args of [['-s'], ['-sc']]) {
      const r = await run(args, `${'x'.repeat(17 * 1024 * 1024)}\n${near}\n`);
      expect(r.code, args.join(' ')).to.equal(0);
      const want = args.includes('-sc') ? JSON.stringify({ a: ys }) : near;
      expect(r.lines.length, args.join(' ')).to.equal(1);
      expect(
        r.lines[0] === want,
        `${args.join(' ')}: the line whole (${r.lines[0]?.length} of ${want.length} bytes)`,
      ).to.equal(true);
      expect(r.stderr, args.join(' ')).to.match(/skipped 1 malformed input \(too large: 1\)/);
    }
  });

  it('a message nested 100,000 levels deep is skipped as too deep, once, in every mode; the rest is printed, exit 0', async function () {
    this.timeout(120_000);
    const deep = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
    const open: Body = { obj_id: 'open', obj: { o: 1 }, status: 'born', seq: 0 };
    const ordinary = envelopes([...A, open]);
    const cut = ordinary.indexOf('\n', ordinary.indexOf('\n') + 1) + 1;
    // Line 3: an envelope whose body is nested 100,000 levels deep, in the middle of A's messages.
    const deepLine = `{"rkey":"web.handle","headers":{"hostname":"box-1"},"object":{"obj_id":"deep","obj":{"v":${deep}},"status":"born","seq":0}}\n`;
    const input = ordinary.slice(0, cut) + deepLine + ordinary.slice(cut);
    const modes = [
      ['-s'],
      ['-s', '-p'],
      ['-s', '-t', 'n'],
      ['-s', '-z'],
      ['-s', '-k', 'n'],
      ['-s', '-v'],
      ['-sc'],
      ['-sc', '-p'],
      ['-sc', '-v', '-t', 'n', '-z'],
      ['-sc', '--flush-incomplete'],
    ];
    for (const args of modes) {
      const [r, expected] = await Promise.all([run(args, input), run(args, ordinary)]);
      const what = args.join(' ');
      expect(r.code, what).to.equal(0);
      expect(r.stdout, what).to.equal(expected.stdout);
      expect(r.lines.length, what).to.be.greaterThan(0);
      const warnings = r.stderr.split('\n').filter((l) => l.includes('skipped,'));
      expect(warnings, what).to.deep.equal([
        'lcmon: warning: line 3: skipped, too deep (more than 64 levels); more "too deep" input is counted, not shown',
      ]);
      expect(r.stderr, what).to.include('skipped 1 malformed input (too deep: 1)');
    }
    // A plain body and deep headers alike.
    const plain = `{"obj_id":"deep","obj":{"v":${deep}},"status":"transient","seq":0}\n`;
    const headers = `{"rkey":"web.handle","headers":{"h":${deep}},"object":{"obj_id":"deep","obj":{},"status":"transient","seq":0}}\n`;
    for (const args of [
      ['-s', '-v'],
      ['-sc', '-v'],
    ]) {
      const r = await run(args, plain + headers + envelopes(B));
      expect(r.code, args.join(' ')).to.equal(0);
      expect(r.stderr, args.join(' ')).to.include('skipped 2 malformed inputs (too deep: 2)');
      expect(r.lines.length, args.join(' ')).to.equal(args[0] === '-s' ? B.length : 1);
    }
  });

  it("a saved line of the project's own traffic (a contexture.* routing key: heartbeats) is skipped, as live", async () => {
    const heartbeat = JSON.stringify({
      rkey: 'contexture.heartbeat',
      headers: { hostname: 'h' },
      object: { type: 'contexture.heartbeat', id: 'handler-1', obj_id: 'not-a-context', obj: {}, seq: 0 },
    });
    const input = `${envelopes(A.slice(0, 2))}${heartbeat}\n${envelopes(A.slice(2))}${heartbeat}\n`;
    for (const args of [['-s'], ['-s', '-v'], ['-sc'], ['-sc', '--flush-incomplete'], ['-s', '-k', 'obj_id']]) {
      const [r, expected] = await Promise.all([run(args, input), run(args, envelopes(A))]);
      expect(r.code, args.join(' ')).to.equal(0);
      expect(r.stdout, args.join(' ')).to.equal(expected.stdout);
      expect(r.stdout, args.join(' ')).to.not.include('handler-1');
      expect(r.stderr, args.join(' ')).to.equal('');
    }
  });

  it('a message that comes after its object was complete is said on stderr, not lost without a word', async () => {
    // A Python update (no seq) after `finished`: the store applies it, lcmon -c has printed the object.
    // With --trace, the one collator of the main thread (as live); without, the workers' (-sc).
    const lines = [
      { obj_id: 'py', obj: { a: 1 }, status: 'born', time_in: 1_700_000_000 },
      { obj_id: 'py', obj: {}, status: 'finished', elapsed: 1, time_in: 1_700_000_001 },
      { obj_id: 'py', obj: { a: 2 }, time_in: 1_700_000_002 },
      { obj_id: 'py', obj: { a: 3 }, time_in: 1_700_000_003 },
      { obj_id: 'ok', obj: { b: 1 }, status: 'transient', seq: 0 },
    ];
    const input = `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`;
    for (const args of [['-sc'], ['-sc', '--trace', '4bf92f3577b34da6a3ce929d0e0e4736']]) {
      const r = await run(args, input);
      expect(r.code, args.join(' ')).to.equal(0);
      if (args.length === 1) expect(json(r.lines)).to.deep.equal([{ a: 1 }, { b: 1 }]);
      expect(r.stderr, args.join(' ')).to.include(
        'lcmon: warning: 2 messages came after their object was complete and are in no output (a late update, or a message delivered again)',
      );
    }
    const clean = await run(['-sc'], envelopes(A));
    expect(clean.stderr).to.equal('');
  });

  it("a Python log call with a message other than text keeps its fields (ctx.log.info({'status': 200}, user='bob'))", async () => {
    const lines = [
      { obj_id: 'py-log', obj: {}, status: 'born', time_in: 1_700_000_100, handler_id: 'h' },
      { obj_id: 'py-log', obj: { user: 'bob' }, message: { status: 200 }, time_in: 1_700_000_101 },
      { obj_id: 'py-log', obj: { code: 500 }, message: 42, level: 'error', time_in: 1_700_000_102 },
      { obj_id: 'py-log', obj: {}, status: 'finished', elapsed: 3, time_in: 1_700_000_103 },
    ];
    const input = `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`;
    for (const args of [['-sc'], ['-c', '-s']]) {
      const r = await run(args, input);
      expect(r.code, args.join(' ')).to.equal(0);
      expect(json(r.lines), args.join(' ')).to.deep.equal([{ user: 'bob', code: 500 }]);
      expect(r.stderr, args.join(' ')).to.equal('');
    }
  });

  it('a line whose bytes are not UTF-8 is skipped as such in every mode, never read with U+FFFD: ids that differ stay apart', async () => {
    // `utf\xff` and `utf\xfe` read with U+FFFD would be one id, their objects merged.
    const bad = (id: number, v: number) =>
      Buffer.concat([
        Buffer.from('{"obj_id":"utf'),
        Buffer.from([id]),
        Buffer.from(`","obj":{"v":${v}},"status":"transient","seq":0}`),
      ]);
    const good = (id: string, v: number) => JSON.stringify({ obj_id: id, obj: { v }, status: 'transient', seq: 0 });
    const input = Buffer.concat([
      Buffer.from(`${good('a', 1)}\n`),
      bad(0xff, 2),
      Buffer.from('\n'),
      bad(0xfe, 3),
      Buffer.from(`\n${good('café €𝄞', 4)}\n`),
      Buffer.from(`{"rkey":"r","headers":{"h":"`),
      Buffer.from([0xc3]),
      Buffer.from(`"},"object":${good('env', 5)}}\n${good('z', 6)}`),
    ]);
    for (const args of [['-s'], ['-s', '-v'], ['-s', '-k', 'v'], ['-sc'], ['-sc', '-v']]) {
      const r = await run(args, input);
      const what = args.join(' ');
      expect(r.code, what).to.equal(0);
      // A body (-s), an envelope (-s -v), keys (-k), an object (-sc) or its record (-sc -v): v in each.
      const v = (o: any) => (o.object ?? o).obj?.v ?? (o.object ?? o).v;
      expect(json(r.lines).map(v), what).to.deep.equal([1, 4, 6]);
      expect(r.stderr, what).to.include('line 2: skipped, not UTF-8');
      expect(r.stderr, what).to.include('skipped 3 malformed inputs (not UTF-8: 3)');
    }
  });

  it('--max-depth sets the depth limit (64 by default; 0: none): an envelope itself is not counted', async () => {
    const nest = (levels: number): unknown => (levels <= 1 ? 1 : { a: nest(levels - 1) });
    // The body {obj_id, obj: {v: ...}} is 3 levels deep when v holds one object.
    const bodyOf = (id: string, levels: number): Body => ({
      obj_id: id,
      obj: { v: nest(levels - 1) },
      status: 'transient',
      seq: 0,
    });
    const input = `${envelopes([bodyOf('four', 4), bodyOf('three', 3)])}${JSON.stringify(bodyOf('plain4', 4))}\n`;
    for (const args of [['-s'], ['-s', '-p'], ['-sc']]) {
      const r = await run([...args, '--max-depth', '3'], input);
      expect(r.code, args.join(' ')).to.equal(0);
      // One document is left (-p spreads it over several lines).
      const out = args[1] === '-p' ? [JSON.parse(r.stdout)] : json(r.lines);
      expect(
        out.map((o) => (o.obj ?? o).v),
        args.join(' '),
      ).to.deep.equal([{ a: 1 }]);
      expect(r.stderr, args.join(' ')).to.match(/line 1: skipped, too deep \(more than 3 levels\)/);
      expect(r.stderr, args.join(' ')).to.include('skipped 2 malformed inputs (too deep: 2)');
    }
    const off = await run(['-s', '--max-depth', '0'], input);
    expect(off.lines).to.have.length(3);
    expect(off.stderr).to.equal('');
    expect((await run(['-s', '--max-depth', '-1'], input)).code).to.equal(2);
  });

  it('-v prints {rkey, headers, object}; plain bodies get rkey null and no headers', async () => {
    const r = await run(
      ['-s', '-v'],
      `${envelopes(A.slice(0, 2), 'web.x', { hostname: 'h', tier: 2 }) + JSON.stringify(B[0])}\n`,
    );
    expect(json(r.lines)).to.deep.equal([
      { rkey: 'web.x', headers: { hostname: 'h', tier: 2 }, object: A[0] },
      { rkey: 'web.x', headers: { hostname: 'h', tier: 2 }, object: A[1] },
      { rkey: null, headers: {}, object: B[0] },
    ]);
    expect(Object.keys(JSON.parse(r.lines[0]!))).to.deep.equal(['rkey', 'headers', 'object']);
  });

  it('--trace: the messages and objects of one trace, by traceparent header or trace_id field', async () => {
    const t1 = '4bf92f3577b34da6a3ce929d0e0e4736';
    const t2 = '0af7651916cd43dd8448eb211c80319c';
    // As a handler publishes contexts made in spans: trace_id and span_id with born, the
    // traceparent header on every message.
    const X = lifecycle('x', { url: '/x', trace_id: t1, span_id: '00f067aa0ba902b7' }, [{ n: 1 }]);
    const Y = lifecycle('y', { url: '/y', trace_id: t2, span_id: 'b7ad6b7169203331' }, [{ n: 2 }]);
    const Z = lifecycle('z', { url: '/z', trace_id: t1, span_id: '53995c3f42cd8ad8' }, [{ n: 3 }]);
    const saved =
      envelopes(X, 'web.x', { hostname: 'h', traceparent: `00-${t1}-00f067aa0ba902b7-01` }) +
      envelopes(Y, 'web.y', { hostname: 'h', traceparent: `00-${t2}-b7ad6b7169203331-01` }) +
      envelopes(A, 'web.a', { hostname: 'h' }) +
      envelopes(Z, 'web.z', { hostname: 'h', traceparent: `00-${t1}-53995c3f42cd8ad8-00` });
    const messages = await run(['-s', '--trace', t1], saved);
    expect(messages.code).to.equal(0);
    expect(json(messages.lines)).to.deep.equal([...X, ...Z]);
    // Upper case is the same id; -v keeps the headers.
    const verbose = await run(['-s', '-v', '--trace', t2.toUpperCase()], saved);
    expect(json(verbose.lines).map((l) => [l.rkey, l.object])).to.deep.equal(Y.map((b) => ['web.y', b]));
    const objects = await run(['-sc', '--trace', t1], saved);
    expect(json(objects.lines)).to.deep.equal([
      { url: '/x', trace_id: t1, span_id: '00f067aa0ba902b7', n: 1 },
      { url: '/z', trace_id: t1, span_id: '53995c3f42cd8ad8', n: 3 },
    ]);
    // Plain bodies, as a jsonl file without headers: only born names the trace; with -c, the
    // object of any message of which does.
    const plain = `${[...X, ...Y, ...Z].map((b) => JSON.stringify(b)).join('\n')}\n`;
    expect(json((await run(['-s', '--trace', t1], plain)).lines)).to.deep.equal([X[0], Z[0]]);
    expect(json((await run(['-sc', '--trace', t2], plain)).lines)).to.deep.equal([
      { url: '/y', trace_id: t2, span_id: 'b7ad6b7169203331', n: 2 },
    ]);
    // -c with the header on a later message only (born lost or never traced): still the trace's.
    const late =
      envelopes(A.slice(0, 2), 'web.a', { hostname: 'h' }) +
      envelopes(A.slice(2), 'web.a', { hostname: 'h', traceparent: `00-${t2}-b7ad6b7169203331-01` });
    expect(json((await run(['-sc', '--trace', t2], late)).lines)).to.deep.equal([
      { url: '/a', n: 3, tags: ['x'], nested: { n: 9 } },
    ]);
    expect((await run(['-sc', '--trace', t1], late)).lines).to.deep.equal([]);
  });

  it('-c folds each context into its final object, transient ones included', async () => {
    const r = await run(['-sc'], envelopes([...A, ...B, T]));
    expect(r.code).to.equal(0);
    expect(json(r.lines)).to.deep.equal([
      { url: '/a', n: 3, tags: ['x'], nested: { n: 9 } },
      { url: '/b', status_code: 200 },
      { kind: 'transient', v: 1 },
    ]);
  });

  it('-c gives the same objects for shuffled and duplicated messages as for the stream in order', async () => {
    const inOrder = await run(['-sc', '-v'], envelopes([...A, ...B]));
    const expected = json(inOrder.lines).sort((x, y) => x.id.localeCompare(y.id));
    for (const seed of [1, 7, 42, 1234]) {
      const messy = shuffle([...A, ...B, A[1]!, B[0]!, A[A.length - 1]!], seed);
      const r = await run(['-sc', '-v'], envelopes(messy));
      expect(
        json(r.lines).sort((x, y) => x.id.localeCompare(y.id)),
        `seed ${seed}`,
      ).to.deep.equal(expected);
    }
  });

  it('-c -v prints {object, headers, rkey, start, end, elapsed, id} with ISO times', async () => {
    const r = await run(['-sc', '-v'], envelopes(A, 'web.handle', { hostname: 'box-1' }));
    const [o] = json(r.lines);
    expect(Object.keys(o)).to.deep.equal(['object', 'headers', 'rkey', 'start', 'end', 'elapsed', 'id']);
    expect(o).to.deep.equal({
      object: { url: '/a', n: 3, tags: ['x'], nested: { n: 9 } },
      headers: { hostname: 'box-1' },
      rkey: 'web.handle',
      start: '2023-11-14T22:13:20.000Z',
      end: '2023-11-14T22:13:20.400Z',
      elapsed: 0.4,
      id: 'a',
    });
  });

  it('prints a message without obj_id (the Python handler announcing itself) with -s and -v; -c leaves it out, not as malformed', async () => {
    const announce = JSON.parse(PY_ANNOUNCEMENT);
    const stopping = JSON.parse(PY_STOPPING);
    const py = { hostname: 'box-1' };
    // As saved by `lcmon -v` (the Python one or this one), and as plain bodies.
    const saved = [
      JSON.stringify({ rkey: 'default', headers: py, object: announce }),
      envelopes(A, 'web.handle', py).trimEnd(),
      JSON.stringify({ rkey: 'default', headers: py, object: stopping }),
    ].join('\n');
    const plain = [PY_ANNOUNCEMENT, ...A.map((b) => JSON.stringify(b)), PY_STOPPING].join('\n');

    const s = await run(['-s'], `${plain}\n`);
    expect(s.code).to.equal(0);
    expect(s.lines).to.deep.equal([PY_ANNOUNCEMENT, ...A.map((b) => JSON.stringify(b)), PY_STOPPING]);
    expect(s.stderr).to.equal('');
    const fromSaved = await run(['-s'], `${saved}\n`);
    expect(json(fromSaved.lines)).to.deep.equal([announce, ...A, stopping]);
    expect(fromSaved.stderr).to.equal('');

    const v = await run(['-s', '-v'], `${saved}\n`);
    expect(json(v.lines)).to.deep.equal([
      { rkey: 'default', headers: py, object: announce },
      ...A.map((object) => ({ rkey: 'web.handle', headers: py, object })),
      { rkey: 'default', headers: py, object: stopping },
    ]);
    expect(v.stderr).to.equal('');

    for (const args of [['-sc'], ['-sc', '-v'], ['-sc', '--flush-incomplete']]) {
      for (const input of [saved, plain]) {
        const c = await run(args, `${input}\n`);
        expect(c.code, args.join(' ')).to.equal(0);
        expect(
          json(c.lines).map((o) => o.object ?? o),
          args.join(' '),
        ).to.deep.equal([{ url: '/a', n: 3, tags: ['x'], nested: { n: 9 } }]);
        expect(c.stderr, args.join(' ')).to.equal('');
      }
    }
  });

  it('-k takes the first match breadth-first, *key every match (one match unwrapped)', async () => {
    const msg = {
      obj_id: 'k',
      obj: { elapsed: 2.7, deep: [{ elapsed: 9 }], name: 'inner' },
      elapsed: 1.1,
      name: 'outer',
    };
    const first = await run(['-s', '-k', 'elapsed', 'name'], `${JSON.stringify(msg)}\n`);
    expect(json(first.lines)).to.deep.equal([{ elapsed: 1.1, name: 'outer' }]);
    const all = await run(['-s', '-k', '*elapsed', '*name'], `${JSON.stringify(msg)}\n`);
    expect(json(all.lines)).to.deep.equal([{ elapsed: [1.1, 2.7, 9], name: ['outer', 'inner'] }]);
    const onCollated = await run(['-sc', '-k', '*n'], envelopes(A));
    expect(json(onCollated.lines)).to.deep.equal([{ n: [3, 9] }]);
    const verbose = await run(['-s', '-v', '-k', 'url'], envelopes(A.slice(0, 1)));
    expect(json(verbose.lines)).to.deep.equal([
      { rkey: 'web.handle', headers: { hostname: 'box-1' }, object: { url: '/a' } },
    ]);
  });

  it('-k prints a key it does not find as an empty list, as the Python lcmon does; -z then drops it', async () => {
    const M = { obj_id: 'M', obj: { a: 1 }, status: 'transient', seq: 0 };
    const input = `${JSON.stringify(M)}\n`;
    const r = await run(['-s', '-k', 'nope', 'obj_id'], input);
    expect(r.lines).to.deep.equal(['{"nope":[],"obj_id":"M"}']);
    const all = await run(['-s', '-k', '*nope', '*a'], input);
    expect(all.lines).to.deep.equal(['{"nope":[],"a":1}']);
    const v = await run(['-s', '-v', '-k', 'nope'], envelopes([M as Body], 'web.k'));
    expect(json(v.lines)).to.deep.equal([{ rkey: 'web.k', headers: { hostname: 'box-1' }, object: { nope: [] } }]);
    const c = await run(['-sc', '-k', 'nope', 'a'], input);
    expect(c.lines).to.deep.equal(['{"nope":[],"a":1}']);
    // -z drops empty lists as the Python lcmon's -z does: the key goes, and a document left empty is not printed.
    const z = await run(['-s', '-k', 'nope', 'obj_id', '-z'], input);
    expect(z.lines).to.deep.equal(['{"obj_id":"M"}']);
    const empty = await run(['-s', '-k', 'nope', '-z'], input);
    expect(empty.lines).to.deep.equal([]);
    expect(empty.code).to.equal(0);
    // A note without obj_id (the Python handler announcing itself) is searched like any message.
    const note = await run(['-s', '-k', 'pid', 'stopping'], `${PY_ANNOUNCEMENT}\n`);
    expect(note.lines).to.deep.equal(['{"pid":4242,"stopping":[]}']);
  });

  it('-c -v -k searches the whole record printed, its envelope as well as its object, breadth-first, as the Python lcmon does', async () => {
    const input = envelopes(A, 'web.handle', { hostname: 'box-1' });
    const r = await run(['-sc', '-v', '-k', 'elapsed', 'rkey', 'hostname', 'url', 'id', 'end'], input);
    expect(r.lines).to.deep.equal([
      '{"elapsed":0.4,"rkey":"web.handle","hostname":"box-1","url":"/a","id":"a","end":"2023-11-14T22:13:20.400Z"}',
    ]);
    // The record's own fields come before the object's (one level down); *key takes both.
    const E = lifecycle('e', { elapsed: 2.7, n: { elapsed: 9 } }, []);
    const first = await run(['-sc', '-v', '-k', 'elapsed', 'n'], envelopes(E));
    expect(first.lines).to.deep.equal(['{"elapsed":0.1,"n":{"elapsed":9}}']);
    const all = await run(['-sc', '-v', '-k', '*elapsed'], envelopes(E));
    expect(all.lines).to.deep.equal(['{"elapsed":[0.1,2.7,9]}']);
    // -t and -z then work on what was found; without -v only the object is searched, as before.
    const tz = await run(['-sc', '-v', '-k', 'headers', 'nope', '-t', 'hostname', '-z'], input);
    expect(tz.lines).to.deep.equal([]);
    const plain = await run(['-sc', '-k', 'elapsed', 'url'], input);
    expect(plain.lines).to.deep.equal(['{"elapsed":[],"url":"/a"}']);
  });

  it('-t removes keys at any depth', async () => {
    const r = await run(['-s', '-t', 'handler_id', 'n', 'time_in'], envelopes(A.slice(0, 3)));
    expect(json(r.lines)).to.deep.equal([
      { obj_id: 'a', obj: { url: '/a' }, status: 'born', seq: 0 },
      { obj_id: 'a', obj: {}, seq: 1 },
      { obj_id: 'a', obj: { tags: ['x'], nested: {} }, seq: 2 },
    ]);
    const collated = await run(['-sc', '-t', 'nested', 'tags'], envelopes(A));
    expect(json(collated.lines)).to.deep.equal([{ url: '/a', n: 3 }]);
  });

  it('-z drops empty values and prints nothing for what ends up empty', async () => {
    const msgs = [
      { obj_id: 'z', obj: { a: '', b: null, c: [], d: {}, e: { f: [] }, keep: 0, no: false }, seq: 0 },
      { obj_id: 'z', obj: { g: '' }, seq: 1 },
    ];
    const r = await run(['-s', '-k', 'obj', '-z'], `${msgs.map((m) => JSON.stringify(m)).join('\n')}\n`);
    expect(json(r.lines)).to.deep.equal([{ obj: { keep: 0, no: false } }]);
    const without = await run(['-s', '-k', 'obj'], `${msgs.map((m) => JSON.stringify(m)).join('\n')}\n`);
    expect(without.lines).to.have.length(2);
  });

  it('-n stops after N documents and exits 0', async () => {
    const many = envelopes(
      Array.from({ length: 500 }, (_, i) => ({ obj_id: `n${i}`, obj: { i }, status: 'transient', seq: 0 })),
    );
    const r = await run(['-s', '-n', '3'], many);
    expect(r.code).to.equal(0);
    expect(json(r.lines).map((m) => m.obj.i)).to.deep.equal([0, 1, 2]);
    const c = await run(['-sc', '-n', '2'], many);
    expect(json(c.lines)).to.deep.equal([{ i: 0 }, { i: 1 }]);
  });

  it('-p pretty-prints, coloured only when asked for or on a terminal; JSON lines are never coloured', async () => {
    const input = envelopes(A.slice(0, 1));
    const plain = await run(['-s', '-p'], input);
    expect(plain.stdout).to.equal(`${JSON.stringify(A[0], null, 2)}\n`);
    const forced = await run(['-s', '-p', '--color'], input);
    expect(forced.stdout).to.match(/\x1b\[\d+m/);
    expect(forced.stdout.replace(/\x1b\[\d+m/g, '')).to.equal(plain.stdout);
    const byEnv = await run(['-s', '-p'], input, { FORCE_COLOR: '1' });
    expect(byEnv.stdout).to.match(/\x1b\[\d+m/);
    const noColor = await run(['-s', '-p', '--no-color'], input, { FORCE_COLOR: '1' });
    expect(noColor.stdout).to.equal(plain.stdout);
    const lines = await run(['-s', '--color'], input, { FORCE_COLOR: '1' });
    expect(lines.stdout).to.not.match(/\x1b/);
  });

  it('NO_COLOR turns colour off; --color still turns it on', async () => {
    const input = envelopes(A.slice(0, 1));
    const off = await run(['-s', '-p'], input, { NO_COLOR: '1' });
    expect(off.stdout).to.not.match(/\x1b/);
    const on = await run(['-s', '-p', '--color'], input, { NO_COLOR: '1' });
    expect(on.stdout).to.match(/\x1b\[\d+m/);
  });

  it('escapes characters that could drive a terminal, and the output still parses to the same values', async () => {
    const nasty = 'a\u001b[31mred\u0007\u007f\u009b31m\u0085\u2028\u2029\u202e\u2066evil\u200f';
    const msg = { obj_id: 'esc', obj: { s: nasty, [nasty]: 1 }, seq: 0, status: 'transient' };
    for (const args of [['-s'], ['-s', '-v'], ['-sc'], ['-s', '-p'], ['-s', '-t', 'x']]) {
      const r = await run(args, `${JSON.stringify(msg)}\n`);
      expect(r.stdout, args.join(' ')).to.not.match(
        /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f]/,
      );
      expect(r.stdout)
        .to.include('\\u009b31m')
        .and.include('\\u2028')
        .and.include('\\u202e')
        .and.include('\\u001b[31m');
      const values = args.includes('-p') ? [JSON.parse(r.stdout)] : json(r.lines);
      expect(JSON.stringify(values[0])).to.include(JSON.stringify(nasty).slice(1, -1));
    }
  });

  it('counts and reports malformed lines once per kind with line numbers, keeps going, exits 0', async () => {
    const lines = [
      'not json at all',
      JSON.stringify(A[0]),
      '{"obj_id": "x", "obj": [1, 2]}',
      '{"truncated": ',
      JSON.stringify({ obj_id: 'y', obj: {}, seq: -1 }),
      '[1, 2, 3]',
      JSON.stringify({ obj_id: 'q', obj: {}, seq: 'one' }),
      JSON.stringify({ __proto__: { obj_id: 'p' }, obj: {} }).replace('{', '{"__proto__":{"obj_id":"p"},'),
      JSON.stringify(A[1]),
      '',
      JSON.stringify({ rkey: 'r', headers: {}, object: { obj_id: 5 } }),
    ];
    const r = await run(['-s'], `${lines.join('\n')}\n`);
    expect(r.code).to.equal(0);
    expect(json(r.lines)).to.deep.equal([A[0], A[1]]);
    const warnings = r.stderr.split('\n').filter((l) => l.includes('skipped,'));
    expect(warnings).to.have.length(5);
    expect(warnings[0]).to.match(/line 1: skipped, not JSON/);
    expect(warnings[1]).to.match(/line 3: skipped, obj not an object/);
    expect(warnings[2]).to.match(/line 5: skipped, bad seq/);
    expect(warnings[3]).to.match(/line 6: skipped, not an object/);
    expect(warnings[4]).to.match(/line 8: skipped, obj_id missing/);
    expect(r.stderr).to.match(
      /skipped 8 malformed inputs \(not JSON: 2, obj not an object: 1, bad seq: 2, not an object: 1, obj_id missing: 2\)/,
    );
  });

  it('escapes C1 controls and bidi marks on stderr as on stdout: a warning quoting a message never carries them raw', async () => {
    const line = JSON.stringify({ obj_id: 'c', obj: {}, seq: 0, status: 'bo\u009b[31m\u202ern' });
    const r = await run(['-s'], `${line}\n`);
    expect(r.code).to.equal(0);
    expect(r.stderr).to.not.match(/[\u0080-\u009f\u202e]/);
    expect(r.stderr).to.include('line 1: skipped, bad status (bo\\u009b[31m\\u202ern)');
  });

  it('keeps __proto__ and constructor keys as plain data through -c, -k, -t and -z', async () => {
    const born =
      '{"obj_id":"p","status":"born","seq":0,"obj":{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}},"ok":1}}';
    const fin = '{"obj_id":"p","status":"finished","seq":1,"obj":{}}';
    const other = '{"obj_id":"o","status":"transient","seq":0,"obj":{"plain":true}}';
    const input = `${[born, fin, other].join('\n')}\n`;
    const c = await run(['-sc'], input);
    expect(c.lines[0]).to.equal('{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}},"ok":1}');
    expect(c.lines[1]).to.equal('{"plain":true}');
    const k = await run(['-sc', '-k', 'polluted', '*x', 'plain'], input);
    expect(k.lines).to.deep.equal(['{"polluted":true,"x":1,"plain":[]}', '{"polluted":[],"x":[],"plain":true}']);
    const t = await run(['-sc', '-t', 'ok', '-z'], input);
    expect(t.lines).to.deep.equal([
      '{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}',
      '{"plain":true}',
    ]);
  });

  it('--flush-incomplete prints objects that never finished at the end, marked "complete": false', async () => {
    const open = lifecycle('open', { step: 1 }, [{ step: 2 }]).slice(0, 2);
    const gap = lifecycle('gap', { g: 1 }, [{ g: 2 }, { g: 3 }]).filter((m) => m.seq !== 2);
    const input = envelopes([...open, ...gap, ...B]);
    const without = await run(['-sc'], input);
    expect(json(without.lines)).to.deep.equal([
      { url: '/b', status_code: 200 },
      { object: { g: 2 }, id: 'gap', complete: false, missing: 1 },
    ]);
    const withFlush = await run(['-sc', '--flush-incomplete'], input);
    expect(json(withFlush.lines)).to.deep.equal([
      { url: '/b', status_code: 200 },
      { object: { g: 2 }, id: 'gap', complete: false, missing: 1 },
      { object: { step: 2 }, id: 'open', complete: false },
    ]);
    const verbose = await run(['-sc', '-v', '--flush-incomplete'], input);
    const v = json(verbose.lines);
    expect(v[1]).to.include({ id: 'gap', complete: false, missing: 1 });
    expect(v[2]).to.include({ id: 'open', complete: false, end: null, elapsed: null });
  });

  it('--flush-incomplete without -v marks an unfinished object beside its fields, never inside them', async () => {
    // The object's own `complete` field, an empty object and -k's bare values all stay as they were.
    const own: Body = { obj_id: 'own', obj: { complete: true, n: 1 }, status: 'born', seq: 0 };
    const empty: Body = { obj_id: 'empty', obj: {}, status: 'born', seq: 0 };
    const input = envelopes([own, empty, ...B]);
    for (const args of [
      ['-sc', '--flush-incomplete'],
      ['-s', '-c', '--flush-incomplete'],
    ]) {
      const r = await run(args, input);
      expect(r.code).to.equal(0);
      expect(json(r.lines)).to.deep.equal([
        { url: '/b', status_code: 200 },
        { object: { complete: true, n: 1 }, id: 'own', complete: false },
        { object: {}, id: 'empty', complete: false },
      ]);
    }
    const keys = await run(['-sc', '--flush-incomplete', '-k', 'n'], input);
    // (A key -k does not find is an empty list, as the Python lcmon prints it.)
    expect(json(keys.lines)).to.deep.equal([
      { n: [] },
      { object: { n: 1 }, id: 'own', complete: false },
      { object: { n: [] }, id: 'empty', complete: false },
    ]);
    const verbose = json((await run(['-sc', '-v', '--flush-incomplete'], input)).lines);
    expect(verbose[1]).to.include({ id: 'own', complete: false });
    expect(verbose[1].object).to.deep.equal({ complete: true, n: 1 });
  });

  it('-c reads every envelope after a known rkey and headers as a whole line would read, whatever follows them', async () => {
    // The first line makes the prefix known; the others put after it what a body alone cannot be.
    const P = '{"rkey":"web.x","headers":{"hostname":"h"},"object":';
    const lines = [
      `${P}{"obj_id":"a","seq":0,"status":"born","obj":{"u":1}}}`,
      `${P}{"obj_id":"a","seq":1,"obj":{"n":2}},"extra":1}`,
      `${P}{"obj_id":"z","seq":-1,"obj":{}}}`,
      `${P}[1]}`,
      `${P} {"obj_id":"a","seq":2,"obj":{"x":1}} }`,
      // A second "object" key: the last one is the message.
      P +
        '{"obj_id":"a","seq":3,"status":"finished","obj":{}},"object":{"obj_id":"b","seq":0,"status":"transient","obj":{"v":1}}}',
      `${P}{"obj_id":"a","seq":3,"status":"finished","obj":{"y":2}}`,
      `${P}{"obj_id":"a","seq":3,"status":"finished","obj":{"y":2}}}`,
    ];
    const r = await run(['-sc', '-v'], `${lines.join('\n')}\n`);
    expect(r.code).to.equal(0);
    const out = json(r.lines);
    expect(out.map((o) => [o.id, o.object, o.rkey, o.headers])).to.deep.equal([
      ['b', { v: 1 }, 'web.x', { hostname: 'h' }],
      ['a', { u: 1, n: 2, x: 1, y: 2 }, 'web.x', { hostname: 'h' }],
    ]);
    const warnings = r.stderr.split('\n').filter((l) => l.includes('skipped,'));
    expect(warnings).to.have.length(3);
    expect(warnings[0]).to.match(/line 3: skipped, bad seq/);
    expect(warnings[1]).to.match(/line 4: skipped, not an object/);
    expect(warnings[2]).to.match(/line 7: skipped, not JSON/);
  });

  it('-c over a long stream of many interleaved objects gives what one collator gives, in its order, reports included', async () => {
    // Several MB of input (many chunks), objects spread over every share, reordered, duplicated,
    // with gaps, never finished, malformed, and ids only a parse can read.
    let seed = 99;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const lines: string[] = [];
    const live: Body[][] = [];
    for (let i = 0; i < 4000; i++) {
      const id = i % 97 === 0 ? `esc\\u00e9-${i}` : `obj-${i}`;
      let msgs = lifecycle(JSON.parse(`"${id}"`) as string, { url: `/x/${i}`, i }, [{ step: 1 }, { step: 2, i: -i }]);
      if (i % 13 === 0) msgs = msgs.filter((m) => m.seq !== 2); // a gap: given out at the end
      if (i % 17 === 0) msgs = msgs.slice(0, 2); // never finished
      if (i % 5 === 0) msgs = [msgs[1]!, msgs[0]!, ...msgs.slice(1)]; // reordered and a duplicate
      live.push(msgs);
      // Interleave: a few objects live at once.
      while (live.length > 0 && (live.length > 6 || rnd(3) === 0)) {
        const k = rnd(live.length);
        const m = live[k]!.shift()!;
        if (live[k]!.length === 0) live.splice(k, 1);
        lines.push(
          rnd(4) === 0
            ? JSON.stringify(m)
            : JSON.stringify({ rkey: 'web.x', headers: { hostname: `h${i % 2}` }, object: m }),
        );
      }
      if (i % 250 === 0) lines.push('not json', '{"obj_id": 5}', '');
    }
    for (const msgs of live) for (const m of msgs) lines.push(JSON.stringify(m));
    const input = `${lines.join('\n')}\n`;

    // The oracle: one Collator over the whole input, in order.
    const expected: string[] = [];
    const bad = new Map<string, number[]>();
    const one = new Collator({
      onObject: (o) =>
        expected.push(
          JSON.stringify(
            o.complete
              ? o.object
              : { object: o.object, id: o.id, complete: false, ...(o.missing > 0 ? { missing: o.missing } : {}) },
          ),
        ),
      flushIncomplete: true,
    });
    lines.forEach((l, n) => {
      if (l.trim() === '') return;
      const p = parseLine(l);
      if (isMalformed(p as never)) bad.set((p as Malformed).kind, [...(bad.get((p as Malformed).kind) ?? []), n + 1]);
      else one.add((p as ParsedLine).message, (p as ParsedLine).meta);
    });
    one.flush(true);

    const r = await run(['-sc', '--flush-incomplete'], input);
    expect(r.code).to.equal(0);
    expect(r.lines.length).to.equal(expected.length);
    expect(r.lines).to.deep.equal(expected);
    const warnings = r.stderr.split('\n').filter((l) => l.includes('skipped,'));
    expect(warnings).to.deep.equal([
      `lcmon: warning: line ${bad.get('not JSON')![0]}: skipped, not JSON; more "not JSON" input is counted, not shown`,
      `lcmon: warning: line ${bad.get('obj_id missing')![0]}: skipped, obj_id missing; more "obj_id missing" input is counted, not shown`,
    ]);
    expect(r.stderr).to.include(
      `(not JSON: ${bad.get('not JSON')!.length}, obj_id missing: ${bad.get('obj_id missing')!.length})`,
    );

    // -n cuts the same merged stream.
    const n = await run(['-sc', '-n', '1234'], input);
    expect(n.lines).to.deep.equal(expected.slice(0, 1234));
  });

  it('reads CRLF files and skips blank lines', async () => {
    const r = await run(['-sc'], envelopes(B).replace(/\n/g, '\r\n\r\n'));
    expect(json(r.lines)).to.deep.equal([{ url: '/b', status_code: 200 }]);
    expect(r.stderr).to.equal('');
  });

  it('cuts a byte order mark at the start of the input in every mode; one further on is a line that is not JSON', async () => {
    const input = `\ufeff${envelopes(B)}`;
    for (const args of [['-s'], ['-sc']]) {
      const r = await run(args, input);
      expect(r.stderr, args.join(' ')).to.equal('');
      expect(r.lines.length, args.join(' ')).to.be.greaterThan(0);
    }
    expect(json((await run(['-sc'], input)).lines)).to.deep.equal([{ url: '/b', status_code: 200 }]);
    // A BOM alone on the first line leaves a blank line: skipped, not reported.
    for (const args of [['-s'], ['-sc']]) {
      const r = await run(args, `\ufeff\n${envelopes(B)}`);
      expect(r.stderr, args.join(' ')).to.equal('');
      expect(r.lines.length, args.join(' ')).to.be.greaterThan(0);
    }
    const later = await run(['-sc'], `${envelopes(A)}\ufeff${envelopes(B)}`);
    // B's first message is lost with its line: B ends unfinished, without its url.
    expect(json(later.lines)).to.deep.equal([
      ...json((await run(['-sc'], envelopes(A))).lines),
      { object: { status_code: 200 }, id: 'b', complete: false, missing: 1 },
    ]);
    expect(later.stderr).to.match(/not JSON/);
  });

  it('folds streams of the Python contexture (no seq, id instead of obj_id) in arrival order', async () => {
    const py = [
      { id: 'py1', obj: { a: 1 }, status: 'born', time_out: 1_700_000_000 },
      { id: 'py1', obj: { a: 2, b: 1 }, time_out: 1_700_000_001 },
      { id: 'py1', obj: {}, status: 'finished', elapsed: 2, time_out: 1_700_000_002 },
    ];
    const r = await run(['-sc'], `${py.map((m) => JSON.stringify(m)).join('\n')}\n`);
    expect(json(r.lines)).to.deep.equal([{ a: 2, b: 1 }]);
  });

  it('handles lines as they come through a pipe that pauses (node service.js | lcmon -s)', async () => {
    for (const args of [['-s'], ['-sc']]) {
      const l = start(args);
      l.child.stdin.write(envelopes([T]));
      await l.untilLines(1);
      l.child.stdin.write(envelopes(B));
      await l.untilLines(args.includes('-sc') ? 2 : 4);
      l.child.stdin.end();
      const r = await l.exited;
      expect(r.code).to.equal(0);
      expect(json(r.lines)[0], args.join(' ')).to.deep.equal(args.includes('-sc') ? T.obj : T);
    }
  });

  it('--stats ends with a summary line on stderr (no live line when stderr is not a terminal)', async () => {
    const r = await run(['-sc', '--stats'], `${envelopes([...A, ...B])}junk\n`);
    expect(r.stderr).to.match(/lcmon: 8 messages in [\d.]+ s \(\d+\/s\), 2 printed, 1 malformed, 0 objects open/);
    expect(r.stderr).to.not.include('\r');
  });

  it('--stats on a terminal redraws a status line every second, cleared before other output', async () => {
    const tmp = tempDir();
    try {
      const fifo = path.join(tmp.dir, 'in');
      execFileSync('mkfifo', [fifo]);
      // script(1) gives lcmon a terminal for stdout and stderr; its input comes through the fifo.
      const child = spawn(
        'script',
        ['-qfec', `'${process.execPath}' '${LCMON}' -sc --stats < '${fifo}'`, '/dev/null'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      const input = createWriteStream(fifo);
      input.write(envelopes(A.slice(0, 2)));
      await waitUntil(() => /msg\/s · 1 open · 0 malformed · 2 messages · 0 printed/.test(out), 'the status line');
      input.end(envelopes(A.slice(2)));
      expect(await exited).to.equal(0);
      expect(out).to.match(/\r\x1b\[2K\{"url":"\/a","n":3,"tags":\["x"\],"nested":\{"n":9\}\}\r\n/);
      expect(out).to.match(/lcmon: 5 messages in [\d.]+ s \(\d+\/s\), 1 printed, 0 malformed, 0 objects open\r\n$/);
    } finally {
      tmp.remove();
    }
  });

  it('ends quietly with status 0 when stdout closes early (lcmon ... | head -1)', async () => {
    const many = envelopes(
      Array.from({ length: 200_000 }, (_, i) => ({ obj_id: `e${i}`, obj: { i }, status: 'transient', seq: 0 })),
    );
    const l = start(['-s']);
    l.child.stdin.end(many);
    await l.untilLines(1);
    l.child.stdout.destroy();
    const r = await l.exited;
    expect(r.code).to.equal(0);
    expect(r.stderr).to.equal('');
  });
});

describe('lcmon arguments', () => {
  for (const [args, pattern] of [
    [['--bogus'], /unknown option '--bogus'/],
    [['-n', '0'], /-n, --count <n>' argument '0' is invalid/],
    [['-n', 'ten'], /argument 'ten' is invalid/],
    [['-x', 'some', '-a', 'a=1'], /Allowed choices are all, any/],
    [['-s', '-q', 'q1'], /cannot be used with option '-q/],
    [['-s', '-r', 'web.#'], /cannot be used with option '-r/],
    [['-q', 'q1', '--ttl', '5'], /--ttl does not apply to -q/],
    [['-c', '-s', 'extra'], /too many arguments/],
    [['-s', '--flush-incomplete'], /--flush-incomplete needs -c/],
    [['-a', 'novalue'], /expected key=value/],
    [['--ttl', '-5'], /--ttl/],
    [['-s', '--trace', 'abc'], /expected a trace id, 32 hex digits/],
    [['-s', '--trace', '0'.repeat(32)], /expected a trace id/],
    [['--handlers', '--trace', 'a'.repeat(32)], /--trace does not apply to --handlers/],
  ] as Array<[string[], RegExp]>) {
    it(`exits 2 with usage on: lcmon ${args.join(' ')}`, async () => {
      const r = await run(args);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.match(pattern);
      expect(r.stderr).to.include('lcmon --help');
      expect(r.stdout).to.equal('');
    });
  }

  it('--help and --version exit 0 on stdout', async () => {
    const help = await run(['--help']);
    expect(help.code).to.equal(0);
    expect(help.stdout).to.match(/^Usage: lcmon \[options\]/);
    // Every exit status the README lists.
    for (const status of [
      '0 done',
      '2 bad arguments',
      '66 ',
      '69 ',
      '70 internal error',
      '74 reading stdin failed',
      '77 ',
      '78 ',
      '130 ',
    ])
      expect(help.stdout, status).to.include(status);
    for (const flag of [
      '-H',
      '-u',
      '-e',
      '-q',
      '-r',
      '-a',
      '-x',
      '-s',
      '-k',
      '-t',
      '-c',
      '-p',
      '-v',
      '-z',
      '-n',
      '--ttl',
      '--color',
      '--no-color',
      '--flush-incomplete',
      '--stats',
    ]) {
      expect(help.stdout).to.include(flag);
    }
    const version = await run(['--version']);
    expect(version.code).to.equal(0);
    expect(version.stdout).to.match(/^\d+\.\d+\.\d+\n$/);
  });
});
