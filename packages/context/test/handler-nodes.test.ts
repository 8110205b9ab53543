import { expect } from 'chai';
import { inspect } from 'node:util';
import { Context, type ContextError, Handler, optionsFromEnv, resolveOptions } from '@contexture/context';
import { parseAmqpUrls } from '@contexture/context/internal';
import { amqpUrl, Cleanup, TestConsumer, uniqueName, waitUntil, brokerProxy } from '@contexture/test-support';

/** The test broker's URL (with its user and password) at another port: a proxy of it. */
function urlAt(port: number): string {
  const u = new URL(amqpUrl());
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString();
}

function refusal(fn: () => unknown): ContextError {
  try {
    fn();
  } catch (err) {
    return err as ContextError;
  }
  throw new Error('expected a refusal');
}

describe('Handler: the nodes of a cluster as a URL list (two loopback proxies of the real broker)', () => {
  let cleanup: Cleanup;
  let exchange: string;

  beforeEach(() => {
    cleanup = new Cleanup();
    exchange = cleanup.exchange(uniqueName('nodes-x'));
  });
  afterEach(() => cleanup.run());

  it('a node lost mid-stream: the next one takes over, the warnings name both by host:port, nothing is lost', async function () {
    this.timeout(60_000);
    const consumer = await TestConsumer.start({ exchange });
    cleanup.defer(() => consumer.close());
    const a = await brokerProxy(cleanup);
    const b = await brokerProxy(cleanup);
    const warnings: string[] = [];
    const handler = new Handler({
      url: [urlAt(a.port), urlAt(b.port)],
      exchange,
      bufferSize: 20_000,
      flushInterval: 1,
      reconnect: { initialDelay: 20, maxDelay: 200 },
      logger: { warn: (m: string) => warnings.push(m) },
    });
    cleanup.defer(() => handler.close());
    let produced = 0;
    const contexts: Context[] = [];
    const tick = () => {
      for (let i = 0; i < 20; i++) {
        if (produced % 50 === 0) contexts.push(new Context({ name: 'nodes', handler }));
        else contexts.at(-1)!.n = produced;
        produced++;
      }
    };
    const timer = setInterval(tick, 2);
    cleanup.defer(() => clearInterval(timer));
    await waitUntil(() => handler.stats().published > 500, '500 messages published');
    expect(a.connections).to.equal(1);
    expect(b.connections).to.equal(0);
    // Node a goes for good: the handler must move to b, resending what a had not confirmed.
    a.cut();
    await waitUntil(() => handler.stats().reconnects >= 1, 'a reconnect');
    expect(b.connections).to.equal(1);
    const at = handler.stats().published;
    await waitUntil(() => handler.stats().published > at + 500, 'publishing through b');
    clearInterval(timer);
    expect(await handler.flush(20_000)).to.equal(true);
    const s = handler.stats();
    expect(s.enqueued).to.equal(produced);
    expect(s.published + s.dropped).to.equal(produced);
    expect(s.dropped).to.equal(0);
    const seen = new Set<string>();
    await waitUntil(() => {
      for (const r of consumer.received) seen.add(`${r.json.obj_id}:${r.json.seq}`);
      return seen.size >= produced;
    }, `${produced} distinct messages`);
    expect(seen.size).to.equal(produced);
    const lost = warnings.find((w) => w.includes('cannot publish'));
    expect(lost).to.contain(`cannot publish to 127.0.0.1:${a.port}`);
    expect(lost).to.contain(`next: 127.0.0.1:${b.port}, one of 2 nodes`);
    const back = warnings.find((w) => w.includes('again after'));
    expect(back).to.match(
      new RegExp(`publishing to 127\\.0\\.0\\.1:${b.port} \\(took over from 127\\.0\\.0\\.1:${a.port}\\) again after`),
    );
    const password = new URL(amqpUrl()).password;
    for (const w of warnings) expect(w).to.not.contain(`:${password}@`);
  });

  it('a dead first node (a comma-separated list, as CONTEXTURE_URL gives it): the next one is used at once', async () => {
    const consumer = await TestConsumer.start({ exchange });
    cleanup.defer(() => consumer.close());
    const dead = await brokerProxy(cleanup);
    dead.cut();
    const live = await brokerProxy(cleanup);
    const opts = resolveOptions(
      { exchange, logger: null, reconnect: { initialDelay: 10, maxDelay: 50 } },
      { CONTEXTURE_URL: `${urlAt(dead.port)},${urlAt(live.port)}` },
      '/nonexistent',
    );
    const handler = new Handler(opts);
    cleanup.defer(() => handler.close());
    const ctx = new Context({ name: 'dead-live', handler });
    ctx.x = 1;
    expect(await handler.flush(10_000)).to.equal(true);
    await consumer.waitFor(2);
    expect(handler.stats()).to.include({ published: 2, dropped: 0 });
    expect(live.accepted).to.equal(1);
    expect(handler.options.url).to.equal(
      `${urlAt(dead.port).replace(/:[^:@/]*@/, ':***@')},${urlAt(live.port).replace(/:[^:@/]*@/, ':***@')}`,
    );
  });

  it('a list with an entry that does not parse is refused, naming the entry and never a password', () => {
    const good = 'amqp://app:s3cret@127.0.0.1:5672/%2F';
    const cases: Array<[unknown, RegExp]> = [
      [`${good},amqp://app:s3cret@`, /url entry 2 of 2 names no host|url entry 2 of 2 is not a URL that parses/],
      [[good, 'http://app:s3cret@host'], /url entry 2 of 2 is not a URL of amqp:\/\/ or amqps:\/\//],
      // Split on commas, an unencoded comma in a password makes a piece that is no URL.
      [`${good},amqp://app:s3c,ret@host`, /url entry 2 of 3 is not a URL that parses .*percent-encoded/],
      [[good, 42], /url entry 2 of 2 is empty or not a string/],
      [`${good},,${good}`, /url entry 2 of 3 is empty/],
    ];
    for (const [url, want] of cases) {
      const err = refusal(() => new Handler({ url: url as string, logger: null }));
      expect(err.code, String(url)).to.equal('LC_CONFIG_INVALID');
      expect(err.message).to.match(want);
      expect(err.message).to.not.contain('s3c');
      expect(inspect(err, { depth: 10 })).to.not.contain('s3c');
    }
    const env = refusal(() => new Handler(resolveOptions({}, { CONTEXTURE_URL: `${good},nope` }, '/nonexistent')));
    expect(env.message).to.match(/url entry 2 of 2 is not a URL that parses/);
    expect(env.message).to.not.contain('s3c');
    // The environment reader takes the list as it is; the handler checks it.
    expect(optionsFromEnv({ CONTEXTURE_URL: `${good},${good}` }).url).to.equal(`${good},${good}`);
    expect(parseAmqpUrls(` ${good} , ${good} `)).to.deep.equal({ ok: true, urls: [good, good] });
  });

  it('passwords stay masked in every form: array, list, options, util.inspect, JSON.stringify', async () => {
    const u = new URL(amqpUrl());
    u.hostname = '127.0.0.1';
    const one = u.toString();
    const password = u.password;
    expect(password).to.not.equal('');
    for (const url of [[one, one], `${one},${one}`]) {
      const handler = new Handler({ url, exchange, logger: null });
      new Context({ name: 'printed', handler });
      expect(await handler.flush(10_000)).to.equal(true);
      for (const shown of [inspect(handler, { depth: 12 }), JSON.stringify(handler.options), handler.options.url])
        expect(shown).to.not.contain(`:${password}@`);
      expect(handler.options.url.split(',')).to.have.length(2);
      expect(handler.options.url).to.contain(':***@');
      await handler.close();
    }
  });
});
