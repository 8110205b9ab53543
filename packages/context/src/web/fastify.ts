/**
 * `@contexture/context/fastify`: one Context per request of a Fastify 5 app, through hooks.
 * Fastify itself is never loaded here (its types only). The plugin skips Fastify's encapsulation,
 * as fastify-plugin does, so that its hooks apply to every route of the app.
 */
import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import { runLazy } from '../current.js';
import { resolveWebOptions, type WebOptions } from './options.js';
import { WebRequest } from './request.js';

export type { RequestInfo, WebOptions } from './options.js';

const kRequest = Symbol('contexture.web.request');

type Tracked = FastifyRequest & { [kRequest]?: WebRequest | null };

/** Fastify's own options of `register()`, which it passes on to the plugin with the plugin's. */
const FASTIFY_OPTIONS = ['prefix', 'logLevel', 'logSerializers'];

/** The plugin's options, Fastify's own left out. */
function ownOptions(options: unknown): unknown {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) return options;
  if (!FASTIFY_OPTIONS.some((k) => Object.hasOwn(options, k))) return options;
  const own: Record<string, unknown> = { ...options };
  for (const k of FASTIFY_OPTIONS) delete own[k];
  return own;
}

const plugin: FastifyPluginCallback<WebOptions> = (fastify, options, done) => {
  let settings: ReturnType<typeof resolveWebOptions>;
  try {
    settings = resolveWebOptions(ownOptions(options) as WebOptions, '@contexture/context/fastify');
  } catch (err) {
    done(err as Error);
    return;
  }
  // Registered again where it is already (the same app, or a plugin inside one that has it): its
  // hooks apply here already, and a request gets one context (the first registration's options).
  if (fastify.hasRequestDecorator(kRequest as unknown as string)) {
    done();
    return;
  }
  fastify.decorateRequest(kRequest as unknown as string, null);

  fastify.addHook('onRequest', (request: Tracked, reply, next) => {
    // One context per request, however many registrations' hooks it passes (one in a plugin, made
    // before another in the app that holds that plugin).
    if (request[kRequest] != null || settings.ignores(request.raw)) {
      next();
      return;
    }
    const w = new WebRequest(settings, request.method, request.url, request.headers, reply.raw, request.raw.socket);
    request[kRequest] = w;
    // Finished when the response finishes, or aborted when the connection closes first, the
    // headers sent or not: heard without a listener on each request, which Fastify's onResponse
    // and onRequestAbort hooks would each add.
    w.watch(true);
    // Fastify routes before the hooks run: the context is made now, named after the route (none
    // for a 404).
    w.matched(request.routeOptions.url);
    runLazy(w, next);
  });
  fastify.addHook('onError', (request: Tracked, _reply, error, next) => {
    request[kRequest]?.fail(error);
    next();
  });
  done();
};

/**
 * A Fastify plugin that runs each request in its own Context, current (`Context.current()`) in the
 * route's handler and everything it awaits, finished when the response finishes or the connection
 * closes. It applies to the whole app wherever it is registered. A wrong option fails the
 * registration with a `ContextError` (`LC_WEB_INVALID_OPTION`).
 *
 * @example
 * import Fastify from 'fastify';
 * import contexturePlugin from '@contexture/context/fastify';
 * const app = Fastify();
 * await app.register(contexturePlugin, { ignore: ['/healthz'] });
 * app.get('/users/:id', async (req) => { Context.current()!.user = req.params.id; return {}; });
 */
export const contexturePlugin = Object.assign(plugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: '@contexture/context/fastify',
});

export default contexturePlugin;
