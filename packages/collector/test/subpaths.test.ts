import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { expect } from 'chai';

const run = promisify(execFile);
const packageDir = new URL('../../', import.meta.url);

/** Which of amqplib, commander, pino and prom-client a fresh process has loaded after importing `specifier`. */
async function loadedBy(specifier: string): Promise<{ exports: string[]; loaded: string[] }> {
  const script = `
    import { createRequire } from 'node:module';
    const m = await import(${JSON.stringify(specifier)});
    const require = createRequire(import.meta.url);
    const loaded = new Set();
    for (const file of Object.keys(require.cache)) {
      const hit = /node_modules[\\\\/](amqplib|commander|pino|prom-client)[\\\\/]/.exec(file);
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

describe('collector subpath exports', () => {
  const pkg = JSON.parse(readFileSync(new URL('package.json', packageDir), 'utf8')) as {
    exports: Record<string, unknown>;
  };

  it('has one subpath per concern', () => {
    expect(Object.keys(pkg.exports).sort()).to.deep.equal([
      '.',
      './allocator',
      './daemon',
      './locks',
      './registry',
      './shared',
      './store',
      './tasks',
    ]);
  });

  // What each entry exports, by name: a new export (or a lost one) is a deliberate change made here.
  const EXPORTS: Record<string, string[]> = {
    '': [
      'Allocation',
      'Allocator',
      'CollectorError',
      'LockError',
      'LockPool',
      'MemoryContextStore',
      'RedisContextStore',
      'RedisLock',
      'Registry',
      'SharedContext',
      'TaskError',
      'TaskQueue',
    ],
    '/store': [
      'CollectorError',
      'MemoryContextStore',
      'REDIS_STORE_DEFAULTS',
      'RedisContextStore',
      'STORE_DEFAULTS',
      'allContexts',
      'applyDelta',
      'isDeltaLeaf',
      'mergeRecords',
    ],
    '/locks': ['CollectorError', 'LockError', 'LockPool', 'REDIS_LOCK_DEFAULTS', 'RedisLock'],
    '/allocator': ['ALLOCATOR_DEFAULTS', 'Allocation', 'Allocator', 'CollectorError', 'MAX_PRIORITY'],
    '/registry': ['CollectorError', 'REGISTRY_DEFAULTS', 'Registry'],
    '/tasks': ['CollectorError', 'TASK_QUEUE_DEFAULTS', 'TaskError', 'TaskQueue'],
    '/shared': ['CollectorError', 'SharedContext'],
  };

  for (const [sub, names] of Object.entries(EXPORTS)) {
    it(`@contexture/collector${sub} exports its names and loads none of amqplib, commander, pino, prom-client`, async () => {
      const { exports, loaded } = await loadedBy(`@contexture/collector${sub}`);
      expect(exports).to.deep.equal(names);
      expect(loaded).to.deep.equal([]);
    });
  }

  it('@contexture/collector/daemon does load them (the check above can see them)', async () => {
    const { exports, loaded } = await loadedBy('@contexture/collector/daemon');
    expect(exports).to.deep.equal([
      'COLLECTOR_DEFAULTS',
      'Collector',
      'CollectorError',
      'EXIT',
      'LinkHealth',
      'MetricsServer',
      'collectorMetrics',
      'createProgram',
      'createStoreProgram',
    ]);
    expect(loaded).to.deep.equal(['amqplib', 'commander', 'pino', 'prom-client']);
  });
});
