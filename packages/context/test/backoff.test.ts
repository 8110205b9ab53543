import { expect } from 'chai';
import { HANDLER_DEFAULTS } from '@contexture/context';
import { backoffDelay, type BackoffOptions } from '@contexture/context/internal';

/** A `random` that always draws `x`. */
const always = (x: number) => () => x;

describe('backoffDelay', () => {
  const o: BackoffOptions = { initialDelay: 100, maxDelay: 5000, factor: 2, jitter: 0.2 };

  it('grows by factor from initialDelay, attempt 1 first; the middle draw gives the base itself', () => {
    const delays = [1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, o, always(0.5)));
    expect(delays).to.deep.equal([100, 200, 400, 800, 1600, 3200]);
    expect(backoffDelay(0, o, always(0.5)), 'below 1 counts as 1').to.equal(100);
    expect(backoffDelay(-3, o, always(0.5))).to.equal(100);
  });

  it('spreads each delay by ± jitter of it', () => {
    expect(backoffDelay(3, o, always(0))).to.equal(320);
    expect(backoffDelay(3, o, always(0.999_999))).to.equal(480);
    expect(backoffDelay(3, o, always(0.25))).to.equal(360);
  });

  it('caps the base at maxDelay / (1 + jitter): never over maxDelay, still spread at the cap', () => {
    const top = [0, 0.5, 0.999_999].map((r) => backoffDelay(50, o, always(r)));
    expect(top).to.deep.equal([3333, 4167, 5000]);
    for (let i = 0; i < 10_000; i++) {
      const d = backoffDelay(1 + (i % 60), o);
      expect(d).to.be.within(80, 5000);
      expect(Number.isInteger(d)).to.equal(true);
    }
  });

  it('without jitter: exact, capped at maxDelay, and no random draw', () => {
    const none = { ...o, jitter: 0 };
    const random = () => {
      throw new Error('drawn');
    };
    expect([1, 2, 7, 8, 100].map((n) => backoffDelay(n, none, random))).to.deep.equal([100, 200, 5000, 5000, 5000]);
  });

  it('odd settings stay finite and ≥ 0: factor 1, factor 0, initialDelay 0, maxDelay 0, a huge attempt', () => {
    expect(backoffDelay(9, { ...o, factor: 1 }, always(0.5))).to.equal(100);
    expect(backoffDelay(1, { ...o, factor: 0 }, always(0.5))).to.equal(100);
    expect(backoffDelay(2, { ...o, factor: 0 }, always(0.5))).to.equal(0);
    expect(backoffDelay(5, { ...o, initialDelay: 0 }, always(0))).to.equal(0);
    expect(backoffDelay(5, { ...o, maxDelay: 0 }, always(0.999))).to.equal(0);
    expect(backoffDelay(1e6, o, always(0.5))).to.equal(4167);
  });

  it("takes the Handler's reconnect option as it is: the defaults give 100 ms ± 20 %, then double, up to 5 s", () => {
    const r = HANDLER_DEFAULTS.reconnect;
    expect(backoffDelay(1, r, always(0))).to.equal(80);
    expect(backoffDelay(1, r, always(0.999_999))).to.equal(120);
    expect(backoffDelay(20, r, always(0.999_999))).to.equal(5000);
  });
});
