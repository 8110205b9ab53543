import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Context, Handler } from '@contexture/context';
import { amqpUrl, Cleanup, TestConsumer, probeAmqp, uniqueName, waitUntil } from '@contexture/test-support';

const exec = promisify(execFile);

/** Stops and starts the RabbitMQ application on this machine (the real broker, not a proxy). */
async function restartBroker(): Promise<void> {
  await exec('rabbitmqctl', ['stop_app'], { timeout: 60_000 });
  try {
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    await exec('rabbitmqctl', ['start_app'], { timeout: 120_000 });
    await exec('rabbitmqctl', ['await_startup'], { timeout: 120_000 });
  }
}

describe('Handler: a real RabbitMQ restart while a program publishes steadily', function () {
  this.timeout(180_000);
  let cleanup: Cleanup;

  before(async function () {
    if (process.env.CONTEXTURE_TEST_BROKER_RESTART !== '1') {
      // It stops the RabbitMQ of this machine for a moment: on a shared machine, only when asked.
      process.stderr.write(
        '  skipped: the broker restart test stops the local RabbitMQ; set CONTEXTURE_TEST_BROKER_RESTART=1 to run it (CI does)\n',
      );
      this.skip();
    }
    const u = new URL(amqpUrl());
    if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(u.hostname)) {
      throw new Error(
        `this test restarts the broker with rabbitmqctl, so AMQP_URL must point at this machine (it is ${u.hostname})`,
      );
    }
  });

  beforeEach(() => {
    cleanup = new Cleanup();
  });
  afterEach(async () => {
    // Whatever happened, leave the broker running for the next test.
    await exec('rabbitmqctl', ['start_app'], { timeout: 120_000 }).catch(() => {});
    await exec('rabbitmqctl', ['await_startup'], { timeout: 120_000 }).catch(() => {});
    await cleanup.run();
  });

  it('no exception reaches the program, it reconnects alone, published + dropped = produced, and every (obj_id, seq) arrives', async () => {
    const exchange = cleanup.exchange(uniqueName('restart-x'));
    const queue = cleanup.queue(uniqueName('restart-q'));
    // A durable queue and persistent messages: what the broker confirmed survives its restart.
    const first = await TestConsumer.start({ exchange, queue });
    cleanup.defer(() => first.close());
    const handler = new Handler({
      url: amqpUrl(),
      exchange,
      persistent: true,
      bufferSize: 100_000,
      flushInterval: 2,
      logger: null,
      reconnect: { initialDelay: 100, maxDelay: 1000 },
    });
    cleanup.defer(() => handler.close());

    let produced = 0;
    let thrown: unknown = null;
    const contexts: Context[] = [];
    const timer = setInterval(() => {
      try {
        for (let i = 0; i < 5; i++) {
          if (produced % 40 === 0) contexts.push(new Context({ name: 'restart', handler }));
          else contexts.at(-1)!.n = produced;
          produced++;
        }
      } catch (err) {
        thrown = err;
      }
    }, 5);
    cleanup.defer(() => clearInterval(timer));

    await waitUntil(() => handler.stats().published > 300, '300 messages published', 20_000);
    await restartBroker();
    await probeAmqp(new URL(amqpUrl()).hostname, Number(new URL(amqpUrl()).port || 5672));
    const second = await TestConsumer.start({ exchange, queue });
    cleanup.defer(() => second.close());
    await waitUntil(() => handler.stats().reconnects >= 1, 'the handler to reconnect', 60_000);
    const after = produced;
    await waitUntil(() => produced > after + 300, 'more production after the restart', 20_000);
    clearInterval(timer);
    expect(await handler.flush(30_000)).to.equal(true);

    const s = handler.stats();
    expect(thrown).to.equal(null);
    expect(s.enqueued).to.equal(produced);
    expect(s.published + s.dropped).to.equal(produced);
    expect(s.dropped).to.equal(0);

    const seen = new Set<string>();
    const collect = () => {
      for (const c of [first, second]) for (const r of c.received) seen.add(`${r.json.obj_id}:${r.json.seq}`);
      return seen.size >= produced;
    };
    await waitUntil(collect, `${produced} distinct (obj_id, seq)`, 30_000).catch(() => {});
    const missing: string[] = [];
    contexts.forEach((c, i) => {
      const last = i === contexts.length - 1 ? (produced - 1) % 40 : 39;
      for (let seq = 0; seq <= last; seq++)
        if (!seen.has(`${Context.idOf(c)}:${seq}`)) missing.push(`${Context.idOf(c)}:${seq}`);
    });
    expect(missing.slice(0, 10)).to.deep.equal([]);
    expect(seen.size).to.equal(produced);
  });
});
