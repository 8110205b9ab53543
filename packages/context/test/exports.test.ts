import { expect } from 'chai';
import * as root from '@contexture/context';
import * as internal from '@contexture/context/internal';
import * as protocol from '@contexture/context/protocol';

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
      'WIRE_VERSION',
      'decodeBody',
      'depthExceeds',
      'encodeBatch',
      'encodeHeartbeat',
      'encodeMessage',
      'envelopeLine',
      'extractKeys',
      'isMalformed',
      'isNote',
      'isPlainObject',
      'isReservedRkey',
      'parseHeartbeat',
      'parseJson',
      'parseLine',
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
      'amqpHostPort',
      'amqpRefusal',
      'backoffDelay',
      'hostPort',
      'parseAmqpUrls',
      'redactText',
      'redactUrl',
      'redactUrls',
      'watchSilence',
      'withAmqpHeartbeat',
    ]);
  });
});
