/** The sync() part of the shared store suite: what a client at a version gets. */
import { waitUntil } from '@contexture/test-support';
import { expect } from 'chai';
import { applyDelta, mergeRecords, type SyncResult } from '../../../src/store/index.js';
import { copy, rng } from '../streams.js';
import { expectCode, type StoreFactory } from './helpers.js';

/** sync(): full, no_change or a merged delta, whatever the writes were. */
export function syncTests(make: StoreFactory): void {
  it('answers full for null, no_change when current, delta when behind, full when ahead, null when unknown', async () => {
    const store = await make();
    await store.set('s', { a: 1 });
    await store.update('s', { b: 2 });
    const full = await store.sync('s', null);
    expect(full).to.deep.include({ type: 'full', id: 's', version: 2, context: { a: 1, b: 2 } });
    expect(await store.sync('s', 2)).to.deep.equal({
      type: 'no_change',
      id: 's',
      version: 2,
      incarnation: (await store.get('s'))!.incarnation,
    });
    expect(await store.sync('s', 1)).to.deep.include({
      type: 'delta',
      version: 2,
      delta: { b: { action: 'added', value: 2 } },
    });
    expect(await store.sync('s', 0)).to.deep.include({
      type: 'delta',
      version: 2,
      delta: { a: { action: 'added', value: 1 }, b: { action: 'added', value: 2 } },
    });
    expect(await store.sync('s', 3)).to.deep.include({ type: 'full', version: 2 });
    expect(await store.sync('unknown', null)).to.equal(null);
    expect(await store.sync('unknown', 4)).to.equal(null);
    await expectCode(store.sync('s', -1), 'LC_STORE_INVALID_ARGUMENT');
    await expectCode(store.sync('s', 1.5), 'LC_STORE_INVALID_ARGUMENT');
  });

  it('merges deltas: modified keeps first old and last value, remove-then-add is an add, add-then-remove is nothing', async () => {
    const store = await make();
    await store.set('m', { a: 1, c: 1, n: { x: 1, y: 1, keep: true }, same: 1 }); // v1
    await store.update('m', { a: 2, b: 1, same: 2 }); // v2
    await store.set('m', { a: 3, b: 1, n: { x: 1, y: 1, keep: true }, same: 2 }); // v3: c removed
    await store.update('m', { c: 2, n: { x: 2 } }); // v4: c back, n.x modified
    await store.set('m', { a: 3, c: 2, n: { x: 2, keep: true }, same: 1 }); // v5: b removed, n.y removed, same back to 1
    await store.update('m', { n: { z: 1 } }); // v6: n.z added
    await store.set('m', { a: 3, c: 2, n: { x: 2, keep: true }, same: 1 }); // v7: n.z removed again
    const r = await store.sync('m', 1);
    expect(r).to.deep.equal({
      type: 'delta',
      id: 'm',
      version: 7,
      status: null,
      incarnation: (await store.get('m'))!.incarnation,
      delta: {
        a: { action: 'modified', old_value: 1, value: 3 },
        c: { action: 'added', value: 2 },
        n: { x: { action: 'modified', old_value: 1, value: 2 }, y: { action: 'removed', old_value: 1 } },
      },
    });
    const at2 = await store.sync('m', 2);
    expect((at2 as Extract<SyncResult, { type: 'delta' }>).delta).to.deep.equal({
      a: { action: 'modified', old_value: 2, value: 3 },
      b: { action: 'removed', old_value: 1 },
      c: { action: 'added', value: 2 },
      n: { x: { action: 'modified', old_value: 1, value: 2 }, y: { action: 'removed', old_value: 1 } },
      same: { action: 'modified', old_value: 2, value: 1 },
    });
    // Nested remove-then-add is an add, recursively.
    await store.set('m2', { n: { x: 1 } });
    await store.set('m2', { n: {} });
    await store.set('m2', { n: { x: 2 } });
    expect(((await store.sync('m2', 1)) as Extract<SyncResult, { type: 'delta' }>).delta).to.deep.equal({
      n: { x: { action: 'added', value: 2 } },
    });
    // A value back where it started: nothing, but the version still moves.
    await store.set('m3', { a: 1 });
    await store.update('m3', { a: 2 });
    await store.update('m3', { a: 1 });
    expect(await store.sync('m3', 1)).to.deep.equal({
      type: 'delta',
      id: 'm3',
      version: 3,
      delta: {},
      status: null,
      incarnation: (await store.get('m3'))!.incarnation,
    });
  });

  it('brings any older copy to the current state (random writes, every version, 8 seeds)', async () => {
    const store = await make({ deltaThreshold: 1000 });
    for (let seed = 1; seed <= 8; seed++) {
      const r = rng(seed);
      const id = `r${seed}`;
      const copies = new Map<number, Record<string, unknown>>();
      const keys = ['a', 'b', 'c', 'n'];
      const value = (): unknown =>
        r() < 0.4 ? { x: Math.floor(r() * 3), y: r() < 0.5 ? { z: Math.floor(r() * 2) } : [] } : Math.floor(r() * 4);
      for (let i = 0; i < 40; i++) {
        const k = keys[Math.floor(r() * keys.length)]!;
        const p = r();
        if (p < 0.3) await store.update(id, { [k]: value() });
        else if (p < 0.45) await store.set(id, { [k]: value(), [keys[Math.floor(r() * 4)]!]: value() });
        else if (p < 0.65) await store.apply({ obj_id: id, obj: { [k]: null }, action: 'delete', seq: i });
        else await store.apply({ obj_id: id, obj: { [k]: value() }, seq: i });
        const g = await store.get(id);
        if (g !== null) copies.set(g.version, g.context);
      }
      const now = (await store.get(id))!;
      for (const [v, ctx] of copies) {
        const s = await store.sync(id, v);
        if (v === now.version) expect(s!.type).to.equal('no_change');
        else {
          expect(s!.type, `seed ${seed} v${v}`).to.equal('delta');
          expect(
            applyDelta(copy(ctx), (s as Extract<SyncResult, { type: 'delta' }>).delta),
            `seed ${seed} v${v}`,
          ).to.deep.equal(now.context);
        }
      }
    }
  });

  it('a merging update records only the paths it changed: many of them on a large field stay a small delta', async () => {
    const store = await make({ deltaThreshold: 1000 });
    const people = Object.fromEntries(
      Array.from({ length: 50 }, (_, i) => [
        `user_${i}`,
        { name: `User ${i}`, status: 'online', bio: 'x'.repeat(300) },
      ]),
    );
    const first = await store.set('big', { people });
    // Whole-field records would hold 2 × 17 KB a version: 200 of them, far past the 64 KiB rule.
    for (let i = 0; i < 200; i++) await store.update('big', { people: { [`user_${i % 50}`]: { status: `s${i}` } } });
    const s = await store.sync('big', first.version);
    expect(s!.type).to.equal('delta');
    const delta = (s as Extract<SyncResult, { type: 'delta' }>).delta;
    expect(Object.keys(delta.people as object)).to.have.length(50);
    expect(delta.people).to.deep.include({
      user_49: { status: { action: 'modified', old_value: 'online', value: 's199' } },
    });
    expect(applyDelta(copy({ people }), delta)).to.deep.equal((await store.get('big'))!.context);
  });

  it('set() over a large field weighs what changed below it: small changes stay a delta, a large one gives the whole context', async () => {
    const store = await make({ deltaThreshold: 1000 });
    const people = (i: number) =>
      Object.fromEntries(
        Array.from({ length: 50 }, (_, u) => [
          `user_${u}`,
          { name: `User ${u}`, status: u === i % 50 ? `s${i}` : 'online', bio: 'x'.repeat(300) },
        ]),
      );
    const first = await store.set('bigset', { people: people(-1), n: 0 });
    // The field whole before and after each set() would be 2 × 17 KB: 100 of them, far past the 64 KiB rule.
    for (let i = 0; i < 100; i++) await store.set('bigset', { people: people(i), n: i });
    const s = await store.sync('bigset', first.version);
    expect(s!.type).to.equal('delta');
    const delta = (s as Extract<SyncResult, { type: 'delta' }>).delta;
    expect(delta).to.deep.equal({
      people: { user_49: { status: { action: 'modified', old_value: 'online', value: 's99' } } },
      n: { action: 'modified', old_value: 0, value: 99 },
    });
    expect(applyDelta(copy({ people: people(-1), n: 0 }), delta)).to.deep.equal((await store.get('bigset'))!.context);
    // Changes below it heavier than the context: the whole context instead.
    const before = (await store.sync('bigset', null))!.version;
    for (let i = 0; i < 8; i++) {
      const changed = people(-1);
      for (const p of Object.values(changed)) p.bio = String(i).repeat(300);
      await store.set('bigset', { people: changed, n: i });
    }
    expect((await store.sync('bigset', before))!.type).to.equal('full');
  });

  it('merged deltas of updates recorded at paths equal the merge of whole values (random writes, every version pair, 12 seeds)', async () => {
    const store = await make({ deltaThreshold: 1000 });
    for (let seed = 1; seed <= 12; seed++) {
      const r = rng(seed * 7919);
      const id = `p${seed}`;
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
      const keys = ['a', 'b', 'c'];
      const object = (depth: number): Record<string, unknown> => {
        const o: Record<string, unknown> = {};
        for (const k of keys) if (r() < 0.6) o[k] = value(depth - 1);
        return o;
      };
      const value = (depth: number): unknown => {
        const p = r();
        if (depth > 0 && p < 0.55) return object(depth);
        return p < 0.7 ? Math.floor(r() * 3) : p < 0.85 ? [Math.floor(r() * 2)] : null;
      };
      const partial = (depth: number): Record<string, unknown> => {
        const o: Record<string, unknown> = {};
        for (let n = 1 + Math.floor(r() * 2); n > 0; n--)
          o[pick(keys)] = depth > 0 && r() < 0.6 ? partial(depth - 1) : value(depth);
        return o;
      };
      const snaps: Array<Record<string, unknown>> = [{}];
      for (let i = 0; i < 60; i++) {
        const p = r();
        if (p < 0.6) await store.update(id, partial(3));
        else if (p < 0.8) await store.set(id, object(4));
        else if (p < 0.9) {
          const k = pick(keys);
          await store.assign(id, { [k]: value(3) }, r() < 0.5 ? [pick(keys.filter((x) => x !== k))] : []);
        } else await store.set(id, { ...snaps[snaps.length - 1]!, [pick(keys)]: {} });
        const g = (await store.get(id))!;
        while (snaps.length <= g.version) snaps.push(g.context);
      }
      // The reference: records holding every changed field's whole values, version by version.
      const whole = (from: number, to: number) => {
        const records = [];
        for (let v = from + 1; v <= to; v++) {
          const before = snaps[v - 1]!;
          const after = snaps[v]!;
          const c = [];
          for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
            if (JSON.stringify(before[k]) === JSON.stringify(after[k])) continue;
            c.push({ k, ...(k in before ? { o: before[k] } : {}), ...(k in after ? { n: after[k] } : {}) });
          }
          records.push({ v, t: 0, c });
        }
        return mergeRecords(records);
      };
      const last = snaps.length - 1;
      for (let v = 1; v < last; v++) {
        const s = await store.sync(id, v);
        expect(s!.type, `seed ${seed} v${v}`).to.equal('delta');
        expect((s as Extract<SyncResult, { type: 'delta' }>).delta, `seed ${seed} v${v}`).to.deep.equal(whole(v, last));
      }
    }
  });

  it('a copy of an earlier context of the id (deleted and made again) gets the whole context when it gives its incarnation', async () => {
    const store = await make();
    await store.set('inc', { a: 1 });
    const first = (await store.sync('inc', null)) as Extract<SyncResult, { type: 'full' }>;
    expect(first.incarnation).to.be.a('string').and.not.equal('');
    await store.update('inc', { b: 2 });
    const d = await store.sync('inc', first.version, first.incarnation);
    expect(d).to.deep.include({
      type: 'delta',
      incarnation: first.incarnation,
      delta: { b: { action: 'added', value: 2 } },
    });
    expect(await store.sync('inc', 2, first.incarnation)).to.deep.include({
      type: 'no_change',
      incarnation: first.incarnation,
    });
    // Deleted and made again: versions count from 1 again, and a copy at version 1 of the old
    // one would take a delta that does not fit it; with its incarnation it gets the whole context.
    await store.delete('inc');
    await store.set('inc', { c: 3 });
    await store.update('inc', { d: 4 });
    const again = await store.sync('inc', 1, first.incarnation);
    expect(again).to.deep.include({ type: 'full', version: 2, context: { c: 3, d: 4 } });
    expect((again as Extract<SyncResult, { type: 'full' }>).incarnation).to.not.equal(first.incarnation);
    expect((await store.get('inc'))!.incarnation).to.equal(
      (again as Extract<SyncResult, { type: 'full' }>).incarnation,
    );
    // Given together, the copies of either context each get their own answer.
    const [old, now] = await Promise.all([
      store.sync('inc', 1, first.incarnation),
      store.sync('inc', 1, (again as Extract<SyncResult, { type: 'full' }>).incarnation),
    ]);
    expect(old!.type).to.equal('full');
    expect(now).to.deep.include({ type: 'delta', delta: { d: { action: 'added', value: 4 } } });
    await expectCode(store.sync('inc', 1, 5 as unknown as string), 'LC_STORE_INVALID_ARGUMENT');
  });

  it('answers full once a needed delta is past deltaThreshold', async () => {
    const store = await make({ deltaThreshold: 3 });
    for (let i = 0; i < 8; i++) await store.set('th', { i });
    expect((await store.sync('th', 5))!.type).to.equal('delta');
    expect((await store.sync('th', 4))!.type).to.equal('full');
    expect((await store.sync('th', 1))!.type).to.equal('full');
    // Many more versions than the threshold: still exactly the newest ones kept.
    for (let i = 0; i < 40; i++) await store.set('th40', { i });
    expect(await store.sync('th40', 37)).to.deep.include({
      type: 'delta',
      version: 40,
      delta: { i: { action: 'modified', old_value: 36, value: 39 } },
    });
    expect((await store.sync('th40', 36))!.type).to.equal('full');
    await store.cleanup();
    expect((await store.sync('th40', 37))!.type).to.equal('delta');
    expect((await store.sync('th40', 36))!.type).to.equal('full');
    const none = await make({ deltaThreshold: 0 });
    await none.set('th', { a: 1 });
    await none.set('th', { a: 2 });
    expect((await none.sync('th', 1))!.type).to.equal('full');
  });

  it('answers full once a needed delta is older than deltaTtl', async () => {
    const store = await make({ deltaTtl: 150 });
    await store.set('ttl', { a: 1 });
    await store.set('ttl', { a: 2 });
    expect((await store.sync('ttl', 1))!.type).to.equal('delta');
    await waitUntil(async () => (await store.sync('ttl', 1))!.type === 'full', 'the delta to expire', 5000);
    await store.set('ttl', { a: 3 });
    expect(await store.sync('ttl', 2)).to.deep.include({
      type: 'delta',
      delta: { a: { action: 'modified', old_value: 2, value: 3 } },
    });
    expect((await store.sync('ttl', 1))!.type).to.equal('full');
  });
}
