/**
 * Options of the web middleware (Express) and plugin (Fastify): which requests become contexts,
 * what they are named, which headers they record and which handler publishes them.
 */
import type { IncomingMessage } from 'node:http';
import { ContextError } from '../errors.js';
import { Handler } from '../handler.js';
import { Births } from './births.js';

/** What is known of a request when its context is named. */
export interface RequestInfo {
  /** The HTTP method, upper case (`GET`). */
  method: string;
  /**
   * The matched route's pattern with the path it is mounted under (`/api/users/:id`), or
   * `undefined` when no route matched (a 404), or none had matched yet when the context was made.
   */
  route: string | undefined;
  /**
   * The URL as the client sent it: path and query; or an absolute-form target, its password
   * masked (`http://admin:***@example.com/x`).
   */
  url: string;
}

/** Options of `contexture()` (Express) and of the Fastify plugin. */
export interface WebOptions {
  /**
   * Request headers to record, by name (any case), as the `headers` field (names lower case);
   * a header the request lacks is left out.
   * @default [] (none)
   */
  headers?: readonly string[];
  /**
   * The context's name (and routing key unless `routingKey` is given).
   * @default `http.<METHOD>.<route>`, and `http.<METHOD>.unrouted` without a route
   */
  name?: (request: RequestInfo) => string;
  /**
   * The context's routing key.
   * @default the name
   */
  routingKey?: (request: RequestInfo) => string;
  /**
   * Requests that get no context: URL paths (the query aside, `'/healthz'`, which also matches the
   * absolute-form target `http://example.com/healthz`), or a function of the
   * Node request that returns true for those to leave out.
   * @default none
   */
  ignore?: readonly string[] | ((request: IncomingMessage) => boolean);
  /**
   * The handler to publish with.
   * @default the process's handler (`configure()` / `getHandler()`)
   */
  handler?: Handler;
  /**
   * Milliseconds a request may run before its context is made and `born` sent (once its route is
   * known), so that it shows while it runs. A request that ends sooner, and whose context nothing
   * asked for (`Context.current()`), is sent as one `transient` message with all its fields: half
   * the messages of two. 0 makes every context as its route matches.
   * @default 10
   */
  bornAfter?: number;
}

/** Options checked once, in the form each request uses. */
export interface WebSettings {
  readonly headers: readonly string[];
  readonly name: (request: RequestInfo) => string;
  readonly routingKey: ((request: RequestInfo) => string) | undefined;
  readonly ignores: (request: IncomingMessage) => boolean;
  readonly handler: Handler | undefined;
  /** The requests waiting for their context, or null when `bornAfter` is 0. */
  readonly births: Births | null;
}

/**
 * What a `name` or `routingKey` function gave, as the routing key: a non-empty string; anything
 * else throws (the request is then named by {@link defaultName}, with the reason in `name_error`).
 */
export function givenKey(what: string, key: unknown): string {
  if (typeof key !== 'string' || key === '')
    throw new Error(
      `${what} gave ${typeof key === 'string' ? 'an empty string' : key === undefined || key === null ? String(key) : `a ${typeof key}`}, not a routing key`,
    );
  return key;
}

/** The default name: `http.GET./users/:id`; `http.GET.unrouted` when no route is known. */
export function defaultName(request: RequestInfo): string {
  return `http.${request.method}.${request.route ?? 'unrouted'}`;
}

/**
 * The path of a request's URL, without the query: of its origin form (`/healthz?x=1`) or its
 * absolute form (`http://example.com/healthz`, which a client talking to a proxy sends).
 */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  let path = url;
  if (!url.startsWith('/')) {
    const scheme = url.indexOf('://');
    if (scheme !== -1) {
      // The authority ends at the first '/', '?' or '#'.
      const rest = url.slice(scheme + 3);
      const end = rest.search(/[/?#]/);
      path = end === -1 || rest[end] !== '/' ? '/' : rest.slice(end);
    }
  }
  const q = path.search(/[?#]/);
  return q === -1 ? path : path.slice(0, q);
}

const KNOWN = new Set(['headers', 'name', 'routingKey', 'ignore', 'handler', 'bornAfter']);

function invalid(where: string, what: string): ContextError {
  return new ContextError('LC_WEB_INVALID_OPTION', `${where}: ${what}`);
}

/** Checks the options once; a wrong one throws a `ContextError` (`LC_WEB_INVALID_OPTION`). */
export function resolveWebOptions(options: WebOptions | undefined, where: string): WebSettings {
  const o = options ?? {};
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw invalid(where, 'options must be an object');
  for (const key of Object.keys(o)) if (!KNOWN.has(key)) throw invalid(where, `unknown option ${JSON.stringify(key)}`);
  const headers = o.headers ?? [];
  if (!Array.isArray(headers) || headers.some((h) => typeof h !== 'string' || h.length === 0))
    throw invalid(where, 'headers must be an array of header names');
  for (const key of ['name', 'routingKey'] as const)
    if (o[key] !== undefined && typeof o[key] !== 'function')
      throw invalid(where, `${key} must be a function of the request ({ method, route, url })`);
  let ignores: (request: IncomingMessage) => boolean = () => false;
  const ignore = o.ignore;
  if (typeof ignore === 'function') {
    // One that throws must not throw into the server: the request is then recorded.
    ignores = (request) => {
      try {
        return ignore(request) === true;
      } catch {
        return false;
      }
    };
  } else if (Array.isArray(ignore)) {
    if (ignore.some((p) => typeof p !== 'string'))
      throw invalid(where, 'ignore must be an array of paths or a function');
    const paths = new Set(ignore);
    ignores = (request) => paths.has(pathOf((request as { originalUrl?: string }).originalUrl ?? request.url));
  } else if (ignore !== undefined) {
    throw invalid(where, 'ignore must be an array of paths or a function');
  }
  if (o.handler !== undefined && !(o.handler instanceof Handler)) throw invalid(where, 'handler must be a Handler');
  const bornAfter = o.bornAfter ?? 10;
  if (typeof bornAfter !== 'number' || !Number.isFinite(bornAfter) || bornAfter < 0 || bornAfter > 2_147_483_647)
    throw invalid(where, 'bornAfter must be a number of milliseconds, 0 or more');
  return Object.freeze({
    headers: Object.freeze(headers.map((h) => h.toLowerCase())),
    name: o.name ?? defaultName,
    routingKey: o.routingKey,
    ignores,
    handler: o.handler,
    births: bornAfter === 0 ? null : new Births(bornAfter),
  });
}
