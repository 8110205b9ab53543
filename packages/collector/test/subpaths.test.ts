import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { expect } from 'chai';

const run = promisify(execFile);
const packageDir = new URL('../../', import.meta.url);

/** Which of amqplib and commander a fresh process has loaded after importing `specifier`. */
async function loadedBy(specifier: string): Promise<{ exports: string[]; loaded: string[] }> {
  const script = `
    import { createRequire } from 'node:module';
    const m = await import(${JSON.stringify(specifier)});
    const require = createRequire(import.meta.url);
    const loaded = new Set();
    for (const file of Object.keys(require.cache)) {
      const hit = /node_modules[\\\\/](amqplib|commander)[\\\\/]/.exec(file);
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

  for (const sub of ['', '/store', '/locks', '/allocator', '/registry', '/tasks', '/shared']) {
    it(`@contexture/collector${sub} loads neither amqplib nor commander`, async () => {
      const { exports, loaded } = await loadedBy(`@contexture/collector${sub}`);
      expect(exports).to.include('CollectorError');
      expect(loaded).to.deep.equal([]);
    });
  }

  it('@contexture/collector/daemon does load them (the check above can see them)', async () => {
    const { exports, loaded } = await loadedBy('@contexture/collector/daemon');
    expect(exports).to.include.members(['Collector', 'createProgram']);
    expect(loaded).to.deep.equal(['amqplib', 'commander']);
  });
});
