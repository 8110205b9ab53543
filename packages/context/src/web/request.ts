/**
 * One request's context, shared by the Express middleware and the Fastify plugin: made when
 * something asks for it (`Context.current()`), or once the request has been open `bornAfter` ms
 * and its route is known, and finished once when the response finishes or the connection closes.
 * A request that ends before its context was made is sent as one `transient` message with all its
 * fields. Nothing here throws into the server.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { type Context, type ContextOptions, requestContext, sendTransient } from '../context.js';
import { LazyContext } from '../current.js';
import { UNDESCRIBABLE } from '../format.js';
import { setOwn } from '../protocol/own.js';
import { redactUrl } from '../redact.js';
import { captureTraceContext, inTraceContext } from '../trace-context.js';
import { forget, type ResponseWatcher, watchResponse } from './lifecycle.js';
import { defaultName, givenKey, type RequestInfo, type WebSettings } from './options.js';

/** `error` as the context records it. */
function describe(err: unknown): { name: string; message: string } {
  try {
    if (typeof err === 'object' && err !== null && 'message' in err) {
      const e = err as { name?: unknown; message?: unknown };
      return { name: String(e.name ?? 'Error'), message: String(e.message) };
    }
    return { name: typeof err, message: String(err) };
  } catch {
    return { name: typeof err, message: UNDESCRIBABLE };
  }
}

/**
 * The status `res` sent, its headers gone out: read from the status line Node wrote, as
 * `statusCode` may have been changed since (Fastify's error handler sets 500 on an error that
 * comes after the headers, before it finds it cannot send them).
 */
function sentStatus(res: ServerResponse): number {
  const header = (res as { _header?: unknown })._header;
  if (typeof header === 'string' && header.startsWith('HTTP/')) {
    const status = Number(header.slice(9, 12));
    if (Number.isInteger(status) && status >= 100) return status;
  }
  return res.statusCode;
}

/**
 * True when `res`'s headers went out. A response queued behind another on its connection
 * (pipelined) has none until its turn: what it wrote waits in its own buffer, its headers
 * "sent" though nothing reached the connection.
 */
function headersWentOut(res: ServerResponse): boolean {
  if (!res.headersSent) return false;
  const waiting = (res as { outputData?: unknown }).outputData;
  return !(res.socket == null && Array.isArray(waiting) && waiting.length > 0);
}

export class WebRequest extends LazyContext implements ResponseWatcher {
  route: string | undefined;
  /** The URL as the client sent it, its password masked. */
  private readonly url: string;
  private routed = false;
  private readonly start = performance.now();
  private failure: { error: unknown } | undefined;
  private ended = false;
  /** True once the request has been open `bornAfter` ms: its context is made when the route is known. */
  private overdue = false;
  /** Its place in the middleware's {@link Births}, -1 when it has none. */
  private place = -1;
  /** The last fields, when the request ended before its context was made: one `transient` message. */
  private last: Record<string, unknown> | undefined;
  /** The id that message went with. */
  private sentAs: string | undefined;
  /** The OpenTelemetry context the request arrived in (its server span), for a context made later. */
  private readonly otel = captureTraceContext();

  constructor(
    private readonly settings: WebSettings,
    private readonly method: string,
    url: string,
    private readonly headers: IncomingHttpHeaders,
    private readonly res: ServerResponse,
    /** The request's connection. */
    private readonly socket: unknown,
  ) {
    super();
    // An absolute-form target (`GET http://user:password@host/path`) may hold a password.
    this.url = url.startsWith('/') ? url : redactUrl(url);
    const births = settings.births;
    if (births === null) this.overdue = true;
    else this.place = births.add(this, this.start);
  }

  /**
   * Ends the context when the response finishes (with `finish`; a framework that says so itself
   * calls {@link end}) or when the connection closes first.
   */
  watch(finish: boolean): void {
    watchResponse(this.socket, this.res, this, finish);
  }

  finished(status: number): void {
    this.end(status, false);
  }

  closed(): void {
    this.abort();
  }

  /** A route matched: recorded, and the context made now if the request is overdue (or, made already, its `route` follows). */
  matched(route: string | undefined): void {
    this.route = route;
    this.routed = true;
    if (this.overdue) this.announce();
  }

  /** The request has been open `bornAfter` ms: its context is made now, or when its route is known. */
  due(): void {
    this.place = -1;
    this.catchUp();
    this.overdue = true;
    if (this.routed) this.announce();
  }

  /**
   * The route the framework matched where the integration did not hear it (see the Express
   * middleware's requests), or null when there is none: looked for before the context is named.
   */
  protected unheardRoute(): { route: string | undefined } | null {
    return null;
  }

  /** Takes a route matched unheard (see {@link unheardRoute}), when none was heard. */
  private catchUp(): void {
    if (this.routed) return;
    try {
      const found = this.unheardRoute();
      if (found === null) return;
      this.route = found.route;
      this.routed = true;
    } catch {
      /* reading the framework's request must not throw into the server */
    }
  }

  private announce(): void {
    try {
      if (!this.ended) this.get();
    } catch {
      /* called from inside the framework's routing or a timer: nothing may throw there */
    }
  }

  /**
   * The handler failed with `error` (the last one reported wins), but for Node's refusal to send
   * headers a second time, reported after another error: the framework's failure to answer that
   * one (the status could not go out, the headers had), not the cause.
   */
  fail(error: unknown): void {
    if (this.failure !== undefined && (error as { code?: unknown } | null)?.code === 'ERR_HTTP_HEADERS_SENT') return;
    this.failure = { error };
  }

  /** The connection closed before the response finished: the status is kept if it was sent. */
  abort(): void {
    const res = this.res;
    if (!res.writableFinished) this.end(headersWentOut(res) ? sentStatus(res) : undefined, true);
  }

  /**
   * The response finished (`status` sent) or the connection closed first (`aborted`): the context
   * gets its last fields and finishes, or, not made yet, is sent whole as one `transient` message.
   * Only the first call counts.
   */
  end(status: number | undefined, aborted: boolean): void {
    if (this.ended) return;
    this.ended = true;
    forget(this.socket, this);
    if (this.place !== -1) {
      this.settings.births!.remove(this.place);
      this.place = -1;
    }
    this.catchUp();
    try {
      const fields: Record<string, unknown> = {};
      if (status !== undefined) fields.status_code = status;
      if (aborted) fields.aborted = true;
      if (this.failure !== undefined) fields.error = describe(this.failure.error);
      fields.elapsed = Math.round((performance.now() - this.start) * 1000) / 1e6;
      const made = this.made;
      if (made === undefined) {
        // Nothing asked for the context: its one message is sent without making it (a context
        // asked for later, after the end, is made then with the same id).
        this.last = fields;
        this.sentAs = inTraceContext(this.otel, () => this.named(sendTransient));
        return;
      }
      if (this.route !== undefined && made.context.route !== this.route) fields.route = this.route;
      made.finish(fields); // one message: the last fields and finished
    } catch {
      /* the server comes first: a context that cannot be sent is the handler's to count */
    }
  }

  protected make(): Context {
    return inTraceContext(this.otel, () => this.build());
  }

  private build(): Context {
    if (this.place !== -1) {
      this.settings.births!.remove(this.place);
      this.place = -1;
    }
    this.catchUp();
    const sentAs = this.sentAs;
    return this.named((options) =>
      requestContext(sentAs === undefined ? options : { ...options, guid: sentAs }, this.start, sentAs !== undefined),
    );
  }

  /**
   * `send` given the options of the request's context: its name (the `name` option's, or the
   * default when that throws or gives a key the broker cannot take, with the reason in
   * `name_error`), and its fields, with the last ones once it ended (then it is transient).
   */
  private named<R>(send: (options: ContextOptions) => R): R {
    const info: RequestInfo = { method: this.method, route: this.route, url: this.url };
    const fields: Record<string, unknown> = { method: this.method, url: this.url };
    if (this.route !== undefined) fields.route = this.route;
    const wanted = this.settings.headers;
    if (wanted.length > 0) {
      const recorded: Record<string, unknown> = {};
      for (const h of wanted) {
        // Own headers only: a name such as `constructor` must not read the object's prototype.
        const v = Object.hasOwn(this.headers, h) ? this.headers[h] : undefined;
        if (v !== undefined) setOwn(recorded, h, v);
      }
      fields.headers = recorded;
    }
    const last = this.last;
    const transient = last !== undefined;
    if (transient) Object.assign(fields, last);
    const handler = this.settings.handler;
    try {
      const name = givenKey('name', this.settings.name(info));
      const routingKey =
        this.settings.routingKey === undefined ? undefined : givenKey('routingKey', this.settings.routingKey(info));
      return send({ name, routingKey, context: fields, handler, transient });
    } catch (err) {
      // A name function that throws or gives a key the broker cannot take: the request is still
      // recorded, under the default name (or the method alone), with the reason in `name_error`.
      fields.name_error = describe(err).message;
      try {
        return send({ name: defaultName(info), context: fields, handler, transient });
      } catch {
        return send({ name: defaultName({ ...info, route: undefined }), context: fields, handler, transient });
      }
    }
  }
}
