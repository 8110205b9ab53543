// Runs every bench/*.bench.js in turn, each in its own process; each prints JSON lines on stdout.
// `npm run bench` builds first. Pass file names to run only some: node bench/run.js context
// `--out FILE` also writes the lines to FILE, with a line about the run (date, commit, machine, load
// average at its start) and one before and after each bench (its file, the load average);
// bench/results.js turns such files into bench/RESULTS.md.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const at = args.indexOf('--out');
const out = at === -1 ? null : args[at + 1];
if (at !== -1 && out === undefined) {
  process.stderr.write('usage: node bench/run.js [--out FILE] [name ...]\n');
  process.exit(2);
}
const only = at === -1 ? args : args.filter((_, i) => i !== at && i !== at + 1);
const files = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.bench.js'))
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
  .sort();

const sink = out === null ? null : fs.createWriteStream(out);
const record = (line) => sink?.write(`${line}\n`);
const load = () => Number(os.loadavg()[0].toFixed(2));

function commit() {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: dir,
      encoding: 'utf8',
    });
    return dirty.trim() === '' ? sha : `${sha}+changes`;
  } catch {
    return 'unknown';
  }
}

record(
  JSON.stringify({
    kind: 'run',
    date: new Date().toISOString(),
    commit: commit(),
    node: process.version,
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memory_gib: Math.round(os.totalmem() / 2 ** 30),
    load_avg: os.loadavg().map((l) => Number(l.toFixed(2))),
  }),
);

/** Runs one bench, echoing and recording its lines; resolves with its exit status. */
function runOne(file) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', path.join(dir, file)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let rest = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      const lines = (rest + chunk).split('\n');
      rest = lines.pop();
      for (const line of lines) if (line.trim() !== '') record(line);
    });
    child.on('close', (code, signal) => {
      if (rest.trim() !== '') record(rest);
      resolve(code ?? signal);
    });
  });
}

let failed = 0;
for (const f of files) {
  process.stderr.write(`bench: ${f}\n`);
  const t0 = performance.now();
  const command = `node bench/run.js --out FILE ${f.replace(/\.bench\.js$/, '')}`;
  record(JSON.stringify({ kind: 'file', file: f, command, load_before: load() }));
  const status = await runOne(f);
  record(
    JSON.stringify({
      kind: 'file_end',
      file: f,
      load_after: load(),
      seconds: Math.round((performance.now() - t0) / 1000),
      status,
    }),
  );
  if (status !== 0) {
    failed++;
    process.stderr.write(`bench: ${f} exited with ${status}\n`);
  }
}
if (sink !== null) await new Promise((resolve) => sink.end(resolve));
process.exit(failed === 0 ? 0 : 1);
