import { isCluster, partTag, type RedisClient, type RedisOption, slotOf } from '../internal/cluster.js';
import { isPlainObject, setOwn } from '@contexture/context/protocol';
import { checkOptionNames, checkPositive, checkText as text, hashTagRefusal } from '../internal/checks.js';
import { CollectorError } from '../internal/errors.js';
import { loadScripts, script } from '../internal/scripts.js';
import { closeClient, reaching, redisAddress, resolveRedis, trackCall } from '../internal/redis-client.js';
import { printable } from '../internal/printable.js';
import { ShardCount } from '../internal/shard-count.js';

/** The registry's Lua scripts (`src/lua/registry/`); their headers say what they take and return. */
const SCRIPTS = loadScripts('registry', {
  put: script<[written: number, now: number]>(2, 'registry put'),
  drop: script<number>(2, 'registry drop'),
});

/** What an entry says of itself: who and where it is. Everything but `id` is optional. */
export interface RegistryEntry {
  /** Unique within the namespace (a handler's uuid, a backend's `host:port`, …). */
  id: string;
  /** What it is: `handler`, `collector`, `backend`, … */
  kind?: string;
  name?: string;
  host?: string;
  pid?: number;
  /** Where it serves, for entries that do (a backend's base URL). Passwords are the caller's to leave out. */
  url?: string;
  /** Anything else it wants known (JSON). */
  info?: Record<string, unknown>;
}

/**
 * Numbers an entry reports: in-flight requests, average latencies, and any others. Well-known
 * names: `inFlight`, `avgLatencyMs`, `inFlightAvgLatencyMs`.
 */
export type RegistryMetrics = Record<string, number>;

/** An entry as `list()` and `get()` return it. Times are ms on the Redis clock. */
export interface RegistryRecord extends RegistryEntry {
  metrics: RegistryMetrics;
  /** Heard from within `heartbeatTimeout` and not marked unhealthy. */
  healthy: boolean;
  /** When it (last) registered. */
  registeredAt: number;
  lastHeartbeat: number;
  /** ms since the last heartbeat. */
  age: number;
  /** Set by `markUnhealthy()`: until when (ms; `Infinity`: until `markHealthy()`), or null. */
  markedUnhealthyUntil: number | null;
}

/** Options of {@link Registry}. */
export interface RegistryOptions {
  /** An ioredis client, or a URL (the registry then owns its client). @default 'redis://127.0.0.1:6379' */
  redis?: RedisOption;
  /** Prefix of every key. @default 'contexture:' */
  prefix?: string;
  /** Registries of one namespace share their entries. @default 'default' */
  namespace?: string;
  /**
   * How many parts (hash slots) the namespace's entries are spread over, each entry in the part
   * its id hashes to: on a Redis Cluster a busy namespace's load then goes to several masters
   * instead of one. 1 keeps every entry in the namespace's one slot (the layout of a registry made
   * without it). Every registry of a namespace must say the same: the first to reach Redis stores
   * its number (`<prefix>registry:{<namespace>}:shards`), and a registry that says another fails
   * every call with `LC_REGISTRY_SHARDS_MISMATCH`. What stops holding across parts:
   * `list()` and `cleanupExpired()` read the parts one after the other (not one snapshot), and the
   * ages of entries of different parts are measured on the clocks of their masters. @default 1
   */
  shards?: number;
  /** An entry not heard from for this long (ms) is unhealthy. @default 15000 */
  heartbeatTimeout?: number;
  /**
   * An entry not heard from for this long (ms) is removed: its keys expire by themselves, and
   * `cleanupExpired()` takes it out of the index. At least `heartbeatTimeout`. @default 60000
   */
  expireAfter?: number;
}

/** Options of {@link Registry.list}. */
export interface RegistryListOptions {
  /** Only the healthy ones. @default false */
  healthyOnly?: boolean;
  /** Only those of this kind. */
  kind?: string;
}

export const REGISTRY_DEFAULTS = Object.freeze({
  redis: 'redis://127.0.0.1:6379',
  prefix: 'contexture:',
  namespace: 'default',
  shards: 1,
  heartbeatTimeout: 15_000,
  expireAfter: 60_000,
});

const ENTRY_KEYS = ['kind', 'name', 'host', 'url'] as const;

function invalid(message: string): CollectorError {
  return new CollectorError('LC_REGISTRY_INVALID_ARGUMENT', message);
}

const checkText = (what: string, v: unknown, max = 256): string => text('LC_REGISTRY_INVALID_ARGUMENT', what, v, max);
const checkMs = (what: string, v: unknown): number => checkPositive('LC_REGISTRY_INVALID_ARGUMENT', what, v, ' (ms)');

/** The metrics as field/value pairs for the script; throws on anything but finite numbers. */
function metricArgs(metrics: unknown): string[] {
  if (metrics === undefined) return [];
  if (!isPlainObject(metrics)) throw invalid('metrics must be an object of numbers');
  const out: string[] = [];
  for (const name of Object.keys(metrics)) {
    checkText('a metric name', name, 128);
    const v = metrics[name];
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw invalid(`metric ${JSON.stringify(name)} must be a finite number, got ${String(v)}`);
    out.push(name, String(v));
  }
  return out;
}

/** The stored description of an entry (without id and metrics). */
function describe(entry: RegistryEntry): string {
  if (!isPlainObject(entry)) throw invalid('an entry must be an object with an id');
  checkText('an entry id', entry.id);
  for (const k of Object.keys(entry))
    if (k !== 'id' && k !== 'pid' && k !== 'info' && !(ENTRY_KEYS as readonly string[]).includes(k))
      throw invalid(`unknown entry key ${JSON.stringify(k.slice(0, 60))} (extra fields go in entry.info)`);
  const d: Record<string, unknown> = {};
  for (const k of ENTRY_KEYS) {
    const v = entry[k];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v.length > 2048)
      throw invalid(`entry.${k} must be a string of at most 2048 characters`);
    d[k] = v;
  }
  if (entry.pid !== undefined) {
    if (!Number.isSafeInteger(entry.pid) || entry.pid < 0)
      throw invalid(`entry.pid must be a non-negative integer, got ${String(entry.pid)}`);
    d.pid = entry.pid;
  }
  if (entry.info !== undefined) {
    if (!isPlainObject(entry.info)) throw invalid('entry.info must be an object');
    d.info = entry.info;
  }
  let text: string;
  try {
    text = JSON.stringify(d);
  } catch (err) {
    throw new CollectorError('LC_REGISTRY_INVALID_ARGUMENT', `entry.info must be JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (text.length > 65_536) throw invalid('an entry must be at most 64 KiB as JSON');
  return text;
}

/**
 * A registry of live things (handlers, collectors, backends) in Redis, kept by heartbeats: an entry
 * not heard from within `heartbeatTimeout` is unhealthy, and after `expireAfter` it is gone. Every
 * time is on Redis' clock, so hosts with skewed clocks agree; every key expires by itself and a
 * write never drops its expiry, so a registry nobody cleans up still empties itself.
 *
 * @example
 * const registry = new Registry({ redis: 'redis://127.0.0.1:6379', heartbeatTimeout: 10_000 });
 * await registry.register({ id: 'api-1', kind: 'backend', url: 'http://10.0.0.5:8001' });
 * await registry.heartbeat('api-1', { inFlight: 3, avgLatencyMs: 12.5 });
 * const live = await registry.list({ healthyOnly: true });
 */
export class Registry implements AsyncDisposable {
  readonly redis: RedisClient;
  readonly prefix: string;
  readonly namespace: string;
  readonly heartbeatTimeout: number;
  readonly expireAfter: number;
  readonly shards: number;
  private readonly owned: boolean;
  /** Per part, the hash tag of its keys (see partTag()). */
  private readonly tags: string[];
  /** The check that the namespace's other registries say the same number of parts. */
  private readonly shardCount: ShardCount;
  private closing: Promise<void> | null = null;

  constructor(options: RegistryOptions = {}) {
    checkOptionNames('LC_REGISTRY_INVALID_ARGUMENT', 'Registry', options, Object.keys(REGISTRY_DEFAULTS));
    const o = {
      ...REGISTRY_DEFAULTS,
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    } as Required<RegistryOptions>;
    if (typeof o.prefix !== 'string') throw invalid('prefix must be a string');
    this.prefix = o.prefix;
    this.namespace = checkText('namespace', o.namespace);
    const tagRefusal = hashTagRefusal(this.prefix, 'registry', 'namespace', this.namespace);
    if (tagRefusal !== null) throw invalid(tagRefusal);
    this.shards = checkPositive('LC_REGISTRY_INVALID_ARGUMENT', 'shards', o.shards);
    if (this.shards > 1024) throw invalid(`shards must be at most 1024, got ${this.shards}`);
    this.tags = Array.from({ length: this.shards }, (_, n) => partTag(this.namespace, n));
    this.heartbeatTimeout = checkMs('heartbeatTimeout', o.heartbeatTimeout);
    this.expireAfter = checkMs('expireAfter', o.expireAfter);
    if (this.expireAfter < this.heartbeatTimeout) throw invalid('expireAfter must be at least heartbeatTimeout');
    const client = resolveRedis(o.redis, () => {});
    if (typeof client === 'string') throw invalid(client);
    this.redis = client.redis;
    this.owned = client.owned;
    const countKey = `${this.prefix}registry:{${this.tags[0]}}:shards`;
    this.shardCount = new ShardCount(
      this.redis,
      countKey,
      this.shards,
      (stored) =>
        new CollectorError(
          'LC_REGISTRY_SHARDS_MISMATCH',
          `registry namespace '${this.namespace}' is spread over ${stored} part(s) (${countKey}), this registry says shards: ${this.shards}`,
        ),
    );
  }

  /** The hash of one entry. */
  key(id: string): string {
    return `${this.prefix}registry:{${this.tags[this.shardOf(id)]}}:e:${id}`;
  }

  /** The part an entry is in: its id's hash slot, modulo the parts. */
  private shardOf(id: string): number {
    return this.shards === 1 ? 0 : slotOf(id) % this.shards;
  }

  /** The index (zset of ids by last heartbeat) of part `n`. */
  private indexOf(n: number): string {
    return `${this.prefix}registry:{${this.tags[n]}}:index`;
  }

  /** Adds an entry, or replaces it (metrics and marks included): it counts as a heartbeat. */
  async register(entry: RegistryEntry, metrics?: RegistryMetrics): Promise<void> {
    const d = describe(entry);
    await this.put('register', 'register', entry.id, d, '', metricArgs(metrics));
  }

  /**
   * The entry is alive: renews its heartbeat and expiry, and records `metrics` (merged into what it
   * reported before). False when there is no such entry (expired or unregistered: register again).
   */
  async heartbeat(id: string, metrics?: RegistryMetrics): Promise<boolean> {
    checkText('an entry id', id);
    return this.put('heartbeat', 'heartbeat', id, '', '', metricArgs(metrics));
  }

  /**
   * A heartbeat that registers the entry when it is missing and refreshes its description: what
   * keeps entries announced by messages (the collector's handler heartbeats).
   */
  async beat(entry: RegistryEntry, metrics?: RegistryMetrics): Promise<void> {
    const d = describe(entry);
    await this.put('beat', 'upsert', entry.id, d, '', metricArgs(metrics));
  }

  /** Records metrics without counting as a heartbeat; false when there is no such entry. */
  async updateMetrics(id: string, metrics: RegistryMetrics): Promise<boolean> {
    checkText('an entry id', id);
    return this.put('updateMetrics', 'metrics', id, '', '', metricArgs(metrics));
  }

  /**
   * Marks the entry unhealthy, whatever its heartbeats say, for `forMs` ms or until
   * `markHealthy()`. False when there is no such entry.
   */
  async markUnhealthy(id: string, forMs?: number): Promise<boolean> {
    checkText('an entry id', id);
    if (forMs === undefined) return this.put('markUnhealthy', 'mark', id, '', '-1', []);
    checkMs('forMs', forMs);
    // The end is computed on Redis' clock: the script stores now + forMs.
    return this.put('markUnhealthy', 'mark', id, '', `+${forMs}`, []);
  }

  /** Clears a `markUnhealthy()`; false when there is no such entry. */
  async markHealthy(id: string): Promise<boolean> {
    checkText('an entry id', id);
    return this.put('markHealthy', 'mark', id, '', '', []);
  }

  /** Removes the entry at once; false when there was none. */
  async unregister(id: string): Promise<boolean> {
    checkText('an entry id', id);
    this.checkOpen();
    return (
      (await this.reaching('unregister', () =>
        SCRIPTS.drop.call(this.redis, this.key(id), this.indexOf(this.shardOf(id)), id, ''),
      )) === 1
    );
  }

  /** One entry, or null. */
  async get(id: string): Promise<RegistryRecord | null> {
    checkText('an entry id', id);
    this.checkOpen();
    const [[, now], [, flat]] = (await this.reaching('get', () =>
      this.redis.multi().time().hgetall(this.key(id)).exec(),
    )) as [[null, [string, string]], [null, Record<string, string>]];
    return this.toRecord(id, flat, clock(now));
  }

  /** The entries, healthy ones first then by id; entries already expired are left out. */
  async list(options: RegistryListOptions = {}): Promise<RegistryRecord[]> {
    checkOptionNames('LC_REGISTRY_INVALID_ARGUMENT', 'list()', options, ['healthyOnly', 'kind']);
    if (options.healthyOnly !== undefined && typeof options.healthyOnly !== 'boolean')
      throw invalid('list(): healthyOnly must be true or false');
    if (options.kind !== undefined && typeof options.kind !== 'string') throw invalid('list(): kind must be a string');
    this.checkOpen();
    return this.reaching('list', () => this.listNow(options));
  }

  private async listNow(options: RegistryListOptions): Promise<RegistryRecord[]> {
    const out: RegistryRecord[] = [];
    for (let n = 0; n < this.shards; n++) await this.listPart(n, options, out);
    out.sort((a, b) => Number(b.healthy) - Number(a.healthy) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return out;
  }

  /** The entries of part `n`, added to `out`; each batch read with its master's clock. */
  private async listPart(n: number, options: RegistryListOptions, out: RegistryRecord[]): Promise<void> {
    const ids = await this.redis.zrange(this.indexOf(n), 0, -1);
    for (let i = 0; i < ids.length; i += 500) {
      const part = ids.slice(i, i + 500);
      const multi = this.redis.multi().time();
      for (const id of part) multi.hgetall(this.key(id));
      const replies = (await multi.exec()) ?? [];
      const now = clock(replies[0]![1] as [string, string]);
      part.forEach((id, j) => {
        const r = this.toRecord(id, replies[j + 1]![1] as Record<string, string>, now);
        if (r === null) return;
        if (options.healthyOnly === true && !r.healthy) return;
        if (options.kind !== undefined && r.kind !== options.kind) return;
        out.push(r);
      });
    }
  }

  /**
   * Takes entries not heard from within `expireAfter` (or whose keys already expired) out of the
   * registry; returns how many. Entries expire by themselves too: this keeps the index short.
   */
  async cleanupExpired(): Promise<number> {
    this.checkOpen();
    return this.reaching('cleanupExpired', () => this.cleanupNow());
  }

  private async cleanupNow(): Promise<number> {
    let removed = 0;
    for (let s = 0; s < this.shards; s++) {
      const index = this.indexOf(s);
      const ids = await this.redis.zrange(index, 0, -1);
      for (let i = 0; i < ids.length; i += 500) {
        const part = ids.slice(i, i + 500);
        const calls = part.map((id) => [this.key(id), index, id, this.expireAfter]);
        for (const [err, n] of await SCRIPTS.drop.runMany(this.redis, calls)) {
          if (err) throw err;
          removed += n as number;
        }
      }
    }
    return removed;
  }

  /** Closes the client if the registry made it. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.owned ? closeClient(this.redis) : Promise.resolve();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private checkOpen(): void {
    if (this.closing !== null) throw new CollectorError('LC_REGISTRY_CLOSED', 'the registry is closed');
  }

  /**
   * `call()`, a failure to reach Redis (or Redis refusing for now) made a CollectorError
   * `LC_REDIS_UNAVAILABLE` saying which call and where Redis is; Redis's own errors (a script's, an ACL's)
   * pass as they are. Made once the namespace is known to have this registry's number of parts
   * (see ShardCount): until then the check and the call are one call under way, which close()
   * lets end first.
   */
  private reaching<T>(what: string, call: () => Promise<T>): Promise<T> {
    return reaching(
      `registry ${what}`,
      this.redis,
      this.shardCount.ok ? call() : trackCall(this.redis, this.shardCount.check().then(call)),
    );
  }

  private async put(
    call: string,
    mode: string,
    id: string,
    description: string,
    mark: string,
    metrics: string[],
  ): Promise<boolean> {
    this.checkOpen();
    return this.reaching(call, () => this.putNow(mode, id, description, mark, metrics));
  }

  private async putNow(
    mode: string,
    id: string,
    description: string,
    mark: string,
    metrics: string[],
  ): Promise<boolean> {
    let markArg = mark;
    if (mark.startsWith('+')) {
      // A timed mark: the script has no argument for "now + n", so it is resolved here on Redis' clock
      // (on a cluster, the clock of the master that holds the entry's part: a keyless TIME goes to any
      // node, whose clock may differ).
      const [s, us] = isCluster(this.redis) ? await this.partTime(this.shardOf(id)) : await this.redis.time();
      markArg = String(Number(s) * 1000 + Math.floor(Number(us) / 1000) + Number(mark.slice(1)));
    }
    const [written] = await SCRIPTS.put.call(
      this.redis,
      this.key(id),
      this.indexOf(this.shardOf(id)),
      mode,
      id,
      this.expireAfter,
      description,
      markArg,
      ...metrics,
    );
    return written === 1;
  }

  /** TIME on the master of part `n`'s slot (a transaction goes where its key is). */
  private async partTime(n: number): Promise<[string, string]> {
    const got = await this.redis.multi().time().exists(this.indexOf(n)).exec();
    const [err, time] = got?.[0] ?? [new Error('TIME gave no answer'), null];
    if (err !== null) throw err;
    return time as [string, string];
  }

  private toRecord(id: string, flat: Record<string, string>, now: number): RegistryRecord | null {
    const hb = Number(flat.hb);
    if (!Number.isFinite(hb) || flat.hb === undefined) return null;
    let d: Record<string, unknown> = {};
    try {
      const parsed: unknown = flat.e === undefined ? {} : JSON.parse(flat.e);
      if (isPlainObject(parsed)) d = parsed;
    } catch {
      /* a description that is not JSON is left out; the entry itself stays readable */
    }
    const metrics: RegistryMetrics = {};
    for (const field of Object.keys(flat)) {
      if (!field.startsWith('m:')) continue;
      const v = Number(flat[field]);
      if (Number.isFinite(v)) setOwn(metrics, field.slice(2), v);
    }
    const down = flat.down === undefined ? null : flat.down === '-1' ? Infinity : Number(flat.down);
    const marked = down !== null && down > now;
    const age = Math.max(0, now - hb);
    const record: RegistryRecord = {
      id,
      metrics,
      healthy: !marked && age < this.heartbeatTimeout,
      registeredAt: Number(flat.reg ?? hb),
      lastHeartbeat: hb,
      age,
      markedUnhealthyUntil: marked ? down : null,
    };
    for (const k of ENTRY_KEYS) if (typeof d[k] === 'string') record[k] = d[k] as string;
    if (Number.isSafeInteger(d.pid)) record.pid = d.pid as number;
    if (isPlainObject(d.info)) record.info = d.info;
    return record;
  }
}

function clock([s, us]: [string, string]): number {
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

printable(Registry, (r) => ({
  redis: redisAddress(r.redis),
  prefix: r.prefix,
  namespace: r.namespace,
  shards: r.shards,
}));
