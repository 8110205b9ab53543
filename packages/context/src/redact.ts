/**
 * Hides the password of a URL so it can be logged: `amqp://guest:guest@host` → `amqp://guest:***@host`.
 * Strings that are not URLs are returned with anything between `:` and `@` after the scheme masked.
 */
export function redactUrl(url: string): string {
  // The parser takes such a password for a host, a port and a path: all of it is masked.
  if (strayAt(url))
    return url.replace(
      /^([a-z][a-z0-9+.-]*:\/\/)([^:/?#@\s]*:)?[\s\S]*@/i,
      (_, scheme: string, user?: string) => `${scheme}${user ?? ''}***@`,
    );
  try {
    const parsed = new URL(url);
    if (parsed.password) {
      parsed.password = '***';
      return parsed.toString();
    }
    // A URL with a host and no password has nothing to hide; one without a host may be a
    // mistyped one whose credentials sit in its path (amqp:/user:pass@host).
    if (parsed.host !== '' || !url.includes('@')) return url;
  } catch {
    /* below */
  }
  // Up to the last '@': a password that was not percent-encoded may hold '/' or '@'.
  return url.replace(/^([a-z][a-z0-9+.-]*:\/*[^:/@\s]*:)\S*@/i, '$1***@');
}

/**
 * True when a `scheme://` URL has an '@' after its authority (past the first `/`, `?` or `#`): a
 * password holding one of those that was not percent-encoded (`amqp://u:12/pw@host`), which the
 * URL parser reads as host `u`, port 12 and a path.
 */
export function strayAt(url: string): boolean {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*([/?#][\s\S]*)?$/i.exec(url);
  return m?.[1]?.includes('@') === true;
}

/**
 * Masks every URL password that appears inside a free text (an error message, say): up to the
 * last '@' before a space, as a password that was not percent-encoded may hold '/' or '@'.
 */
export function redactText(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)\S*@/gi, '$1***@');
}

/** `host:port` of a URL, for messages that must name the peer without credentials. */
export function hostPort(url: string, defaultPort: number): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || 'localhost'}:${parsed.port || defaultPort}`;
  } catch {
    return '(unparsable url)';
  }
}
