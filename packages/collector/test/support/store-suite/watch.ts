/** The watch() part of the shared store suite: events that keep a copy current. */
import { waitUntil } from '@contexture/test-support';
import { expect } from 'chai';
import { applyDelta, type ContextEvent, type SyncResult } from '../../../src/store/index.js';
import { copy } from '../streams.js';
import type { StoreFactory } from './helpers.js';

/** watch(): changes, resets and deletes, large records whole. */
export function watchTests(make: StoreFactory): void {
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

  it('refuses watch options of the wrong kind', async () => {
    const store = await make();
    for (const [options, text] of [
      [{ maxQueue: -1 }, /maxQueue must be an integer >= 1, got -1/],
      [{ maxQueue: 0 }, /maxQueue must be an integer >= 1/],
      [{ maxQueue: Number.NaN }, /maxQueue must be an integer >= 1/],
      [{ keepAlive: 'yes' }, /keepAlive must be true or false/],
      [7, /watch\(\) options must be a plain object/],
    ] as const) {
      let caught: { code?: string; message?: string } | null = null;
      try {
        store.watch('wo', options as never);
      } catch (err) {
        caught = err as { code?: string; message?: string };
      }
      expect(caught?.code, String(text)).to.equal('LC_STORE_INVALID_ARGUMENT');
      expect(caught?.message).to.match(text);
    }
    const w = store.watch('wo', { maxQueue: 1, keepAlive: false });
    await w.close();
  });

  it('announces a restore as a reset', async () => {
    const store = await make({ restoreProvider: () => ({ context: { r: 1 }, version: 9 }) });
    const w = store.watch('rs');
    await w.ready;
    await store.restore('rs');
    expect((await w.next()).value).to.deep.equal({ type: 'reset', id: 'rs', version: 9 });
    await w.return!();
  });
}
