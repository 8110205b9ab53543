/** The lifecycle part of the shared store suite: options refused, close(). */
import { expect } from 'chai';
import type { StoreOptions } from '../../../src/store/index.js';
import { expectCode, type StoreFactory } from './helpers.js';

/** Options checked at construction; close() idempotent, a closed store refusing work. */
export function lifecycleTests(make: StoreFactory): void {
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
}
