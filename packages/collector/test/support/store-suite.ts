import { Collator, type WireMessage } from '@contexture/context/protocol';
import { waitUntil } from '@contexture/test-support';
import { expect } from 'chai';
import {
  applyDelta,
  CollectorError,
  mergeRecords,
  type ContextEvent,
  type ContextStore,
  type StoreOptions,
  type SyncResult,
} from '../../src/store/index.js';
import { contextStream, copy, rng, shuffledWithDuplicates } from './streams.js';

/** Makes a fresh, empty store with these options; the caller's afterEach cleans it up. */
export type StoreFactory = (options?: StoreOptions) => Promise<ContextStore>;

async function expectCode(p: Promise<unknown>, code: string): Promise<CollectorError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(CollectorError);
    expect((err as CollectorError).code).to.equal(code);
    return err as CollectorError;
  }
  throw new Error(`expected a rejection with ${code}`);
}

function visible(g: Awaited<ReturnType<ContextStore['get']>>) {
  if (g === null) return null;
  const { context, status, rkey, headers, born_at, finished_at } = g;
  return { context, status, rkey, headers, born_at, finished_at };
}

/** The object the protocol's Collator folds from the same messages: the reference the store must match. */
function collated(messages: WireMessage[]): Record<string, unknown> {
  let out: Record<string, unknown> | null = null;
  const c = new Collator({ onObject: (o) => (out = o.object) });
  for (const m of messages) c.add(copy(m));
  c.flush(true);
  return out!;
}

/** The behaviour both stores share, run against each (apply, sync, direct writes, retention, …). */
export function storeSuite(make: StoreFactory): void {
  describe('apply()', () => {
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
  });

  describe('applyMany()', () => {
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
  });

  describe('direct writes', () => {
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

    it('direct writes keep what JSON makes of a value; the same value again changes nothing; a value that cannot be encoded changes nothing', async () => {
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
      const json = JSON.parse(JSON.stringify(value())) as Record<string, unknown>;
      const first = await store.set('js', value());
      expect((await store.get('js'))!.context).to.deep.equal(json);
      expect(Object.hasOwn((await store.get('js'))!.context, '__proto__')).to.equal(true);
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
      expect(await store.set('js', value())).to.deep.include({ changed: false, version: first.version });
      expect(await store.update('js', { nested: { y: new Date(0) }, when: new Date(0) })).to.deep.include({
        changed: false,
        version: first.version,
      });
      expect(await store.assign('js', { n: { nan: null, inf: null, zero: 0, big: 1e21 } })).to.deep.include({
        changed: false,
        version: first.version,
      });
      expect((await expectCode(store.set('js', { ...value(), n: 10n }), 'LC_STORE_INVALID_ARGUMENT')).message).to.match(
        /field "n" cannot be stored as JSON/,
      );
      expect((await expectCode(store.assign('js', { list: [1, 2n] }), 'LC_STORE_INVALID_ARGUMENT')).message).to.match(
        /field "list"/,
      );
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

    it('an update that cannot be encoded fails alone: the merges asked for with it are made, nothing of it is written', async () => {
      const store = await make();
      await store.set('bad', { a: { x: 1 }, b: { y: 1 } });
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      const got = await Promise.allSettled([
        store.update('bad', { a: { x: 2 } }),
        store.update('bad', { b: { y: 10n } }),
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
      await expectCode(store.set('box', { big: Object(1n) }), 'LC_STORE_INVALID_ARGUMENT');
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
      answers.push(
        await store.sync('fz', null),
        await store.sync('fz', first.version),
        (await store.get('fz'))!.context,
      );
      for (const [i, answer] of answers.slice(0, 3).entries())
        expect(unfrozen(answer), `answer ${i}`).to.deep.equal([]);
      expect((answers[1] as { context: unknown }).context).to.deep.equal(answers[3]);
      expect(answers[3]).to.deep.include({ q: { r: { x: 3, tags: [{ t: 'a' }] } }, s: { t: [{ u: {} }] } });
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
  });

  describe('sync()', () => {
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
          expect((s as Extract<SyncResult, { type: 'delta' }>).delta, `seed ${seed} v${v}`).to.deep.equal(
            whole(v, last),
          );
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
  });

  describe('retention and cleanup', () => {
    it('deletes idle contexts after contextTtl and finished ones after finishedTtl when autoDelete is on', async () => {
      const store = await make({ autoDelete: true, contextTtl: 300, finishedTtl: 100 });
      await store.apply({ obj_id: 'open', obj: { a: 1 }, status: 'born', seq: 0 });
      await store.apply({ obj_id: 'done', obj: { a: 1 }, status: 'born', seq: 0 });
      await store.apply({ obj_id: 'done', obj: {}, status: 'finished', seq: 1 });
      expect(await store.get('done')).to.not.equal(null);
      await waitUntil(async () => (await store.get('done')) === null, 'the finished context to go', 5000);
      expect(await store.get('open')).to.not.equal(null);
      await waitUntil(async () => (await store.get('open')) === null, 'the idle context to go', 5000);
      const keep = await make({ autoDelete: false, contextTtl: 1, finishedTtl: 1 });
      await keep.set('kept', { a: 1 });
      await new Promise((r) => setTimeout(r, 30));
      await keep.cleanup();
      expect(await keep.get('kept')).to.not.equal(null);
    });

    it('cleanup() drops deltas past the threshold and walks every context in steps of limit', async () => {
      const store = await make({ deltaThreshold: 2 });
      for (let c = 0; c < 25; c++) for (let i = 0; i < 6; i++) await store.set(`c${c}`, { i });
      const seen = { scanned: 0, rounds: 0 };
      for (;;) {
        const r = await store.cleanup({ limit: 10 });
        seen.scanned += r.scanned;
        seen.rounds++;
        if (r.wrapped) break;
        expect(r.scanned).to.be.at.least(10);
      }
      expect(seen.scanned).to.be.at.least(25);
      expect(seen.rounds).to.be.at.least(2);
      for (let c = 0; c < 25; c++) {
        expect((await store.sync(`c${c}`, 4))!.type).to.equal('delta');
        expect((await store.sync(`c${c}`, 3))!.type).to.equal('full');
      }
    });

    it('cleanup() drops deltas older than deltaTtl', async () => {
      const store = await make({ deltaTtl: 100 });
      await store.set('old', { a: 1 });
      await store.set('old', { a: 2 });
      await new Promise((r) => setTimeout(r, 150));
      let dropped = 0;
      for (;;) {
        const r = await store.cleanup();
        dropped += r.deltasDeleted;
        if (r.wrapped) break;
      }
      expect(dropped).to.be.at.most(2);
      expect((await store.sync('old', 1))!.type).to.equal('full');
      expect((await store.get('old'))!.context).to.deep.equal({ a: 2 });
    });

    it('runs the cleaner periodically, with an interval that changes while it runs', async () => {
      const errors: unknown[] = [];
      const store = await make({ onCleanupError: (e) => errors.push(e) });
      const stats = () => (store as unknown as { stats(): { cleaner: { runs: number } } }).stats().cleaner;
      store.startCleaner(60_000);
      expect(stats().runs).to.equal(0);
      store.setCleanupInterval(20);
      await waitUntil(() => stats().runs >= 3, 'three cleaner runs', 5000);
      store.setCleanupInterval(60_000);
      await new Promise((r) => setTimeout(r, 50));
      const runs = stats().runs;
      await new Promise((r) => setTimeout(r, 200));
      expect(stats().runs).to.be.at.most(runs + 1);
      store.stopCleaner();
      expect(errors).to.deep.equal([]);
      await expectCode(
        Promise.resolve().then(() => store.setCleanupInterval(0)),
        'LC_STORE_INVALID_ARGUMENT',
      );
    });
  });

  describe('export and restore', () => {
    it('exports through the callback and restores through the provider, keeping the version', async () => {
      const exported: unknown[] = [];
      const saved = new Map<string, { context: Record<string, unknown>; version: number }>();
      const store = await make({
        exportCallback: (c) => {
          exported.push(c);
          saved.set(c.id, { context: c.context, version: c.version });
        },
        restoreProvider: (id) => saved.get(id) ?? null,
      });
      await store.set('x', { a: 1 });
      await store.update('x', { b: { c: {} } });
      const rec = await store.export('x');
      expect(exported).to.deep.equal([rec]);
      expect(rec).to.deep.include({ id: 'x', version: 2, context: { a: 1, b: { c: {} } } });
      saved.set('x', { context: { restored: true }, version: 42 });
      await store.set('x', { newer: 1 });
      const restored = await store.restore('x');
      expect(restored).to.deep.include({ id: 'x', version: 42, context: { restored: true } });
      expect(await store.get('x')).to.deep.include({
        version: 42,
        context: { restored: true },
        incarnation: restored.incarnation,
      });
      // A restored context is another incarnation: a copy of the one before gets it whole.
      expect(restored.incarnation).to.be.a('string').and.not.equal(rec.incarnation);
      expect((await store.sync('x', 42, rec.incarnation))!.type).to.equal('full');
      expect((await store.sync('x', 2))!.type).to.equal('full');
      expect((await store.sync('x', 41))!.type).to.equal('full');
      expect((await store.sync('x', 42))!.type).to.equal('no_change');
      await store.update('x', { more: 1 });
      expect(await store.sync('x', 42)).to.deep.include({
        type: 'delta',
        version: 43,
        delta: { more: { action: 'added', value: 1 } },
      });
      await store.apply({ obj_id: 'x', obj: { bus: 1 }, seq: 0 });
      expect((await store.get('x'))!.context).to.deep.equal({ restored: true, more: 1, bus: 1 });
      await expectCode(store.export('none'), 'LC_STORE_NOT_FOUND');
      await expectCode(store.restore('none'), 'LC_STORE_NOT_FOUND');
    });

    it('reports what is not configured or fails with stable codes', async () => {
      const bare = await make();
      await bare.set('x', { a: 1 });
      await expectCode(bare.export('x'), 'LC_STORE_NOT_CONFIGURED');
      await expectCode(bare.restore('x'), 'LC_STORE_NOT_CONFIGURED');
      const failing = await make({
        exportCallback: () => Promise.reject(new Error('disk full')),
        restoreProvider: (id) =>
          id === 'bad' ? ({ context: {}, version: -3 } as never) : Promise.reject(new Error('db down')),
      });
      await failing.set('x', { a: 1 });
      const e = await expectCode(failing.export('x'), 'LC_STORE_EXPORT_FAILED');
      expect((e.cause as Error).message).to.equal('disk full');
      await expectCode(failing.restore('x'), 'LC_STORE_RESTORE_FAILED');
      await expectCode(failing.restore('bad'), 'LC_STORE_RESTORE_FAILED');
      expect((await failing.get('x'))!.context).to.deep.equal({ a: 1 });
    });
  });

  describe('list()', () => {
    it('pages through every context once, filtered by rkey glob and status', async () => {
      const store = await make();
      const all = new Set<string>();
      for (let i = 0; i < 30; i++) {
        const id = `l${i}`;
        all.add(id);
        await store.apply(
          { obj_id: id, obj: { i }, status: 'born', seq: 0 },
          { rkey: `app.${i % 2 === 0 ? 'even' : 'odd'}.${i}` },
        );
        if (i % 3 === 0) await store.apply({ obj_id: id, obj: {}, status: 'finished', seq: 1 });
      }
      await store.apply({ obj_id: 'tomb', obj: { x: null }, action: 'delete', seq: 3 }); // version 0: not listed
      const seen = new Set<string>();
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = await store.list({ limit: 7, cursor });
        for (const item of page.items) seen.add(item.id);
        cursor = page.cursor;
        pages++;
      } while (cursor !== null);
      expect([...seen].sort()).to.deep.equal([...all].sort());
      expect(pages).to.be.at.least(2);
      const collect = async (o: Parameters<ContextStore['list']>[0]) => {
        const ids = new Set<string>();
        let c: string | null = null;
        do {
          const p = await store.list({ ...o, cursor: c });
          for (const it of p.items) ids.add(it.id);
          c = p.cursor;
        } while (c !== null);
        return [...ids].sort();
      };
      const even = [...all].filter((id) => Number(id.slice(1)) % 2 === 0).sort();
      expect(await collect({ rkey: 'app.even.*' })).to.deep.equal(even);
      expect(await collect({ rkey: 'app.even.*', status: 'finished' })).to.deep.equal(
        even.filter((id) => Number(id.slice(1)) % 3 === 0),
      );
      expect(await collect({ rkey: 'app.[o]dd.2?' })).to.deep.equal(['l21', 'l23', 'l25', 'l27', 'l29']);
      const one = await store.list({ rkey: 'app.odd.1' });
      expect(one.items).to.have.length(1);
      expect(one.items[0]).to.deep.include({ id: 'l1', version: 1, status: 'born', rkey: 'app.odd.1' });
    });
  });

  describe('arguments of list() and cleanup()', () => {
    it('refuses a limit, cursor, rkey or status of the wrong kind, saying which', async () => {
      const store = await make();
      for (const [options, text] of [
        [{ limit: -1 }, /limit must be an integer >= 1, got -1/],
        [{ limit: 1.5 }, /limit must be an integer >= 1/],
        [{ limit: '10' }, /limit must be an integer >= 1, got "10"/],
        [{ cursor: 5 }, /cursor must be the string a page gave, or null/],
        [{ rkey: 3 }, /rkey must be a glob string/],
        [{ status: 'done' }, /status must be born, finished, transient or null/],
      ] as const) {
        const err = await expectCode(store.list(options as never), 'LC_STORE_INVALID_ARGUMENT');
        expect(err.message).to.match(text);
      }
      await expectCode(store.list(null as never), 'LC_STORE_INVALID_ARGUMENT');
      await expectCode(store.cleanup({ limit: 0 }), 'LC_STORE_INVALID_ARGUMENT');
      expect((await store.list({ limit: 1, cursor: null, status: null })).items).to.deep.equal([]);
      expect((await store.cleanup({ limit: 1 })).contextsDeleted).to.equal(0);
      await expectCode(make({ deltaThreshold: '100' } as unknown as StoreOptions), 'LC_STORE_INVALID_ARGUMENT').then(
        (e) => expect(e.message).to.include('got "100"'),
      );
    });
  });

  describe('watch()', () => {
    it('delivers every change so a copy stays current, then reset and delete; break unsubscribes', async () => {
      const store = await make();
      await store.set('wt', { a: 1 });
      const w = store.watch('wt');
      await w.ready;
      const start = await store.sync('wt', null);
      let mine = copy((start as Extract<SyncResult, { type: 'full' }>).context);
      let version = start!.version;
      const events: ContextEvent[] = [];
      const done = (async () => {
        for await (const ev of w) {
          events.push(ev);
          if (ev.type === 'change') {
            expect(ev.version).to.equal(version + 1);
            mine = applyDelta(mine, ev.delta);
            version = ev.version;
          }
          if (ev.type === 'deleted') break;
        }
      })();
      await store.update('wt', { b: { c: 1 } });
      await store.apply({ obj_id: 'wt', obj: { a: 2 }, status: 'born', seq: 0 });
      await store.apply({ obj_id: 'wt', obj: { a: 2 }, seq: 0 }); // no change: no event
      await store.apply({ obj_id: 'wt', obj: { b: null }, action: 'delete', seq: 1 });
      await waitUntil(() => version === 4, 'four versions watched', 5000);
      expect(mine).to.deep.equal((await store.get('wt'))!.context);
      expect(events.map((e) => e.type === 'change' && e.status)).to.deep.equal([null, 'born', 'born']);
      // Every change names the incarnation of the context it is of.
      const incarnation = (await store.get('wt'))!.incarnation;
      expect(events.map((e) => e.type === 'change' && e.incarnation)).to.deep.equal([
        incarnation,
        incarnation,
        incarnation,
      ]);
      await store.delete('wt');
      await done;
      expect(events.at(-1)).to.deep.equal({ type: 'deleted', id: 'wt' });
      // After break the watcher is closed; a new one still works.
      const w2 = store.watch('wt');
      await w2.ready;
      await store.set('wt', { z: 1 });
      const first = await w2.next();
      expect(first.value).to.deep.include({ type: 'change', version: 1, delta: { z: { action: 'added', value: 1 } } });
      await w2.close();
      expect(await w2.next()).to.deep.equal({ value: undefined, done: true });
    });

    it('delivers large records whole: one alone, several together, several over 64 KiB', async () => {
      const store = await make();
      await store.set('lw', { doc: {} });
      const w = store.watch('lw');
      await w.ready;
      const start = (await store.sync('lw', null)) as Extract<SyncResult, { type: 'full' }>;
      let mine = copy(start.context);
      let version = start.version;
      const incarnations = new Set<string>();
      const done = (async () => {
        for await (const ev of w) {
          if (ev.type !== 'change') continue;
          expect(ev.version).to.equal(version + 1);
          mine = applyDelta(mine, ev.delta);
          version = ev.version;
          incarnations.add(ev.incarnation);
          if (version === 9) break;
        }
      })();
      // One record of 10 KB; then two of 3 KB in one call (merged updates asked together); then
      // three of 30 KB in one call; then the 10 KB value removed.
      await store.set('lw', { doc: { a: 'a'.repeat(10_000) } });
      await Promise.all([
        store.update('lw', { doc: { b: 'b'.repeat(3000) } }),
        store.update('lw', { doc: { c: 'c'.repeat(3000) } }),
      ]);
      await Promise.all(['d', 'e', 'f'].map((k) => store.update('lw', { doc: { [k]: k.repeat(30_000) } })));
      await store.assign('lw', {}, ['doc']);
      await store.set('lw', { small: 1 });
      await done;
      expect(version).to.equal((await store.get('lw'))!.version);
      expect(mine).to.deep.equal({ small: 1 });
      expect([...incarnations]).to.deep.equal([(await store.get('lw'))!.incarnation]);
    });

    it('announces a restore as a reset', async () => {
      const store = await make({ restoreProvider: () => ({ context: { r: 1 }, version: 9 }) });
      const w = store.watch('rs');
      await w.ready;
      await store.restore('rs');
      expect((await w.next()).value).to.deep.equal({ type: 'reset', id: 'rs', version: 9 });
      await w.return!();
    });
  });

  describe('lifecycle', () => {
    it('refuses options it does not know (a misspelt one is not ignored) or of the wrong type', async () => {
      const misspelt = await expectCode(make({ deltaThreshhold: 5 } as StoreOptions), 'LC_STORE_INVALID_ARGUMENT');
      expect(misspelt.message).to.equal('unknown option "deltaThreshhold"');
      await expectCode(make({ autoDelete: 'yes' } as unknown as StoreOptions), 'LC_STORE_INVALID_ARGUMENT');
      await expectCode(make({ deltaThreshold: -1 }), 'LC_STORE_INVALID_ARGUMENT');
      // Every option the interface names is taken.
      const store = await make({
        deltaThreshold: 5,
        deltaTtl: null,
        autoDelete: false,
        contextTtl: 1000,
        finishedTtl: null,
        cleanupInterval: null,
        cleanupLimit: 10,
        onCleanupError: null,
        exportCallback: null,
        restoreProvider: null,
        updateRetries: 3,
      });
      expect((await store.set('opt', { a: 1 })).version).to.equal(1);
    });

    it('close() is idempotent and a closed store refuses work', async () => {
      const store = await make();
      const a = store.close();
      const b = store.close();
      expect(a).to.equal(b);
      await a;
      await store[Symbol.asyncDispose]();
      expect(store.status).to.equal('closed');
      await expectCode(store.get('x'), 'LC_STORE_CLOSED');
      await expectCode(store.apply({ obj_id: 'x', obj: {} }), 'LC_STORE_CLOSED');
    });
  });
}
