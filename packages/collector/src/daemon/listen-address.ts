/** Where `contexture-store web` listens. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** The host `web PORT` listens on: this machine only. */
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
