/**
 * Hostile input that every reader (lcmon in each mode, the monitor library, the collector) must
 * survive: each item is reported, skipped, dead-lettered or read, never a crash, never a loss of
 * the valid traffic around it, never a polluted prototype. Every body is one line (no raw line
 * break), so the same corpus feeds stdin and the broker.
 */
export interface HostileBody {
  /** What the item tries. */
  name: string;
  body: string | Buffer;
  /** The context id the item carries when a reader may read it as a message; else undefined. */
  id?: string;
}

/** The corpus; ids start with `idPrefix` so that a test can tell its items apart. */
export function hostileCorpus(idPrefix: string): HostileBody[] {
  const id = (n: string) => `${idPrefix}-${n}`;
  const msg = (n: string, obj: string, extra = '') =>
    `{"obj_id":${JSON.stringify(id(n))},"obj":${obj},"status":"transient","seq":0${extra}}`;
  const deep = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
  return [
    { name: 'not JSON', body: 'not json at all {' },
    { name: 'truncated', body: msg('cut', '{"v":1}').slice(0, 30) },
    { name: 'array', body: '[1,2,3]' },
    { name: 'number', body: '42' },
    { name: 'null', body: 'null' },
    { name: 'string', body: '"obj_id"' },
    { name: 'obj not an object', body: `{"obj_id":${JSON.stringify(id('arr'))},"obj":[1]}` },
    { name: 'bad seq', body: msg('seq', '{}').replace('"seq":0', '"seq":"one"') },
    { name: 'negative seq', body: msg('negseq', '{}').replace('"seq":0', '"seq":-1') },
    { name: 'bad status', body: msg('status', '{}').replace('"transient"', '"zombie\\u009b"') },
    { name: 'bad action', body: msg('action', '{}', ',"action":"explode"') },
    { name: 'bad time', body: msg('time', '{}', ',"time_in":"noon"') },
    { name: 'obj_id not a string', body: '{"obj_id":{"x":1},"obj":{}}' },
    { name: 'empty obj_id', body: '{"obj_id":"","obj":{}}' },
    { name: 'deep 100k', body: msg('deep', deep(100_000)), id: id('deep') },
    { name: 'deep 100', body: msg('deep100', deep(100)), id: id('deep100') },
    { name: 'invalid UTF-8', body: Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0xc3]) },
    { name: 'BOM', body: `\ufeff${msg('bom', '{"v":1}')}`, id: id('bom') },
    { name: 'lone surrogate key', body: msg('surrogate', '{"\\ud800":1}'), id: id('surrogate') },
    {
      name: 'prototype pollution',
      body: msg(
        'proto',
        '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}}}',
        ',"__proto__":{"x":1}',
      ),
      id: id('proto'),
    },
    {
      name: 'terminal controls',
      body: msg('ctl\u009b[31m\u202e', '{"v":"\\u001b[2J\u009b[1m\u2028\u2066"}'),
      id: id('ctl\u009b[31m\u202e'),
    },
    {
      name: 'duplicate keys',
      body: `{"obj_id":"x","obj_id":${JSON.stringify(id('dup'))},"obj":{"v":1},"seq":0}`,
      id: id('dup'),
    },
    {
      name: 'huge key count',
      body: msg('wide', JSON.stringify(Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i])))),
      id: id('wide'),
    },
    { name: 'Python floats', body: msg('nan', '{"a":NaN,"b":Infinity,"c":-Infinity}'), id: id('nan') },
    {
      name: 'big integers',
      body: msg('bigint', '{"n":18446744073709551616,"m":-99999999999999999999}'),
      id: id('bigint'),
    },
    { name: 'long string', body: msg('long', JSON.stringify({ v: 'x'.repeat(1_000_000) })), id: id('long') },
  ];
}
