/**
 * The behaviour both stores share, run against each (apply, sync, direct writes, retention, …):
 * one file per concern beside this one, each registering its tests under the describe() here.
 */
import { applyManyTests, applyTests } from './apply.js';
import type { StoreFactory } from './helpers.js';
import { lifecycleTests } from './lifecycle.js';
import { listArgumentTests, listTests } from './list.js';
import { numberTests } from './numbers.js';
import { exportRestoreTests, retentionTests } from './retention.js';
import { syncTests } from './sync.js';
import { watchTests } from './watch.js';
import { writeOrderTests } from './writes-order.js';
import { writeValueTests } from './writes.js';

export type { StoreFactory } from './helpers.js';

/** The behaviour both stores share, run against the stores `make` makes. */
export function storeSuite(make: StoreFactory): void {
  describe('apply()', () => applyTests(make));
  describe('applyMany()', () => applyManyTests(make));
  describe('direct writes', () => {
    writeValueTests(make);
    writeOrderTests(make);
  });
  describe('numbers as Python writes them', () => numberTests(make));
  describe('sync()', () => syncTests(make));
  describe('retention and cleanup', () => retentionTests(make));
  describe('export and restore', () => exportRestoreTests(make));
  describe('list()', () => listTests(make));
  describe('arguments of list() and cleanup()', () => listArgumentTests(make));
  describe('watch()', () => watchTests(make));
  describe('lifecycle', () => lifecycleTests(make));
}
