/**
 * `@contexture/context/express`: one Context per request of an Express 5 app. Express itself is
 * never loaded here: the middleware works on Node's request and response, learns the matched
 * route when the router assigns `req.route`, and the handler's errors from the router's
 * `express.router.request` diagnostics channel (router 2.3 and later).
 */
import { subscribe } from 'node:diagnostics_channel';
import { IncomingMessage, type ServerResponse } from 'node:http';
import { enterLazy, runLazy } from '../current.js';
import { resolveWebOptions, type WebOptions, type WebSettings } from './options.js';
import { WebRequest } from './request.js';

export type { RequestInfo, WebOptions } from './options.js';

/** An Express middleware, typed on Node's request and response so that Express's types are not needed. */
export type ContextureMiddleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/**
 * Each request's WebRequest. WeakMaps rather than properties: Express swaps the prototype of every
 * request, and each property of our own added to one cost V8 a map migration per request.
 */
const requests = new WeakMap<object, ExpressRequest>();
/** `req.route` of the requests that have no WebRequest (ignored, or of another app). */
const otherRoutes = new WeakMap<object, unknown>();

type Tracked = IncomingMessage & { baseUrl?: string; originalUrl?: string; next?: unknown };

// The router publishes each error once, where it arose (a throw, a rejection, next(err)), before
// passing it on to the app's error handlers and finally to finalhandler, which sends the status.
const ERROR_CHANNEL = 'tracing:express.router.request:error';
// And each layer it runs, with the pattern it matched, as it starts: how the patterns of the paths
// routers are mounted under are learnt (`req.baseUrl` holds the URL they matched, not the pattern).
const START_CHANNEL = 'tracing:express.router.request:start';
let subscribed = false;

function onLayerStart(message: unknown): void {
  try {
    const m = message as { req?: Tracked; route?: unknown };
    if (typeof m.req === 'object' && m.req !== null) requests.get(m.req)?.layerStarted(m.route);
  } catch {
    /* a subscriber that throws would crash the process */
  }
}

function onRouterError(message: unknown): void {
  try {
    const m = message as { req?: Tracked; error?: unknown };
    if (typeof m.req === 'object' && m.req !== null) requests.get(m.req)?.fail(m.error);
  } catch {
    /* a subscriber that throws would crash the process */
  }
}

/**
 * Express's own request prototypes (the one every app's `request` derives from), each given a
 * `route` accessor once, or false where there is none to take it.
 */
const accessors = new WeakMap<object, boolean>();

/** A matched route: the request's context learns it, and is current from there on. */
function routeAssigned(w: ExpressRequest, value: unknown): void {
  w.matched(w.routePath(value));
  // A body parser resumes the chain from a stream callback, outside the middleware's async
  // chain: entering the request's context again here keeps it current in the route's handlers.
  enterLazy(w);
}

function installAccessor(proto: object): void {
  Object.defineProperty(proto, 'route', {
    configurable: true,
    enumerable: false,
    get(this: Tracked) {
      const w = requests.get(this);
      return w !== undefined ? w.assigned : otherRoutes.get(this);
    },
    set(this: Tracked, value: unknown) {
      const w = requests.get(this);
      if (w === undefined) {
        otherRoutes.set(this, value);
        return;
      }
      w.assigned = value;
      routeAssigned(w, value);
    },
  });
}

/**
 * Watches the router's `req.route = route` for `w` (made the request's WebRequest here); returns
 * the route already matched, if any.
 *
 * Each Express request's prototype chain runs app.request → Express's `request` → Node's
 * IncomingMessage.prototype: the accessor goes once on Express's `request`, shared by every app
 * and sub-app of that copy of Express. An accessor defined on each request instead (with its own
 * functions) gives every request a map of its own in V8, which made every property access of
 * Express and Node on it slow and cost a minimal Express request about a fifth more CPU. A
 * request without such a prototype (the router alone on Node's server) gets its own accessor.
 */
function watchRoute(req: Tracked, w: ExpressRequest): unknown {
  if (expressRequest(req)) {
    // Read before the request is w's: a route assigned in front of the middleware (or, on the
    // first request, before the accessor was there, as an own property).
    const route = (req as { route?: unknown }).route;
    w.assigned = route;
    requests.set(req, w);
    return route;
  }
  requests.set(req, w);
  let route: unknown = (req as { route?: unknown }).route;
  Object.defineProperty(req, 'route', {
    configurable: true,
    enumerable: true,
    get: () => route,
    set: (value: unknown) => {
      route = value;
      routeAssigned(w, value);
    },
  });
  return route;
}

/** True when `req`'s prototype chain has Express's `request`, given the accessor (once). */
function expressRequest(req: object): boolean {
  const first = Object.getPrototypeOf(req) as object | null;
  if (first === null) return false;
  const known = accessors.get(first);
  if (known !== undefined) return known;
  // The object right above Node's IncomingMessage.prototype: Express's `request`.
  let proto: object | null = first;
  while (proto !== null && Object.getPrototypeOf(proto) !== IncomingMessage.prototype)
    proto = Object.getPrototypeOf(proto) as object | null;
  let usable = false;
  if (proto !== null && proto !== IncomingMessage.prototype) {
    if (accessors.get(proto) === true) usable = true;
    else if (!Object.hasOwn(proto, 'route')) {
      installAccessor(proto);
      accessors.set(proto, true);
      usable = true;
    }
  }
  accessors.set(first, usable);
  return usable;
}

/**
 * An Express request's WebRequest: also hears, late, a route matched under a copy of Express whose
 * `request` has no accessor yet: an app made by a second copy of Express in the process, called
 * as a handler by the app that runs the middleware (a mounted app's requests inherit the parent
 * app's prototypes, so they are heard as usual). The route is then left as an own property of the
 * request; it is read before the context is named, and the accessor is put on that copy's
 * `request` then, so that its next requests are heard as they are routed.
 */
class ExpressRequest extends WebRequest {
  /** The router's route object as it assigned it: what `req.route` reads. */
  assigned: unknown;
  /** The router run that ran the middleware (its `req.next`), and its base. */
  private readonly topNext: unknown;
  private readonly top: Base;
  /** The base of each other router run the request went through, by its `req.next`. */
  private bases: Map<unknown, Base> | undefined;
  /** The base the layer started last gives a router it runs. */
  private lastBase: Base | undefined;

  constructor(
    settings: WebSettings,
    private readonly req: Tracked,
    res: ServerResponse,
  ) {
    super(settings, req.method ?? 'GET', req.originalUrl ?? req.url ?? '/', req.headers, res, req.socket);
    this.topNext = req.next;
    const url = req.baseUrl ?? '';
    // Mounted under a path already (contexture() inside a mounted router): its pattern is unknown.
    this.top = { url, pattern: url === '' ? '' : null };
  }

  /**
   * A layer of the router run `req.next` starts, having matched `pattern`: where it matched a
   * path (a mount), `req.baseUrl` has grown by the URL text that pattern matched, and a router the
   * layer runs is based at the pattern.
   */
  layerStarted(pattern: unknown): void {
    const base = this.baseOf(this.req.next);
    const url = this.req.baseUrl ?? '';
    this.lastBase =
      url === base.url ? base : { url, pattern: base.pattern === null ? null : base.pattern + mountText(pattern) };
  }

  /**
   * The base of the router run whose `next` is `next`: a run not seen yet was started by the
   * layer started last (routers run their layers one at a time, and a layer that runs a router
   * does so as it starts).
   */
  private baseOf(next: unknown): Base {
    if (next === this.topNext) return this.top;
    let base = this.bases?.get(next);
    if (base === undefined) {
      base = this.lastBase ?? this.top;
      if (this.bases === undefined) this.bases = new Map();
      this.bases.set(next, base);
    }
    return base;
  }

  /** `route`'s pattern with the patterns it is mounted under. */
  routePath(route: unknown): string | undefined {
    const path = (route as { path?: unknown } | null)?.path;
    if (path === undefined) return undefined;
    const base = this.baseOf(this.req.next);
    const known = base.pattern !== null && base.url === (this.req.baseUrl ?? '');
    return (known ? base.pattern : UNKNOWN_MOUNT) + patternText(path);
  }

  protected override unheardRoute(): { route: string | undefined } | null {
    const req = this.req;
    const own = Object.getOwnPropertyDescriptor(req, 'route');
    if (own === undefined || !('value' in own) || own.value === undefined) return null;
    expressRequest(req);
    return { route: this.routePath(own.value) };
  }
}

/**
 * Where a router run is mounted: the URL text it matched (`req.baseUrl` in it), and the patterns
 * that matched it, joined (`/users/:userId`), or null when they are not known.
 */
interface Base {
  readonly url: string;
  readonly pattern: string | null;
}

/**
 * What stands for the path a route is mounted under when its pattern cannot be known (the router
 * publishes no layers, before router 2.3; or `contexture()` itself runs in a router mounted under
 * a path): never the URL, which would make the routing keys unbounded.
 */
const UNKNOWN_MOUNT = '(mount)';

function patternText(path: unknown): string {
  return Array.isArray(path) ? path.join(',') : String(path);
}

/** A mount's pattern as it prefixes a route's: without its trailing slash, as `req.baseUrl` is. */
function mountText(pattern: unknown): string {
  const text = patternText(pattern);
  return text.endsWith('/') ? text.slice(0, -1) : text;
}

/**
 * An Express middleware that runs each request in its own Context, current (`Context.current()`)
 * in the route's handlers and everything they await, finished when the response finishes or the
 * connection closes. Put it before the routes: `app.use(contexture())`. A wrong option throws a
 * `ContextError` (`LC_WEB_INVALID_OPTION`).
 *
 * @example
 * import express from 'express';
 * import { contexture } from '@contexture/context/express';
 * const app = express();
 * app.use(contexture({ ignore: ['/healthz'], headers: ['user-agent'] }));
 * app.get('/users/:id', async (req, res) => { Context.current()!.user = req.params.id; res.json({}); });
 */
export function contexture(options?: WebOptions): ContextureMiddleware {
  const settings = resolveWebOptions(options, 'contexture()');
  if (!subscribed) {
    subscribe(ERROR_CHANNEL, onRouterError);
    subscribe(START_CHANNEL, onLayerStart);
    subscribed = true;
  }
  return function contextureMiddleware(req: Tracked, res, next) {
    // One context per request: a second contexture() on the way (app-wide and on a route) adds none.
    if (requests.has(req) || settings.ignores(req)) {
      next();
      return;
    }
    const w = new ExpressRequest(settings, req, res);
    // The router names the matched route by assigning req.route, just before the route's handlers
    // run (see watchRoute()).
    const route = watchRoute(req, w);
    // In front of a route (`app.get('/x', contexture(), handler)`), the route has matched already.
    if (route !== undefined) w.matched(w.routePath(route));
    w.watch(true);
    runLazy(w, next);
  };
}
