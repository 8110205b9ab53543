/** The retention, cleanup, export and restore part of the shared store suite. */
import { waitUntil } from '@contexture/test-support';
import { expect } from 'chai';
import { expectCode, type StoreFactory } from './helpers.js';

/** Retention and cleanup: TTLs, deltaThreshold, deltaTtl, the periodic cleaner. */
export function retentionTests(make: StoreFactory): void {
  it('deletes idle contexts after contextTtl and finished ones after finishedTtl when autoDelete is on', async function () {
    this.timeout(30_000);
    // Margins of a second or more between what must still be there and what must be gone: a busy
    // machine's pauses only delay the waits, they cannot reorder them.
    const store = await make({ autoDelete: true, contextTtl: 3_000, finishedTtl: 1_000 });
    await store.apply({ obj_id: 'open', obj: { a: 1 }, status: 'born', seq: 0 });
    await store.apply({ obj_id: 'done', obj: { a: 1 }, status: 'born', seq: 0 });
    await store.apply({ obj_id: 'done', obj: {}, status: 'finished', seq: 1 });
    expect(await store.get('done')).to.not.equal(null);
    await waitUntil(async () => (await store.get('done')) === null, 'the finished context to go', 15_000);
    expect(await store.get('open')).to.not.equal(null);
    await waitUntil(async () => (await store.get('open')) === null, 'the idle context to go', 15_000);
    const keep = await make({ autoDelete: false, contextTtl: 1, finishedTtl: 1 });
    await keep.set('kept', { a: 1 });
    await new Promise((r) => setTimeout(r, 30));
    await keep.cleanup();
    expect(await keep.get('kept')).to.not.equal(null);
  });

  it('cleanup() drops deltas past the threshold and walks every context in steps of limit', async () => {
    const store = await make({ deltaThreshold: 2 });
    for (let c = 0; c < 25; c++) for (let i = 0; i < 6; i++) await store.set(`c${c}`, { i });
    const seen = { scanned: 0, rounds: 0 };
    for (;;) {
      const r = await store.cleanup({ limit: 10 });
      seen.scanned += r.scanned;
      seen.rounds++;
      if (r.wrapped) break;
      expect(r.scanned).to.be.at.least(10);
    }
    expect(seen.scanned).to.be.at.least(25);
    expect(seen.rounds).to.be.at.least(2);
    for (let c = 0; c < 25; c++) {
      expect((await store.sync(`c${c}`, 4))!.type).to.equal('delta');
      expect((await store.sync(`c${c}`, 3))!.type).to.equal('full');
    }
  });

  it('cleanup() drops deltas older than deltaTtl and keeps the younger ones', async function () {
    this.timeout(20_000);
    // v1's delta is past deltaTtl when cleanup() runs, v2's is not, and the list as a whole is
    // still alive (on Redis the list expires 1.25 deltaTtl after it was last renewed): only the
    // cleanup can drop v1's alone. The margins are hundreds of ms either way; sleeps only overrun.
    const deltaTtl = 2000;
    const store = await make({ deltaTtl });
    const t0 = Date.now();
    await store.set('old', { a: 1 });
    await new Promise((r) => setTimeout(r, 1000));
    await store.set('old', { a: 2 });
    const t2 = Date.now();
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + deltaTtl + 300 - Date.now())));
    let dropped = 0;
    for (;;) {
      const r = await store.cleanup();
      dropped += r.deltasDeleted;
      if (r.wrapped) break;
    }
    // The run proves the scenario held: v2's delta was younger than deltaTtl when cleanup() ran.
    expect(Date.now() - t2, 'age of the second delta at the cleanup').to.be.below(deltaTtl);
    expect(dropped, 'deltas the cleanup dropped').to.equal(1);
    // From version 1 only v2's delta is needed, and it is kept.
    const from1 = await store.sync('old', 1);
    expect(from1!.type).to.equal('delta');
    expect((await store.get('old'))!.context).to.deep.equal({ a: 2 });
  });

  it('runs the cleaner periodically, with an interval that changes while it runs', async () => {
    const errors: unknown[] = [];
    const store = await make({ onCleanupError: (e) => errors.push(e) });
    const stats = () => (store as unknown as { stats(): { cleaner: { runs: number } } }).stats().cleaner;
    store.startCleaner(60_000);
    expect(stats().runs).to.equal(0);
    store.setCleanupInterval(20);
    await waitUntil(() => stats().runs >= 3, 'three cleaner runs', 5000);
    store.setCleanupInterval(60_000);
    const runs = stats().runs;
    // Another store's cleaner, still every 20 ms, runs five times: time enough for this one to
    // have run as often had its interval not changed (one run already under way may end).
    const control = await make();
    const controlRuns = () => (control as unknown as { stats(): { cleaner: { runs: number } } }).stats().cleaner.runs;
    control.startCleaner(20);
    await waitUntil(() => controlRuns() >= 5, "the other cleaner's five runs", 10_000);
    control.stopCleaner();
    expect(stats().runs).to.be.at.most(runs + 1);
    store.stopCleaner();
    expect(errors).to.deep.equal([]);
    await expectCode(
      Promise.resolve().then(() => store.setCleanupInterval(0)),
      'LC_STORE_INVALID_ARGUMENT',
    );
  });

  it("an interval of 2^31 ms or more (past what Node's timers take) waits that long: no run meanwhile", async () => {
    const cleanerRuns = (s: unknown) => (s as { stats(): { cleaner: { runs: number } } }).stats().cleaner.runs;
    const made = await make({ cleanupInterval: 2 ** 31 });
    const started = await make();
    started.startCleaner(2 ** 31);
    const changed = await make();
    changed.startCleaner(60_000);
    changed.setCleanupInterval(3 * 2 ** 31);
    // Another store's cleaner, every 20 ms, runs five times: time enough for theirs to have run.
    const control = await make();
    control.startCleaner(20);
    await waitUntil(() => cleanerRuns(control) >= 5, "the other cleaner's five runs", 10_000);
    control.stopCleaner();
    expect([made, started, changed].map(cleanerRuns)).to.deep.equal([0, 0, 0]);
    for (const s of [made, started, changed]) s.stopCleaner();
  });
}

/** export() and restore() through the callback and provider. */
export function exportRestoreTests(make: StoreFactory): void {
  it('exports through the callback and restores through the provider, keeping the version', async () => {
    const exported: unknown[] = [];
    const saved = new Map<string, { context: Record<string, unknown>; version: number }>();
    const store = await make({
      exportCallback: (c) => {
        exported.push(c);
        saved.set(c.id, { context: c.context, version: c.version });
      },
      restoreProvider: (id) => saved.get(id) ?? null,
    });
    await store.set('x', { a: 1 });
    await store.update('x', { b: { c: {} } });
    const rec = await store.export('x');
    expect(exported).to.deep.equal([rec]);
    expect(rec).to.deep.include({ id: 'x', version: 2, context: { a: 1, b: { c: {} } } });
    saved.set('x', { context: { restored: true }, version: 42 });
    await store.set('x', { newer: 1 });
    const restored = await store.restore('x');
    expect(restored).to.deep.include({ id: 'x', version: 42, context: { restored: true } });
    expect(await store.get('x')).to.deep.include({
      version: 42,
      context: { restored: true },
      incarnation: restored.incarnation,
    });
    // A restored context is another incarnation: a copy of the one before gets it whole.
    expect(restored.incarnation).to.be.a('string').and.not.equal(rec.incarnation);
    expect((await store.sync('x', 42, rec.incarnation))!.type).to.equal('full');
    expect((await store.sync('x', 2))!.type).to.equal('full');
    expect((await store.sync('x', 41))!.type).to.equal('full');
    expect((await store.sync('x', 42))!.type).to.equal('no_change');
    await store.update('x', { more: 1 });
    expect(await store.sync('x', 42)).to.deep.include({
      type: 'delta',
      version: 43,
      delta: { more: { action: 'added', value: 1 } },
    });
    await store.apply({ obj_id: 'x', obj: { bus: 1 }, seq: 0 });
    expect((await store.get('x'))!.context).to.deep.equal({ restored: true, more: 1, bus: 1 });
    await expectCode(store.export('none'), 'LC_STORE_NOT_FOUND');
    await expectCode(store.restore('none'), 'LC_STORE_NOT_FOUND');
  });

  it('restores a copy moved from another store with its updated_at and incarnation', async () => {
    const from = await make();
    await from.set('m', { a: 1, n: { x: [1, 2] } });
    await from.update('m', { b: 2 });
    const original = (await from.get('m'))!;
    const copy = structuredClone(original);
    const to = await make({ restoreProvider: (id) => (id === 'm' ? copy : null) });
    const restored = await to.restore('m');
    expect(restored.incarnation).to.equal(original.incarnation);
    expect(restored.updated_at).to.equal(original.updated_at);
    expect(await to.get('m')).to.deep.equal(original);
    // The copy is the same context: a client of the original at its version is current.
    expect((await to.sync('m', original.version, original.incarnation))!.type).to.equal('no_change');
    expect((await to.sync('m', original.version - 1, original.incarnation))!.type).to.equal('full');
    const bad = await make({ restoreProvider: () => ({ context: {}, version: 1, incarnation: 7 }) as never });
    await expectCode(bad.restore('m'), 'LC_STORE_RESTORE_FAILED');
  });

  it('refuses a restored context whose field names are not well-formed Unicode, or whose routing key is not text', async () => {
    const given = new Map<string, unknown>([
      ['lone', { context: { '\ud800': 1, '\udc00': 2, ok: 3 }, version: 1 }],
      ['rkey', { context: {}, version: 1, rkey: { a: 1 } }],
    ]);
    const store = await make({ restoreProvider: (id) => (given.get(id) ?? null) as never });
    const lone = await expectCode(store.restore('lone'), 'LC_STORE_RESTORE_FAILED');
    expect(lone.message).to.match(/field name .* must be well-formed Unicode/);
    const rkey = await expectCode(store.restore('rkey'), 'LC_STORE_RESTORE_FAILED');
    expect(rkey.message).to.match(/a routing key that is not text/);
    expect(await store.get('lone')).to.equal(null);
    expect(await store.get('rkey')).to.equal(null);
  });

  it('reports what is not configured or fails with stable codes', async () => {
    const bare = await make();
    await bare.set('x', { a: 1 });
    await expectCode(bare.export('x'), 'LC_STORE_NOT_CONFIGURED');
    await expectCode(bare.restore('x'), 'LC_STORE_NOT_CONFIGURED');
    const failing = await make({
      exportCallback: () => Promise.reject(new Error('disk full')),
      restoreProvider: (id) =>
        id === 'bad' ? ({ context: {}, version: -3 } as never) : Promise.reject(new Error('db down')),
    });
    await failing.set('x', { a: 1 });
    const e = await expectCode(failing.export('x'), 'LC_STORE_EXPORT_FAILED');
    expect((e.cause as Error).message).to.equal('disk full');
    await expectCode(failing.restore('x'), 'LC_STORE_RESTORE_FAILED');
    await expectCode(failing.restore('bad'), 'LC_STORE_RESTORE_FAILED');
    expect((await failing.get('x'))!.context).to.deep.equal({ a: 1 });
  });
}
