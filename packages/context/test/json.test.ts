import { expect } from 'chai';
import {
  decodeBody,
  isMalformed,
  parseJson,
  parseLine,
  stringifyJson,
  type WireMessage,
} from '@contexture/context/protocol';

/** What Python's json.dumps writes for a message holding floats NaN / inf / -inf and a large int. */
const PYTHON_BODY =
  '{"obj_id": "py-1", "obj": {"ratio": NaN, "hi": Infinity, "lo": -Infinity, "big": 18446744073709551616, ' +
  '"neg": -18446744073709551617, "list": [NaN, 1, 12345678901234567890123], "deep": {"x": [{"y": -Infinity}]}}, ' +
  '"status": "born", "seq": 0, "time_in": 1765071216.8234272}';

describe('parseJson / stringifyJson (JSON as the Python contexture writes it)', () => {
  it('reads bare NaN, Infinity and -Infinity as those numbers, at the top and inside arrays and objects', () => {
    expect(parseJson('NaN')).to.be.NaN;
    expect(parseJson(' Infinity ')).to.equal(Number.POSITIVE_INFINITY);
    expect(parseJson('-Infinity')).to.equal(Number.NEGATIVE_INFINITY);
    const v = parseJson('{"a": NaN, "b": [Infinity, -Infinity, {"c": NaN}], "d": {"e": {"f": -Infinity}}}') as {
      a: number;
      b: [number, number, { c: number }];
      d: { e: { f: number } };
    };
    expect(v.a).to.be.NaN;
    expect(v.b[0]).to.equal(Number.POSITIVE_INFINITY);
    expect(v.b[1]).to.equal(Number.NEGATIVE_INFINITY);
    expect(v.b[2].c).to.be.NaN;
    expect(v.d.e.f).to.equal(Number.NEGATIVE_INFINITY);
  });

  it('reads integers beyond 2^53 - 1 as BigInts with their exact digits; the rest as JSON.parse does', () => {
    const v = parseJson(
      '[18446744073709551616, -18446744073709551617, 9007199254740993, 9007199254740991, -9007199254740991, ' +
        '9007199254740992, 1234567890123456, 0.30000000000000004, 3.0994415283203125e-06, 1e21, 1.0, -0, ' +
        '123456789012345678901234567890.5, 12345678901234567890e0]',
    ) as unknown[];
    expect(v).to.deep.equal([
      18446744073709551616n,
      -18446744073709551617n,
      9007199254740993n,
      9007199254740991,
      -9007199254740991,
      9007199254740992n,
      1234567890123456,
      0.30000000000000004,
      3.0994415283203125e-6,
      1e21,
      1,
      -0,
      Number('123456789012345678901234567890.5'),
      Number('12345678901234567890'),
    ]);
    expect(Object.is(v[11], -0)).to.equal(true);
    expect(parseJson('{"n": {"m": [18446744073709551616]}}')).to.deep.equal({ n: { m: [18446744073709551616n] } });
    expect(parseJson('-18446744073709551616')).to.equal(-18446744073709551616n);
  });

  it('finds every integer beyond 2^53 wherever it stands in the text (seeded random documents)', () => {
    let seed = 12345;
    const next = (k: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % k;
    };
    const digits = (k: number): string => {
      let out = String(1 + next(9));
      while (out.length < k) out += String(next(10));
      return out;
    };
    for (let doc = 0; doc < 2000; doc++) {
      const items: string[] = [];
      const want: unknown[] = [];
      for (let j = 0, n = 1 + next(6); j < n; j++) {
        const d = digits(1 + next(25));
        const pad = ' '.repeat(next(3));
        switch (next(5)) {
          case 0: {
            items.push(`${pad}-${d}`);
            const v = Number(`-${d}`);
            want.push(Number.isSafeInteger(v) ? v : BigInt(`-${d}`));
            break;
          }
          case 1:
            items.push(`${pad}0.${d}`);
            want.push(Number(`0.${d}`));
            break;
          case 2:
            items.push(`"x${d}"`);
            want.push(`x${d}`);
            break;
          case 3:
            items.push(`{"k${j}":${pad}${d}}`);
            want.push({ [`k${j}`]: Number.isSafeInteger(Number(d)) ? Number(d) : BigInt(d) });
            break;
          default: {
            items.push(`${pad}${d}`);
            const v = Number(d);
            want.push(Number.isSafeInteger(v) ? v : BigInt(d));
          }
        }
      }
      const text = `[${items.join(',')}]`;
      expect(parseJson(text), text).to.deep.equal(want);
    }
  });

  it('leaves strings that hold the words or long digit runs exactly as they are', () => {
    expect(
      parseJson('{"s": "NaN", "t": "Infinity and -Infinity", "u": "18446744073709551616", "n": NaN}'),
    ).to.deep.equal({ s: 'NaN', t: 'Infinity and -Infinity', u: '18446744073709551616', n: Number.NaN });
    expect(parseJson('{"s": "x\\"NaN\\"y\\u0041 18446744073709551616", "k": 18446744073709551616}')).to.deep.equal({
      s: 'x"NaN"yA 18446744073709551616',
      k: 18446744073709551616n,
    });
    expect(parseJson('["NaN", "-Infinity", "a:12345678901234567890,b", 1]')).to.deep.equal([
      'NaN',
      '-Infinity',
      'a:12345678901234567890,b',
      1,
    ]);
    expect(parseJson('{"NaN": 1, "18446744073709551616": "Infinity"}')).to.deep.equal({
      NaN: 1,
      '18446744073709551616': 'Infinity',
    });
  });

  it('still refuses what is not JSON, with a SyntaxError, on every path', () => {
    const bad = [
      'nan',
      '{"a": nan}',
      '{"a": NaNa}',
      '[NaN,]',
      '{"a": -Inf}',
      '{"a": +Infinity}',
      '{"a": Infinity1}',
      '[18446744073709551616,]',
      '[018446744073709551616]',
      '{"a": 18446744073709551616',
      '{"a": "NaN}',
      '{"a": "\u0001", "b": NaN}',
      '{"a": "\\q", "b": NaN}',
      "{'a': NaN}",
      '{"a" NaN}',
      'NaN NaN',
      '[1, NaN] x',
      '',
      '-',
      '18446744073709551616.',
      '1844674407370955161e',
    ];
    for (const text of bad) expect(() => parseJson(text), JSON.stringify(text)).to.throw(SyntaxError);
  });

  it('keeps __proto__ keys as plain data on the lossless path too (no prototype pollution)', () => {
    for (const text of [
      '{"__proto__": {"polluted": NaN}, "n": 18446744073709551616}',
      '{"a": {"__proto__": {"polluted": 1}}, "b": Infinity}',
      '[{"__proto__": [18446744073709551616]}]',
    ]) {
      const v = parseJson(text);
      expect(({} as Record<string, unknown>).polluted, text).to.equal(undefined);
      expect(Object.prototype).to.not.have.property('polluted');
      expect(stringifyJson(v), text).to.equal(text.replace(/ /g, ''));
    }
    const v = parseJson('{"__proto__": {"polluted": NaN}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).to.equal(Object.prototype);
    expect(Object.hasOwn(v, '__proto__')).to.equal(true);
  });

  it('a repeated key keeps its last value, as JSON.parse does', () => {
    expect(parseJson('{"a": 1, "a": NaN, "b": 18446744073709551616, "b": 2}')).to.deep.equal({ a: Number.NaN, b: 2 });
  });

  it('nesting too deep to read is a RangeError on the lossless path, and decodeBody calls it too deep', () => {
    const deep = `${'['.repeat(200_000)}NaN${']'.repeat(200_000)}`;
    expect(() => parseJson(deep)).to.throw(RangeError);
    const body = `{"obj_id":"d","obj":{"x":${'['.repeat(200_000)}18446744073709551616${']'.repeat(200_000)}}}`;
    expect(decodeBody(body)).to.deep.equal([{ kind: 'too deep' }]);
    expect(decodeBody('{"obj_id":"d","obj":{"x":[[[[NaN]]]]}}', undefined, { maxDepth: 3 })).to.deep.equal([
      { kind: 'too deep' },
    ]);
  });

  it('writes them back as Python does: a Python body round-trips to the same text', () => {
    const v = parseJson(PYTHON_BODY);
    const compact = PYTHON_BODY.replace(/": /g, '":').replace(/, /g, ',');
    expect(stringifyJson(v)).to.equal(compact);
    expect(stringifyJson(parseJson(compact))).to.equal(compact);
    expect(stringifyJson({ n: 18446744073709551616n, m: [-5n], x: NaN, i: -Infinity })).to.equal(
      '{"n":18446744073709551616,"m":[-5],"x":NaN,"i":-Infinity}',
    );
  });

  it('writes a double beyond 2^53 - 1 with an exponent, so that it reads back as a number (Python floats such as 1e+16 go through unchanged)', () => {
    for (const v of [1e16, -(2 ** 60), 2 ** 53, 1.2345678901234568e18, 1.5e300, -1e21]) {
      const text = stringifyJson(v)!;
      expect(text, String(v)).to.match(/e\+\d+$/);
      expect(parseJson(text), text).to.equal(v);
      expect(stringifyJson({ a: [v] }), text).to.equal(`{"a":[${text}]}`);
    }
    const python = '{"f":1e+16,"g":-1.2345678901234568e+18,"safe":9007199254740991,"big":18446744073709551616}';
    const read = parseJson(python) as Record<string, unknown>;
    expect(read).to.deep.equal({
      f: 1e16,
      g: -1.2345678901234568e18,
      safe: 9007199254740991,
      big: 18446744073709551616n,
    });
    expect(stringifyJson(read)).to.equal(python);
    // A string of digits stays as it is.
    expect(stringifyJson({ s: '12345678901234567890', n: 1 })).to.equal('{"s":"12345678901234567890","n":1}');
  });

  it('writes everything else exactly as JSON.stringify does, indented or not', () => {
    const values: unknown[] = [
      { a: 1, b: [1, 'two', null, true, undefined, () => 1], c: { d: undefined }, e: new Date(0), f: '' },
      [],
      {},
      { nested: { empty: [], obj: {} }, s: 'line\nbreak "quoted" \u2028', n: -0, m: 1e21 },
      'text',
      42,
      null,
      new Number(3),
      { boxed: [new String('s'), new Boolean(false)] },
      { toJSON: (key: string) => ({ key }) },
    ];
    for (const v of values) {
      for (const indent of [undefined, 2, '\t']) {
        // Holding a NaN sends the value down the lossless writer; JSON.stringify wrote it as null.
        const withNaN = { v, x: Number.NaN };
        expect(stringifyJson(v, indent), String(indent)).to.equal(JSON.stringify(v, null, indent));
        expect(stringifyJson(withNaN, indent), String(indent)).to.equal(
          JSON.stringify({ v, x: 'NaN-HERE' }, null, indent).replace('"NaN-HERE"', 'NaN'),
        );
      }
    }
    expect(stringifyJson(undefined)).to.equal(undefined);
    expect(stringifyJson(() => 1)).to.equal(undefined);
    expect(stringifyJson({ a: null, b: 'null' })).to.equal('{"a":null,"b":"null"}');
  });

  it('still refuses a cycle with a TypeError, on both writers', () => {
    const loop: Record<string, unknown> = { n: 1n };
    loop.self = loop;
    expect(() => stringifyJson(loop)).to.throw(TypeError, /circular/);
    const loop2: Record<string, unknown> = { n: Number.NaN };
    loop2.self = [loop2];
    expect(() => stringifyJson(loop2)).to.throw(TypeError, /circular/);
  });

  it('decodeBody and parseLine take Python bodies instead of calling them not JSON', () => {
    for (const got of [
      decodeBody(PYTHON_BODY)[0]!,
      decodeBody(Buffer.from(`${PYTHON_BODY}\n${PYTHON_BODY}`), 'application/x-ndjson')[1]!,
    ]) {
      expect(isMalformed(got), stringifyJson(got)).to.equal(false);
      const m = got as WireMessage;
      expect(m.obj.ratio).to.be.NaN;
      expect(m.obj.big).to.equal(18446744073709551616n);
      expect(m.obj.lo).to.equal(Number.NEGATIVE_INFINITY);
    }
    const line = `{"rkey":"py.x","headers":{"hostname":"h"},"object":${PYTHON_BODY}}`;
    const parsed = parseLine(line);
    expect(isMalformed(parsed as never)).to.equal(false);
    expect((parsed as { message: WireMessage }).message.obj.neg).to.equal(-18446744073709551617n);
    expect(stringifyJson((parsed as { message: WireMessage }).message)).to.equal(
      PYTHON_BODY.replace(/": /g, '":').replace(/, /g, ','),
    );
  });
});
