/**
 * The Redis store's walks over its contexts, by SCAN of their state keys: list() pages, and
 * cleanup() steps that resume where the one before stopped. On a cluster the walk goes through
 * every master in turn (its cursor says which), and what it reads or prunes of the ids a master
 * gave goes to that master in one pipeline.
 */
import { CollectorError } from '../internal/errors.js';
import { nextCursor, type RedisClient, readCursor, walkable } from '../internal/cluster.js';
import { escapeGlob, globToRegExp } from './glob.js';
import { ttlFor, type ResolvedStoreOptions } from './options.js';
import { contextKeys } from './redis-keys.js';
import { toNumber, toSeconds, toStatus } from './redis-replies.js';
import { STORE_SCRIPTS } from './store-scripts.js';
import type { CleanupOptions, CleanupResult, ContextSummary, ListOptions, ListPage } from './types.js';

/** What the scanner needs of its store. */
export interface RedisScannerOptions {
  redis: RedisClient;
  prefix: string;
  /** COUNT hint of each SCAN. */
  scanCount: number;
  options: ResolvedStoreOptions;
}

/** list() and cleanup() of a Redis store (their arguments checked by the store). */
export class RedisScanner {
  private readonly redis: RedisClient;
  private readonly prefix: string;
  private readonly scanCount: number;
  private readonly options: ResolvedStoreOptions;
  /** Where the next cleanup() goes on from. */
  private cleanupCursor = '0';

  constructor(o: RedisScannerOptions) {
    this.redis = o.redis;
    this.prefix = o.prefix;
    this.scanCount = o.scanCount;
    this.options = o.options;
  }

  /** A page of the contexts, from `options.cursor` on. */
  async list(options: ListOptions): Promise<ListPage> {
    const limit = options.limit ?? 100;
    const re = options.rkey === undefined ? null : globToRegExp(options.rkey);
    const items: ContextSummary[] = [];
    let cursor = options.cursor ?? '0';
    // What a page gave: SCAN's digits, on a cluster after the master's name (see nextCursor()).
    if (!/^(?:[^/]+\/)?\d+$/.test(cursor))
      throw new CollectorError(
        'LC_STORE_INVALID_ARGUMENT',
        `cursor ${JSON.stringify(cursor.slice(0, 40))} is not one a page gave`,
      );
    do {
      const [next, ids, node] = await this.scanIds(cursor);
      cursor = next;
      if (ids.length === 0) continue;
      const pipe = node.pipeline();
      for (const id of ids) pipe.hmget(contextKeys(this.prefix, id).state, '#v', '#st', '#rk', '#ba', '#fa', '#ua');
      const rows = (await pipe.exec()) ?? [];
      ids.forEach((id, i) => {
        const [err, m] = rows[i] ?? [null, null];
        if (err !== null || !Array.isArray(m)) return;
        const version = Number(m[0] ?? 0);
        if (!(version > 0)) return;
        const status = toStatus(m[1] as string | null);
        const rkey = (m[2] as string | null) ?? null;
        if (options.status !== undefined && status !== options.status) return;
        if (re !== null && (rkey === null || !re.test(rkey))) return;
        items.push({
          id,
          version,
          status,
          rkey,
          born_at: toNumber(m[3] as string | null),
          updated_at: toSeconds(m[5] as string | null),
          finished_at: toNumber(m[4] as string | null),
        });
      });
    } while (cursor !== '0' && items.length < limit);
    return { items, cursor: cursor === '0' ? null : cursor };
  }

  /** One step of the cleanup: prune.lua on each context scanned, from where the last step stopped. */
  async cleanup(options: CleanupOptions): Promise<CleanupResult> {
    const limit = options.limit ?? this.options.cleanupLimit;
    const o = this.options;
    const result: CleanupResult = { scanned: 0, contextsDeleted: 0, deltasDeleted: 0, wrapped: false };
    do {
      const [next, ids, node] = await this.scanIds(this.cleanupCursor, true);
      this.cleanupCursor = next;
      if (ids.length > 0) {
        const now = Date.now();
        const calls = ids.map((id) => {
          const k = contextKeys(this.prefix, id);
          return [k.state, k.deltas, now, o.deltaTtl ?? 0, o.deltaThreshold, ttlFor(o, false), ttlFor(o, true)];
        });
        for (const [err, r] of await STORE_SCRIPTS.prune.runMany(node, calls)) {
          if (err !== null) throw err;
          const [deleted, dropped] = r as [number, number];
          result.contextsDeleted += deleted;
          result.deltasDeleted += dropped;
        }
        result.scanned += ids.length;
      }
      if (next === '0') result.wrapped = true;
    } while (!result.wrapped && result.scanned < limit);
    return result;
  }

  /**
   * One SCAN step over the contexts' meta keys: the next cursor, the ids found, and the client of
   * the master that has them.
   */
  private async scanIds(cursor: string, restart = false): Promise<[string, string[], RedisClient]> {
    const head = `${this.prefix}ctx:{`;
    const nodes = await walkable(this.redis);
    // A cleanup whose master is gone starts over; a list() page cannot go on where it was.
    const at = readCursor(this.redis, nodes, cursor) ?? (restart ? { node: 0, scan: '0' } : null);
    if (at === null)
      throw new Error(`the cursor ${JSON.stringify(cursor.slice(0, 80))} names no master of the cluster now`);
    const node = nodes[at.node]!.node;
    const [scanned, keys] = await node.scan(at.scan, 'MATCH', `${escapeGlob(head)}*}`, 'COUNT', this.scanCount);
    const next = nextCursor(this.redis, nodes, at.node, scanned);
    const ids: string[] = [];
    // The state hash is the key that ends at the hash tag; the deltas list ends in :d.
    for (const key of keys) if (key.startsWith(head) && key.endsWith('}')) ids.push(key.slice(head.length, -1));
    return [next, ids, node];
  }
}
