/**
 * Step 1 of a message's way out: **Context** → BoundedBuffer → Publisher → Transport → broker.
 * A Context turns each change of its fields into a message, serialised at once, and hands it to
 * its Handler, which queues it in its buffer (`Handler.enqueue()`).
 */
import { randomUUID } from 'node:crypto';
import { inspect, types } from 'node:util';
import { getHandler } from './config.js';
import { callerModuleName } from './default-name.js';
import { unixNow, type Entry } from './entry.js';
import { als, LazyContext } from './current.js';
import { ContextError } from './errors.js';
import { formatMessage, UNDESCRIBABLE } from './format.js';
import { Handler } from './handler.js';
import { needsLosslessWrite } from './protocol/json.js';
import { setOwn } from './protocol/own.js';
import type { Route } from './route.js';
import { fieldJson, keyJson, thrownMessage } from './serialize.js';
import { activeTrace } from './trace-context.js';

/** Something that logs each change as `<name> <id>: x = 1, y = 2`: a function, or an object with `info` (or `debug`). */
export type ChangeLogger = ((line: string) => void) | { info?: (line: string) => void; debug?: (line: string) => void };

/** Options of a {@link Context}. */
export interface ContextOptions<T extends object = Record<string, any>> {
  /** Initial fields, sent with `born`. @default {} */
  context?: Partial<T> & Record<string, unknown>;
  /** Name, and routing key unless `routingKey` is given. @default derived from the calling module's file, or the subclass name */
  name?: string;
  /** Routing key. @default the name */
  routingKey?: string;
  /** The id to use instead of a new uuid v4. */
  guid?: string;
  /** Fields kept locally and never sent: an array, a Set, any iterable of names. @default [] */
  ignore?: Iterable<string>;
  /** Send one `transient` message, never `born` or `finished`. @default false */
  transient?: boolean;
  /** Headers of this context's messages, merged over the handler's. @default {} */
  headers?: Record<string, unknown>;
  /** An existing object to wrap: its methods and getters pass through; assignments shadow it without touching it. */
  obj?: object;
  /** Also log each change as `<name> <id>: x = 1, y = 2`. */
  logger?: ChangeLogger;
  /** The handler to publish with. @default the process's handler (`configure()` / `getHandler()`) */
  handler?: Handler;
  /**
   * Carry the active OpenTelemetry span, when `@opentelemetry/api` is installed and a span is
   * active as the context is made: fields `trace_id` and `span_id` (sent with `born`) and the
   * W3C `traceparent` header (with `tracestate` when the span has one) on every message. The
   * context's own `context` fields and `headers` win over them.
   * @default true
   */
  trace?: boolean;
}

/** `ctx.log`: messages formatted with the context's fields (`'status {status_code}'`). */
export interface ContextLog {
  debug(format: string, ...args: unknown[]): void;
  info(format: string, ...args: unknown[]): void;
  warn(format: string, ...args: unknown[]): void;
  warning(format: string, ...args: unknown[]): void;
  error(format: string, ...args: unknown[]): void;
  critical(format: string, ...args: unknown[]): void;
}

/** The members every context has; its fields are everything else. */
export interface ContextMembers<T extends object = Record<string, any>> {
  /** The local copy of the fields (ignored ones included). Read-only: assign through the context. */
  readonly context: Readonly<T & Record<string, unknown>>;
  readonly log: ContextLog;
  /** Sets several fields in one message. Names reserved for direct assignment are allowed here. */
  update(fields: Partial<T> & Record<string, unknown>): this;
  /**
   * Sends `finished` with `elapsed`. Idempotent; a no-op for transient contexts. `fields` are set
   * in the `finished` message itself: `update(fields)` and `finish()` in one message (on a context
   * already finished, or transient, they are sent as an update).
   */
  finish(fields?: Partial<T> & Record<string, unknown>): void;
  /** The context's name. */
  toString(): string;
  /** Its id: a context inside another context's field is sent as its id (linking). */
  toJSON(): string;
  [Symbol.dispose](): void;
}

/** A context with fields of type `T`. */
export type Context<T extends object = Record<string, any>> = ContextMembers<T> & T;

/** A write through `ctx.context`: it would change the local copy and send nothing. */
function readOnly(): never {
  throw new ContextError(
    'LC_CONTEXT_READ_ONLY',
    'ctx.context is read-only: set a field on the context itself (ctx.x = …) or with ctx.update()',
  );
}

/** The traps of `ctx.context`: reads go through to the fields, writes throw. */
const READ_ONLY: ProxyHandler<Record<string, unknown>> = {
  set: readOnly,
  defineProperty: readOnly,
  deleteProperty: readOnly,
  setPrototypeOf: readOnly,
  preventExtensions: readOnly,
};

class State {
  seq = 0;
  finished = false;
  readonly fields: Record<string, unknown> = {};
  readonly idJson: string;
  bornAt = performance.now();
  log: ContextLog | null = null;
  /** What `ctx.context` hands out: the fields, read through a proxy that refuses writes. */
  view: Readonly<Record<string, unknown>> | null = null;

  constructor(
    readonly id: string,
    readonly name: string,
    readonly route: Route,
    readonly handler: Handler,
    readonly ignore: ReadonlySet<string> | null,
    readonly transient: boolean,
    readonly obj: object | null,
    readonly logger: ChangeLogger | null,
  ) {
    this.idJson = JSON.stringify(id);
  }

  send(
    objJson: string,
    status?: Entry['status'],
    action?: 'delete',
    messageJson?: string,
    level?: string,
    elapsed?: number,
  ): void {
    const seq = this.seq++;
    flatten(objJson);
    this.handler.enqueue({
      route: this.route,
      idJson: this.idJson,
      seq,
      objJson,
      status,
      action,
      messageJson,
      level,
      elapsed,
      timeIn: unixNow(),
      id: this.id,
      attempts: 0,
    });
  }

  logChange(text: string): void {
    const logger = this.logger;
    if (logger === null) return;
    const line = `${this.name} ${this.id}: ${text}`;
    try {
      if (typeof logger === 'function') logger(line);
      else if (typeof logger.info === 'function') logger.info(line);
      else logger.debug?.(line);
    } catch {
      /* the program's logger must not break the context */
    }
  }
}

const kState = Symbol('contexture.context');

/**
 * Makes V8 join a string built by concatenation into one piece, in place (reading a character
 * does): a message's JSON waits in the buffer until the broker confirms it, and a string left in
 * pieces is many objects for the young-generation collector to copy, again at each collection.
 */
function flatten(s: string): void {
  if (s.length > 1) s.charCodeAt(1);
}

/** What the next context made by {@link requestContext} is told besides its options. */
let made: { bornAt: number; sent: boolean } | null = null;

/**
 * A context whose end is certain (a web request's: its response finishes or its connection
 * closes), with its `elapsed` counted from `bornAt` (a `performance.now()` time) instead of its
 * making. It is not watched for being dropped unfinished, which costs every context a weak cell.
 * With `sent`, its first message went already ({@link sendTransient}, with `options.guid` its
 * id): the context sends what changes after it.
 */
export function requestContext(options: ContextOptions, bornAt: number, sent = false): Context {
  made = { bornAt, sent };
  try {
    return new Context(options);
  } finally {
    made = null;
  }
}

/**
 * The `obj` body of a context's first message: its initial fields, ignored ones left out, and the
 * active span's `trace_id` and `span_id` unless the fields name them. `keep` is told every field
 * the context holds. Throws on a value JSON cannot take, before anything is sent.
 */
function firstBody(
  initial: Record<string, unknown> | undefined | null,
  ignore: ReadonlySet<string> | null,
  trace: ReturnType<typeof activeTrace>,
  keep?: (key: string, value: unknown) => void,
): string {
  let body = '';
  if (initial !== undefined && initial !== null) {
    const [keys, values] = readFields(initial, 'the context option');
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const value = values[i];
      keep?.(key, value);
      if (ignore?.has(key)) continue;
      body += `${(body === '' ? '' : ',') + keyJson(key)}:${fieldJson(key, value)}`;
    }
  }
  if (trace !== null) {
    for (const [key, value] of [
      ['trace_id', trace.traceId],
      ['span_id', trace.spanId],
    ] as const) {
      if (initial != null && Object.hasOwn(initial, key)) continue;
      keep?.(key, value);
      if (!ignore?.has(key)) body += `${(body === '' ? '' : ',') + keyJson(key)}:${JSON.stringify(value)}`;
    }
  }
  return body;
}

/**
 * The JSON of `fields` in one JSON.stringify() (one string, where firstBody() makes several per
 * field), when that is the text firstBody() would make: a plain object whose every field is a
 * string, number, boolean, null or object (JSON.stringify() would leave out a top-level function,
 * symbol or undefined, which firstBody() refuses or writes as null). Undefined otherwise, or when
 * JSON.stringify() throws (a bigint, a cycle): firstBody() then says why.
 */
function wholeJson(fields: Record<string, unknown> | undefined | null): string | undefined {
  if (fields === undefined || fields === null) return '{}';
  // A getter or a Proxy trap that throws: firstBody() reads again and says why.
  try {
    // A plain object: JSON.stringify() would call a toJSON() of its class, which firstBody() does not.
    const proto = Object.getPrototypeOf(fields);
    if (proto !== Object.prototype && proto !== null) return undefined;
    for (const key in fields) {
      if (!Object.hasOwn(fields, key)) return undefined;
      const t = typeof fields[key];
      if (t !== 'string' && t !== 'number' && t !== 'boolean' && t !== 'object') return undefined;
    }
    const json = JSON.stringify(fields);
    // A number the wire format writes otherwise (NaN, a double past 2^53 - 1): firstBody() writes it.
    return needsLosslessWrite(fields, json) ? undefined : json;
  } catch {
    return undefined;
  }
}

/**
 * Sends the one `transient` message of a context made with `options` and `transient: true`,
 * without making the context (its Proxy, its state, its copy of the fields): for a web request
 * that ended before anything asked for its context. Returns the id, for a context made later
 * with {@link requestContext} (`sent`). Throws as the constructor would, before anything is sent.
 */
export function sendTransient(options: ContextOptions): string {
  const handler = options.handler ?? getHandler();
  const name = options.name ?? options.routingKey ?? callerModuleName();
  const rkey = options.routingKey ?? name;
  const trace = options.trace === false ? null : activeTrace();
  const route = handler.route(rkey, trace === null ? options.headers : { ...trace.headers, ...options.headers });
  const id = options.guid ?? randomUUID();
  const ignore = options.ignore === undefined ? null : new Set(options.ignore);
  const objJson =
    (ignore === null && trace === null ? wholeJson(options.context) : undefined) ??
    `{${firstBody(options.context, ignore, trace)}}`;
  flatten(objJson);
  handler.enqueue({
    route,
    idJson: JSON.stringify(id),
    seq: 0,
    objJson,
    status: 'transient',
    action: undefined,
    messageJson: undefined,
    level: undefined,
    elapsed: undefined,
    timeIn: unixNow(),
    id,
    attempts: 0,
  });
  return id;
}
const hasOwn = (o: object, k: PropertyKey) => Object.hasOwn(o, k);
const isPromise = types.isPromise;
const promiseThen = Promise.prototype.then as (
  this: Promise<unknown>,
  onFulfilled: (value: unknown) => unknown,
  onRejected: (err: unknown) => unknown,
) => Promise<unknown>;

// A context that becomes unreachable without finish() still sends `finished`.
const unfinished = new FinalizationRegistry<State>((state) => {
  if (!state.finished && !state.transient) finishState(state);
});

function finishState(state: State, body = '', logged = ''): void {
  state.finished = true;
  // Seconds to the microsecond: the clock does not measure finer, and the JSON stays short.
  const elapsed = Math.round((performance.now() - state.bornAt) * 1000) / 1e6;
  state.send(`{${body}}`, 'finished', undefined, undefined, undefined, elapsed);
  state.logChange(`status = finished${logged}, elapsed = ${elapsed}`);
}

/**
 * The own enumerable keys of an object of fields and their values, each read once: a getter or a
 * Proxy trap that throws becomes a `ContextError` (`LC_CONTEXT_NOT_SERIALIZABLE` naming the field
 * whose value cannot be read, `LC_CONTEXT_INVALID_OPTION` when the keys cannot be).
 */
function readFields(fields: object, what: string): [string[], unknown[]] {
  let keys: string[];
  try {
    keys = Object.keys(fields);
  } catch (err) {
    throw new ContextError('LC_CONTEXT_INVALID_OPTION', `${what}: its fields cannot be listed: ${thrownMessage(err)}`, {
      cause: err,
    });
  }
  const values: unknown[] = new Array(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    try {
      values[i] = (fields as Record<string, unknown>)[key];
    } catch (err) {
      throw new ContextError('LC_CONTEXT_NOT_SERIALIZABLE', `field '${key}' cannot be read: ${thrownMessage(err)}`, {
        field: key,
        cause: err,
      });
    }
  }
  return [keys, values];
}

/** The object of fields `update()` or `finish()` was given, checked and read (see {@link readFields}). */
function givenFields(fields: unknown, method: string): [string[], unknown[]] {
  let array: boolean;
  try {
    array = Array.isArray(fields);
  } catch {
    array = true; // a revoked Proxy
  }
  if (typeof fields !== 'object' || fields === null || array)
    throw new ContextError(
      'LC_CONTEXT_INVALID_OPTION',
      `${method}() takes an object of fields${method === 'finish' ? ', or nothing' : ''}`,
    );
  return readFields(fields as object, `${method}()`);
}

/** The `obj` body of the fields (ignored ones left out); throws before anything changes. */
function fieldsBody(state: State, keys: string[], values: unknown[]): string {
  let body = '';
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (state.ignore?.has(key)) continue;
    body += `${(body === '' ? '' : ',') + keyJson(key)}:${fieldJson(key, values[i])}`;
  }
  return body;
}

function fieldsLog(state: State, keys: string[], values: unknown[]): string {
  const parts: string[] = [];
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (!state.ignore?.has(key)) parts.push(`${key} = ${preview(fieldJson(key, values[i]))}`);
  }
  return parts.join(', ');
}

/** Sets the fields in one message; throws before anything changes. */
function update(state: State, keys: string[], values: unknown[]): void {
  const body = fieldsBody(state, keys, values);
  for (let i = 0; i < keys.length; i++) setOwn(state.fields, keys[i]!, values[i]);
  if (body !== '') {
    state.send(`{${body}}`);
    if (state.logger !== null) state.logChange(fieldsLog(state, keys, values));
  }
}

function reserved(name: string): ContextError {
  return new ContextError(
    'LC_CONTEXT_RESERVED_NAME',
    `'${name}' is reserved on a Context and cannot be assigned directly; use ctx.update({ ${JSON.stringify(name)}: … })`,
    { field: name },
  );
}

function preview(json: string): string {
  return json.length > 200 ? `${json.slice(0, 200)}…` : json;
}

function assign(state: State, prop: string, value: unknown): void {
  if (state.ignore?.has(prop)) {
    setOwn(state.fields, prop, value);
    return;
  }
  const json = fieldJson(prop, value); // throws before anything changes
  setOwn(state.fields, prop, value);
  state.send(`{${keyJson(prop)}:${json}}`);
  if (state.logger !== null) state.logChange(`${prop} = ${preview(json)}`);
}

function remove(state: State, prop: string): void {
  if (!hasOwn(state.fields, prop)) return;
  delete state.fields[prop];
  if (state.ignore?.has(prop)) return;
  state.send(`{${keyJson(prop)}:null}`, undefined, 'delete');
  state.logChange(`${prop} deleted`);
}

function makeLog(state: State): ContextLog {
  const at =
    (level: string) =>
    (format: string, ...args: unknown[]) => {
      const message = formatMessage(state.fields, format, args);
      state.send('{}', undefined, undefined, JSON.stringify(message), level);
      state.logChange(`[${level}] ${message}`);
    };
  return Object.freeze({
    debug: at('debug'),
    info: at('info'),
    warn: at('warning'),
    warning: at('warning'),
    error: at('error'),
    critical: at('critical'),
  });
}

const traps: ProxyHandler<ContextBase> = {
  get(target, prop, receiver) {
    if (typeof prop === 'symbol' || prop in target) return Reflect.get(target, prop, receiver);
    const state = target[kState];
    if (hasOwn(state.fields, prop)) return state.fields[prop];
    const obj = state.obj;
    if (obj !== null) {
      const v = Reflect.get(obj, prop, obj);
      return typeof v === 'function' ? v.bind(obj) : v;
    }
    return undefined;
  },
  set(target, prop, value) {
    if (typeof prop === 'symbol') return Reflect.set(target, prop, value);
    if (prop in target) throw reserved(prop);
    assign(target[kState], prop, value);
    return true;
  },
  deleteProperty(target, prop) {
    if (typeof prop === 'symbol') return Reflect.deleteProperty(target, prop);
    if (prop in target) throw reserved(prop);
    remove(target[kState], prop);
    return true;
  },
  has(target, prop) {
    if (typeof prop === 'symbol' || prop in target) return true;
    const state = target[kState];
    return hasOwn(state.fields, prop) || (state.obj !== null && prop in state.obj);
  },
  ownKeys(target) {
    return Reflect.ownKeys(target[kState].fields);
  },
  getOwnPropertyDescriptor(target, prop) {
    if (typeof prop === 'symbol') return Reflect.getOwnPropertyDescriptor(target, prop);
    const fields = target[kState].fields;
    if (!hasOwn(fields, prop)) return undefined;
    return { value: fields[prop], writable: true, enumerable: true, configurable: true };
  },
  defineProperty(target, prop, descriptor) {
    // Class fields of a subclass arrive here: they become context fields like any assignment.
    if (typeof prop === 'symbol') return Reflect.defineProperty(target, prop, descriptor);
    if (prop in target) throw reserved(prop);
    // A field is a value the context sends, and stays one it can change or delete.
    if (!('value' in descriptor) || descriptor.configurable === false)
      throw new ContextError(
        'LC_CONTEXT_INVALID_OPTION',
        `field '${prop}': a context field is a plain value (no getter or setter, not non-configurable)`,
        { field: prop },
      );
    assign(target[kState], prop, descriptor.value);
    return true;
  },
  preventExtensions() {
    // Its fields change: a context cannot be frozen, sealed or made non-extensible.
    throw new ContextError('LC_CONTEXT_INVALID_OPTION', 'a context cannot be frozen, sealed or made non-extensible');
  },
};

const NAME_OPTIONS = ['name', 'routingKey'] as const;
const OBJECT_OPTIONS = ['headers', 'context', 'obj'] as const;

const OPTIONS = [
  'context',
  'name',
  'routingKey',
  'guid',
  'ignore',
  'transient',
  'headers',
  'obj',
  'logger',
  'handler',
  'trace',
] as const satisfies ReadonlyArray<keyof ContextOptions>;

/**
 * Checks the options of a Context (or of Context.wrap()) and returns them read once, `ignore` as
 * an array; a wrong one, or one whose getter (or Proxy trap) throws, throws `LC_CONTEXT_INVALID_OPTION`.
 */
function checkOptions(options: unknown): ContextOptions {
  const bad = (what: string, cause?: unknown) =>
    new ContextError('LC_CONTEXT_INVALID_OPTION', what, cause === undefined ? undefined : { cause });
  const o: ContextOptions = {};
  try {
    if (typeof options !== 'object' || options === null || Array.isArray(options))
      throw bad('Context options must be an object');
    for (const k of OPTIONS) {
      const v = (options as Record<string, unknown>)[k];
      if (v !== undefined) (o as Record<string, unknown>)[k] = v;
    }
    // Any iterable of names (an array, a Set), read once into an array.
    if (o.ignore !== undefined) {
      const given = o.ignore as unknown;
      const names =
        typeof given === 'object' &&
        given !== null &&
        typeof (given as Iterable<unknown>)[Symbol.iterator] === 'function'
          ? [...(given as Iterable<unknown>)]
          : null;
      if (names === null || names.some((k) => typeof k !== 'string'))
        throw bad('ignore must be an iterable (an array, a Set) of field names');
      o.ignore = names as string[];
    }
    for (const k of NAME_OPTIONS)
      if (o[k] !== undefined && (typeof o[k] !== 'string' || o[k] === '')) throw bad(`${k} must be a non-empty string`);
    if (o.handler !== undefined && !(o.handler instanceof Handler)) throw bad('handler must be a Handler');
    for (const k of OBJECT_OPTIONS) {
      const v = o[k];
      if (v !== undefined && v !== null && (typeof v !== 'object' || Array.isArray(v)))
        throw bad(`${k} must be an object`);
    }
  } catch (err) {
    if (err instanceof ContextError) throw err;
    throw bad(`Context options cannot be read: ${thrownMessage(err)}`, err);
  }
  return o;
}

/** The state of a context, or undefined for anything else (a Proxy whose traps throw included). */
function stateOf(ctx: unknown): State | undefined {
  if (typeof ctx !== 'object' || ctx === null) return undefined;
  try {
    const state = (ctx as ContextBase)[kState];
    return state instanceof State ? state : undefined;
  } catch {
    return undefined;
  }
}

class ContextBase {
  declare readonly [kState]: State;

  constructor(given: ContextOptions = {}) {
    const options = checkOptions(given);
    const handler = options.handler ?? getHandler();
    let name = options.name ?? options.routingKey;
    if (name === undefined) name = new.target !== ContextBase && new.target.name ? new.target.name : callerModuleName();
    const rkey = options.routingKey ?? name;
    const trace = options.trace === false ? null : activeTrace();
    const route = handler.route(rkey, trace === null ? options.headers : { ...trace.headers, ...options.headers });
    const ignore = options.ignore === undefined ? null : new Set(options.ignore);
    const id = options.guid ?? randomUUID();
    if (typeof id !== 'string' || id.length === 0)
      throw new ContextError('LC_CONTEXT_INVALID_OPTION', 'guid must be a non-empty string');
    const logger = options.logger ?? null;
    const state = new State(id, name, route, handler, ignore, options.transient === true, options.obj ?? null, logger);
    const certain = made;
    made = null;
    if (certain !== null) state.bornAt = certain.bornAt;
    const sent = certain?.sent === true;

    // Serialise the initial fields first: a bad value throws before anything is sent.
    const body = firstBody(options.context, ignore, trace, (key, value) => setOwn(state.fields, key, value));
    // Not enumerable, and a symbol: the proxy's traps never show it as a field.
    Object.defineProperty(this, kState, { value: state, configurable: true });
    const proxy = new Proxy(this, traps);
    // Its first message sent already (sendTransient()): what changes next is message 1.
    if (sent) state.seq = 1;
    else state.send(`{${body}}`, state.transient ? 'transient' : 'born');
    if (logger !== null && !sent)
      state.logChange(`status = ${state.transient ? 'transient' : 'born'}${body === '' ? '' : `, ${preview(body)}`}`);
    if (!state.transient && certain === null) unfinished.register(proxy, state, state);
    // biome-ignore lint/correctness/noConstructorReturn: a context is the Proxy around the instance
    return proxy;
  }

  get context(): Readonly<Record<string, unknown>> {
    const state = this[kState];
    return (state.view ??= new Proxy(state.fields, READ_ONLY));
  }

  get log(): ContextLog {
    const state = this[kState];
    return (state.log ??= makeLog(state));
  }

  update(fields: Record<string, unknown>): this {
    const [keys, values] = givenFields(fields, 'update');
    update(this[kState], keys, values);
    return this;
  }

  finish(fields?: Record<string, unknown>): void {
    const state = this[kState];
    const given = fields === undefined ? undefined : givenFields(fields, 'finish');
    if (state.finished || state.transient) {
      if (given !== undefined) update(state, given[0], given[1]);
      return;
    }
    let body = '';
    let logged = '';
    if (given !== undefined) {
      const [keys, values] = given;
      body = fieldsBody(state, keys, values); // throws before anything changes
      for (let i = 0; i < keys.length; i++) setOwn(state.fields, keys[i]!, values[i]);
      if (body !== '' && state.logger !== null) logged = `, ${fieldsLog(state, keys, values)}`;
    }
    unfinished.unregister(state);
    finishState(state, body, logged);
  }

  toString(): string {
    return this[kState].name;
  }

  toJSON(): string {
    return this[kState].id;
  }

  [Symbol.dispose](): void {
    this.finish();
  }

  [inspect.custom](): string {
    const s = this[kState];
    return `Context<${s.name} ${s.id}> ${inspect(s.fields, { depth: 2, breakLength: Infinity })}`;
  }

  /**
   * Wraps a function so each call runs in its own Context: born at the call, finished when it
   * returns or, when it returns a Promise, when that settles (the wrapper returns a Promise that
   * settles the same way); anything else it returns, a thenable that is no Promise included, is
   * returned untouched. A throw or rejection sets an `error` field (`"RangeError: …"`, or
   * `"(cannot be described)"`) and is re-thrown.
   * Inside, `Context.current()` returns that context down the whole async call chain.
   *
   * @example
   * const handle = Context.wrap(async (req) => { Context.current()!.status = 200; }, { name: 'web.handle' });
   */
  static wrap<F extends (...args: any[]) => any>(fn: F, options: ContextOptions = {}): F {
    if (typeof fn !== 'function')
      throw new ContextError('LC_CONTEXT_INVALID_OPTION', 'Context.wrap() takes a function as its first argument');
    const checked = checkOptions(options);
    const name = checked.name ?? checked.routingKey ?? callerModuleName();
    const opts: ContextOptions = { ...checked, name };
    const Ctor = ContextBase as unknown as new (o: ContextOptions) => Context;
    const wrapped = function (this: unknown, ...args: unknown[]): unknown {
      const ctx = new Ctor(opts);
      return als.run(ctx, () => {
        let result: unknown;
        try {
          result = fn.apply(this, args);
        } catch (err) {
          failed(ctx, err);
          throw err;
        }
        // A Promise (checked by its internal slot, so no getter or trap of it runs), through the
        // intrinsic then(): another thenable is returned untouched, as any value (its then() may
        // start work, as a query builder's does).
        if (isPromise(result)) {
          try {
            return promiseThen.call(
              result,
              (value) => {
                ctx.finish();
                return value;
              },
              (err: unknown) => {
                failed(ctx, err);
                throw err;
              },
            );
          } catch (err) {
            // A subclass whose constructor getter or species throws: the promise goes back as it is.
            failed(ctx, err);
            return result;
          }
        }
        ctx.finish();
        return result;
      });
    };
    Object.defineProperty(wrapped, 'name', { value: fn.name, configurable: true });
    Object.defineProperty(wrapped, 'length', { value: fn.length, configurable: true });
    return wrapped as F;
  }

  /**
   * Makes an existing context current for `fn` and everything it calls or awaits: inside,
   * `Context.current()` returns `ctx`. It neither finishes `ctx` nor catches what `fn` throws;
   * returns what `fn` returns. A `ctx` that is not a Context throws a `ContextError`
   * (`LC_CONTEXT_INVALID_OPTION`).
   *
   * @example
   * const ctx = new Context({ name: 'jobs.batch' });
   * await Context.run(ctx, async () => { await step(); Context.current()!.done = true; });
   * ctx.finish();
   */
  static run<R>(ctx: ContextMembers<object>, fn: () => R): R {
    if (stateOf(ctx) === undefined)
      throw new ContextError('LC_CONTEXT_INVALID_OPTION', 'Context.run() takes a Context as its first argument');
    if (typeof fn !== 'function')
      throw new ContextError('LC_CONTEXT_INVALID_OPTION', 'Context.run() takes a function as its second argument');
    return als.run(ctx as unknown as Context, fn);
  }

  /** The current context: of the running `Context.wrap` call or `Context.run`, anywhere down its async call chain. */
  static current<T extends object = Record<string, any>>(): Context<T> | undefined {
    const store = als.getStore();
    return (store instanceof LazyContext ? store.get() : store) as Context<T> | undefined;
  }

  /** The id of a context (what `obj_id` carries). */
  static idOf(ctx: ContextMembers<object>): string {
    const state = stateOf(ctx);
    if (state === undefined) throw new ContextError('LC_CONTEXT_INVALID_OPTION', 'Context.idOf() takes a Context');
    return state.id;
  }
}

/** `error` as Context.wrap() records it: `"RangeError: …"`, or {@link UNDESCRIBABLE}. */
function errorText(err: unknown): string {
  try {
    return err instanceof Error ? `${String(err.name)}: ${String(err.message)}` : String(err);
  } catch {
    // Its getters or toString() throw (or it has no toString(): a null-prototype object).
    return UNDESCRIBABLE;
  }
}

function failed(ctx: Context, err: unknown): void {
  assign((ctx as unknown as ContextBase)[kState], 'error', errorText(err));
  ctx.finish();
}

/** The Context class, typed so that `new Context<{ status_code: number }>()` has typed fields. */
export interface ContextConstructor {
  new <T extends object = Record<string, any>>(options?: ContextOptions<NoInfer<T>>): Context<T>;
  readonly prototype: ContextMembers;
  wrap: typeof ContextBase.wrap;
  run: typeof ContextBase.run;
  current: typeof ContextBase.current;
  idOf: typeof ContextBase.idOf;
}

/**
 * A unit of work whose every change is published as a message.
 *
 * @example
 * const ctx = new Context({ context: { url }, name: 'web.handle' }); // born, obj {url}
 * ctx.status_code = 200;                                                 // obj {status_code: 200}
 * ctx.finish();                                                          // finished, with elapsed
 */
export const Context = ContextBase as unknown as ContextConstructor;
