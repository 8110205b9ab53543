import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sendTransient } from '../src/context.js';
import { Context, ContextError, Handler } from '../src/index.js';
import { parseJson, stringifyJson } from '../src/protocol/index.js';

/**
 * sendTransient() (a web request's one message, sent without making its context) writes the
 * fields in one JSON.stringify() where it can: each case must give the body a transient Context
 * gives, or fail as it fails.
 */
describe('sendTransient(): the same body as a transient Context', () => {
  let dir: string;
  let file: string;
  let handler: Handler;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'transient-body-'));
    file = path.join(dir, 'out.jsonl');
    handler = new Handler({ url: `jsonl:${file}`, heartbeatInterval: 0, logger: null });
  });
  afterEach(async () => {
    await handler.close();
    await rm(dir, { recursive: true, force: true });
  });

  class WithToJSON {
    a = 1;
    toJSON() {
      return 'replaced';
    }
  }
  const inherited = Object.create({ inheritedKey: 'x' }) as Record<string, unknown>;
  inherited.own = 1;
  const nullProto = Object.create(null) as Record<string, unknown>;
  nullProto.a = 'b';
  const protoKey = JSON.parse('{"__proto__": {"polluted": true}, "b": 2}') as Record<string, unknown>;
  const nestedToJSON = { when: new Date(0), nested: { f: () => 1, u: undefined, n: Number.NaN } };

  const cases: Array<[string, Record<string, unknown>]> = [
    ['the web fields', { method: 'GET', url: '/u/1?q="x"', route: '/u/:id', status_code: 200, elapsed: 0.0012 }],
    ['nested objects, arrays, null, unicode', { headers: { 'user-agent': ['a', 'b'] }, error: null, s: 'é\u2028' }],
    ['an undefined field (null in the body)', { a: undefined, b: 1 }],
    ['infinite and NaN numbers', { a: Number.POSITIVE_INFINITY, b: Number.NaN }],
    ['numbers past 2^53 - 1', { a: 2 ** 60, b: -1.7e18, n: 1 }],
    ['nested values JSON drops or converts', nestedToJSON],
    ['a class instance with toJSON()', new WithToJSON() as unknown as Record<string, unknown>],
    ['an inherited enumerable key', inherited],
    ['an object without a prototype', nullProto],
    ['an own __proto__ key', protoKey],
    ['index keys before the others', { b: 1, 2: 'two', a: 0, 1: 'one' }],
  ];

  async function bodies(n: number): Promise<Array<Record<string, unknown>>> {
    expect(await handler.flush(5000)).to.equal(true);
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    expect(lines).to.have.length(n);
    // Each line: the routing key, the headers and the message as `object`, read as the wire
    // format is (NaN and Infinity as bare words).
    return lines.map((l) => (parseJson(l) as { object: Record<string, unknown> }).object);
  }

  it('writes each case as the transient Context writes it', async () => {
    for (const [, fields] of cases) {
      new Context({ name: 'case', handler, transient: true, context: fields });
      sendTransient({ name: 'case', handler, transient: true, context: fields });
    }
    const got = await bodies(cases.length * 2);
    for (let i = 0; i < cases.length; i++) {
      const [made, sent] = [got[2 * i]!, got[2 * i + 1]!];
      expect(sent.status, cases[i]![0]).to.equal('transient');
      expect(stringifyJson(sent.obj), cases[i]![0]).to.equal(stringifyJson(made.obj));
    }
  });

  it('refuses what a transient Context refuses, with the same error, and sends nothing', async () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const refused: Array<Record<string, unknown>> = [{ f: () => 1 }, { s: Symbol('s') }, { n: 10n }, cyclic];
    for (const fields of refused) {
      let fromContext: unknown;
      try {
        new Context({ name: 'case', handler, transient: true, context: fields });
      } catch (err) {
        fromContext = err;
      }
      expect(fromContext).to.be.instanceOf(ContextError);
      expect(() => sendTransient({ name: 'case', handler, transient: true, context: fields }))
        .to.throw(ContextError)
        .with.property('message', (fromContext as Error).message);
    }
    new Context({ name: 'after', handler, transient: true, context: { ok: true } });
    const [only] = await bodies(1);
    expect(only!.obj).to.deep.equal({ ok: true });
  });
});
