/** The apply() and applyMany() part of the shared store suite: bus messages folded in. */
import type { WireMessage } from '@contexture/context/protocol';
import { expect } from 'chai';
import { applyDelta, type ContextEvent, type ContextStore, type SyncResult } from '../../../src/store/index.js';
import { contextStream, copy, rng, shuffledWithDuplicates } from '../streams.js';
import { expectCode, visible, collated, type StoreFactory } from './helpers.js';

/** apply(): messages folded in one at a time, as the Collator folds them. */
export function applyTests(make: StoreFactory): void {
  it('folds a stream shuffled and duplicated into the same object as in order (40 seeds)', async () => {
    const store = await make();
    for (let seed = 1; seed <= 40; seed++) {
      const ordered = contextStream(`o${seed}`, seed);
      for (const m of ordered) await store.apply(copy(m), { rkey: 'app.req', headers: { hostname: 'h' } });
      const shuffled = shuffledWithDuplicates(contextStream(`s${seed}`, seed), seed);
      for (const m of shuffled) await store.apply(copy(m), { rkey: 'app.req', headers: { hostname: 'h' } });
      const a = await store.get(`o${seed}`);
      const b = await store.get(`s${seed}`);
      expect(visible(b), `seed ${seed}`).to.deep.equal(visible(a));
      expect(a!.context, `seed ${seed}`).to.deep.equal(collated(ordered));
      expect(a!.status).to.equal('finished');
    }
  });

  it('bumps the version exactly once per effective change and never otherwise', async () => {
    const store = await make();
    const id = 'v1';
    const steps: Array<[WireMessage, boolean]> = [
      [{ obj_id: id, obj: { a: 1 }, status: 'born', seq: 0, time_in: 10 }, true],
      [{ obj_id: id, obj: { a: 1 }, status: 'born', seq: 0, time_in: 10 }, false], // redelivered
      [{ obj_id: id, obj: { a: 3, b: 1 }, seq: 3 }, true],
      [{ obj_id: id, obj: { a: 2 }, seq: 2 }, false], // late: a has seq 3
      [{ obj_id: id, obj: { c: 2 }, seq: 2 }, true], // late, but c is new
      [{ obj_id: id, obj: { a: 3 }, seq: 4 }, false], // same value again
      [{ obj_id: id, obj: { b: null }, action: 'delete', seq: 5 }, true],
      [{ obj_id: id, obj: { b: 7 }, seq: 4 }, false], // older than the delete's tombstone
      [{ obj_id: id, obj: { zz: null }, action: 'delete', seq: 6 }, false], // nothing to delete
      [{ obj_id: id, obj: {}, status: 'finished', seq: 7, time_in: 20 }, true], // status only
      [{ obj_id: id, obj: {}, status: 'finished', seq: 7, time_in: 20 }, false],
      [{ obj_id: id, obj: {}, status: 'born', seq: 0, time_in: 10 }, false], // never back to born
    ];
    let version = 0;
    for (const [i, [m, changes]] of steps.entries()) {
      const r = await store.apply(m);
      if (changes) version++;
      expect(r, `step ${i}`).to.deep.equal({ id, changed: changes, version });
    }
    const g = await store.get(id);
    expect(g).to.include({ version, status: 'finished', born_at: 10, finished_at: 20 });
    expect(g!.context).to.deep.equal({ a: 3, c: 2 });
  });

  it('folds messages without seq in arrival order', async () => {
    const store = await make();
    await store.apply({ obj_id: 'ns', obj: { a: 1 }, status: 'born' });
    await store.apply({ obj_id: 'ns', obj: { a: 2 } });
    const r = await store.apply({ obj_id: 'ns', obj: { a: 1 } });
    expect(r).to.deep.equal({ id: 'ns', changed: true, version: 3 });
    expect((await store.get('ns'))!.context).to.deep.equal({ a: 1 });
  });

  it('records status, times, rkey and headers; transient sets both times', async () => {
    const store = await make();
    await store.apply(
      { obj_id: 't', obj: { x: 1 }, status: 'transient', seq: 0, time_in: 5.25 },
      { rkey: 'a.b', headers: { hostname: 'h', n: { m: 1 } } },
    );
    await store.apply({ obj_id: 't', obj: { y: 1 }, seq: 1 }, { rkey: 'other', headers: { other: 1 } });
    const g = await store.get('t');
    expect(g).to.deep.include({
      status: 'transient',
      born_at: 5.25,
      finished_at: 5.25,
      rkey: 'a.b',
      headers: { hostname: 'h', n: { m: 1 } },
    });
    expect(g!.updated_at).to.be.a('number');
    expect(await store.get('nothing')).to.equal(null);
  });

  it('keeps {} an object, [] an array and numbers exact', async () => {
    const store = await make();
    const obj = {
      e: {},
      l: [],
      n: { e: {}, l: [[], {}] },
      f: 0.1 + 0.2,
      big: 9007199254740991,
      neg: -1e-7,
      s: 'é/"\\\n',
    };
    await store.apply({ obj_id: 'j', obj: copy(obj), status: 'born', seq: 0 });
    expect((await store.get('j'))!.context).to.deep.equal(obj);
    const full = (await store.sync('j', null)) as Extract<SyncResult, { type: 'full' }>;
    expect(full.context).to.deep.equal(obj);
  });

  it('keeps __proto__ and constructor keys as plain data', async () => {
    const store = await make();
    const evil = JSON.parse(
      '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}},"o":{"__proto__":{"polluted":3}}}',
    );
    await store.apply(
      { obj_id: 'p', obj: evil, status: 'born', seq: 0 },
      { rkey: 'r', headers: JSON.parse('{"__proto__":{"polluted":4}}') },
    );
    await store.update('p', JSON.parse('{"o":{"__proto__":{"more":5}},"__proto__":{"x":6}}'));
    await store.apply({ obj_id: 'p', obj: JSON.parse('{"__proto__":null}'), action: 'delete', seq: 1 });
    const g = await store.get('p');
    const s = await store.sync('p', 1);
    const copyOf = applyDelta(
      JSON.parse(
        '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}},"o":{"__proto__":{"polluted":3}}}',
      ),
      (s as Extract<SyncResult, { type: 'delta' }>).delta,
    );
    for (const o of [{}, g!.context, g!.headers!, copyOf] as Array<Record<string, unknown>>) {
      expect(Object.getPrototypeOf(o)).to.equal(Object.prototype);
      expect((o as { polluted?: unknown }).polluted).to.equal(undefined);
    }
    expect(({} as { polluted?: unknown; more?: unknown }).polluted).to.equal(undefined);
    expect(Object.hasOwn(g!.context, '__proto__')).to.equal(false);
    expect(g!.context.constructor).to.deep.equal({ prototype: { polluted: 2 } });
    const o = g!.context.o as Record<string, unknown>;
    expect(Object.getOwnPropertyDescriptor(o, '__proto__')!.value).to.deep.equal({ polluted: 3, more: 5 });
    expect(copyOf).to.deep.equal(g!.context);
    expect(Object.getOwnPropertyDescriptor(g!.headers!, '__proto__')!.value).to.deep.equal({ polluted: 4 });
  });

  it('rejects what is not a message', async () => {
    const store = await make();
    await expectCode(store.apply({ obj_id: '', obj: {} }), 'LC_STORE_INVALID_ARGUMENT');
    await expectCode(
      store.apply({ obj_id: 'x', obj: [] as unknown as Record<string, unknown> }),
      'LC_STORE_INVALID_ARGUMENT',
    );
    await expectCode(store.apply({ obj_id: 'x', obj: {}, seq: -1 }), 'LC_STORE_INVALID_ARGUMENT');
  });

  it('refuses meta of the wrong kind, the same in every store, and applies nothing of its batch', async () => {
    const store = await make();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const message = { obj_id: 'meta', obj: { a: 1 }, status: 'born' as const, seq: 0 };
    for (const [meta, text] of [
      [{ rkey: 5 }, /meta rkey must be a string/],
      [{ headers: 'str' }, /meta headers must be a plain object/],
      [{ headers: ['a'] }, /meta headers must be a plain object/],
      [{ headers: cyclic }, /meta headers cannot be stored as JSON/],
      [7, /meta must be an object/],
    ] as const) {
      const err = await expectCode(store.apply(message, meta as never), 'LC_STORE_INVALID_ARGUMENT');
      expect(err.message).to.match(text);
      await expectCode(
        store.applyMany([{ message: { obj_id: 'meta-ok', obj: { a: 1 }, seq: 0 } }, { message, meta: meta as never }]),
        'LC_STORE_INVALID_ARGUMENT',
      );
    }
    expect(await store.get('meta')).to.equal(null);
    expect(await store.get('meta-ok')).to.equal(null);
    await store.apply(message, { rkey: 'app.x', headers: { h: 1 } });
    expect(await store.get('meta')).to.deep.include({ rkey: 'app.x', headers: { h: 1 } });
  });
}

/** applyMany(): batches give what apply() gives in the same order. */
export function applyManyTests(make: StoreFactory): void {
  /** The results and the final state of every context, for comparing two ways of applying. */
  async function snapshot(store: ContextStore, ids: string[]) {
    const out: unknown[] = [];
    for (const id of ids) {
      const g = await store.get(id);
      out.push({ id, version: g?.version, visible: visible(g), sync: stripTimes(await store.sync(id, 1)) });
    }
    return out;
  }

  function stripTimes(s: SyncResult | null): unknown {
    if (s === null) return s;
    // Each store's contexts have incarnations of their own.
    const { incarnation: _i, ...rest } = s;
    if (rest.type !== 'full') return rest;
    const { updated_at: _u, ...kept } = rest;
    return kept;
  }

  it('gives per message and in the end what apply() gives in the same order: shuffled, duplicated, several contexts, any batch size (12 seeds)', async () => {
    const one = await make();
    const many = await make();
    const meta = { rkey: 'app.req', headers: { hostname: 'h' } };
    for (let seed = 1; seed <= 12; seed++) {
      const ids = [0, 1, 2, 3].map((c) => `m${seed}-${c}`);
      const stream = shuffledWithDuplicates(
        ids.flatMap((id, c) => contextStream(id, seed * 10 + c)),
        seed,
      );
      // Messages without seq fold in the order given, inside one call as across calls.
      stream.splice(
        Math.floor(stream.length / 2),
        0,
        { obj_id: ids[0]!, obj: { noseq: 1 } },
        { obj_id: ids[0]!, obj: { noseq: 2 } },
      );
      const expected = [];
      for (const m of stream) expected.push(await one.apply(copy(m), meta));
      const r = rng(seed);
      const got = [];
      for (let i = 0; i < stream.length; ) {
        const n = 1 + Math.floor(r() * (seed % 3 === 0 ? 200 : 25));
        got.push(...(await many.applyMany(stream.slice(i, i + n).map((m) => ({ message: copy(m), meta })))));
        i += n;
      }
      expect(got, `seed ${seed}`).to.deep.equal(expected);
      expect(await snapshot(many, ids), `seed ${seed}`).to.deep.equal(await snapshot(one, ids));
      const ordered = contextStream(ids[1]!, seed * 10 + 1);
      expect((await many.get(ids[1]!))!.context).to.deep.equal(collated(ordered));
    }
  });

  it('rejects the whole call when one message is invalid, writing nothing', async () => {
    const store = await make();
    await expectCode(
      store.applyMany([
        { message: { obj_id: 'inv-ok', obj: { a: 1 }, status: 'born', seq: 0 } },
        { message: { obj_id: 'inv-bad', obj: [] as unknown as Record<string, unknown>, seq: 1 } },
      ]),
      'LC_STORE_INVALID_ARGUMENT',
    );
    expect(await store.get('inv-ok')).to.equal(null);
    // So is a message with a value JSON cannot hold (a cycle), saying so.
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const err = await expectCode(
      store.applyMany([
        { message: { obj_id: 'inv-ok', obj: { a: 1 }, status: 'born', seq: 0 } },
        { message: { obj_id: 'inv-bad', obj: { loop: cyclic }, seq: 1 } },
      ]),
      'LC_STORE_INVALID_ARGUMENT',
    );
    expect(err.message).to.match(/field "loop" cannot be stored as JSON/);
    expect(await store.get('inv-ok')).to.equal(null);
    // Items that are no array, or no objects: the same code, not a TypeError.
    for (const items of ['x', null, [null], [{ message: { obj_id: 'inv-ok', obj: {}, seq: 0 } }, 7], [{}]]) {
      await expectCode(store.applyMany(items as never), 'LC_STORE_INVALID_ARGUMENT');
      await expectCode(store.apply(items as never), 'LC_STORE_INVALID_ARGUMENT');
    }
    expect(await store.get('inv-ok')).to.equal(null);
    expect(await store.applyMany([])).to.deep.equal([]);
  });

  it('keeps deltaThreshold when one call brings more changes than it keeps', async () => {
    const store = await make({ deltaThreshold: 3 });
    await store.apply({ obj_id: 'bt', obj: { i: 0 }, status: 'born', seq: 0 });
    await store.applyMany(
      Array.from({ length: 10 }, (_, i) => ({ message: { obj_id: 'bt', obj: { i: i + 1 }, seq: i + 1 } })),
    );
    await store.applyMany([{ message: { obj_id: 'bt', obj: { i: 11 }, seq: 11 } }]);
    expect(await store.sync('bt', 9)).to.deep.include({
      type: 'delta',
      version: 12,
      delta: { i: { action: 'modified', old_value: 8, value: 11 } },
    });
    expect((await store.sync('bt', 8))!.type).to.equal('full');
  });

  it('takes calls larger than a Lua stack holds: 4500 fields and versions of one context', async () => {
    const store = await make({ deltaThreshold: 5000 });
    const items = Array.from({ length: 4500 }, (_, i) => ({
      message: { obj_id: 'big', obj: { [`f${i}`]: i }, seq: i } as WireMessage,
    }));
    const results = await store.applyMany(items);
    expect(results.at(-1)).to.deep.equal({ id: 'big', changed: true, version: 4500 });
    const g = (await store.get('big'))!;
    expect(Object.keys(g.context)).to.have.length(4500);
    expect(g.context.f4499).to.equal(4499);
    const d = (await store.sync('big', 4000)) as Extract<SyncResult, { type: 'delta' }>;
    expect(d.type).to.equal('delta');
    expect(Object.keys(d.delta)).to.have.length(500);
    expect((await store.applyMany(items)).every((r) => !r.changed && r.version === 4500)).to.equal(true);
  });

  it('announces every version of a call to watchers, in order', async () => {
    const store = await make();
    const w = store.watch('bw');
    await w.ready;
    const versions: number[] = [];
    const done = (async () => {
      for await (const ev of w) {
        if (ev.type === 'change') versions.push(ev.version);
        if (versions.length === 5) break;
      }
    })();
    await store.applyMany([
      { message: { obj_id: 'bw', obj: { a: 1 }, status: 'born', seq: 0 } },
      { message: { obj_id: 'other', obj: { a: 1 }, seq: 0 } },
      { message: { obj_id: 'bw', obj: { a: 2 }, seq: 1 } },
      { message: { obj_id: 'bw', obj: { a: 2 }, seq: 1 } },
      { message: { obj_id: 'bw', obj: { b: 'x\ny' }, seq: 2 } },
      { message: { obj_id: 'bw', obj: { 'new\nline': 1 }, seq: 3 } },
    ]);
    await store.applyMany([{ message: { obj_id: 'bw', obj: {}, status: 'finished', seq: 4 } }]);
    await done;
    expect(versions).to.deep.equal([1, 2, 3, 4, 5]);
  });

  it('a watcher keeps a copy equal to the context through bus messages and direct writes, the status in every event', async () => {
    const store = await make();
    await store.apply({ obj_id: 'wc', obj: { n: { x: 0 } }, status: 'born', seq: 1 });
    const start = (await store.sync('wc', null)) as Extract<SyncResult, { type: 'full' }>;
    const copy = structuredClone(start.context) as Record<string, unknown>;
    const w = store.watch('wc');
    await w.ready;
    const events: Array<Extract<ContextEvent, { type: 'change' }>> = [];
    const done = (async () => {
      for await (const ev of w) {
        if (ev.type !== 'change') continue;
        events.push(ev);
        applyDelta(copy, ev.delta);
        if (ev.version === 9) break;
      }
    })();
    await store.set('wc', { n: { x: 1 }, m: [1] });
    await store.update('wc', { n: { y: 1 } });
    await Promise.all([
      store.update('wc', { n: { z: 1 } }),
      store.update('wc', { n: { x: 2 } }),
      store.update('wc', { o: { p: 1 } }),
    ]);
    await store.apply({ obj_id: 'wc', obj: { n: { x: 3 } }, seq: 5 });
    await store.set('wc', { n: { x: 4 }, o: { p: 2 } });
    await store.update('wc', { n: { w: 1 } });
    await done;
    expect(events.map((e) => e.version)).to.deep.equal([2, 3, 4, 5, 6, 7, 8, 9]);
    expect(events.every((e) => e.status === 'born')).to.equal(true);
    expect(copy).to.deep.equal((await store.get('wc'))!.context);
    expect(copy).to.deep.equal({ n: { x: 4, w: 1 }, o: { p: 2 } });
  });
}
