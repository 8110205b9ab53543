import { expect } from 'chai';
import { MemoryContextStore, type ContextStore, type StoreOptions, type SyncResult } from '../src/store/index.js';
import { storeSuite } from './support/store-suite/index.js';

describe('MemoryContextStore', () => {
  const stores: ContextStore[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });
  storeSuite(async (options?: StoreOptions) => {
    const store = new MemoryContextStore(options);
    stores.push(store);
    return store;
  });

  it('a turn of more merges than it keeps unfrozen at once seals them as it goes: every version and value right', async () => {
    const store = new MemoryContextStore({ deltaThreshold: 10_000 });
    stores.push(store);
    await store.set('long', { people: { ann: { n: 0 }, bob: { n: 0 } } });
    const writes: Promise<{ version: number }>[] = [];
    for (let i = 1; i <= 6000; i++) {
      writes.push(store.update('long', { people: { [i % 2 === 0 ? 'ann' : 'bob']: { n: i } } }));
      // New keys too: each one orders the object anew.
      if (i % 1000 === 0) writes.push(store.update('long', { people: { [`p${i}`]: { n: i } } }));
    }
    const early = store.sync('long', 1);
    const got = await Promise.all(writes);
    expect(got.map((r) => r.version)).to.deep.equal(Array.from({ length: 6006 }, (_, i) => i + 2));
    const expected = {
      people: {
        ann: { n: 6000 },
        bob: { n: 5999 },
        ...Object.fromEntries([1000, 2000, 3000, 4000, 5000, 6000].map((i) => [`p${i}`, { n: i }])),
      },
    };
    const full = (await store.sync('long', null)) as Extract<SyncResult, { type: 'full' }>;
    expect(full.context).to.deep.equal(expected);
    expect(Object.isFrozen((full.context.people as Record<string, unknown>).ann)).to.equal(true);
    expect(((await early) as Extract<SyncResult, { type: 'delta' }>).version).to.equal(6007);
    const delta = (await store.sync('long', 3000)) as Extract<SyncResult, { type: 'delta' }>;
    expect(delta.delta).to.deep.include({
      people: {
        ann: { n: { action: 'modified', old_value: 2996, value: 6000 } },
        bob: { n: { action: 'modified', old_value: 2997, value: 5999 } },
        p3000: { action: 'added', value: { n: 3000 } },
        p4000: { action: 'added', value: { n: 4000 } },
        p5000: { action: 'added', value: { n: 5000 } },
        p6000: { action: 'added', value: { n: 6000 } },
      },
    });
  });
});
