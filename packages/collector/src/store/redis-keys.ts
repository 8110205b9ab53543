/**
 * The keys and channel of a context in the Redis store (the layout: see RedisContextStore), all
 * under the store's prefix.
 */

/** The keys of one context; both share the `{id}` hash tag, so each script touches one slot. */
export interface ContextKeys {
  /** Hash: '.'<field> → '<seq>:<JSON>' (a tombstone '<seq>:'), '#v', '#st', … the context's own. */
  state: string;
  /** List of delta records, oldest first. */
  deltas: string;
  /** Pub/sub channel of its changes. */
  channel: string;
}

/** How the scripts publish a context's changes: '' not at all; 'SPUBLISH' (sharded) on a cluster. */
export type PublishMode = '' | 'PUBLISH' | 'SPUBLISH';

/** What a script takes to publish on `channel`: 'P:' or 'S:' (sharded) then the channel; '' not to. */
export function publishArg(mode: PublishMode, channel: string): string {
  return mode === '' ? '' : `${mode === 'SPUBLISH' ? 'S' : 'P'}:${channel}`;
}

/** The keys and channel of the context `id` of the store at `prefix`. */
export function contextKeys(prefix: string, id: string): ContextKeys {
  const state = `${prefix}ctx:{${id}}`;
  return { state, deltas: `${state}:d`, channel: `${state}:changes` };
}
