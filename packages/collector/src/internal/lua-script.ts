import { createHash } from 'node:crypto';
import { masters, type RedisClient } from './cluster.js';
import { trackCall, unavailable } from './redis-client.js';

/** What a script call takes after its keys: ioredis writes numbers as decimal text. */
export type ScriptArg = string | number;

/**
 * One Lua script run by EVALSHA. A server that does not know it yet (a new or restarted server,
 * SCRIPT FLUSH) answers NOSCRIPT, and the call is sent again with the text (EVAL, which also caches
 * it there); until then the call counts as under way (closing the client waits for it: see
 * trackCall()). Used where a call is hot (locks, the allocator): an ioredis `defineCommand` command
 * wraps every call in a command subclass with closures of its own, which cost about 2 µs per call
 * more than this on the project's machine, measured side by side.
 *
 * A call that fails because Redis cannot be reached or refuses for now (see unreachable()) rejects
 * with a CollectorError LC_REDIS_UNAVAILABLE naming the script and where Redis is; other failures (the
 * script's own errors) as ioredis gives them, AUTH arguments taken out of both.
 *
 * `T` is the reply as ioredis gives it.
 */
export class LuaScript<T> {
  /** SHA1 of the text: the name EVALSHA knows it by. */
  readonly sha: string;

  constructor(
    readonly lua: string,
    /** How many of the arguments are keys; null: the first argument of each call says it. */
    readonly numberOfKeys: number | null,
    /** What errors call it ("lock acquire", …). */
    readonly name = 'Redis script',
  ) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  /** Runs the script on `redis`: its keys first, then its arguments. */
  run(redis: RedisClient, ...keysAndArgs: ScriptArg[]): Promise<T> {
    return trackCall(redis, this.send(redis, keysAndArgs));
  }

  /**
   * {@link run} with the keys and arguments in one array: for lists of any length (spreading a
   * list into a call puts each element on the stack, and some tens of thousands overflow it).
   */
  runList(redis: RedisClient, keysAndArgs: ScriptArg[]): Promise<T> {
    return trackCall(redis, this.send(redis, keysAndArgs));
  }

  /**
   * Runs the script on `redis` as {@link run} does, but rejects with the error as ioredis gives it
   * (for callers that read failures themselves).
   */
  call(redis: RedisClient, ...keysAndArgs: ScriptArg[]): Promise<T> {
    return trackCall(redis, this.eval(redis, keysAndArgs));
  }

  /** {@link call} with the keys and arguments in one array, of any length (see {@link runList}). */
  callList(redis: RedisClient, keysAndArgs: ScriptArg[]): Promise<T> {
    return trackCall(redis, this.eval(redis, keysAndArgs));
  }

  /**
   * Runs the script once per argument list, all in one pipeline; the replies come in order as
   * ioredis gives a pipeline's: `[error, reply]`. Calls answered NOSCRIPT are sent again with the text.
   */
  runMany(redis: RedisClient, calls: readonly ScriptArg[][]): Promise<Array<[Error | null, T]>> {
    return trackCall(redis, this.pipelined(redis, calls));
  }

  private async pipelined(redis: RedisClient, calls: readonly ScriptArg[][]): Promise<Array<[Error | null, T]>> {
    const pipe = redis.pipeline();
    for (const args of calls) this.queue(pipe, args);
    const got = ((await pipe.exec()) ?? []) as Array<[Error | null, T]>;
    const missing = [...got.keys()].filter((i) => got[i]![0]?.message.startsWith('NOSCRIPT'));
    if (missing.length === 0) return got;
    // Loaded where the calls went: SCRIPT LOAD has no key, and a Cluster sends it to a node picked
    // at random; so on a cluster, to every master (a single Redis is its own one master). A master
    // that cannot take it (down) fails only the calls sent to it, when they are sent again.
    await Promise.allSettled(masters(redis).map((node) => node.script('LOAD', this.lua)));
    const again = redis.pipeline();
    for (const i of missing) this.queue(again, calls[i]!);
    const retried = ((await again.exec()) ?? []) as Array<[Error | null, T]>;
    for (const [j, i] of missing.entries()) got[i] = retried[j]!;
    return got;
  }

  /** Adds a call to `pipe`, its list as one argument, never spread (see runList()). */
  private queue(pipe: object, keysAndArgs: readonly ScriptArg[]): void {
    (pipe as { evalsha(sha: string, list: readonly ScriptArg[]): unknown }).evalsha(
      this.sha,
      this.withCount(keysAndArgs),
    );
  }

  private withCount(keysAndArgs: readonly ScriptArg[]): [number, ...ScriptArg[]] {
    return (this.numberOfKeys === null ? keysAndArgs : [this.numberOfKeys, ...keysAndArgs]) as [number, ...ScriptArg[]];
  }

  private async eval(redis: RedisClient, keysAndArgs: ScriptArg[]): Promise<T> {
    const n = this.numberOfKeys;
    const script = redis as unknown as Record<
      'evalsha' | 'eval',
      (this: RedisClient, ...args: Array<ScriptArg | ScriptArg[]>) => Promise<unknown>
    >;
    // The list as one argument, never spread (see runList()): ioredis flattens it into the command.
    try {
      return (await (n === null
        ? script.evalsha.call(redis, this.sha, keysAndArgs)
        : script.evalsha.call(redis, this.sha, n, keysAndArgs))) as T;
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return (await (n === null
        ? script.eval.call(redis, this.lua, keysAndArgs)
        : script.eval.call(redis, this.lua, n, keysAndArgs))) as T;
    }
  }

  private async send(redis: RedisClient, keysAndArgs: ScriptArg[]): Promise<T> {
    try {
      return await this.eval(redis, keysAndArgs);
    } catch (err) {
      // A refused login fails every waiting command with the AUTH command's arguments attached.
      throw unavailable(this.name, err, redis);
    }
  }
}
