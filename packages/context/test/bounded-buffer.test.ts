import { expect } from 'chai';
import { ContextError } from '@contexture/context';
// Not exported: the Handler's own buffer, tested on its own.
import { BoundedBuffer } from '../src/bounded-buffer.js';

describe('BoundedBuffer', () => {
  it('drop-oldest keeps the newest items in order and returns what it dropped', () => {
    const b = new BoundedBuffer<number>(3, 'drop-oldest');
    const dropped = [1, 2, 3, 4, 5].map((i) => b.push(i)).filter((d) => d !== undefined);
    expect(dropped).to.deep.equal([1, 2]);
    expect(b.drain()).to.deep.equal([3, 4, 5]);
  });

  it('drop-newest refuses new items when full', () => {
    const b = new BoundedBuffer<number>(3, 'drop-newest');
    const dropped = [1, 2, 3, 4, 5].map((i) => b.push(i)).filter((d) => d !== undefined);
    expect(dropped).to.deep.equal([4, 5]);
    expect(b.drain()).to.deep.equal([1, 2, 3]);
  });

  it('block grows past capacity and reports full', () => {
    const b = new BoundedBuffer<number>(2, 'block');
    for (let i = 0; i < 5; i++) expect(b.push(i)).to.equal(undefined);
    expect(b.full).to.equal(true);
    expect(b.drain()).to.deep.equal([0, 1, 2, 3, 4]);
  });

  it('unshiftAll puts items back in front in order, dropping by the policy past capacity', () => {
    const oldest = new BoundedBuffer<number>(4, 'drop-oldest');
    for (const i of [5, 6, 7]) oldest.push(i);
    expect(oldest.unshiftAll([1, 2, 3, 4])).to.deep.equal([1, 2, 3]);
    expect(oldest.drain()).to.deep.equal([4, 5, 6, 7]);
    const newest = new BoundedBuffer<number>(4, 'drop-newest');
    for (const i of [5, 6, 7]) newest.push(i);
    expect(newest.unshiftAll([1, 2, 3, 4])).to.deep.equal([7, 6, 5]);
    expect(newest.drain()).to.deep.equal([1, 2, 3, 4]);
  });

  it('wraps around its ring many times without losing order', () => {
    const b = new BoundedBuffer<number>(1000, 'drop-oldest');
    const seen: number[] = [];
    let next = 0;
    for (let round = 0; round < 200; round++) {
      for (let i = 0; i < 7; i++) b.push(next++);
      for (let i = 0; i < 5; i++) seen.push(b.shift()!);
    }
    seen.push(...b.drain());
    expect(seen).to.deep.equal(Array.from({ length: next }, (_, i) => i));
  });

  it('refuses a capacity that is not a positive integer', () => {
    for (const capacity of [0, 1.5, -1, Number.NaN])
      expect(() => new BoundedBuffer(capacity), String(capacity))
        .to.throw(ContextError, /capacity must be a positive integer/)
        .with.property('code', 'LC_BUFFER_INVALID_CAPACITY');
  });
});
