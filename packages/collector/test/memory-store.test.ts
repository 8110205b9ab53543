import { MemoryContextStore, type ContextStore, type StoreOptions } from '../src/store/index.js';
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
});
