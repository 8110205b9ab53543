/** The numbers part of the shared store suite: NaN, the infinities and integers beyond 2^53, as Python writes them. */
import { decodeBody, isMalformed, isNote, type WireMessage } from '@contexture/context/protocol';
import { waitUntil } from '@contexture/test-support';
import { expect } from 'chai';
import { applyDelta, type ContextEvent, type SyncResult } from '../../../src/store/index.js';
import type { StoreFactory } from './helpers.js';

/** Bodies as the Python contexture 1.3 publishes them (json.dumps). */
export const PYTHON_BODIES = [
  '{"obj_id": "py", "obj": {"ratio": NaN, "hi": Infinity, "lo": -Infinity, "big": 18446744073709551616, ' +
    '"neg": -18446744073709551617, "list": [NaN, 1, 12345678901234567890123], "deep": {"x": [{"y": -Infinity}]}, ' +
    '"name": "NaN 18446744073709551616"}, "status": "born", "seq": 0, "time_in": 1700000000.5}',
  '{"obj_id": "py", "obj": {"ratio": Infinity, "big": 18446744073709551617, "deep": {"x": [{"y": NaN}]}}, "seq": 1, "time_in": 1700000000.6}',
  // The same values again: nothing changes.
  '{"obj_id": "py", "obj": {"ratio": Infinity, "big": 18446744073709551617, "list": [NaN, 1, 12345678901234567890123]}, "seq": 2, "time_in": 1700000000.7}',
];

/** What the first body folds into. */
export const PYTHON_BORN = {
  ratio: Number.NaN,
  hi: Number.POSITIVE_INFINITY,
  lo: Number.NEGATIVE_INFINITY,
  big: 18446744073709551616n,
  neg: -18446744073709551617n,
  list: [Number.NaN, 1, 12345678901234567890123n],
  deep: { x: [{ y: Number.NEGATIVE_INFINITY }] },
  name: 'NaN 18446744073709551616',
};

/** What all of them fold into. */
export const PYTHON_FOLDED = {
  ...PYTHON_BORN,
  ratio: Number.POSITIVE_INFINITY,
  big: 18446744073709551617n,
  deep: { x: [{ y: Number.NaN }] },
};

export function pythonMessages(id = 'py'): WireMessage[] {
  return PYTHON_BODIES.map((b) => {
    const [m] = decodeBody(b.replace('"obj_id": "py"', `"obj_id": "${id}"`));
    if (m === undefined || isMalformed(m) || isNote(m)) throw new Error(`not read: ${b}`);
    return m;
  });
}

/** NaN, Infinity, -Infinity and big integers through apply(), applyMany(), direct writes, sync() and watch(). */
export function numberTests(make: StoreFactory): void {
  it('apply() keeps the NaN, infinities and big integers of Python bodies exactly; the same values again change nothing', async () => {
    const store = await make();
    const [born, update, again] = pythonMessages();
    expect((await store.apply(born!)).changed).to.equal(true);
    expect((await store.get('py'))!.context).to.deep.equal(PYTHON_BORN);
    const full = (await store.sync('py', null)) as Extract<SyncResult, { type: 'full' }>;
    expect(full.context).to.deep.equal(PYTHON_BORN);
    expect((await store.apply(update!)).changed).to.equal(true);
    expect((await store.apply(again!)).changed).to.equal(false);
    expect((await store.apply(born!)).changed).to.equal(false);
    const got = (await store.get('py'))!;
    expect(got.context).to.deep.equal(PYTHON_FOLDED);
    expect(got.version).to.equal(2);
    const delta = (await store.sync('py', 1)) as Extract<SyncResult, { type: 'delta' }>;
    expect(delta.type).to.equal('delta');
    expect(delta.delta).to.deep.equal({
      ratio: { action: 'modified', old_value: Number.NaN, value: Number.POSITIVE_INFINITY },
      big: { action: 'modified', old_value: 18446744073709551616n, value: 18446744073709551617n },
      deep: { x: { action: 'modified', old_value: [{ y: Number.NEGATIVE_INFINITY }], value: [{ y: Number.NaN }] } },
    });
    expect(applyDelta(structuredClone(PYTHON_BORN), delta.delta)).to.deep.equal(PYTHON_FOLDED);
  });

  it('applyMany() folds them as apply() does', async () => {
    const store = await make();
    await store.applyMany(pythonMessages().map((message) => ({ message })));
    const got = (await store.get('py'))!;
    expect(got.context).to.deep.equal(PYTHON_FOLDED);
    expect(got.version).to.equal(2);
    const full = (await store.sync('py', null)) as Extract<SyncResult, { type: 'full' }>;
    expect(full.context).to.deep.equal(PYTHON_FOLDED);
  });

  it('direct writes keep NaN, the infinities and BigInts (as their digits); the same values again change nothing', async () => {
    const store = await make();
    const value = () => ({
      n: Number.NaN,
      i: [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY],
      huge: 18446744073709551616n,
      small: 10n,
      o: { neg: -18446744073709551617n, nan: Number.NaN },
    });
    const stored = {
      n: Number.NaN,
      i: [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY],
      huge: 18446744073709551616n,
      // A BigInt a double holds exactly is written as its digits and read back as a number.
      small: 10,
      o: { neg: -18446744073709551617n, nan: Number.NaN },
    };
    const first = await store.set('js', value());
    expect((await store.get('js'))!.context).to.deep.equal(stored);
    expect(await store.set('js', value())).to.deep.include({ changed: false, version: first.version });
    expect(
      await store.update('js', { o: { nan: Number.NaN, neg: -18446744073709551617n }, small: 10 }),
    ).to.deep.include({ changed: false, version: first.version });
    expect(await store.assign('js', { i: [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY] })).to.deep.include({
      changed: false,
      version: first.version,
    });
    const later = await store.update('js', { o: { nan: 1n, big: 9007199254740993n } });
    expect(later).to.deep.include({ changed: true, version: first.version + 1 });
    expect(((await store.sync('js', first.version)) as Extract<SyncResult, { type: 'delta' }>).delta).to.deep.equal({
      o: {
        nan: { action: 'modified', old_value: Number.NaN, value: 1 },
        big: { action: 'added', value: 9007199254740993n },
      },
    });
  });

  it('watch() events carry them exactly', async () => {
    const store = await make();
    const [born, update] = pythonMessages('pw');
    await store.apply(born!);
    const w = store.watch('pw');
    await w.ready;
    const events: ContextEvent[] = [];
    const done = (async () => {
      for await (const ev of w) {
        events.push(ev);
        break;
      }
    })();
    await store.apply(update!);
    await waitUntil(() => events.length === 1, 'one event', 5000);
    await done;
    expect(events[0]).to.deep.include({
      type: 'change',
      version: 2,
      delta: {
        ratio: { action: 'modified', old_value: Number.NaN, value: Number.POSITIVE_INFINITY },
        big: { action: 'modified', old_value: 18446744073709551616n, value: 18446744073709551617n },
        deep: { x: { action: 'modified', old_value: [{ y: Number.NEGATIVE_INFINITY }], value: [{ y: Number.NaN }] } },
      },
    });
  });
}
