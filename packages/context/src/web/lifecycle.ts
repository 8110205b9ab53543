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
import type { ServerResponse } from 'node:http';

/** What is told of one response. */
export interface ResponseWatcher {
  /** The response finished with this status. */
  finished(status: number): void;
  /** The connection closed before the response finished. */
  closed(): void;
}

const kWatcher = Symbol('contexture.web.watcher');
const kOpen = Symbol('contexture.web.open');

interface WatchedSocket {
  [kOpen]?: Set<ResponseWatcher> | undefined;
  closed?: boolean;
  once(event: 'close', listener: () => void): unknown;
}
type WatchedResponse = ServerResponse & { [kWatcher]?: ResponseWatcher | undefined };

let subscribed = false;

function onResponseFinish(message: unknown): void {
  try {
    const res = (message as { response?: WatchedResponse } | null)?.response;
    const watcher = res?.[kWatcher];
    if (watcher === undefined) return;
    forget(res!, watcher);
    watcher.finished(res!.statusCode);
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
 * Tells `watcher` when `res` finishes (with `finish`; a framework that says so itself passes false
 * and calls {@link forget}) or when its connection closes before that.
 */
export function watchResponse(res: ServerResponse, watcher: ResponseWatcher, finish: boolean): void {
  const r = res as WatchedResponse;
  if ((res as { stream?: unknown }).stream !== undefined) {
    // HTTP/2 (compatibility API): a stream can end without its connection; listeners it is.
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
    r[kWatcher] = watcher;
  }
  const socket = res.socket as unknown as WatchedSocket | null;
  if (socket === null || socket.closed === true) {
    // The connection is gone already (or this response has none): nothing will finish.
    setImmediate(() => {
      if (!res.writableFinished) watcher.closed();
    });
    return;
  }
  let open = socket[kOpen];
  if (open === undefined) {
    open = new Set();
    socket[kOpen] = open;
    socket.once('close', () => onSocketClose(socket));
  }
  open.add(watcher);
}

/** Stops watching `res` for `watcher` (its response finished). */
export function forget(res: ServerResponse, watcher: ResponseWatcher): void {
  const r = res as WatchedResponse;
  if (r[kWatcher] === watcher) r[kWatcher] = undefined;
  (res.socket as unknown as WatchedSocket | null)?.[kOpen]?.delete(watcher);
}
