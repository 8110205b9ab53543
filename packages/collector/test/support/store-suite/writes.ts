/** The direct writes part of the shared store suite: what set(), update(), assign() and delete() store. */
import { parseJson, stringifyJson, type WireMessage } from '@contexture/context/protocol';
import { expect } from 'chai';
import type { SyncResult } from '../../../src/store/index.js';
import { expectCode, type StoreFactory } from './helpers.js';

/** What direct writes store: versions and deltas, JSON values, key order, frozen answers. */
export function writeValueTests(make: StoreFactory): void {
  it('takes a context of 40,000 fields through apply(), set(), update(), assign(), sync() and restore()', async function () {
    // Tens of thousands of arguments spread into one call overflow the stack: each goes as a list.
    this.timeout(60_000);
    const saved = new Map<string, { context: Record<string, unknown>; version: number }>();
    const store = await make({ restoreProvider: (id) => saved.get(id) ?? null });
    const many = (n: number, v: number): Record<string, number> => {
      const o: Record<string, number> = {};
      for (let i = 0; i < n; i++) o[`f${i}`] = i + v;
      return o;
    };
    const n = 40_000;
    expect(await store.apply({ obj_id: 'wide', obj: many(n, 0), status: 'transient', seq: 0 })).to.deep.include({
      changed: true,
      version: 1,
    });
    expect(Object.keys((await store.get('wide'))!.context)).to.have.length(n);
    expect(await store.set('w', many(n, 0))).to.deep.include({ changed: true, version: 1 });
    expect(await store.update('w', many(n, 1))).to.deep.include({ changed: true, version: 2 });
    const assigned = many(n, 2);
    delete assigned.f0;
    expect(await store.assign('w', assigned, ['f0'])).to.deep.include({ changed: true, version: 3 });
    const got = (await store.get('w'))!.context;
    expect(Object.keys(got)).to.have.length(n - 1);
    expect([got.f1, got[`f${n - 1}`]]).to.deep.equal([3, n + 1]);
    const delta = (await store.sync('w', 2))!;
    expect(delta.type === 'delta' || delta.type === 'full').to.equal(true);
    saved.set('w', { context: many(n, 5), version: 9 });
    expect(await store.restore('w')).to.deep.include({ version: 9 });
    expect((await store.get('w'))!.context[`f${n - 1}`]).to.equal(n + 4);
  });

  it('set() replaces, update() deep-merges, delete() removes; each versions and records a delta', async () => {
    const store = await make();
    expect(await store.set('d', { status: 'online', metadata: { theme: 'light', language: 'en' } })).to.deep.equal({
      id: 'd',
      changed: true,
      version: 1,
    });
    expect(await store.update('d', { metadata: { theme: 'dark' } })).to.deep.equal({
      id: 'd',
      changed: true,
      version: 2,
    });
    expect((await store.get('d'))!.context).to.deep.equal({
      status: 'online',
      metadata: { theme: 'dark', language: 'en' },
    });
    expect(await store.sync('d', 1)).to.deep.equal({
      type: 'delta',
      id: 'd',
      version: 2,
      delta: { metadata: { theme: { action: 'modified', old_value: 'light', value: 'dark' } } },
      status: null,
      incarnation: (await store.get('d'))!.incarnation,
    });
    expect(await store.update('d', { metadata: { theme: 'dark' } })).to.deep.equal({
      id: 'd',
      changed: false,
      version: 2,
    });
    expect(await store.set('d', { other: [1] })).to.deep.equal({ id: 'd', changed: true, version: 3 });
    expect((await store.get('d'))!.context).to.deep.equal({ other: [1] });
    expect(await store.set('e', {})).to.deep.equal({ id: 'e', changed: true, version: 1 });
    expect((await store.get('e'))!.context).to.deep.equal({});
    expect(await store.delete('d')).to.equal(true);
    expect(await store.delete('d')).to.equal(false);
    expect(await store.get('d')).to.equal(null);
    expect(await store.sync('d', null)).to.equal(null);
  });

  it('assign() sets fields whole (no merge) and removes fields, atomically, with one version and one delta', async () => {
    const store = await make();
    await store.set('s', { user: { name: 'ann', email: 'a@x' }, n: 1, gone: true });
    expect(await store.assign('s', { user: { name: 'bob' }, n: 2 }, ['gone', 'never'])).to.deep.equal({
      id: 's',
      changed: true,
      version: 2,
    });
    expect((await store.get('s'))!.context).to.deep.equal({ user: { name: 'bob' }, n: 2 });
    expect(await store.sync('s', 1)).to.deep.equal({
      type: 'delta',
      id: 's',
      version: 2,
      delta: {
        // Objects are diffed field by field, as for every write: email is gone, name changed.
        user: {
          name: { action: 'modified', old_value: 'ann', value: 'bob' },
          email: { action: 'removed', old_value: 'a@x' },
        },
        n: { action: 'modified', old_value: 1, value: 2 },
        gone: { action: 'removed', old_value: true },
      },
      status: null,
      incarnation: (await store.get('s'))!.incarnation,
    });
    expect(await store.assign('s', { n: 2 }, ['gone'])).to.deep.equal({ id: 's', changed: false, version: 2 });
    expect(await store.assign('t', { a: 1 })).to.deep.equal({ id: 't', changed: true, version: 1 });
    let err: unknown;
    try {
      await store.assign('s', { a: 1 }, ['a']);
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string }).code).to.equal('LC_STORE_INVALID_ARGUMENT');
  });

  it('are placed at the highest seq seen: late bus messages lose to them, newer ones win', async () => {
    const store = await make();
    await store.apply({ obj_id: 'w', obj: { a: 0, b: 0 }, status: 'born', seq: 0 });
    await store.apply({ obj_id: 'w', obj: { a: 5 }, seq: 5 });
    await store.update('w', { a: 'direct', b: 'direct' });
    await store.apply({ obj_id: 'w', obj: { a: 3, b: 3 }, seq: 3 });
    expect((await store.get('w'))!.context).to.deep.equal({ a: 'direct', b: 'direct' });
    await store.apply({ obj_id: 'w', obj: { b: 6 }, seq: 6 });
    expect((await store.get('w'))!.context).to.deep.equal({ a: 'direct', b: 6 });
    await store.set('w', { c: 1 });
    await store.apply({ obj_id: 'w', obj: { a: 4 }, seq: 4 }); // a's removal by set() is newer
    expect((await store.get('w'))!.context).to.deep.equal({ c: 1 });
  });

  it('answers full instead of a delta whose records weigh over 64 KiB and more than the context; smaller deltas stay deltas', async () => {
    const s = await make();
    const people = Object.fromEntries(
      Array.from({ length: 50 }, (_, i) => [
        `user_${i}`,
        { name: `User ${i}`, status: 'online', typing: false, bio: 'x'.repeat(100) },
      ]),
    );
    const first = await s.set('chat', { group: 'g', people });
    // Each version replaces a 12 KB text: its record holds it before and after (≈ 24 KB).
    for (let i = 0; i < 12; i++) await s.assign('chat', { notes: 'abcdefghijkl'[i]!.repeat(12_000) });
    const now = (await s.get('chat'))!;
    const [far, near, both] = await Promise.all([
      s.sync('chat', first.version),
      s.sync('chat', now.version - 2),
      s.sync('chat', first.version),
    ]);
    expect(far).to.include({ type: 'full', version: now.version });
    expect((far as { context: unknown }).context).to.deep.equal(now.context);
    expect(near!.type).to.equal('delta');
    expect(both).to.equal(far);
    // Asked together, a far client and a near one each get their own kind of answer.
    const [a, b] = await Promise.all([s.sync('chat', first.version), s.sync('chat', now.version - 1)]);
    expect(a!.type).to.equal('full');
    expect(b).to.deep.include({
      type: 'delta',
      delta: { notes: { action: 'modified', old_value: 'k'.repeat(12_000), value: 'l'.repeat(12_000) } },
    });
  });

  it('direct writes keep what JSON (as Python writes it) makes of a value; the same value again changes nothing; a value that cannot be encoded changes nothing', async () => {
    const store = await make();
    const value = () => {
      const v: Record<string, unknown> = {
        when: new Date(0),
        n: { nan: NaN, inf: -Infinity, zero: -0, big: 1e21 },
        list: [1, undefined, () => 1, Symbol('s'), new Date(1000), { a: undefined }],
        dropped: undefined,
        fn: () => 1,
        nested: { x: undefined, y: new Date(0), z: { toJSON: () => ({ made: 'by toJSON' }) } },
        map: new Map([['a', 1]]),
      };
      Object.defineProperty(v, '__proto__', {
        value: { polluted: 1 },
        enumerable: true,
        configurable: true,
        writable: true,
      });
      return v;
    };
    // JSON as Python writes it: NaN and the infinities kept (see writeNumberTests()).
    const json = parseJson(stringifyJson(value())!) as Record<string, unknown>;
    const first = await store.set('js', value());
    expect((await store.get('js'))!.context).to.deep.equal(json);
    expect(Object.hasOwn((await store.get('js'))!.context, '__proto__')).to.equal(true);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    expect(await store.set('js', value())).to.deep.include({ changed: false, version: first.version });
    expect(await store.update('js', { nested: { y: new Date(0) }, when: new Date(0) })).to.deep.include({
      changed: false,
      version: first.version,
    });
    expect(await store.assign('js', { n: { nan: NaN, inf: -Infinity, zero: 0, big: 1e21 } })).to.deep.include({
      changed: false,
      version: first.version,
    });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(
      (await expectCode(store.update('js', { nested: { deep: cyclic } }), 'LC_STORE_INVALID_ARGUMENT')).message,
    ).to.match(/field "nested" cannot be stored as JSON \((it holds a cycle|.*circular)/i);
    expect((await expectCode(store.set('js', { loop: cyclic }), 'LC_STORE_INVALID_ARGUMENT')).message).to.match(
      /field "loop" cannot be stored as JSON \((it holds a cycle|.*circular)/i,
    );
    expect((await store.get('js'))!).to.deep.include({ version: first.version, context: json });
    const later = await store.update('js', { nested: { y: new Date(5000) }, list: [new Date(5000)] });
    expect(later).to.deep.include({ changed: true, version: first.version + 1 });
    const d = await store.sync('js', first.version);
    expect(d).to.deep.include({
      type: 'delta',
      delta: {
        nested: {
          y: { action: 'modified', old_value: '1970-01-01T00:00:00.000Z', value: '1970-01-01T00:00:05.000Z' },
        },
        list: { action: 'modified', old_value: json.list, value: ['1970-01-01T00:00:05.000Z'] },
      },
    });
  });

  it('set() reads objects as JSON does: an own key that is not enumerable, or an inherited one, is not there', async () => {
    const store = await make();
    const first = await store.set('enum', { m: { a: 1, b: 2 }, t: 1 });
    // The stored keys, one of them not enumerable, and one more: what JSON makes of it is {a, c}
    // (and no field t).
    const hidden: Record<string, unknown> = { a: 1, c: 3 };
    Object.defineProperty(hidden, 'b', { value: 2, enumerable: false });
    const context: Record<string, unknown> = { m: hidden };
    Object.defineProperty(context, 't', { value: 1, enumerable: false });
    expect(await store.set('enum', context)).to.deep.include({ changed: true, version: first.version + 1 });
    expect((await store.get('enum'))!.context).to.deep.equal({ m: { a: 1, c: 3 } });
    // The stored keys, one of them inherited: JSON makes {a}.
    const inherited = Object.create({ c: 3 }) as Record<string, unknown>;
    inherited.a = 1;
    expect(await store.set('enum', { m: inherited })).to.deep.include({ changed: true, version: first.version + 2 });
    expect((await store.get('enum'))!.context).to.deep.equal({ m: { a: 1 } });
    const d = await store.sync('enum', first.version);
    expect(d).to.deep.include({ type: 'delta', version: first.version + 2 });
    expect((d as Extract<SyncResult, { type: 'delta' }>).delta).to.deep.equal({
      m: { b: { action: 'removed', old_value: 2 } },
      t: { action: 'removed', old_value: 1 },
    });
  });

  it('a value is the same whatever order its keys came in (array-index keys too): set, update and assign change nothing then', async () => {
    const store = await make();
    const first = await store.set('order', {
      m: { b: 1, '10': 2, a: { z: 1, '2': 0, y: [{ q: 1, p: 2 }] }, '9': 3 },
    });
    const again = [
      () => store.set('order', { m: { '9': 3, a: { y: [{ p: 2, q: 1 }], '2': 0, z: 1 }, '10': 2, b: 1 } }),
      () => store.update('order', { m: { a: { z: 1, y: [{ p: 2, q: 1 }] }, '10': 2 } }),
      () => store.assign('order', { m: { a: { '2': 0, z: 1, y: [{ q: 1, p: 2 }] }, b: 1, '9': 3, '10': 2 } }),
    ];
    for (const write of again) expect(await write()).to.deep.include({ changed: false, version: first.version });
    // Keys added by a merge, before and after the others, and then the same value written whole.
    const merged = await store.update('order', { m: { '0': 'zero', c: 'c', A: 'A', a: { '11': 1, x: 1 } } });
    expect(merged).to.deep.include({ changed: true, version: first.version + 1 });
    const whole = {
      m: {
        A: 'A',
        c: 'c',
        '0': 'zero',
        b: 1,
        '10': 2,
        a: { x: 1, z: 1, '2': 0, '11': 1, y: [{ q: 1, p: 2 }] },
        '9': 3,
      },
    };
    expect(await store.set('order', whole)).to.deep.include({ changed: false, version: first.version + 1 });
    expect((await store.get('order'))!.context).to.deep.equal(whole);
  });

  it('values given back from sync() answers change nothing when they are what is there, in set, update and assign', async () => {
    const store = await make();
    const value = { people: { ann: { status: 'on', tags: ['a'] } }, n: 1 };
    await store.set('back-a', value);
    const first = await store.set('back-b', value);
    const fromA = (await store.sync('back-a', null)) as Extract<SyncResult, { type: 'full' }>;
    const fromB = (await store.sync('back-b', null)) as Extract<SyncResult, { type: 'full' }>;
    // The same values, from another context and from this one.
    for (const ctx of [fromA.context, fromB.context]) {
      expect(await store.set('back-b', ctx)).to.deep.include({ changed: false, version: first.version });
      expect(await store.update('back-b', { people: ctx.people as Record<string, unknown> })).to.deep.include({
        changed: false,
        version: first.version,
      });
      expect(await store.assign('back-b', { people: ctx.people })).to.deep.include({
        changed: false,
        version: first.version,
      });
    }
    // A value changed and changed back: the older answer's value is what is there again.
    await store.update('back-b', { people: { ann: { status: 'off' } } });
    const back = await store.update('back-b', { people: { ann: fromB.context.people as Record<string, unknown> } });
    expect(back).to.deep.include({ changed: true, version: first.version + 2 });
    expect(await store.assign('back-b', { people: fromB.context.people })).to.deep.include({
      changed: true,
      version: first.version + 3,
    });
    expect(await store.assign('back-b', { people: fromB.context.people })).to.deep.include({
      changed: false,
      version: first.version + 3,
    });
    expect((await store.get('back-b'))!.context).to.deep.equal(value);
  });

  it('a BigInt.prototype.toJSON is used as JSON uses it, by every write', async () => {
    const store = await make();
    const proto = BigInt.prototype as unknown as { toJSON?: () => string };
    proto.toJSON = function (this: bigint) {
      return this.toString();
    };
    try {
      await store.set('big', { a: 5n, o: { b: 6n } });
      await store.update('big', { o: { c: 7n }, d: 8n });
      await store.assign('big', { e: [9n] });
      await store.apply({ obj_id: 'big', obj: { f: 10n }, seq: 1 } as unknown as WireMessage);
      expect((await store.get('big'))!.context).to.deep.equal({
        a: '5',
        o: { b: '6', c: '7' },
        d: '8',
        e: ['9'],
        f: '10',
      });
    } finally {
      delete proto.toJSON;
    }
  });

  it("answers list the fields in the stores' key order at every depth, however written", async () => {
    const store = await make();
    await store.apply({ obj_id: 'ko', obj: { y: 1, x: 1 }, seq: 1 });
    await store.set('ko', { y: 3, x: 4, z: { b: 1, a: 2, 1: 0 }, 10: 1, 2: 1 });
    await store.update('ko', { a: { q: 1 }, z: { c: 3, 0: 0 } });
    const order = ['2', '10', 'a', 'x', 'y', 'z'];
    const got = (await store.get('ko'))!.context;
    const full = ((await store.sync('ko', null)) as Extract<SyncResult, { type: 'full' }>).context;
    for (const c of [got, full]) {
      expect(Object.keys(c)).to.deep.equal(order);
      expect(Object.keys(c.z as object)).to.deep.equal(['0', '1', 'a', 'b', 'c']);
    }
  });

  it('boxed primitives are stored as JSON makes them; ids and field names must be well-formed Unicode (nested keys may hold anything)', async () => {
    const store = await make();
    const boxed = {
      n: new Number(5),
      s: new String('s'),
      b: new Boolean(false),
      deep: { n: new Number(-0) },
      list: [new String('x')],
    };
    await store.set('box', boxed);
    expect((await store.get('box'))!.context).to.deep.equal(JSON.parse(JSON.stringify(boxed)));
    await store.update('box', { deep: { m: new Boolean(true) } });
    await store.assign('box', { a: new Number(1) });
    await store.apply({ obj_id: 'box', obj: { z: new String('bus') } as Record<string, unknown>, seq: 1 });
    expect((await store.get('box'))!.context).to.deep.equal({
      n: 5,
      s: 's',
      b: false,
      deep: { n: 0, m: true },
      list: ['x'],
      a: 1,
      z: 'bus',
    });
    await store.set('box-big', { big: Object(1n), huge: Object(18446744073709551616n) });
    expect((await store.get('box-big'))!.context).to.deep.equal({ big: 1, huge: 18446744073709551616n });
    const lone = ['\uD800', 'a\uDC00', '\uDBFFz'];
    for (const bad of lone) {
      await expectCode(store.set(`id-${bad}`, { a: 1 }), 'LC_STORE_INVALID_ARGUMENT');
      await expectCode(store.sync(`id-${bad}`, null), 'LC_STORE_INVALID_ARGUMENT');
      const named = await expectCode(store.set('u', { [bad]: 1 }), 'LC_STORE_INVALID_ARGUMENT');
      expect(named.message).to.match(/field name .* must be well-formed Unicode/);
      await expectCode(store.update('u', { [bad]: { x: 1 } }), 'LC_STORE_INVALID_ARGUMENT');
      await expectCode(store.assign('u', {}, [bad]), 'LC_STORE_INVALID_ARGUMENT');
      await expectCode(store.apply({ obj_id: 'u', obj: { [bad]: 1 }, seq: 0 }), 'LC_STORE_INVALID_ARGUMENT');
    }
    expect(await store.get('u')).to.equal(null);
    // Pairs are fine anywhere, lone surrogates below the top: each kept as it was.
    await store.set('u\uD83D\uDE00', { '\uD83D\uDE00': { '\uD800': 1, '\uDBFF': 2 } });
    expect((await store.get('u\uD83D\uDE00'))!.context).to.deep.equal({
      '\uD83D\uDE00': { '\uD800': 1, '\uDBFF': 2 },
    });
  });

  it('a field value nested deeper than 64 levels is refused naming the field, by every write; 64 is written and read back', async () => {
    const nest = (n: number, leaf: unknown): unknown => {
      let v = leaf;
      for (let i = 0; i < n; i++) v = { k: v };
      return v;
    };
    const store = await make({ restoreProvider: () => ({ context: { ok: 1, d: nest(65, 1) }, version: 1 }) });
    // Deep enough to break the reads (sync() merging deltas, history()) had it been written.
    for (const n of [65, 2600]) {
      for (const write of [
        () => store.set('dp', { d: nest(n, 1) }),
        () => store.update('dp', { d: nest(n, 2) }),
        () => store.assign('dp', { d: nest(n, 3) }),
        () => store.apply({ obj_id: 'dp', obj: { d: nest(n, 4) }, seq: 0 }),
        () => store.applyMany([{ message: { obj_id: 'dp', obj: { ok: 1, d: [nest(n - 1, 5)] }, seq: 0 } }]),
      ]) {
        const err = await expectCode(write(), 'LC_STORE_INVALID_ARGUMENT');
        expect(err.message).to.match(/field "d" .*nested deeper than 64 levels/);
      }
    }
    // What toJSON() gives is what is weighed.
    const hidden = { toJSON: () => nest(65, 1) };
    await expectCode(store.set('dp', { d: hidden }), 'LC_STORE_INVALID_ARGUMENT');
    const restored = await expectCode(store.restore('dp'), 'LC_STORE_RESTORE_FAILED');
    expect(restored.message).to.match(/"d", deeper than 64 levels/);
    expect(await store.get('dp')).to.equal(null);
    // At the limit: written, merged and read back through every path.
    await store.set('dp', { d: nest(64, 1) });
    await store.update('dp', { d: nest(64, 2) });
    await store.update('dp', { d: nest(63, 3) });
    expect((await store.get('dp'))!.context).to.deep.equal({ d: nest(63, 3) });
    const delta = (await store.sync('dp', 1)) as Extract<SyncResult, { type: 'delta' }>;
    expect(delta).to.include({ type: 'delta', version: 3 });
    expect(((await store.sync('dp', null)) as Extract<SyncResult, { type: 'full' }>).context).to.deep.equal({
      d: nest(63, 3),
    });
  });

  it('answers are frozen at every depth after sets, merges and assigns of nested values, toJSON() ones included', async () => {
    /** Every object and array in `value` that is not frozen, by path. */
    const unfrozen = (value: unknown, path = '$'): string[] => {
      if (typeof value !== 'object' || value === null) return [];
      const own = Object.isFrozen(value) ? [] : [path];
      return own.concat(
        ...Object.keys(value).map((k) => unfrozen((value as Record<string, unknown>)[k], `${path}.${k}`)),
      );
    };
    class Point {
      constructor(readonly x: number) {}
      toJSON() {
        return { x: this.x, tags: [{ t: 'a' }] };
      }
    }
    const store = await make();
    const first = await store.set('fz', {
      a: { b: { c: [1, { d: 2 }] } },
      when: new Date(0),
      p: new Point(1),
      list: [{ e: 1 }],
    });
    const answers: unknown[] = [await store.sync('fz', null)];
    await store.set('fz', {
      a: { b: { c: [1, { d: 3 }], n: { m: {} } } },
      when: new Date(1),
      p: new Point(2),
      list: [{ e: 1 }, { e: 2 }],
    });
    await Promise.all([
      store.update('fz', { a: { b: { n: { m: { z: [{ y: 1 }] } } } } }),
      store.update('fz', { p: { more: { deep: [] } } }),
      store.update('fz', { q: { r: new Point(3) } }),
    ]);
    await store.assign('fz', { s: { t: [{ u: {} }] } });
    answers.push(await store.sync('fz', null), await store.sync('fz', first.version), (await store.get('fz'))!.context);
    for (const [i, answer] of answers.slice(0, 3).entries()) expect(unfrozen(answer), `answer ${i}`).to.deep.equal([]);
    expect((answers[1] as { context: unknown }).context).to.deep.equal(answers[3]);
    expect(answers[3]).to.deep.include({ q: { r: { x: 3, tags: [{ t: 'a' }] } }, s: { t: [{ u: {} }] } });
  });
}
