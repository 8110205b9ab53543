/**
 * `@contexture/context/express`: one Context per request of an Express 5 app. Express itself is
 * never loaded here: the middleware works on Node's request and response, learns the matched
 * route when the router assigns `req.route`, and the handler's errors from the router's
 * `express.router.request` diagnostics channel (router 2.3 and later).
 */
import { subscribe } from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { enterLazy, runLazy } from '../current.js';
import { resolveWebOptions, type WebOptions } from './options.js';
import { WebRequest } from './request.js';

export type { RequestInfo, WebOptions } from './options.js';

/** An Express middleware, typed on Node's request and response so that Express's types are not needed. */
export type ContextureMiddleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

const kRequest = Symbol('contexture.web.request');

type Tracked = IncomingMessage & { [kRequest]?: WebRequest; baseUrl?: string; originalUrl?: string };

// The router publishes each error once, where it arose (a throw, a rejection, next(err)), before
// passing it on to the app's error handlers and finally to finalhandler, which sends the status.
const ERROR_CHANNEL = 'tracing:express.router.request:error';
let subscribed = false;

function onRouterError(message: unknown): void {
  try {
    const m = message as { req?: Tracked; error?: unknown };
    m.req?.[kRequest]?.fail(m.error);
  } catch {
    /* a subscriber that throws would crash the process */
  }
}

function routePath(req: Tracked, route: unknown): string | undefined {
  const path = (route as { path?: unknown } | null)?.path;
  if (path === undefined) return undefined;
  return (req.baseUrl ?? '') + (Array.isArray(path) ? path.join(',') : String(path));
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
    subscribed = true;
  }
  return function contextureMiddleware(req: Tracked, res, next) {
    // One context per request: a second contexture() on the way (app-wide and on a route) adds none.
    if (req[kRequest] !== undefined || settings.ignores(req)) {
      next();
      return;
    }
    const w = new WebRequest(
      settings,
      req.method ?? 'GET',
      req.originalUrl ?? req.url ?? '/',
      req.headers,
      res,
      req.socket,
    );
    req[kRequest] = w;
    // The router names the matched route by assigning req.route, just before the route's handlers
    // run; that is where the context is made, named after it. A body parser resumes the chain from
    // a stream callback, outside the middleware's async chain: entering it again there keeps the
    // context current in the route's handlers.
    let route: unknown = (req as { route?: unknown }).route;
    Object.defineProperty(req, 'route', {
      configurable: true,
      enumerable: true,
      get: () => route,
      set: (value: unknown) => {
        route = value;
        w.matched(routePath(req, value));
        enterLazy(w.lazy);
      },
    });
    // In front of a route (`app.get('/x', contexture(), handler)`), the route has matched already.
    if (route !== undefined) w.matched(routePath(req, route));
    w.watch(true);
    runLazy(w.lazy, next);
  };
}
