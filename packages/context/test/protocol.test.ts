import { expect } from 'chai';
import { ContextError } from '@contexture/context';
import {
  Collator,
  decodeBody,
  extractKeys,
  isMalformed,
  isNote,
  MessageSpans,
  parseLine,
  plainHeaders,
  scanMessage,
  Utf8Lines,
  validateMessage,
  type CollatedObject,
  type WireMessage,
} from '@contexture/context/protocol';

function lifecycle(id: string): WireMessage[] {
  return [
    { obj_id: id, obj: { url: '/a', n: 1 }, status: 'born', seq: 0, time_in: 100 },
    { obj_id: id, obj: { n: 2 }, seq: 1, time_in: 100.1 },
    { obj_id: id, obj: { url: null }, action: 'delete', seq: 2, time_in: 100.2 },
    { obj_id: id, obj: { tags: ['x'], nested: { a: 1 } }, seq: 3, time_in: 100.3 },
    { obj_id: id, obj: {}, message: 'hello', level: 'info', seq: 4, time_in: 100.4 },
    { obj_id: id, obj: { n: 3 }, seq: 5, time_in: 100.5 },
    { obj_id: id, obj: {}, status: 'finished', elapsed: 0.6, seq: 6, time_in: 100.6 },
  ];
}

function collate(
  messages: WireMessage[],
  opts: Partial<ConstructorParameters<typeof Collator>[0]> = {},
): { out: CollatedObject[]; c: Collator } {
  const out: CollatedObject[] = [];
  const c = new Collator({ onObject: (o) => out.push(o), ...opts });
  for (const m of messages) c.add(structuredClone(m), { rkey: 'web.handle', headers: { hostname: 'h' } });
  return { out, c };
}

/** Deterministic shuffle (mulberry32) so a failure can be replayed. */
function shuffle<T>(items: T[], seed: number): T[] {
  const a = items.slice();
  let s = seed >>> 0;
  const rnd = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

describe('protocol: collation', () => {
  it('folds an in-order lifecycle into the final object with times and meta', () => {
    const { out } = collate(lifecycle('a'));
    expect(out).to.have.length(1);
    const o = out[0]!;
    expect(o.object).to.deep.equal({ n: 3, tags: ['x'], nested: { a: 1 } });
    expect(Object.keys(o.object)).to.deep.equal(['n', 'tags', 'nested']);
    expect(o).to.include({
      id: 'a',
      status: 'finished',
      complete: true,
      missing: 0,
      start: 100,
      end: 100.6,
      elapsed: 0.6,
      rkey: 'web.handle',
    });
    expect(o.headers).to.deep.equal({ hostname: 'h' });
  });

  it('hands each object out with the input position that places it: of its last message, or where it began to wait or opened', () => {
    const got: Array<[string, number]> = [];
    const c = new Collator({ onObject: (o, position) => got.push([o.id, position]) });
    const m = (obj_id: string, seq: number, status?: 'born' | 'finished') => ({
      obj_id,
      obj: { seq },
      seq,
      ...(status ? { status } : {}),
    });
    c.add(m('a', 0, 'born'), {}, 10);
    c.add(m('b', 0, 'born'), {}, 11);
    c.add(m('g', 0, 'born'), {}, 12);
    c.add(m('g', 2, 'finished'), {}, 13); // waits for seq 1
    c.add(m('a', 1, 'finished'), {}, 14);
    c.add(m('d', 0, 'born'));
    expect(got).to.deep.equal([['a', 14]]);
    c.flush(true);
    // Waiting objects first (where they began to wait), then the open ones (where they opened).
    expect(got).to.deep.equal([
      ['a', 14],
      ['g', 13],
      ['b', 11],
      ['d', 5],
    ]);
  });

  it('gives the same object, keys in the same order, for any arrival order and any duplicates', () => {
    const expected = collate(lifecycle('a')).out[0]!;
    for (let seed = 1; seed <= 200; seed++) {
      const msgs = lifecycle('a');
      const dup = shuffle([...msgs, ...msgs.slice(0, 1 + (seed % msgs.length))], seed);
      const { out, c } = collate(dup);
      expect(out, `seed ${seed}`).to.have.length(1);
      expect(JSON.stringify(out[0]!.object), `seed ${seed}`).to.equal(JSON.stringify(expected.object));
      expect(out[0]!.complete).to.equal(true);
      expect(c.stats().duplicates + c.stats().late).to.equal(1 + (seed % msgs.length));
    }
  });

  it('waits for missing messages after finished, then gives the object out incomplete after the gap timeout', () => {
    let now = 1000;
    const msgs = lifecycle('a').filter((m) => m.seq !== 3);
    const { out, c } = collate(msgs, { gapTimeout: 500, now: () => now });
    expect(out).to.have.length(0);
    c.expire(now + 499);
    expect(out).to.have.length(0);
    now += 500;
    c.expire();
    expect(out).to.have.length(1);
    expect(out[0]).to.include({ complete: false, missing: 1, status: 'finished' });
    expect(out[0]!.object).to.deep.equal({ n: 3 });
  });

  it('gives out transient objects at once and ignores their redelivery, but not a new transient under the same guid', () => {
    const t1: WireMessage = { obj_id: 'g', obj: { v: 1 }, status: 'transient', seq: 0, time_in: 1 };
    const t2: WireMessage = { obj_id: 'g', obj: { v: 2 }, status: 'transient', seq: 0, time_in: 2 };
    const { out, c } = collate([t1, t1, t2]);
    expect(out.map((o) => o.object)).to.deep.equal([{ v: 1 }, { v: 2 }]);
    expect(c.stats().late).to.equal(1);
  });

  it('folds messages without seq (Python streams) in arrival order', () => {
    const { out } = collate([
      { obj_id: 'p', obj: { a: 1 }, status: 'born' },
      { obj_id: 'p', obj: { a: 2 } },
      { obj_id: 'p', obj: {}, status: 'finished', elapsed: 1 },
    ]);
    expect(out).to.have.length(1);
    expect(out[0]!.object).to.deep.equal({ a: 2 });
    expect(out[0]!.complete).to.equal(true);
  });

  it('flush(true) gives out objects that never finished as open; maxOpen evicts the oldest', () => {
    const { out, c } = collate(
      [
        { obj_id: 'o1', obj: { a: 1 }, status: 'born', seq: 0 },
        { obj_id: 'o2', obj: { b: 1 }, status: 'born', seq: 0 },
        { obj_id: 'o3', obj: { c: 1 }, status: 'born', seq: 0 },
      ],
      { maxOpen: 2 },
    );
    expect(c.stats()).to.include({ open: 2, evicted: 1 });
    c.flush(true);
    expect(out.map((o) => [o.id, o.status, o.complete])).to.deep.equal([
      ['o2', 'open', false],
      ['o3', 'open', false],
    ]);
  });

  it('evictOldest() forces out the oldest open object: given out when finished or with flushIncomplete, else dropped to onDrop', () => {
    const dropped: string[] = [];
    const born = (id: string): WireMessage => ({ obj_id: id, obj: { id }, status: 'born', seq: 0 });
    const { out, c } = collate([born('o1'), born('o2'), lifecycle('w').filter((m) => m.seq !== 1)].flat(), {
      onDrop: (id) => dropped.push(id),
    });
    expect([c.isOpen('o1'), c.isOpen('w'), c.isOpen('none')]).to.deep.equal([true, true, false]);
    expect(c.evictOldest()).to.equal(true);
    expect(dropped).to.deep.equal(['o1']);
    expect(c.isOpen('o1')).to.equal(false);
    expect(c.stats()).to.include({ evicted: 1, open: 2 });
    c.evictOldest();
    c.evictOldest();
    // w had finished (waiting for a missing message): given out incomplete, not dropped.
    expect(dropped).to.deep.equal(['o1', 'o2']);
    expect(out.map((o) => [o.id, o.complete])).to.deep.equal([['w', false]]);
    expect(c.evictOldest()).to.equal(false);
    const flushing = collate([born('f1')], { flushIncomplete: true, onDrop: (id) => dropped.push(id) });
    flushing.c.evictOldest();
    expect(flushing.out.map((o) => [o.id, o.status, o.complete])).to.deep.equal([['f1', 'open', false]]);
    expect(dropped).to.have.length(2);
  });

  it('refuses an onObject that is not a function with a ContextError', () => {
    for (const options of [{}, { onObject: 'print' }, undefined])
      expect(() => new Collator(options as never), JSON.stringify(options))
        .to.throw(ContextError, 'Collator: onObject must be a function')
        .with.property('code', 'LC_PROTOCOL_INVALID_OPTION');
  });

  it('keeps __proto__ and constructor keys as plain own fields', () => {
    const m = JSON.parse(
      '{"obj_id":"p","obj":{"__proto__":{"polluted":1},"constructor":{"prototype":{"x":1}}},"status":"transient","seq":0}',
    );
    const { out } = collate([m]);
    const o = out[0]!.object;
    expect(Object.getPrototypeOf(o)).to.equal(Object.prototype);
    expect(Object.hasOwn(o, '__proto__')).to.equal(true);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    expect(JSON.stringify(o)).to.equal('{"__proto__":{"polluted":1},"constructor":{"prototype":{"x":1}}}');
  });
});

describe('protocol: decoding', () => {
  it('validates field types and reports the kind of each problem', () => {
    expect(isMalformed(validateMessage({ obj_id: 'x', obj: {} }))).to.equal(false);
    const kinds = [
      [],
      { obj: {} },
      { obj_id: 'x', obj: [] },
      { obj_id: 'x', status: 'dead' },
      { obj_id: 'x', seq: -1 },
      { obj_id: 'x', seq: 1.5 },
      { obj_id: 'x', time_in: 'yesterday' },
      { obj_id: 'x', action: 'drop' },
    ].map((v) => (validateMessage(v) as { kind: string }).kind);
    expect(kinds).to.deep.equal([
      'not an object',
      'obj_id missing',
      'obj not an object',
      'bad status',
      'bad seq',
      'bad seq',
      'bad time',
      'bad action',
    ]);
  });

  it("keeps a log message of another type than text (Python's ctx.log.info({...}, user=...)) as its JSON text, with its fields", () => {
    const got = [
      { obj_id: 'x', obj: { user: 'bob' }, message: { status: 200 } },
      { obj_id: 'x', obj: { code: 500 }, message: 42 },
      { obj_id: 'x', obj: {}, message: ['a', null] },
      { obj_id: 'x', obj: {}, message: 'text' },
      { obj_id: 'x', obj: {}, message: null },
    ].map((v) => validateMessage(v) as WireMessage);
    expect(got.map((m) => m.message)).to.deep.equal(['{"status":200}', '42', '["a",null]', 'text', null]);
    expect(got.map((m) => m.obj)).to.deep.equal([{ user: 'bob' }, { code: 500 }, {}, {}, {}]);
  });

  it('takes a body without obj_id and obj (the Python handler announcing itself) as a note, never as malformed', () => {
    const announce =
      '{"host": "box-1", "pid": 4242, "argv": ["worker.py"], "tid": 1, "contexture": "1.3.0", "time_out": 1700000000.5, "time_in": 1700000000.4, "qtime": 0.1, "qlen": 0, "handler_id": "h"}';
    const [m] = decodeBody(Buffer.from(announce), 'text/plain');
    expect(isMalformed(m!)).to.equal(false);
    expect(isNote(m as never)).to.equal(true);
    expect(m).to.deep.equal(JSON.parse(announce));
    // Whatever its fields say, `kind` included.
    const odd = validateMessage({ kind: 'not JSON', stopping: true });
    expect(isMalformed(odd)).to.equal(false);
    expect(isNote(odd as never)).to.equal(true);
    expect(isNote(validateMessage({ obj_id: 'x', obj: {} }) as never)).to.equal(false);
    // A body with `obj` but no id is a context's message that lost its id.
    expect(validateMessage({ obj: { a: 1 } })).to.deep.equal({ kind: 'obj_id missing' });
    const c: unknown[] = [];
    const collator = new Collator({ onObject: (o) => c.push(o.object) });
    collator.add(m as never);
    collator.add({ obj_id: 't', obj: { v: 1 }, status: 'transient', seq: 0 });
    expect(c).to.deep.equal([{ v: 1 }]);
    expect(collator.stats()).to.include({ notes: 1, objects: 1, open: 0 });
  });

  it('unpacks ndjson batches, refuses huge and deep bodies without throwing', () => {
    const batch = decodeBody(
      Buffer.from('{"obj_id":"a","obj":{}}\n{"obj_id":"b","obj":{}}\nnot json\n'),
      'application/x-ndjson',
    );
    expect(batch.map((m) => (isMalformed(m) ? m.kind : m.obj_id))).to.deep.equal(['a', 'b', 'not JSON']);
    // Media types are case-blind and may carry parameters.
    for (const type of ['application/x-ndjson; charset=utf-8', 'Application/X-NDJSON', ' application/x-ndjson ;q=1']) {
      const two = decodeBody(Buffer.from('{"obj_id":"a","obj":{}}\n{"obj_id":"b","obj":{}}\n'), type);
      expect(
        two.map((m) => (isMalformed(m) ? m.kind : m.obj_id)),
        type,
      ).to.deep.equal(['a', 'b']);
    }
    expect(decodeBody('{"obj_id":"a","obj":{}}\n{"obj_id":"b","obj":{}}', 'application/json')).to.deep.equal([
      { kind: 'not JSON' },
    ]);
    expect(decodeBody('x'.repeat(100), 'application/json', { maxBytes: 10 })[0]).to.deep.include({ kind: 'too large' });
    const deep = `{"obj_id":"d","obj":${'{"a":'.repeat(200)}1${'}'.repeat(200)}}`;
    expect(decodeBody(deep, 'application/json', { maxDepth: 64 })[0]).to.deep.equal({ kind: 'too deep' });
    const veryDeep = '['.repeat(1_000_000) + ']'.repeat(1_000_000);
    expect(['too deep', 'not an object']).to.include((decodeBody(veryDeep)[0] as { kind: string }).kind);
  });

  it('reports a body, or a batch line, whose bytes are not UTF-8 as `not UTF-8`: ids that differ are never made one', () => {
    const body = (id: number[]) =>
      Buffer.concat([Buffer.from('{"obj_id":"utf'), Buffer.from(id), Buffer.from('","obj":{}}')]);
    for (const bytes of [[0xff], [0xfe], [0xc3], [0xed, 0xa0, 0x80], [0xe2, 0x82]])
      expect(decodeBody(body(bytes), 'application/json'), String(bytes)).to.deep.equal([{ kind: 'not UTF-8' }]);
    // Valid non-ASCII (2, 3 and 4 bytes) reads as it is.
    const valid = decodeBody(Buffer.from('{"obj_id":"café €𝄞","obj":{}}'), 'application/json');
    expect(valid.map((m) => (isMalformed(m) ? m.kind : m.obj_id))).to.deep.equal(['café €𝄞']);
    const batch = Buffer.concat([
      Buffer.from('{"obj_id":"a","obj":{}}\n'),
      body([0xff]),
      Buffer.from('\n\n{"obj_id":"é","obj":{}}\n'),
      body([0xc3, 0x28]),
      Buffer.from('\n{"obj_id":"b","obj":{}}'),
    ]);
    expect(decodeBody(batch, 'application/x-ndjson').map((m) => (isMalformed(m) ? m.kind : m.obj_id))).to.deep.equal([
      'a',
      'not UTF-8',
      'é',
      'not UTF-8',
      'b',
    ]);
  });

  it('Utf8Lines finds the lines that are not UTF-8 however the stream is cut, characters split across chunks', () => {
    const lines = [
      Buffer.from('plain'),
      Buffer.from('é€𝄞 all valid'),
      Buffer.from([0x61, 0xff, 0x62]),
      Buffer.from(''),
      Buffer.from('𝄞𝄞𝄞𝄞'),
      Buffer.from([0xf0, 0x9d, 0x84]), // a 4-byte character cut short
      Buffer.from('€'.repeat(50)),
      Buffer.from([0xed, 0xb0, 0x80]), // an encoded lone surrogate
      Buffer.from('last, no LF: é'),
    ];
    const stream = Buffer.concat(lines.flatMap((l, i) => (i < lines.length - 1 ? [l, Buffer.from('\n')] : [l])));
    for (const size of [1, 2, 3, 5, 7, 64, stream.length]) {
      const check = new Utf8Lines();
      for (let at = 0; at < stream.length; at += size) check.push(stream.subarray(at, at + size));
      check.end();
      const bad = lines.map((_, i) => i + 1).filter((n) => check.invalid(n));
      expect(bad, `chunks of ${size}`).to.deep.equal([3, 6, 8]);
    }
    // Lines passed over are forgotten: asked for a later line first, it still answers for it.
    const check = new Utf8Lines();
    check.push(stream);
    check.end();
    expect(check.invalid(6)).to.equal(true);
    expect(check.invalid(3)).to.equal(false);
    expect(check.invalid(8)).to.equal(true);
  });

  it('plainHeaders() makes AMQP header values plain JSON and leaves plain headers as they are', () => {
    const plain = { hostname: 'h', n: 1, ok: true, none: null };
    expect(plainHeaders(plain)).to.equal(plain);
    // As amqplib decodes them: a table under `__proto__` is the prototype of the object holding it.
    const decoded = Object.setPrototypeOf(
      {
        b: Buffer.from('é'),
        bad: Buffer.from([0xc3]),
        t: { '!': 'timestamp', value: 5 },
        d: { '!': 'decimal', value: { places: 3, digits: 1500 } },
        other: { '!': 'zzz', value: 1 },
        list: [{ '!': 'timestamp', value: 6 }, Buffer.from('x')],
      },
      { admin: true },
    );
    const got = plainHeaders(decoded);
    expect(Object.getPrototypeOf(got)).to.equal(Object.prototype);
    expect(JSON.stringify(got)).to.equal(
      '{"__proto__":{"admin":true},"b":"é","bad":{"base64":"ww=="},"t":5,"d":1.5,"other":{"!":"zzz","value":1},"list":[6,"x"]}',
    );
    // Nested beyond what it can walk: kept as they are, never a throw.
    let deep: Record<string, unknown> = { b: Buffer.from('x') };
    for (let i = 0; i < 200_000; i++) deep = { d: deep };
    expect(plainHeaders(deep)).to.equal(deep);
  });

  it('reads back -v envelopes and plain bodies', () => {
    const env = parseLine('{"rkey":"a.b","headers":{"hostname":"h"},"object":{"obj_id":"q","obj":{"x":1},"seq":0}}');
    expect(env).to.deep.equal({
      message: { obj_id: 'q', obj: { x: 1 }, seq: 0 },
      meta: { rkey: 'a.b', headers: { hostname: 'h' } },
    });
    expect(parseLine('{"obj_id":"q","obj":{}}')).to.deep.equal({ message: { obj_id: 'q', obj: {} }, meta: {} });
    expect(parseLine('{"rkey":"a","object":{"obj":{}}}')).to.deep.equal({ kind: 'obj_id missing' });
    expect(parseLine('{oops')).to.deep.equal({ kind: 'not JSON' });
  });
});

describe('protocol: scanMessage', () => {
  const valid = [
    '{"obj_id":"a","obj":{"x":[1,{"y":"z"}],"__proto__":{"p":1}},"seq":3,"status":"born","time_in":1.5,"elapsed":0.25,"qlen":2}',
    '{ "obj_id" : "a\\u0041\\"" , "obj" : null , "seq" : null , "status" : null , "time_in" : null , "message" : "m" }',
    '{"obj_id":"a","action":"delete","obj":{"k":null},"other":{"obj_id":1},"seq":0}',
  ];
  const unsure = [
    '{"obj_id":"a","seq":-1}', // invalid: bad seq
    '{"obj_id":"a","seq":1.0}', // valid, but left to JSON.parse
    '{"obj_id":"a","time_in":1e400}', // invalid: not finite
    '{"obj_id":"a","status":"b\\u006frn"}', // valid, escaped
    '{"obj_id":"a","obj":{},"obj":1}', // invalid: the last obj wins
    '{"obj_id":"a","obj_id":""}', // invalid: the last obj_id wins
    '{"obj\\u005fid":"a"}', // valid, escaped key
    '{"id":"a"}', // valid, legacy id
    '{"obj_id":"","obj":{}}', // invalid: empty id
    '{"obj_id":"a","obj":[]}', // invalid: obj an array
    '{"obj_id":"a","obj":{"x":01}}', // not JSON
    '{"obj_id":"a","obj":{"x":"\u00e9"}}', // valid, not ASCII
    '{"obj_id":"a"} ', // valid, trailing space
    '{"obj_id":"a",}', // not JSON
    '{"obj_id":"a","obj":{"x":"\t"}}', // not JSON: raw tab in a string
  ];

  it('vouches only for lines that validate, and says where the fields are', () => {
    const spans = new MessageSpans();
    for (const line of valid) {
      const b = Buffer.from(line);
      expect(scanMessage(b, 0, b.length, spans), line).to.equal(true);
      expect(isMalformed(validateMessage(JSON.parse(line))), line).to.equal(false);
    }
    const b = Buffer.from(valid[0]!);
    scanMessage(b, 0, b.length, spans);
    expect(b.toString('latin1', spans.objId, spans.objIdEnd)).to.equal('"a"');
    expect(b.toString('latin1', spans.obj, spans.objEnd)).to.equal('{"x":[1,{"y":"z"}],"__proto__":{"p":1}}');
    expect(b.toString('latin1', spans.seq, spans.seqEnd)).to.equal('3');
    expect(b.toString('latin1', spans.timeIn, spans.timeInEnd)).to.equal('1.5');
  });

  it('says no to everything it does not handle, valid or not', () => {
    const spans = new MessageSpans();
    for (const line of unsure) {
      const b = Buffer.from(line);
      expect(scanMessage(b, 0, b.length, spans), line).to.equal(false);
    }
  });
});

describe('protocol: key extraction', () => {
  const msg = { status: 'finished', obj: { elapsed: 2.7, deep: [{ elapsed: 9 }] }, elapsed: 1.1, id: 'c5' };
  it('takes the first match breadth-first', () => {
    expect(extractKeys(msg, ['elapsed'])).to.deep.equal({ elapsed: 1.1 });
    expect(extractKeys(msg, ['elapsed', 'id', 'absent'])).to.deep.equal({ elapsed: 1.1, id: 'c5', absent: [] });
    expect(extractKeys(msg, ['*absent', '*id'])).to.deep.equal({ absent: [], id: 'c5' });
  });
  it('takes every match with *key, a single match unwrapped', () => {
    expect(extractKeys(msg, ['*elapsed'])).to.deep.equal({ elapsed: [1.1, 2.7, 9] });
    expect(extractKeys(msg, ['*id'])).to.deep.equal({ id: 'c5' });
  });
});
