/** What the parts of the shared store suite use: the store factory's type and a few helpers. */
import { Collator, type WireMessage } from '@contexture/context/protocol';
import { expect } from 'chai';
import { CollectorError, type ContextStore, type StoreOptions } from '../../../src/store/index.js';
import { copy } from '../streams.js';

/** Makes a fresh, empty store with these options; the caller's afterEach cleans it up. */
export type StoreFactory = (options?: StoreOptions) => Promise<ContextStore>;

export async function expectCode(p: Promise<unknown>, code: string): Promise<CollectorError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(CollectorError);
    expect((err as CollectorError).code).to.equal(code);
    return err as CollectorError;
  }
  throw new Error(`expected a rejection with ${code}`);
}

export function visible(g: Awaited<ReturnType<ContextStore['get']>>) {
  if (g === null) return null;
  const { context, status, rkey, headers, born_at, finished_at } = g;
  return { context, status, rkey, headers, born_at, finished_at };
}

/** The object the protocol's Collator folds from the same messages: the reference the store must match. */
export function collated(messages: WireMessage[]): Record<string, unknown> {
  let out: Record<string, unknown> | null = null;
  const c = new Collator({ onObject: (o) => (out = o.object) });
  for (const m of messages) c.add(copy(m));
  c.flush(true);
  return out!;
}
