/**
 * Hides the password of a URL so it can be logged: `amqp://guest:guest@host` → `amqp://guest:***@host`.
 * Strings that are not URLs are returned with anything between `:` and `@` after the scheme masked.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) {
      parsed.password = '***';
      return parsed.toString();
    }
    return url;
  } catch {
    return url.replace(/(\/\/[^:/@]*:)[^@/]*@/, '$1***@');
  }
}

/** Masks every URL password that appears inside a free text (an error message, say). */
export function redactText(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@/\s]*@/gi, '$1***@');
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
