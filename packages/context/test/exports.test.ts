import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import * as root from '@contexture/context';
import * as internal from '@contexture/context/internal';
import * as protocol from '@contexture/context/protocol';

const run = promisify(execFile);
const packageDir = new URL('../../', import.meta.url);

/** What a fresh process that imports `specifier` sees exported, and which web frameworks it has loaded. */
async function loadedBy(specifier: string): Promise<{ exports: string[]; loaded: string[] }> {
  const script = `
    import { createRequire } from 'node:module';
    const m = await import(${JSON.stringify(specifier)});
    const require = createRequire(import.meta.url);
    const loaded = new Set();
    for (const file of Object.keys(require.cache)) {
      const hit = /node_modules[\\\\/](express|fastify|router)[\\\\/]/.exec(file);
      if (hit) loaded.add(hit[1]);
    }
    process.stdout.write(JSON.stringify({ exports: Object.keys(m).sort(), loaded: [...loaded].sort() }));
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: packageDir,
    timeout: 20_000,
  });
  return JSON.parse(stdout) as { exports: string[]; loaded: string[] };
}

// What each entry point exports at run time (types do not show). A change here is a change of the
// package's API: make it on purpose, and say so in the changelog.
describe('@contexture/context exports', () => {
  it('@contexture/context: the user API', () => {
    expect(Object.keys(root).sort()).to.deep.equal([
      'Context',
      'ContextError',
      'DEFAULT_CONFIG_FILE',
      'HANDLER_DEFAULTS',
      'Handler',
      'configure',
      'getHandler',
      'optionsFromEnv',
      'optionsFromFile',
      'resolveOptions',
    ]);
  });

  it('@contexture/context/protocol: the wire format', () => {
    expect(Object.keys(protocol).sort()).to.deep.equal([
      'APP_ID',
      'CONTENT_TYPE_JSON',
      'CONTENT_TYPE_NDJSON',
      'Collator',
      'DEFAULT_EXCHANGE',
      'HEARTBEAT_RKEY',
      'HEARTBEAT_TYPE',
      'MessageSpans',
      'RESERVED_RKEY_PREFIX',
      'Utf8Lines',
      'WIRE_VERSION',
      'decodeBody',
      'depthExceeds',
      'encodeBatch',
      'encodeHeartbeat',
      'encodeMessage',
      'envelopeLine',
      'extractKeys',
      'invalidUtf8Lines',
      'isMalformed',
      'isNote',
      'isPlainObject',
      'isReservedRkey',
      'parseHeartbeat',
      'parseJson',
      'parseLine',
      'plainHeaders',
      'scanMessage',
      'setOwn',
      'stringifyJson',
      'validateMessage',
    ]);
  });

  it('@contexture/context/internal: plumbing of the sibling packages', () => {
    expect(Object.keys(internal).sort()).to.deep.equal([
      'AMQP_HEARTBEAT_SECONDS',
      'AmqpNodes',
      'DEFAULT_WEB_HOST',
      'PAGE_HEADERS',
      'PageFiles',
      'amqpHostPort',
      'amqpRefusal',
      'backoffDelay',
      'errorFields',
      'hostPort',
      'isLogger',
      'isLoggerOption',
      'isLoopback',
      'pageJson',
      'parseAmqpUrls',
      'parseListenAddress',
      'redactText',
      'redactUrl',
      'redactUrls',
      'textLogger',
      'toLogger',
      'watchSilence',
      'withAmqpHeartbeat',
    ]);
  });

  // The web frameworks are optional peer dependencies: no entry loads them, the middleware included
  // (it works on Node's request and response). A process that does not use them never needs them.
  const WEB_EXPORTS: Record<string, string[]> = {
    '@contexture/context': Object.keys(root).sort(),
    '@contexture/context/protocol': Object.keys(protocol).sort(),
    '@contexture/context/express': ['contexture'],
    '@contexture/context/fastify': ['contexturePlugin', 'default'],
    '@contexture/context/otel': ['registerHandlerMetrics'],
  };
  for (const [specifier, names] of Object.entries(WEB_EXPORTS)) {
    it(`${specifier} exports ${names.length > 3 ? 'its names' : names.join(', ')} and loads neither express nor fastify`, async () => {
      const { exports, loaded } = await loadedBy(specifier);
      expect(exports).to.deep.equal(names);
      expect(loaded).to.deep.equal([]);
    });
  }

  it('the check above sees a framework that is loaded', async () => {
    const { loaded } = await loadedBy('express');
    expect(loaded).to.include('express');
  });
});
