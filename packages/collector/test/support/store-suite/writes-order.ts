/** The direct writes asked for together part of the shared store suite: merges on each other, order kept. */
import { expect } from 'chai';
import {
  applyDelta,
  type ApplyResult,
  type ContextEvent,
  type StoredContext,
  type SyncResult,
} from '../../../src/store/index.js';
import type { StoreFactory } from './helpers.js';

/** Direct writes (and bus messages) asked for together: each on the one before, in the order asked. */
export function writeOrderTests(make: StoreFactory): void {
  it('updates asked for together merge each on the one before, each recording only its own change', async () => {
    const store = await make();
    await store.set('chain', { n: { a: { x: 1 }, c: 0 }, m: 1 });
    const updates = [
      { n: { a: { x: 2 } } },
      { n: { a: { y: 3 } } },
      { n: { b: 1 } },
      { n: { a: { x: 4 } }, m: 2 },
      { n: { a: 'flat' } },
      { n: { a: { z: 1 } } },
      { n: { a: { z: 1 } } },
    ];
    const got = await Promise.all(updates.map((u) => store.update('chain', u)));
    expect(got.map((r) => [r.version, r.changed])).to.deep.equal([
      [2, true],
      [3, true],
      [4, true],
      [5, true],
      [6, true],
      [7, true],
      [7, false],
    ]);
    const deltas = [];
    for (let v = 1; v < 7; v++)
      deltas.push(((await store.sync('chain', v)) as Extract<SyncResult, { type: 'delta' }>).delta);
    expect(deltas[5]).to.deep.equal({ n: { a: { action: 'modified', old_value: 'flat', value: { z: 1 } } } });
    expect(deltas[4]).to.deep.equal({ n: { a: { action: 'modified', old_value: { x: 4, y: 3 }, value: { z: 1 } } } });
    expect(deltas[3]).to.deep.equal({
      n: { a: { action: 'modified', old_value: { x: 2, y: 3 }, value: { z: 1 } } },
      m: { action: 'modified', old_value: 1, value: 2 },
    });
    expect(deltas[2]).to.deep.equal({
      n: { a: { action: 'modified', old_value: { x: 2, y: 3 }, value: { z: 1 } }, b: { action: 'added', value: 1 } },
      m: { action: 'modified', old_value: 1, value: 2 },
    });
    expect(deltas[1]).to.deep.equal({
      n: { a: { action: 'modified', old_value: { x: 2 }, value: { z: 1 } }, b: { action: 'added', value: 1 } },
      m: { action: 'modified', old_value: 1, value: 2 },
    });
    expect(deltas[0]).to.deep.equal({
      n: { a: { action: 'modified', old_value: { x: 1 }, value: { z: 1 } }, b: { action: 'added', value: 1 } },
      m: { action: 'modified', old_value: 1, value: 2 },
    });
    const full = (await store.get('chain'))!;
    expect(full).to.deep.include({ version: 7, context: { n: { a: { z: 1 }, b: 1, c: 0 }, m: 2 } });
    expect(Object.keys(full.context.n as object)).to.deep.equal(['a', 'b', 'c']);
    // What the store keeps is whole: a set() from it records exactly what differs.
    await store.set('chain', { n: { a: { z: 1 }, b: 2, c: 0 }, m: 2 });
    expect(((await store.sync('chain', 7)) as Extract<SyncResult, { type: 'delta' }>).delta).to.deep.equal({
      n: { b: { action: 'modified', old_value: 1, value: 2 } },
    });
  });

  it('merges asked for together with reads among them: each read sees a whole version, later merges never change what it got', async () => {
    const store = await make();
    await store.set('turn', { people: { ann: { status: 'in', typing: false }, bob: { status: 'in' } }, n: 1 });
    const w = store.watch('turn');
    await w.ready;
    const events: Extract<ContextEvent, { type: 'change' }>[] = [];
    const watched = (async () => {
      for await (const ev of w) {
        if (ev.type === 'change') events.push(ev);
        if (events.length === 5) break;
      }
    })();
    const writes: Promise<ApplyResult>[] = [];
    const reads: Promise<unknown>[] = [];
    writes.push(store.update('turn', { people: { ann: { status: 'away' } } }));
    reads.push(store.sync('turn', 1));
    writes.push(store.update('turn', { people: { ann: { typing: true } } }));
    reads.push(store.get('turn'));
    writes.push(store.update('turn', { people: { bob: { status: 'out' } } }));
    writes.push(store.update('turn', { people: { ann: { status: 'in' } }, n: 2 }));
    reads.push(store.sync('turn', null));
    writes.push(store.update('turn', { people: { cy: { status: 'new' } } }));
    const results = await Promise.all(writes);
    expect(results.map((r) => [r.version, r.changed])).to.deep.equal([
      [2, true],
      [3, true],
      [4, true],
      [5, true],
      [6, true],
    ]);
    const [delta, got, full] = (await Promise.all(reads)) as [
      Extract<SyncResult, { type: 'delta' | 'no_change' }>,
      StoredContext,
      Extract<SyncResult, { type: 'full' }>,
    ];
    // Each read answers one whole version: what the writes up to it made, nothing half made.
    const states: Record<string, unknown>[] = [];
    let state: Record<string, unknown> = {
      n: 1,
      people: { ann: { status: 'in', typing: false }, bob: { status: 'in' } },
    };
    states[1] = state;
    for (const change of [
      { people: { ann: { status: 'away' } } },
      { people: { ann: { typing: true } } },
      { people: { bob: { status: 'out' } } },
      { people: { ann: { status: 'in' } }, n: 2 },
      { people: { cy: { status: 'new' } } },
    ]) {
      state = merged(state, change);
      states.push(state);
    }
    expect(got.context).to.deep.equal(states[got.version]);
    expect(full.context).to.deep.equal(states[full.version]);
    const d = delta.type === 'delta' ? delta.delta : {};
    expect(applyDelta(structuredClone(states[1]!), d)).to.deep.equal(states[delta.version]);
    const last = states[6]!;
    const now = (await store.sync('turn', null)) as Extract<SyncResult, { type: 'full' }>;
    expect(now.context).to.deep.equal(last);
    expect(Object.keys(now.context.people as object)).to.deep.equal(['ann', 'bob', 'cy']);
    expect(Object.isFrozen((now.context.people as Record<string, unknown>).ann)).to.equal(true);
    const gotBefore = structuredClone(got.context);
    const seen = structuredClone(full.context);
    await store.update('turn', { people: { ann: { status: 'gone' }, cy: { status: 'old' } } });
    await store.update('turn', { people: { bob: { typing: true } } });
    // What the reads handed out stays as it was.
    expect(full.context).to.deep.equal(seen);
    expect(now.context).to.deep.equal(last);
    expect(got.context).to.deep.equal(gotBefore);
    // Each merge recorded its own change: the events and the deltas from every version say so.
    await watched;
    expect(events.map((e) => [e.version, e.delta])).to.deep.equal([
      [2, { people: { ann: { status: { action: 'modified', old_value: 'in', value: 'away' } } } }],
      [3, { people: { ann: { typing: { action: 'modified', old_value: false, value: true } } } }],
      [4, { people: { bob: { status: { action: 'modified', old_value: 'in', value: 'out' } } } }],
      [
        5,
        {
          people: { ann: { status: { action: 'modified', old_value: 'away', value: 'in' } } },
          n: { action: 'modified', old_value: 1, value: 2 },
        },
      ],
      [6, { people: { cy: { action: 'added', value: { status: 'new' } } } }],
    ]);
    expect(((await store.sync('turn', 1)) as Extract<SyncResult, { type: 'delta' }>).delta).to.deep.equal({
      people: {
        ann: {
          status: { action: 'modified', old_value: 'in', value: 'gone' },
          typing: { action: 'modified', old_value: false, value: true },
        },
        bob: {
          status: { action: 'modified', old_value: 'in', value: 'out' },
          typing: { action: 'added', value: true },
        },
        cy: { action: 'added', value: { status: 'old' } },
      },
      n: { action: 'modified', old_value: 1, value: 2 },
    });
    expect(((await store.sync('turn', 4)) as Extract<SyncResult, { type: 'delta' }>).delta).to.deep.equal({
      people: {
        ann: { status: { action: 'modified', old_value: 'away', value: 'gone' } },
        bob: { typing: { action: 'added', value: true } },
        cy: { action: 'added', value: { status: 'old' } },
      },
      n: { action: 'modified', old_value: 1, value: 2 },
    });
  });

  it('an update that cannot be encoded fails alone: the merges asked for with it are made, nothing of it is written', async () => {
    const store = await make();
    await store.set('bad', { a: { x: 1 }, b: { y: 1 } });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const loop: unknown[] = [];
    loop.push(loop);
    const got = await Promise.allSettled([
      store.update('bad', { a: { x: 2 } }),
      store.update('bad', { b: { y: loop } }),
      store.update('bad', { b: { z: 3 } }),
      store.update('bad', { a: cyclic }),
      store.update('bad', { a: { w: 4 } }),
    ]);
    expect(got.map((r) => r.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    expect(
      got
        .filter((r) => r.status === 'fulfilled')
        .map((r) => (r as PromiseFulfilledResult<{ version: number }>).value.version),
    ).to.deep.equal([2, 3, 4]);
    expect((await store.get('bad'))!).to.deep.include({
      version: 4,
      context: { a: { x: 2, w: 4 }, b: { y: 1, z: 3 } },
    });
  });

  it('writes and deletes asked for together, merging or not, take effect in the order asked', async () => {
    const store = await make();
    await store.set('seq', { a: 0 });
    const v = (rs: Array<{ version: number }>) => rs.map((r) => r.version);
    expect(v(await Promise.all([store.update('seq', { o: { x: 1 } }), store.set('seq', { a: 9 })]))).to.deep.equal([
      2, 3,
    ]);
    expect((await store.get('seq'))!.context).to.deep.equal({ a: 9 });
    expect(
      v(
        await Promise.all([
          store.update('seq', { o: { x: 1 } }),
          store.update('seq', { o: 5 }),
          store.assign('seq', { p: 1 }),
          store.update('seq', { p: { q: 1 } }),
        ]),
      ),
    ).to.deep.equal([4, 5, 6, 7]);
    expect((await store.get('seq'))!.context).to.deep.equal({ a: 9, o: 5, p: { q: 1 } });
    const [, removed] = await Promise.all([store.update('seq', { a: 1 }), store.delete('seq')]);
    expect(removed).to.equal(true);
    expect(await store.get('seq')).to.equal(null);
    const last = await Promise.all([
      store.set('seq', { b: 1 }),
      store.delete('seq'),
      store.set('seq', { c: 2 }),
      store.update('seq', { d: { e: 1 } }),
    ]);
    expect(last.map((r) => (typeof r === 'boolean' ? r : r.version))).to.deep.equal([1, true, 1, 2]);
    expect((await store.get('seq'))!.context).to.deep.equal({ c: 2, d: { e: 1 } });
  });

  it('bus messages and direct writes of one context asked for together take effect in the order asked', async () => {
    const store = await make();
    await store.apply({ obj_id: 'mix', obj: { a: 0, o: { x: 0 } }, status: 'born', seq: 0 });
    const v = (rs: Array<{ version: number }>) => rs.map((r) => r.version);
    // A write, then a newer message: the message wins (it comes later, with a newer seq).
    expect(
      v(
        await Promise.all([
          store.set('mix', { a: 'set', o: { x: 1 } }),
          store.apply({ obj_id: 'mix', obj: { a: 'bus' }, seq: 1 }),
        ]),
      ),
    ).to.deep.equal([2, 3]);
    expect((await store.get('mix'))!.context).to.deep.equal({ a: 'bus', o: { x: 1 } });
    // A merge (whose fields the store must read first), messages among them, then a write: each in its turn.
    const mixed = await Promise.all([
      store.update('mix', { o: { y: 2 } }),
      store.applyMany([
        { message: { obj_id: 'mix', obj: { o: { x: 'bus' } }, seq: 2 } },
        { message: { obj_id: 'other', obj: { z: 1 }, status: 'born', seq: 0 } },
      ]),
      store.assign('mix', { b: 1 }),
      store.apply({ obj_id: 'mix', obj: { b: 2 }, seq: 3 }),
    ]);
    expect(mixed.flat().map((r) => `${r.id}@${r.version}`)).to.deep.equal([
      'mix@4',
      'mix@5',
      'other@1',
      'mix@6',
      'mix@7',
    ]);
    expect((await store.get('mix'))!.context).to.deep.equal({ a: 'bus', o: { x: 'bus' }, b: 2 });
    // A delete, then a message: the message makes the context anew.
    const [removed, made] = await Promise.all([
      store.delete('mix'),
      store.apply({ obj_id: 'mix', obj: { c: 1 }, seq: 4 }),
    ]);
    expect(removed).to.equal(true);
    expect(made).to.deep.equal({ id: 'mix', changed: true, version: 1 });
    expect((await store.get('mix'))!.context).to.deep.equal({ c: 1 });
  });

  it('set() among other writes asked for together takes its place in their order; what the caller changes afterwards is not written', async () => {
    const store = await make();
    await store.set('ord', { a: 0 });
    const mine: Record<string, unknown> = { y: 2 };
    const done = Promise.all([store.assign('ord', { z: 3 }), store.set('ord', mine), store.assign('ord', { w: 4 })]);
    mine.y = 'changed after set() was called';
    expect((await done).map((r) => r.version)).to.deep.equal([2, 3, 4]);
    expect((await store.get('ord'))!.context).to.deep.equal({ y: 2, w: 4 });
  });

  it('writes asked for together each get their own version and record, in the order asked; syncs asked for together share one frozen answer', async () => {
    const store = await make();
    await store.set('cw', { status: 'active', shared: { n: 0 } });
    const seen = (await store.sync('cw', null))!.version;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.update('cw', { [`p${i}`]: i, status: i % 2 === 0 ? 'active' : 'away' }),
      ),
    );
    expect(results.map((r) => r.version)).to.deep.equal(Array.from({ length: 20 }, (_, i) => seen + 1 + i));
    expect(results.every((r) => r.changed)).to.equal(true);
    const again = await Promise.all([
      store.set('cw', { status: 'away', shared: { n: 0 } }),
      store.update('cw', { status: 'away' }),
      store.update('cw', { shared: { m: 1 } }),
    ]);
    expect(again.map((r) => [r.version, r.changed])).to.deep.equal([
      [seen + 21, true],
      [seen + 21, false],
      [seen + 22, true],
    ]);
    const syncs = await Promise.all(Array.from({ length: 10 }, () => store.sync('cw', seen)));
    const expected = {
      type: 'delta',
      id: 'cw',
      version: seen + 22,
      delta: {
        status: { action: 'modified', old_value: 'active', value: 'away' },
        shared: { m: { action: 'added', value: 1 } },
      },
      status: null,
      incarnation: (await store.get('cw'))!.incarnation,
    };
    for (const r of syncs) expect(r).to.deep.equal(expected);
    // The answer is read-only, all the way down: changing it throws and leaves it, the other
    // callers' answers and the store as they were.
    expect(() => ((syncs[0] as { delta: Record<string, unknown> }).delta.status = 'mutated')).to.throw(TypeError);
    expect(
      () =>
        ((syncs[1] as unknown as { delta: { shared: { m: { value: unknown } } } }).delta.shared.m.value = 'mutated'),
    ).to.throw(TypeError);
    for (const r of syncs) expect(r).to.deep.equal(expected);
    expect(await store.sync('cw', seen)).to.deep.equal(expected);
    // Callers at different versions, asked for together, each get the answer for their version.
    const mixed = await Promise.all([
      store.sync('cw', seen),
      store.sync('cw', null),
      store.sync('cw', seen + 21),
      store.sync('cw', seen + 22),
      store.sync('cw', seen + 99),
      store.sync('cw', seen),
    ]);
    expect(mixed[0]).to.deep.equal(expected);
    expect(mixed[5]).to.deep.equal(expected);
    expect(mixed[1]).to.include({ type: 'full', version: seen + 22 });
    expect((mixed[1] as { context: unknown }).context).to.deep.equal({ status: 'away', shared: { n: 0, m: 1 } });
    expect(mixed[2]).to.deep.equal({ ...expected, delta: { shared: { m: { action: 'added', value: 1 } } } });
    expect(mixed[3]).to.deep.equal({
      type: 'no_change',
      id: 'cw',
      version: seen + 22,
      incarnation: (await store.get('cw'))!.incarnation,
    });
    expect(mixed[4]).to.include({ type: 'full', version: seen + 22 });
    expect(Object.isFrozen(mixed[3])).to.equal(true);
    const fulls = await Promise.all([store.sync('cw', null), store.sync('cw', null)]);
    expect(Object.isFrozen(fulls[0])).to.equal(true);
    expect(() => ((fulls[0] as unknown as { context: { shared: { m: number } } }).context.shared.m = 5)).to.throw(
      TypeError,
    );
    // applyDelta() copies what it takes: the client's copy is its own to change.
    const mine = applyDelta(
      { status: 'active', shared: { n: 0 } },
      (syncs[0] as Extract<SyncResult, { type: 'delta' }>).delta,
    );
    (mine.shared as { m: number }).m = 7;
    expect((await store.sync('cw', seen))!).to.deep.equal(expected);
    expect((await store.get('cw'))!.context).to.deep.equal({ status: 'away', shared: { n: 0, m: 1 } });
    // get() hands out a copy of its own.
    const got = (await store.get('cw'))!;
    (got.context.shared as { n: number }).n = 9;
    expect((await store.get('cw'))!.context).to.deep.equal({ status: 'away', shared: { n: 0, m: 1 } });
  });
}

/** `base` with `change` deep-merged over it (plain objects merge, anything else replaces): a new object. */
function merged(base: Record<string, unknown>, change: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(change)) {
    const cur = out[k];
    out[k] =
      typeof v === 'object' && v !== null && typeof cur === 'object' && cur !== null
        ? merged(cur as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}
