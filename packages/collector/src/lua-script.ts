import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
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
 * with a CollectorError LC_UNAVAILABLE naming the script and where Redis is; other failures (the
 * script's own errors) as ioredis gives them, AUTH arguments taken out of both.
 *
 * `T` is the reply as ioredis gives it.
 */
export class LuaScript<T> {
  /** SHA1 of the text: the name EVALSHA knows it by. */
  readonly sha: string;

  constructor(
    readonly lua: string,
    readonly numberOfKeys: number,
    /** What errors call it ("lock acquire", …). */
    readonly name = 'Redis script',
  ) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  /** Runs the script on `redis`: its keys first, then its arguments. */
  run(redis: Redis, ...keysAndArgs: ScriptArg[]): Promise<T> {
    return trackCall(redis, this.send(redis, keysAndArgs));
  }

  private async send(redis: Redis, keysAndArgs: ScriptArg[]): Promise<T> {
    try {
      try {
        return (await redis.evalsha(this.sha, this.numberOfKeys, ...keysAndArgs)) as T;
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
        return (await redis.eval(this.lua, this.numberOfKeys, ...keysAndArgs)) as T;
      }
    } catch (err) {
      // A refused login fails every waiting command with the AUTH command's arguments attached.
      throw unavailable(this.name, err, redis);
    }
  }
}
