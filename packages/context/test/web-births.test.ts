import { expect } from 'chai';
// Not exported: when the web middleware makes a request's context.
import { Births, type Waiting } from '../src/web/births.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('web Births: one timer tells each request still open after bornAfter ms', () => {
  it('tells every request still waiting once it is due, in arrival order, and none that left', async () => {
    const births = new Births(15);
    const told: number[] = [];
    const places: number[] = [];
    // More than the 1,024 places passed that are cut off at once, over several ticks.
    for (let i = 0; i < 3000; i++) {
      const w: Waiting = { due: () => told.push(i) };
      places.push(births.add(w, performance.now()));
    }
    // Two in three leave before they are due.
    for (let i = 0; i < 3000; i++) if (i % 3 !== 0) births.remove(places[i]!);
    expect(told).to.deep.equal([]);
    await sleep(60);
    expect(told).to.deep.equal(Array.from({ length: 1000 }, (_, k) => 3 * k));

    // Later arrivals after the list emptied: their places go on counting, and each is told once.
    told.length = 0;
    const late: number[] = [];
    for (let i = 0; i < 5; i++) late.push(births.add({ due: () => told.push(100 + i) }, performance.now()));
    births.remove(late[1]!);
    births.remove(places[0]!); // long gone: no effect
    await sleep(60);
    expect(told).to.deep.equal([100, 102, 103, 104]);
  });

  it("a request that arrives later waits its own bornAfter, not the first one's", async () => {
    const births = new Births(40);
    const added: Record<string, number> = {};
    const told: Record<string, number> = {};
    const add = (name: string) => {
      added[name] = performance.now();
      births.add({ due: () => (told[name] = performance.now()) }, added[name]);
    };
    add('first');
    await sleep(25);
    add('second');
    await sleep(200);
    // Never before its own time (a timer may be late on a busy machine, never early).
    expect(told.first! - added.first!).to.be.at.least(40);
    expect(told.second! - added.second!).to.be.at.least(40);
    expect(told.second).to.be.greaterThan(told.first!);
  });
});
