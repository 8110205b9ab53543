/**
 * When a request's response finishes, or its connection closes first, heard without a listener
 * on each response: one costs a minimal Express request about a tenth more CPU (counted with
 * callgrind: about 65,000 more instructions on 790,000, for `res.on('finish')` alone). Instead,
 * Node publishes every finished response on the `http.server.response.finish` diagnostics
 * channel, heard by one subscriber for the whole process, and a connection's close is heard by one
 * listener per connection (a keep-alive connection carries many requests) for all the requests
 * still open on it.
 */
import { subscribe } from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { Socket } from 'node:net';

/** What is told of one response. */
export interface ResponseWatcher {
  /** The response finished with this status; the watcher calls {@link forget} as it ends. */
  finished(status: number): void;
  /** The connection closed before the response finished. */
  closed(): void;
}

const kOpen = Symbol('contexture.web.open');

interface WatchedSocket {
  [kOpen]?: Set<ResponseWatcher> | undefined;
}

/**
 * The watcher of each response. A WeakMap rather than a property: Node and the frameworks change
 * a response's shape as it goes (Express even swaps its prototype), and one more property of our
 * own cost a map migration in V8 at each response.
 */
const watchers = new WeakMap<ServerResponse, ResponseWatcher>();

let subscribed = false;

function onResponseFinish(message: unknown): void {
  try {
    const res = (message as { response?: ServerResponse } | null)?.response;
    const watcher = res === undefined ? undefined : watchers.get(res);
    // The watcher forgets itself as it ends (WebRequest.end()).
    if (watcher !== undefined) watcher.finished(res!.statusCode);
  } catch {
    /* a subscriber that throws would throw into the server */
  }
}

function onSocketClose(socket: WatchedSocket): void {
  const open = socket[kOpen];
  socket[kOpen] = undefined;
  if (open === undefined) return;
  for (const watcher of open) {
    try {
      watcher.closed();
    } catch {
      /* one request's failure must not keep the others open */
    }
  }
}

/**
 * The connections of each server that carry requests being watched: when the server closes, they
 * are gone. Node emits the server's `close` (and calls the callback of `server.close()`, which
 * Fastify's `close()` waits for) once its connections are destroyed, but before their own `close`
 * events: a program that closes its handler there (as it should, once the server is closed) must
 * find the requests the server dropped finished already, not finishing after the handler closed.
 */
const serverSockets = new WeakMap<EventEmitter, Set<Socket & WatchedSocket>>();

function onServerClose(server: EventEmitter): void {
  const sockets = serverSockets.get(server);
  serverSockets.delete(server);
  if (sockets === undefined) return;
  for (const s of sockets) onSocketClose(s);
}

/**
 * Watches `s`'s server, if any, so that its requests end at the latest when the server closes;
 * returns the set `s` is in then.
 */
function watchServer(s: Socket & WatchedSocket): Set<Socket> | undefined {
  const server = (s as { server?: unknown }).server;
  if (!(server instanceof EventEmitter)) return undefined;
  let sockets = serverSockets.get(server);
  if (sockets === undefined) {
    sockets = new Set();
    serverSockets.set(server, sockets);
    server.once('close', () => onServerClose(server));
  }
  sockets.add(s);
  return sockets;
}

/**
 * Tells `watcher` when `res` finishes (with `finish`) or when the connection `socket` (the
 * request's) closes before that. A response that Node's own HTTP/1 server does not send (an
 * HTTP/2 stream, Fastify's `inject()`, a serverless adapter's fake socket) is watched with
 * listeners: Node publishes none of them on the channel.
 */
export function watchResponse(socket: unknown, res: ServerResponse, watcher: ResponseWatcher, finish: boolean): void {
  if (!(socket instanceof Socket) || (res as { stream?: unknown }).stream !== undefined) {
    if (finish) res.once('finish', () => watcher.finished(res.statusCode));
    res.once('close', () => {
      if (!res.writableFinished) watcher.closed();
    });
    return;
  }
  if (finish) {
    if (!subscribed) {
      subscribe('http.server.response.finish', onResponseFinish);
      subscribed = true;
    }
    watchers.set(res, watcher);
  }
  // The request's socket, not the response's: a request queued behind another on its connection
  // (pipelined) has a response without a socket until its turn.
  const s = socket as Socket & WatchedSocket;
  if (s.closed === true || s.destroyed) {
    // The connection is gone already: nothing will finish.
    setImmediate(() => {
      if (!res.writableFinished) watcher.closed();
    });
    return;
  }
  let open = s[kOpen];
  if (open === undefined) {
    open = new Set();
    s[kOpen] = open;
    const sockets = watchServer(s);
    s.once('close', () => {
      sockets?.delete(s);
      onSocketClose(s);
    });
  }
  open.add(watcher);
}

/**
 * Stops watching the connection `socket` for `watcher`: its request ended. The response's entry
 * is left to go with the response (a WeakMap's); a finish heard after the end finds a watcher
 * that ignores it, as every call after the first.
 */
export function forget(socket: unknown, watcher: ResponseWatcher): void {
  if (socket instanceof Socket) (socket as Socket & WatchedSocket)[kOpen]?.delete(watcher);
}
