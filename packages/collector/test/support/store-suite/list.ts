/** The list() part of the shared store suite: paging and filters, and the arguments of list() and cleanup(). */
import { expect } from 'chai';
import type { ContextStore, StoreOptions } from '../../../src/store/index.js';
import { expectCode, type StoreFactory } from './helpers.js';

/** list(): every context once, filtered by rkey glob and status. */
export function listTests(make: StoreFactory): void {
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
    // Every character of a glob is read as Redis reads it: `-` outside a class is itself.
    await store.apply({ obj_id: 'dash', obj: { x: 1 }, seq: 0 }, { rkey: 'shop-eu.order/1' });
    for (const glob of ['shop-*', 'shop-eu.order/?', 'shop[-]eu*', 'shop[\\-]eu*', 'shop\\-eu*', '*[a-f]u.*'])
      expect(await collect({ rkey: glob }), glob).to.deep.equal(['dash']);
  });
}

/** The arguments of list() and cleanup(): the wrong kind refused. */
export function listArgumentTests(make: StoreFactory): void {
  it('refuses a limit, cursor, rkey or status of the wrong kind, saying which', async () => {
    const store = await make();
    for (const [options, text] of [
      [{ limit: -1 }, /limit must be an integer >= 1, got -1/],
      [{ limit: 1.5 }, /limit must be an integer >= 1/],
      [{ limit: '10' }, /limit must be an integer >= 1, got "10"/],
      [{ cursor: 5 }, /cursor must be the string a page gave, or null/],
      [{ cursor: 'zz' }, /cursor "zz" is not one a page gave/],
      [{ cursor: '-1' }, /cursor "-1" is not one a page gave/],
      [{ rkey: 3 }, /rkey must be a glob string/],
      [{ rkey: 'a[z-a]' }, /"a\[z-a\]" is not a glob pattern/],
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
}
