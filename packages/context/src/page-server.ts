/**
 * What the two live pages (`lcmon --web`, `contexture-store web`) share on their server side: the
 * `[HOST:]PORT` they listen on, the security headers of every answer, the page's files, and
 * the checks every request goes through before it reaches the page's own routes.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Where a page listens. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** The host a page listens on unless told: this machine only. */
export const DEFAULT_WEB_HOST = '127.0.0.1';

/**
 * Reads `[HOST:]PORT` (`8080`, `127.0.0.1:8080`, `[::1]:8080`, `0.0.0.0:8080`); undefined when it
 * is not one. Port 0 asks for any free port.
 */
export function parseListenAddress(text: string): ListenAddress | undefined {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(text);
  if (m === null) return undefined;
  const port = Number(m[2]);
  if (port > 65_535) return undefined;
  const host = m[1] === undefined ? DEFAULT_WEB_HOST : m[1].replace(/^\[(.*)\]$/, '$1');
  return { host, port };
}

/** True for a host name or address of this machine only. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The headers of every answer. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  // Nothing inline, nothing from elsewhere: even if data reached the DOM as markup, it would not run.
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
});

/** JSON for the browser: big integers as their digits in a string, NaN and the infinities as words in a string. */
export function pageJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    typeof v === 'bigint' ? v.toString() : typeof v === 'number' && !Number.isFinite(v) ? String(v) : v,
  );
}

/** What a page serves: its own three files, and the two that both pages share (`shared`). */
const FILES: Record<string, { file: string; type: string; shared?: true }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
  '/page.js': { file: 'page.js', type: 'text/javascript; charset=utf-8', shared: true },
  '/page.css': { file: 'page.css', type: 'text/css; charset=utf-8', shared: true },
};

/** Where the shared files are: this package's `web/` (from `dist/src/`). */
const SHARED_ROOT = new URL('../../web/', import.meta.url);

/**
 * A page's files, read once: plain files, no build step. `index.html`, `app.js` and `style.css`
 * under `root`; `page.js` (a module its app.js imports) and `page.css` (loaded before its
 * style.css) from this package, the same for both pages.
 */
export class PageFiles {
  private readonly files = new Map<string, Buffer>();

  constructor(root: URL) {
    for (const { file, shared } of Object.values(FILES))
      this.files.set(file, readFileSync(new URL(file, shared ? SHARED_ROOT : root)));
  }

  /**
   * Answers what every request of a page listening on `listenHost` must pass first: a URL or Host
   * that cannot be read (400), on loopback a Host that is not this machine's (403: a page of
   * another site whose name a browser resolved to 127.0.0.1, DNS rebinding, gets nothing), a
   * method other than GET and HEAD (405), one of the page's files. Returns the URL when the
   * request is for the page's own routes, undefined when it was answered.
   */
  serve(req: IncomingMessage, res: ServerResponse, listenHost: string): URL | undefined {
    let url: URL;
    let host: string;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
      host = new URL(`http://${req.headers.host ?? ''}`).hostname;
    } catch {
      res.writeHead(400, PAGE_HEADERS).end();
      return undefined;
    }
    if (isLoopback(listenHost) && !isLoopback(host)) {
      res.writeHead(403, { ...PAGE_HEADERS, 'Content-Type': 'text/plain' }).end('unexpected Host header\n');
      return undefined;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...PAGE_HEADERS, Allow: 'GET, HEAD' }).end();
      return undefined;
    }
    const f = Object.hasOwn(FILES, url.pathname) ? FILES[url.pathname] : undefined;
    if (f !== undefined) {
      res.writeHead(200, { ...PAGE_HEADERS, 'Content-Type': f.type }).end(this.files.get(f.file));
      return undefined;
    }
    return url;
  }
}
