/**
 * The direct writes of the Redis store as write.lua takes them: the ops asked for (DirectOp), the
 * write each group of them makes (WriteSpec: merges made here from the fields known, a set worked
 * out as changes from a context known whole, or fields written whole), and write.lua's arguments.
 */
import type { RedisClient } from '../internal/cluster.js';
import {
  ABSENT_VALUE,
  forField,
  freezeBatch,
  freshObjects,
  mergeField,
  ownCopy,
  replaceChanges,
  type FreshObjects,
} from './field-changes.js';
import { changesText, type FieldChange } from './delta.js';
import { encodeValue } from './json.js';
import type { KnownContext, KnownContexts, KnownField } from './known-contexts.js';
import { ttlFor, type ResolvedStoreOptions } from './options.js';
import { type ContextKeys, type PublishMode, publishArg } from './redis-keys.js';
import { storedValue, valueText } from './redis-replies.js';
import type { ApplyResult } from './types.js';

/**
 * A direct write or delete asked for, waiting for its turn: those of one context go to Redis in the
 * order asked (see RedisWrites).
 */
export type DirectOp =
  | {
      kind: 'merge';
      partial: Record<string, unknown>;
      attempts: number;
      resolve: (r: ApplyResult) => void;
      reject: (err: unknown) => void;
    }
  | {
      kind: 'set';
      context: Record<string, unknown>;
      spec?: WriteSpec;
      resolve: (r: ApplyResult) => void;
      reject: (err: unknown) => void;
    }
  | { kind: 'patch'; pairs: string[]; resolve: (r: ApplyResult) => void; reject: (err: unknown) => void }
  | { kind: 'delete'; resolve: (removed: boolean) => void; reject: (err: unknown) => void }
  /** Bus messages of a context with direct writes asked for before them: apply.lua's arguments after its keys. */
  | { kind: 'apply'; args: Array<string | number>; resolve: (reply: number[]) => void; reject: (err: unknown) => void };

/** What write.lua answers for one write. */
export interface WriteReply {
  /**
   * Version and changed (1 or 0) per version asked for: one pair, or one per `versions` of a
   * 'merge'; -1 when its check failed, -2 when it was not tried (a check before it failed).
   */
  replies: number[];
  /** The context's incarnation after the call. */
  incarnation: string;
}

/** One write of a write.lua call (write.lua tells the modes apart), and what to do with its reply. */
export interface WriteSpec {
  mode: 'set' | 'patch' | 'merge' | 'mergeorset';
  checks: string[];
  pairs: string[];
  /** 'merge' / 'mergeorset': the changes of each version it makes, as JSON (see changesText()). */
  versions: string[];
  /**
   * 'merge' / 'mergeorset' made from a context whose stamp and status are known, at `version`:
   * sent ready (see write.lua's 'rmerge'), the values stamped and the records made here.
   */
  ready?: { stamp: string; status: string; version: number };
  /** The ops it carries, in order. */
  ops: DirectOp[];
  /** Settles its ops from its reply; false when its check failed (the ops are then not settled). */
  done: (reply: WriteReply) => boolean;
}

/** A merging update waiting for its turn. */
export type MergeOp = Extract<DirectOp, { kind: 'merge' }>;
/** A set() waiting for its turn. */
export type SetOp = Extract<DirectOp, { kind: 'set' }>;
/** A write of whole fields waiting for its turn. */
export type PatchOp = Extract<DirectOp, { kind: 'patch' }>;

/**
 * The write of a group of merging updates: made one on top of the other from the fields as the
 * store knows them (read first, with the version they are at, when it does not), each recording
 * only the paths it changed; the write checks that version and writes each field's last value
 * once. An update that cannot be merged fails alone. Null when none is left. `state`: the
 * context's state hash, where the fields are read; `contexts`: what the store knows of them.
 */
export async function mergeSpec(
  redis: RedisClient,
  state: string,
  contexts: KnownContexts,
  id: string,
  group: MergeOp[],
): Promise<WriteSpec | null> {
  const fields = [...new Set(group.flatMap(({ partial }) => Object.keys(partial)))];
  let start = group[0]!.attempts === 0 ? contexts.use(id) : undefined;
  if (start === undefined || !fields.every((key) => start!.complete || start!.fields.has(key))) {
    // The names as one list, never spread: an update may name tens of thousands of fields.
    const olds = (await redis.call('hmget', [state, '#v', '#in', ...fields.map((key) => `.${key}`)])) as Array<
      string | null
    >;
    const at = { version: Number(olds[0] ?? 0), incarnation: olds[1] ?? '' };
    start = contexts.remember(
      id,
      fields.map((key, i) => [key, { text: valueText(olds[i + 2] ?? null) ?? '' }]),
      at,
    );
  }
  const known = start;
  // The objects the merges make are changed in place by the ones after them; should a merge
  // fail, they go again each on its own copies, and the one that failed fails alone.
  const { ready, versions, written, current } =
    mergeGroup(id, known, fields, group, freshObjects()) ?? mergeGroup(id, known, fields, group)!;
  if (ready.length === 0) return null;
  const pairs: string[] = [];
  const wrote: Array<[string, KnownField]> = [];
  for (const key of written) {
    const value = current.get(key);
    const text = encodeValue(value)!;
    pairs.push(`.${key}`, text);
    wrote.push([key, { text, value }]);
  }
  return {
    mode: 'merge',
    checks: versionChecks(known),
    pairs,
    versions,
    ready: readyAt(known),
    ops: ready,
    done: ({ replies, incarnation }) => {
      if (replies[0] === -1) return false;
      contexts.remember(id, wrote, {
        version: replies[replies.length - 2]!,
        incarnation,
        before: replies[0]! - replies[1]!,
      });
      for (const [w, op] of ready.entries())
        op.resolve({ id, changed: replies[2 * w + 1] === 1, version: replies[2 * w]! });
      return true;
    },
  };
}

/**
 * The write of a set(). Of a context the store knows whole, the changes are worked out here from
 * the known values (only what changed is recorded, at the paths that changed) and written with a
 * check that the context is still at the known version; if it is not, write.lua does it as a
 * plain 'set' in the same place ('mergeorset'). Otherwise a plain 'set'.
 */
export function setSpec(contexts: KnownContexts, id: string, op: SetOp): WriteSpec {
  const known = contexts.use(id);
  const context = op.context;
  const pairs: string[] = [];
  const wrote: Array<[string, KnownField]> = [];
  const done = ({ replies, incarnation }: WriteReply): boolean => {
    const [version, changed] = replies as [number, number];
    // Either way the context now holds these fields and no other.
    contexts.remember(id, wrote, { version, incarnation, before: version - changed }, true);
    op.resolve({ id, changed: changed === 1, version });
    return true;
  };
  if (known === undefined || !known.complete) {
    for (const key of Object.keys(context)) {
      const value = forField(key, () => ownCopy(context[key]));
      if (value === undefined) continue;
      const text = encodeValue(value)!;
      pairs.push(`.${key}`, text);
      wrote.push([key, { text, value }]);
    }
    return { mode: 'set', checks: [], pairs, versions: [], ops: [op], done };
  }
  const changes: FieldChange[] = [];
  for (const key of Object.keys(context)) {
    const f = known.fields.get(key);
    const old = f === undefined || f.text === '' ? ABSENT_VALUE : (f.value ??= storedValue(id, key, f.text));
    // A value JSON drops removes the field, as when it is not given (its removal is recorded here).
    const value = replaceChanges(key, old, context[key], changes);
    if (value === ABSENT_VALUE && old === ABSENT_VALUE) continue;
    const text = value === ABSENT_VALUE ? '' : value === old ? f!.text : encodeValue(value)!;
    pairs.push(`.${key}`, text);
    wrote.push([key, text === '' ? { text } : { text, value }]);
  }
  for (const [key, f] of known.fields) {
    // Given (an own key JSON reads: an enumerable one), or not there already.
    if (Object.prototype.propertyIsEnumerable.call(context, key) || f.text === '') continue;
    changes.push({ k: key, o: (f.value ??= storedValue(id, key, f.text)) });
    pairs.push(`.${key}`, '');
    wrote.push([key, { text: '' }]);
  }
  return {
    mode: 'mergeorset',
    checks: versionChecks(known),
    pairs,
    versions: [changesText(changes)],
    ready: readyAt(known),
    ops: [op],
    done,
  };
}

/** The write of fields whole (assign(), or an update() without objects to merge into). */
export function patchSpec(contexts: KnownContexts, id: string, op: PatchOp): WriteSpec {
  const pairs = op.pairs;
  return {
    mode: 'patch',
    checks: [],
    pairs,
    versions: [],
    ops: [op],
    done: ({ replies, incarnation }) => {
      const [version, changed] = replies as [number, number];
      const wrote: Array<[string, KnownField]> = [];
      for (let i = 0; i < pairs.length; i += 2) wrote.push([pairs[i]!.slice(1), { text: pairs[i + 1]! }]);
      contexts.remember(id, wrote, { version, incarnation, before: version - changed });
      op.resolve({ id, changed: changed === 1, version });
      return true;
    },
  };
}

/** write.lua's keys and arguments for the writes of one call (see its header). */
export function writeArgs(
  k: ContextKeys,
  o: ResolvedStoreOptions,
  publish: PublishMode,
  specs: readonly WriteSpec[],
): Array<string | number> {
  const now = Date.now();
  const args: Array<string | number> = [
    k.state,
    k.deltas,
    now,
    ttlFor(o, false),
    ttlFor(o, true),
    o.deltaTtl ?? 0,
    o.deltaThreshold,
    publishArg(publish, k.channel),
  ];
  for (const w of specs) {
    const r = w.ready;
    if (r === undefined) {
      args.push(w.mode, w.checks.length / 2, w.pairs.length / 2);
      for (const a of w.checks) args.push(a);
      for (const a of w.pairs) args.push(a);
      if (w.mode === 'merge' || w.mode === 'mergeorset') args.push(w.versions.length, ...w.versions);
      continue;
    }
    // Ready: the values as Redis keeps them ('' removes: the stamp alone) and the records whole,
    // as write.lua would make them.
    args.push(`r${w.mode}`, w.checks.length / 2 + 2, w.pairs.length / 2);
    for (const a of w.checks) args.push(a);
    args.push('#hs', r.stamp, '#st', r.status);
    for (let i = 0; i < w.pairs.length; i += 2) args.push(w.pairs[i]!, r.stamp + w.pairs[i + 1]!);
    args.push(w.versions.length);
    const tail = r.status === '' ? ']}' : `],"s":"${r.status}"}`;
    let version = r.version;
    for (const items of w.versions) args.push(items === '' ? '' : `{"v":${++version},"t":${now},"c":[${items}${tail}`);
  }
  return args;
}

/**
 * Merging updates made one on top of the other from the fields known: the updates merged, the
 * items of each one's record, the fields written and their last values. With `fresh` (see
 * mergeField()) the objects made are changed in place by the later merges and frozen at the end,
 * and null is returned when a merge throws; without, an update that throws is rejected alone.
 */
function mergeGroup(
  id: string,
  known: KnownContext,
  fields: readonly string[],
  group: MergeOp[],
  fresh?: FreshObjects,
): { ready: typeof group; versions: string[]; written: Set<string>; current: Map<string, unknown> } | null {
  const current = new Map<string, unknown>();
  for (const key of fields) {
    // Not among the fields of a context known whole: it has none of that name.
    const f = known.fields.get(key);
    // Parsed into a value of the store's own: the merges share what they keep of it.
    if (f !== undefined && f.text !== '') current.set(key, (f.value ??= storedValue(id, key, f.text)));
  }
  const ready: typeof group = [];
  const versions: string[] = [];
  const written = new Set<string>();
  for (const op of group) {
    const staged = new Map<string, unknown>();
    const changes: FieldChange[] = [];
    try {
      for (const key of Object.keys(op.partial)) {
        staged.set(
          key,
          mergeField(key, current.has(key) ? current.get(key) : ABSENT_VALUE, op.partial[key], changes, fresh),
        );
      }
      versions.push(changesText(changes));
    } catch (err) {
      if (fresh !== undefined) return null;
      op.reject(err);
      continue;
    }
    for (const [key, value] of staged) {
      current.set(key, value);
      written.add(key);
    }
    ready.push(op);
  }
  if (fresh !== undefined) for (const key of written) current.set(key, freezeBatch(current.get(key), fresh));
  return { ready, versions, written, current };
}

/** How a merge made from what is known of a context is sent ready (see WriteSpec.ready); undefined when it cannot be. */
function readyAt(known: KnownContext): WriteSpec['ready'] {
  if (known.stamp === undefined || known.status === undefined || !(known.version > 0)) return undefined;
  return { stamp: known.stamp, status: known.status, version: known.version };
}

/** The checks of a write made from what is known of a context: its version and incarnation. */
function versionChecks(known: KnownContext): string[] {
  return ['#v', known.version > 0 ? String(known.version) : '', '#in', known.incarnation];
}

/** The `.field`, canonical text pairs of a write of whole fields (what JSON drops is left out). */
export function fieldPairs(fields: Record<string, unknown>): string[] {
  const pairs: string[] = [];
  for (const key of Object.keys(fields)) {
    const text = forField(key, () => encodeValue(fields[key]));
    if (text !== undefined) pairs.push(`.${key}`, text);
  }
  return pairs;
}
