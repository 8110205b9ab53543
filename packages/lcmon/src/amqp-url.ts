/** The URL `-H host` stands for: guest on the default vhost. */
export function urlForHost(hostname: string): string {
  const host = hostname.includes(':') && !hostname.startsWith('[') ? `[${hostname}]` : hostname;
  return `amqp://guest:guest@${host}:5672/%2F`;
}
