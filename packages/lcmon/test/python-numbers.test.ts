import { Readable } from 'node:stream';
import { expect } from 'chai';
import { jsonLine, messages, objects } from '@contexture/lcmon';
import { Cleanup, uniqueName } from '@contexture/test-support';
import { Publisher, run, start } from './helpers.js';

/**
 * One context's life as the Python contexture 1.3 publishes it: json.dumps writes floats NaN, inf
 * and -inf as bare NaN / Infinity / -Infinity, integers with all their digits, ", " and ": "
 * between items.
 */
function pythonLife(id: string): string[] {
  return [
    `{"obj_id": "${id}", "obj": {"ratio": NaN, "big": 18446744073709551616, "name": "NaN 18446744073709551616"}, "status": "born", "seq": 0, "time_in": 1700000000.5}`,
    `{"obj_id": "${id}", "obj": {"hi": Infinity, "lo": -Infinity, "neg": -18446744073709551617, "list": [NaN, 1, 12345678901234567890123], "empty": null}, "seq": 1, "time_in": 1700000000.1}`,
    `{"obj_id": "${id}", "obj": {}, "status": "finished", "elapsed": 0.2, "seq": 2, "time_in": 1700000000.2}`,
  ];
}

/** The object `pythonLife` folds into, as lcmon writes it. */
const FOLDED =
  '{"ratio":NaN,"big":18446744073709551616,"name":"NaN 18446744073709551616","hi":Infinity,"lo":-Infinity,' +
  '"neg":-18446744073709551617,"list":[NaN,1,12345678901234567890123],"empty":null}';

/** What JSON.stringify would make of a Python body read back: the compact form of the same text. */
function compact(line: string): string {
  return line
    .replace(/": /g, '":')
    .replace(/, "/g, ',"')
    .replace(/, (?=[-\d\w[{])/g, ',');
}

describe('lcmon reads what the Python contexture writes (NaN, Infinity, integers beyond 2^53)', () => {
  const lines = pythonLife('py');
  const stdin = `${lines.join('\n')}\n`;
  // As lcmon -v writes them (its bodies are then printed as they are), and as a person might.
  const envelopes = `${lines.map((l) => `{"rkey":"py.app","headers":{"hostname":"h","n":18446744073709551616},"object":${l}}`).join('\n')}\n`;
  const spaced = `${lines.map((l) => `{"rkey": "py.app", "headers": {"hostname": "h", "n": 18446744073709551616}, "object": ${l}}`).join('\n')}\n`;

  it('-s prints each body exactly as it came, from plain bodies and from envelopes, and skips none', async () => {
    for (const input of [stdin, envelopes]) {
      const r = await run(['-s'], input);
      expect(r.code).to.equal(0);
      expect(r.stderr).to.equal('');
      expect(r.lines).to.deep.equal(lines);
    }
    // A body inside an envelope of another layout is written again: the same values, compact.
    const r = await run(['-s'], spaced);
    expect(r.stderr).to.equal('');
    expect(r.lines).to.deep.equal(lines.map(compact));
  });

  it('-s -v writes the envelope with the exact digits of the body and the headers', async () => {
    const r = await run(['-s', '-v'], envelopes);
    expect(r.stderr).to.equal('');
    expect(r.lines).to.deep.equal(
      lines.map((l) => `{"rkey":"py.app","headers":{"hostname":"h","n":18446744073709551616},"object":${l}}`),
    );
    const s = await run(['-s', '-v'], spaced);
    expect(s.lines).to.deep.equal(
      lines.map((l) => `{"rkey":"py.app","headers":{"hostname":"h","n":18446744073709551616},"object":${compact(l)}}`),
    );
    const plain = await run(['-s', '-v'], stdin);
    expect(plain.lines).to.deep.equal(lines.map((l) => `{"rkey":null,"headers":{},"object":${l}}`));
  });

  it('-sc folds them into one object with the bare words and the exact digits, from bodies and envelopes', async () => {
    for (const input of [stdin, envelopes, spaced]) {
      const r = await run(['-sc'], input);
      expect(r.code).to.equal(0);
      expect(r.stderr).to.equal('');
      expect(r.lines).to.deep.equal([FOLDED]);
    }
    const v = await run(['-sc', '-v'], envelopes);
    expect(v.stderr).to.equal('');
    expect(v.lines).to.have.length(1);
    expect(v.lines[0]).to.contain(`"object":${FOLDED}`);
    expect(v.lines[0]).to.contain('"headers":{"hostname":"h","n":18446744073709551616}');
  });

  it('-sc and objects() keep a float beyond 2^53 (Python writes 1e+16) a number, written with its exponent', async () => {
    const body = '{"obj_id": "fl", "obj": {"f": 1e+16, "g": -1.2345678901234568e+18}, "status": "transient", "seq": 0}';
    const r = await run(['-sc'], `${body}\n`);
    expect(r.stderr).to.equal('');
    expect(r.lines).to.deep.equal(['{"f":1e+16,"g":-1.2345678901234568e+18}']);
    const got = [];
    for await (const o of objects({ stdin: Readable.from([`${body}\n`]) })) got.push(o);
    expect(got).to.deep.equal([{ f: 1e16, g: -1.2345678901234568e18 }]);
  });

  it('-sc folds a Python stream without seq, and many contexts across the collating workers', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `py-${i}`);
    const all = ids.flatMap((id) => pythonLife(id).map((l) => l.replace(/, "seq": \d+/, '')));
    const r = await run(['-sc'], `${all.join('\n')}\n`);
    expect(r.stderr).to.equal('');
    expect(r.lines).to.have.length(ids.length);
    for (const line of r.lines) expect(line).to.equal(FOLDED);
  });

  it('-k, -t and -z keep the values and their digits', async () => {
    const k = await run(['-s', '-k', 'big', '-k', 'lo'], stdin);
    expect(k.stderr).to.equal('');
    // a key not found is an empty list, as the Python lcmon prints it
    expect(k.lines).to.deep.equal([
      '{"big":18446744073709551616,"lo":[]}',
      '{"big":[],"lo":-Infinity}',
      '{"big":[],"lo":[]}',
    ]);
    const kc = await run(['-sc', '-k', 'list'], stdin);
    expect(kc.lines).to.deep.equal(['{"list":[NaN,1,12345678901234567890123]}']);
    const t = await run(['-sc', '-t', 'name', '-t', 'list'], stdin);
    expect(t.lines).to.deep.equal([
      '{"ratio":NaN,"big":18446744073709551616,"hi":Infinity,"lo":-Infinity,"neg":-18446744073709551617,"empty":null}',
    ]);
    const z = await run(['-s', '-z'], stdin);
    expect(z.lines).to.deep.equal([
      compact(lines[0]!),
      '{"obj_id":"py","obj":{"hi":Infinity,"lo":-Infinity,"neg":-18446744073709551617,"list":[NaN,1,12345678901234567890123]},"seq":1,"time_in":1700000000.1}',
      '{"obj_id":"py","status":"finished","elapsed":0.2,"seq":2,"time_in":1700000000.2}',
    ]);
    const zc = await run(['-sc', '-z'], stdin);
    expect(zc.lines).to.deep.equal([FOLDED.replace(',"empty":null', '')]);
  });

  it('-p pretty-prints the bare words and the digits, and --color colours them as numbers', async () => {
    const r = await run(['-sc', '-p'], stdin);
    expect(r.stderr).to.equal('');
    expect(r.stdout).to.contain('\n  "ratio": NaN,\n  "big": 18446744073709551616,\n');
    expect(r.stdout).to.contain('\n  "list": [\n    NaN,\n    1,\n    12345678901234567890123\n  ],\n');
    const coloured = await run(['-sc', '-p', '--color'], stdin);
    expect(coloured.stdout.replace(/\x1b\[\d+m/g, '')).to.equal(r.stdout);
    for (const word of ['NaN', 'Infinity', '-Infinity', '18446744073709551616'])
      expect(coloured.stdout).to.contain(`\x1b[36m${word}\x1b[39m`);
  });

  it('the monitor library yields them as NaN, Infinity and BigInt, and jsonLine() writes them back', async () => {
    const got: Array<{ object: { obj: Record<string, unknown> } }> = [];
    for await (const m of messages({ stdin: Readable.from([Buffer.from(stdin)]) })) got.push(m as never);
    expect(got).to.have.length(3);
    expect(got[0]!.object.obj.ratio).to.be.NaN;
    expect(got[0]!.object.obj.big).to.equal(18446744073709551616n);
    expect(got[1]!.object.obj.lo).to.equal(Number.NEGATIVE_INFINITY);
    expect(got[1]!.object.obj.neg).to.equal(-18446744073709551617n);
    expect(got.map((m) => jsonLine(m.object))).to.deep.equal(lines.map(compact));
    const folded: Array<Record<string, unknown>> = [];
    for await (const o of objects({ stdin: Readable.from([Buffer.from(envelopes)]) })) folded.push(o);
    expect(folded.map((o) => jsonLine(o))).to.deep.equal([FOLDED]);
  });
});

describe('lcmon live reads what the Python contexture publishes', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('prints the bodies as they came and folds them with -c, through the broker', async () => {
    const exchange = cleanup.exchange(uniqueName('lcmon-py'));
    const pub = await Publisher.open(exchange);
    cleanup.defer(() => pub.close());
    const l = start(['-e', exchange]);
    const lc = start(['-e', exchange, '-c']);
    await Promise.all([l.ready(), lc.ready()]);
    const lines = pythonLife('live-py');
    await pub.publish(exchange, 'py.app', lines);
    await Promise.all([l.untilLines(lines.length), lc.untilLines(1)]);
    const [r, rc] = await Promise.all([l.interrupt(), lc.interrupt()]);
    expect(r.lines).to.deep.equal(lines);
    expect(rc.lines).to.deep.equal([FOLDED]);
    expect(r.stderr).to.not.match(/skipped/);
    expect(rc.stderr).to.not.match(/skipped/);
  });
});
