import { expect } from 'chai';
import * as lcmon from '@contexture/lcmon';

// What the entry point exports at run time (types do not show). A change here is a change of the
// package's API: make it on purpose, and say so in the changelog.
describe('@contexture/lcmon exports', () => {
  it('@contexture/lcmon: the library and the CLI factory', () => {
    expect(Object.keys(lcmon).sort()).to.deep.equal([
      'DEFAULTS',
      'DEFAULT_TTL',
      'DEFAULT_URL',
      'EXIT',
      'LcmonError',
      'MonitorStream',
      'createProgram',
      'escapeJson',
      'exitCodeOf',
      'jsonLine',
      'messages',
      'objects',
    ]);
  });
});
