import { expect } from 'chai';
import { Context, ContextError, Handler, type HandlerStats } from '@contexture/context';
import { amqpUrl, Cleanup, TestConsumer, uniqueName, waitUntil } from '@contexture/test-support';

const balanced = (s: HandlerStats) => s.enqueued === s.published + s.dropped + s.queued + s.inFlight;

describe('Handler faults: a mismatched exchange, confirms lost in an outage, a silent broker', function () {
  this.timeout(60_000);
  let cleanup: Cleanup;

  beforeEach(() => {
    cleanup = new Cleanup();
  });
  afterEach(() => cleanup.run());

  for (const type of ['direct', 'headers'] as const)
    it(`an exchange that exists as ${type}: one warning, lastError, an error event (LC_HANDLER_EXCHANGE_MISMATCH), every message counted as dropped`, async () => {
      const exchange = cleanup.exchange(uniqueName(`hf-${type}`));
      const witness = await TestConsumer.start({ exchange, type, bindingKey: 'mismatch', bindingArgs: {} });
      cleanup.defer(() => witness.close());
      const warnings: string[] = [];
      const errors: unknown[] = [];
      const handler = new Handler({
        url: amqpUrl(),
        exchange,
        flushInterval: 1,
        logger: { warn: (m) => warnings.push(m) },
        reconnect: { initialDelay: 10, maxDelay: 50 },
      });
      cleanup.defer(() => handler.close());
      handler.on('error', (err: unknown) => errors.push(err));
      const ctx = new Context({ name: 'mismatch', handler });
      for (let i = 0; i < 9; i++) ctx.i = i;
      await waitUntil(() => errors.length > 0, 'the error event');
      const err = errors[0] as ContextError;
      expect(err).to.be.instanceOf(ContextError);
      expect(err.code).to.equal('LC_HANDLER_EXCHANGE_MISMATCH');
      expect(err.message).to.contain(`received 'topic' but current is '${type}'`);
      expect(handler.stats().lastError).to.equal(err.message);
      // Later messages are counted too, and nothing is retried or said again.
      for (let i = 0; i < 5; i++) new Context({ name: 'mismatch', handler, transient: true });
      await handler.close();
      const s = handler.stats();
      expect(s).to.include({ status: 'closed', enqueued: 15, published: 0, dropped: 15, queued: 0, inFlight: 0 });
      expect(balanced(s)).to.equal(true);
      expect(errors).to.have.length(1);
      expect(warnings, warnings.join('\n')).to.have.length(1);
      expect(warnings[0]).to.match(
        new RegExp(`^contexture: stopped publishing: exchange '${exchange}' exists with other arguments`),
      );
      expect(witness.received).to.have.length(0);
    });
});
