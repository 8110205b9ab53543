import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { amqpUrl, Cleanup, redisUrl, uniqueName } from '@contexture/test-support';

/**
 * Every code block of the READMEs whose fence reads ```js runnable is run as written, as an ES
 * module inside the repository (so `@contexture/...` resolves through the workspaces), against the
 * real RabbitMQ and Redis: it must exit by itself with status 0 and write nothing on stderr.
 *
 * What the test changes in a block, and only this: the service URLs become the tests' own
 * (`AMQP_URL`, `REDIS_URL`) when those differ from the defaults the READMEs show, and every
 * `readme-` name (exchanges, queues, key prefixes) gets a unique tag, so that runs never share
 * state. Afterwards every quoted tagged name is deleted as an exchange, a queue and a dead-letter
 * queue, and every Redis key starting with the tag.
 */

const DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672/%2F';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
/** Files that must hold at least one runnable block. */
const REQUIRED = [
  'README.md',
  'packages/context/README.md',
  'packages/lcmon/README.md',
  'packages/collector/README.md',
];
const SNIPPET_TIMEOUT_MS = 60_000;

/** The repository root: the nearest directory up from here whose package.json declares workspaces. */
function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && 'workspaces' in (JSON.parse(fs.readFileSync(pkg, 'utf8')) as object)) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('no package.json with workspaces above the test');
    dir = up;
  }
}

interface Snippet {
  /** Repository-relative file. */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  code: string;
}

const FENCE = /^(`{3,}|~{3,})(.*)$/;

/** The blocks of a Markdown text whose fence info string holds the word `runnable`. */
function runnableBlocks(file: string, text: string): Snippet[] {
  const out: Snippet[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    const info = open[2]!.trim().split(/\s+/);
    let j = i + 1;
    while (j < lines.length && lines[j]!.trim() !== fence) j++;
    if (info.includes('runnable'))
      out.push({ file, line: i + 1, lang: info[0]!, code: `${lines.slice(i + 1, j).join('\n')}\n` });
    i = j;
  }
  return out;
}

function readmes(root: string): string[] {
  const files = ['README.md'];
  for (const pkg of fs.readdirSync(path.join(root, 'packages')).sort()) {
    const f = path.join('packages', pkg, 'README.md');
    if (fs.existsSync(path.join(root, f))) files.push(f);
  }
  return files;
}

/** Runs `node file` from `cwd`; resolves with its status and output, or kills it after `timeout` ms. */
function runNode(
  file: string,
  cwd: string,
  timeout: number,
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    // The snippet runs as a reader would run it: no CONTEXTURE_* settings of the test's environment.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CONTEXTURE_')));
    const child = spawn(process.execPath, [file], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeout);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

const root = repoRoot();
const snippets = readmes(root).flatMap((f) => runnableBlocks(f, fs.readFileSync(path.join(root, f), 'utf8')));
const workDir = path.join(root, 'test', 'dist', 'readme-snippets');

describe('README snippets marked runnable', function () {
  this.timeout(SNIPPET_TIMEOUT_MS + 30_000);
  let cleanup: Cleanup;
  beforeEach(() => {
    cleanup = new Cleanup();
  });
  afterEach(() => cleanup.run());

  it('the root README and every package README hold at least one, all in JavaScript', () => {
    for (const f of REQUIRED) expect(snippets.filter((s) => s.file === f).length, f).to.be.greaterThan(0);
    for (const s of snippets) expect(s.lang, `${s.file}:${s.line}`).to.be.oneOf(['js', 'mjs']);
  });

  for (const snippet of snippets) {
    it(`${snippet.file}:${snippet.line} runs as written`, async () => {
      const tag = uniqueName('readme');
      let code = snippet.code.replaceAll('readme-', `${tag}-`);
      if (amqpUrl() !== DEFAULT_AMQP_URL) code = code.replaceAll(DEFAULT_AMQP_URL, amqpUrl());
      if (redisUrl() !== DEFAULT_REDIS_URL) code = code.replaceAll(DEFAULT_REDIS_URL, redisUrl());
      cleanup.redisKeys(`${tag}-*`);
      for (const [, name] of code.matchAll(new RegExp(`['"\`](${tag}-[^'"\`]*)['"\`]`, 'g'))) {
        cleanup.exchange(name!);
        cleanup.queue(name!);
        cleanup.queue(`${name}.dead`);
      }
      fs.mkdirSync(workDir, { recursive: true });
      const file = path.join(workDir, `${snippet.file.replaceAll(/[/.]/g, '_')}-L${snippet.line}.mjs`);
      fs.writeFileSync(file, code);
      const r = await runNode(file, root, SNIPPET_TIMEOUT_MS);
      const where = `${snippet.file}:${snippet.line} (written to ${path.relative(root, file)})`;
      expect(r.timedOut, `${where} did not exit within ${SNIPPET_TIMEOUT_MS} ms\n${r.stdout}${r.stderr}`).to.equal(
        false,
      );
      expect(r.code, `${where} exited with ${r.code ?? r.signal}\n${r.stderr}`).to.equal(0);
      expect(r.stderr, `${where} wrote on stderr`).to.equal('');
      fs.rmSync(file);
    });
  }
});
