import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ContextError, Handler, HANDLER_DEFAULTS, optionsFromEnv, resolveOptions } from '@contexture/context';
import { redactUrl } from '@contexture/context/internal';

describe('configuration: configure() options > CONTEXTURE_* variables > config file > defaults', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'contexture-config-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('takes each option from the strongest source that sets it', () => {
    fs.writeFileSync(
      path.join(dir, 'contexture.config.json'),
      JSON.stringify({ url: 'jsonl:/from-file', exchange: 'file-x', bufferSize: 7, batch: true }),
    );
    const env = {
      CONTEXTURE_EXCHANGE: 'env-x',
      CONTEXTURE_BUFFER_SIZE: '9',
      CONTEXTURE_WAIT: 'yes',
      CONTEXTURE_HEADERS: '{"team":"core"}',
    };
    const o = resolveOptions({ bufferSize: 11 }, env, dir);
    expect(o).to.deep.equal({
      url: 'jsonl:/from-file',
      exchange: 'env-x',
      bufferSize: 11,
      batch: true,
      wait: true,
      headers: { team: 'core' },
    });
    const h = new Handler({ ...o, logger: null });
    expect(h.options).to.include({
      url: 'jsonl:/from-file',
      exchange: 'env-x',
      bufferSize: 11,
      batch: true,
      wait: true,
      overflow: HANDLER_DEFAULTS.overflow,
    });
    h.destroy();
  });

  it('CONTEXTURE_CONFIG names the file; a missing named file is an error, a missing default file is not', () => {
    const file = path.join(dir, 'custom.json');
    fs.writeFileSync(file, JSON.stringify({ flushInterval: 3 }));
    expect(resolveOptions({}, { CONTEXTURE_CONFIG: file }, dir)).to.deep.equal({ flushInterval: 3 });
    expect(resolveOptions({}, {}, dir)).to.deep.equal({});
    expect(() => resolveOptions({}, { CONTEXTURE_CONFIG: path.join(dir, 'nope.json') }, dir)).to.throw(
      ContextError,
      /nope\.json/,
    );
  });

  it('bad values give a ContextError naming the source and the key, without the password', () => {
    const cases: Array<[() => unknown, RegExp]> = [
      [
        () => optionsFromEnv({ CONTEXTURE_BUFFER_SIZE: 'lots' }),
        /CONTEXTURE_BUFFER_SIZE must be an integer, got 'lots'/,
      ],
      [() => optionsFromEnv({ CONTEXTURE_WAIT: 'maybe' }), /CONTEXTURE_WAIT must be true or false/],
      [() => optionsFromEnv({ CONTEXTURE_HEADERS: '{' }), /CONTEXTURE_HEADERS must be a JSON object/],
      // A value of the right type but out of range names its variable, not "Handler options".
      [
        () => optionsFromEnv({ CONTEXTURE_OVERFLOW: 'x' }),
        /^environment: CONTEXTURE_OVERFLOW: overflow must be 'drop-oldest', 'drop-newest' or 'block', got 'x'$/,
      ],
      [
        () => resolveOptions({}, { CONTEXTURE_HEARTBEAT_INTERVAL: '50' }),
        /^environment: CONTEXTURE_HEARTBEAT_INTERVAL: heartbeatInterval must be an integer from 100/,
      ],
      [
        () => optionsFromEnv({ CONTEXTURE_EXCHANGE_TYPE: 'fanout' }),
        /^environment: CONTEXTURE_EXCHANGE_TYPE: exchangeType must be 'topic' or 'headers'/,
      ],
      [
        () => optionsFromEnv({ CONTEXTURE_HEADERS: '[1]' }),
        /^environment: CONTEXTURE_HEADERS: headers must be an object/,
      ],
      [
        () => optionsFromEnv({ CONTEXTURE_URL: 'http://u:pw@host/' }),
        /^environment: CONTEXTURE_URL: url must be an amqp:\/\/, amqps:\/\/ or jsonl: URL, got 'http:\/\/u:\*\*\*@host\/'$/,
      ],
      [() => new Handler({ bufferSize: 0 }), /bufferSize must be a positive integer/],
      [() => new Handler({ overflow: 'explode' as never }), /overflow must be/],
      [
        () => new Handler({ url: 'http://u:pw@host/' }),
        /url must be an amqp:\/\/, amqps:\/\/ or jsonl: URL, got 'http:\/\/u:\*\*\*@host\/'/,
      ],
      [() => new Handler({ nope: 1 } as never), /unknown option 'nope'/],
      // Past Node's longest timer (2^31 - 1 ms) a timer fires at once: a flood of heartbeats or reconnects.
      [
        () => new Handler({ heartbeatInterval: 2 ** 31 }),
        /heartbeatInterval must be an integer from 100 to 2147483647/,
      ],
      [() => new Handler({ reconnect: { initialDelay: 2 ** 31 } }), /reconnect.initialDelay must be a number of ms/],
      [() => new Handler({ reconnect: { maxDelay: Number.POSITIVE_INFINITY } }), /reconnect.maxDelay must be/],
      [() => new Handler({ closeTimeout: 1e12 }), /closeTimeout must be a number of ms from 0 to 2147483647/],
      [() => new Handler({ flushInterval: -1 }), /flushInterval must be/],
      [() => new Handler({ connectTimeout: 2 ** 40 }), /connectTimeout must be/],
      [() => new Handler({ reconnect: 'abc' as never }), /reconnect must be an object/],
      [() => new Handler({ reconnect: [1, 2] as never }), /reconnect must be an object/],
      [() => new Handler({ reconnect: { bogus: 1 } as never }), /unknown option 'reconnect.bogus'/],
      // Delays of 0 would make a reconnect loop with no pause.
      [() => new Handler({ reconnect: { maxDelay: 0 } }), /reconnect.maxDelay must be a number of ms from 1/],
      [() => new Handler({ reconnect: { initialDelay: 0 } }), /reconnect.initialDelay must be a number of ms from 1/],
      [() => new Handler({ reconnect: { factor: 0 } }), /reconnect.factor must be a number ≥ 1/],
      [() => new Handler({ url: 'amqp://127.0.0.1:0/' }), /url must be a URL whose port is not 0/],
      [() => new Handler({ url: ['amqp://127.0.0.1/', 'amqp://127.0.0.1:0/'] }), /url entry 2 of 2 names port 0/],
      [() => new Handler({ url: 'jsonl:-,jsonl:-' }), /url must be one jsonl: destination/],
      [() => optionsFromEnv({ CONTEXTURE_BUFFER_SIZE: '0x10' }), /CONTEXTURE_BUFFER_SIZE must be an integer/],
      [() => optionsFromEnv({ CONTEXTURE_FLUSH_INTERVAL: '0b1' }), /CONTEXTURE_FLUSH_INTERVAL must be a number/],
      [() => optionsFromEnv({ CONTEXTURE_BUFFER_SIZE: ' ' }), /CONTEXTURE_BUFFER_SIZE must be an integer/],
      [
        () => new Handler(resolveOptions({}, { CONTEXTURE_HEARTBEAT_INTERVAL: '1e10' }, dir)),
        /heartbeatInterval must be an integer from 100/,
      ],
    ];
    for (const [fn, re] of cases) {
      let caught: unknown;
      try {
        fn();
      } catch (err) {
        caught = err;
      }
      expect(caught, String(re)).to.be.instanceOf(ContextError);
      expect((caught as ContextError).code).to.equal('LC_CONFIG_INVALID');
      expect((caught as Error).message).to.match(re);
      expect((caught as Error).message).to.not.contain(':pw@');
    }
    fs.writeFileSync(path.join(dir, 'contexture.config.json'), '{"bufferSize": -1}');
    expect(() => resolveOptions({}, {}, dir)).to.throw(
      /config file .*contexture\.config\.json: bufferSize must be a positive integer/,
    );
  });

  it('config/default.json documents exactly the built-in defaults', () => {
    const file = new URL('../../../../config/default.json', import.meta.url);
    const documented = JSON.parse(fs.readFileSync(file, 'utf8'));
    const { logger, ...defaults } = HANDLER_DEFAULTS;
    expect(logger).to.not.equal(null);
    expect(documented).to.deep.equal(JSON.parse(JSON.stringify(defaults)));
  });

  it('URL schemes are case-insensitive', () => {
    for (const [url, shown] of [
      ['AMQP://guest:guest@127.0.0.1:5672/%2F', 'amqp://guest:***@127.0.0.1:5672/%2F'],
      ['Amqps://guest:guest@h1/,AMQP://guest:guest@h2/', 'amqps://guest:***@h1/,amqp://guest:***@h2/'],
      ['JSONL:-', 'jsonl:-'],
    ]) {
      const h = new Handler({ url });
      expect(h.options.url).to.equal(shown);
      h.destroy();
    }
  });

  it('redacts passwords from URLs', () => {
    expect(redactUrl('amqp://guest:guest@127.0.0.1:5672/%2F')).to.equal('amqp://guest:***@127.0.0.1:5672/%2F');
    expect(redactUrl('amqps://only-user@h/')).to.equal('amqps://only-user@h/');
    // A password with / ? # not percent-encoded parses as a host, a port and a path: still masked.
    for (const sep of ['/', '?', '#'])
      expect(redactUrl(`amqp://guest:1234${sep}S3cr3tPW@127.0.0.1:5672/%2F`)).to.equal(
        'amqp://guest:***@127.0.0.1:5672/%2F',
      );
    expect(redactUrl('amqp://1234/S3cr3tPW@h/')).to.equal('amqp://***@h/');
  });

  it('a password with / ? # not percent-encoded (an @ after the host) is refused, and masked in the error', () => {
    for (const sep of ['/', '?', '#'])
      for (const url of [
        `amqp://guest:1234${sep}S3cr3tPW@127.0.0.1:5672/%2F`,
        `amqp://guest:guest@127.0.0.1:5672/%2F,amqp://guest:1234${sep}S3cr3tPW@127.0.0.1:5672/%2F`,
      ]) {
        let caught: unknown;
        try {
          new Handler({ url });
        } catch (err) {
          caught = err;
        }
        expect(caught, url).to.be.instanceOf(ContextError);
        expect((caught as ContextError).code).to.equal('LC_CONFIG_INVALID');
        expect((caught as Error).message).to.match(/url .*percent-encoded/);
        expect((caught as Error).message).to.not.contain('S3cr3tPW');
        expect((caught as Error).message).to.not.contain('1234');
      }
    // An '@' percent-encoded, or in the password before the host, is fine.
    for (const url of ['amqp://guest:1234%2FS3cr3tPW@127.0.0.1:5672/%2F', 'amqp://guest:p@ss@127.0.0.1:5672/%2F']) {
      const h = new Handler({ url });
      expect(h.options.url).to.equal('amqp://guest:***@127.0.0.1:5672/%2F');
      h.destroy();
    }
  });
});
