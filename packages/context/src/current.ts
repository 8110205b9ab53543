/**
 * The current context: one AsyncLocalStorage shared by `Context.wrap`, `Context.run` and the web
 * middleware, which makes a {@link LazyContext} current before its context exists.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context } from './context.js';

/**
 * A context made on first use, for a web middleware that must make "the request's context" current
 * before the route (and so the name) is known. Internal: `Context.current()` makes it. A subclass
 * says how it is made; the request itself is the store, so a request costs no closure.
 */
export abstract class LazyContext {
  private ctx: Context | undefined;
  get(): Context {
    if (this.ctx === undefined) this.ctx = this.make();
    return this.ctx;
  }
  /** The context, if made already. */
  get made(): Context | undefined {
    return this.ctx;
  }
  protected abstract make(): Context;
}

export const als = new AsyncLocalStorage<Context | LazyContext>();

/** Runs `fn` with `lazy` current (internal, for the web middleware). */
export function runLazy<R>(lazy: LazyContext, fn: () => R): R {
  return als.run(lazy, fn);
}

/**
 * Makes `lazy` current for the rest of the running synchronous code and what it schedules: for a
 * framework that resumes a request from a stream callback (after a body parser), outside the
 * async chain the middleware started.
 */
export function enterLazy(lazy: LazyContext): void {
  if (als.getStore() !== lazy) als.enterWith(lazy);
}
