/**
 * Seconds between AMQP heartbeats unless the URL sets its own. The broker then sends something at
 * least every half of it, and watchSilence() takes a broker silent for twice this (10 s) as lost.
 */
export const AMQP_HEARTBEAT_SECONDS = 5;

/**
 * The AMQP URL with `heartbeat` set when it has none: the broker's default (60 s, and a dead peer
 * is noticed after about three times that) would leave a stalled connection unnoticed for minutes.
 */
export function withAmqpHeartbeat(url: string, seconds = AMQP_HEARTBEAT_SECONDS): string {
  try {
    const u = new URL(url);
    if (u.searchParams.has('heartbeat')) return url;
    u.searchParams.set('heartbeat', String(seconds));
    return u.toString();
  } catch {
    return url;
  }
}

/**
 * What a failed AMQP connect says of a refusal: `login` (ACCESS_REFUSED, NOT_ALLOWED…), `vhost`
 * (the broker closed the connection instead of opening the vhost: amqplib says only that), or null
 * when the broker was not reached or the failure is something else.
 */
export function amqpRefusal(reason: string): 'login' | 'vhost' | null {
  if (/ACCESS.REFUSED|NOT.ALLOWED|\b403\b|\b530\b/.test(reason)) return 'login';
  if (/Expected ConnectionOpenOk; got <ConnectionClose/.test(reason)) return 'vhost';
  return null;
}
