// Writes bench/RESULTS.md from the JSON lines of one or more runs of `node bench/run.js --out FILE`,
// so that no figure is typed by hand:
//
//   node bench/results.js [--title TEXT] [--note TEXT] [--why CURVE=TEXT] [--out bench/RESULTS.md]
//     [--charts DIR] LABEL=FILE [LABEL=FILE ...]
//
// Each run is a column (e.g. before=… after=… for two builds measured one after the other). The
// header gives each run's date, commit, machine, Node and load average at its start; each bench file
// gets a section with the load average before and after it, and each result line (its `bench` name,
// with its scenario or other distinguishing fields) a table of every field it reported.
// Lines of a growth curve (with `curve`, `series`, `x` and `y`: bench/curves.bench.js) are drawn
// instead: curves-<curve>.svg (bench/svg-chart.js) written next to the output (--out FILE: its
// folder; or --charts DIR when printing on stdout; without either no chart is written), embedded in
// the section with a table of the points and, per series, a sentence computed from the points
// saying where it stops being linear (the first segment whose log-log slope exceeds 1.2).
// `--why CURVE=TEXT` adds the reason, as measured, after those sentences.
import fs from 'node:fs';
import path from 'node:path';
import { localSlopes, logLogChart, tickLabel } from './svg-chart.js';

const USAGE =
  'usage: node bench/results.js [--title TEXT] [--note TEXT] [--why CURVE=TEXT] [--out FILE] [--charts DIR] LABEL=FILE [LABEL=FILE ...]\n';
const usage = (why) => {
  process.stderr.write(`results: ${why}\n${USAGE}`);
  process.exit(2);
};
const args = process.argv.slice(2);
let title = 'Benchmark results';
let out = null;
let chartsDir = null;
const notes = [];
const whys = new Map();
const runs = [];
for (let i = 0; i < args.length; i++) {
  const option = args[i];
  if (['--title', '--note', '--why', '--out', '--charts'].includes(option)) {
    const value = args[++i];
    if (value === undefined) usage(`${option} needs a value`);
    if (option === '--title') title = value;
    else if (option === '--note') notes.push(value);
    else if (option === '--out') out = value;
    else if (option === '--charts') chartsDir = value;
    else {
      const eq = value.indexOf('=');
      if (eq < 1) usage(`--why takes CURVE=TEXT, got ${JSON.stringify(value)}`);
      whys.set(value.slice(0, eq), value.slice(eq + 1));
    }
    continue;
  }
  const eq = option.indexOf('=');
  if (eq < 1) usage(`not LABEL=FILE: ${JSON.stringify(option)}`);
  runs.push({ label: option.slice(0, eq), file: option.slice(eq + 1) });
}
if (runs.length === 0) usage('no run given');
if (out !== null && chartsDir === null) chartsDir = path.dirname(out);

/** Fields that tell two results of one bench apart (a scenario, a size, a count of clients). */
const KEY_FIELDS = [
  'scenario',
  'mode',
  'case',
  'size',
  'pool_size',
  'clients',
  'workers',
  'payload',
  'in_flight',
  'rate',
];

for (const run of runs) {
  run.meta = null;
  run.files = new Map(); // file -> { load_before, load_after, seconds, results: Map(key -> result), curves: [] }
  let current = null;
  let text;
  try {
    text = fs.readFileSync(run.file, 'utf8');
  } catch (err) {
    usage(`cannot read ${run.file}: ${err.message}`);
  }
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let row;
    try {
      row = JSON.parse(line);
    } catch {
      continue; // a bench's stray output: not a result
    }
    if (row === null || typeof row !== 'object') continue;
    if (row.kind === 'run') run.meta = row;
    else if (row.kind === 'file') {
      current = {
        command: row.command ?? null,
        load_before: row.load_before,
        load_after: null,
        seconds: null,
        status: null,
        results: new Map(),
        curves: [],
      };
      run.files.set(row.file, current);
    } else if (row.kind === 'file_end' && current !== null) {
      Object.assign(current, { load_after: row.load_after, seconds: row.seconds, status: row.status });
    } else if (isCurvePoint(row) && current !== null) {
      current.curves.push(row);
    } else if (typeof row.bench === 'string' && current !== null) {
      const key = [row.bench, ...KEY_FIELDS.filter((k) => k in row).map((k) => `${k}=${row[k]}`)].join(' ');
      current.results.set(key, row);
    }
  }
}

/** A point of a growth curve: its curve id and series are names, x and y positive numbers. */
function isCurvePoint(row) {
  return (
    typeof row.curve === 'string' &&
    /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(row.curve) &&
    typeof row.series === 'string' &&
    typeof row.x === 'number' &&
    typeof row.y === 'number'
  );
}

const sig = (v) => Number(v.toPrecision(3)).toLocaleString('en-GB');
const withUnit = (v, unit, format = sig) => (unit ? `${format(v)} ${unit}` : format(v));

/**
 * Says how a series grows, from its points (sorted by x): the first segment whose log-log slope
 * exceeds 1.2 (where growth stops being linear), else how far below linear it stays.
 */
function describeGrowth(name, points, xUnit, yUnit) {
  if (points.length < 2) return `${name}: one point, no growth to describe.`;
  const slopes = localSlopes(points);
  const [fx, fy] = points[0];
  const [lx, ly] = points[points.length - 1];
  const overall = Math.log(ly / fy) / Math.log(lx / fx);
  const x = (v) => withUnit(v, xUnit, tickLabel);
  const y = (v) => withUnit(v, yUnit);
  const range = `${y(fy)} at ${x(fx)} to ${y(ly)} at ${x(lx)}`;
  const steep = slopes.find((s) => s.slope > 1.2);
  if (steep !== undefined) {
    const [ax, ay] = steep.from;
    const [bx, by] = steep.to;
    return (
      `${name}: stops being linear after ${x(ax)}: from there to ${x(bx)} it grows ×${sig(by / ay)} for ×${sig(bx / ax)} ` +
      `(log-log slope ${steep.slope.toFixed(2)}; over the whole range ${overall.toFixed(2)}, ${range}).`
    );
  }
  const low = Math.min(...slopes.map((s) => s.slope));
  const high = Math.max(...slopes.map((s) => s.slope));
  const shape =
    Math.abs(overall) < 0.2 ? 'stays flat' : overall < 0.8 ? 'grows slower than linear' : 'grows about linearly';
  return (
    `${name}: ${shape}, never faster than linear (log-log slope ${overall.toFixed(2)} over the range, ` +
    `${low.toFixed(2)} to ${high.toFixed(2)} between neighbouring points; ${range}).`
  );
}

const cell = (v) => {
  if (v === undefined) return '';
  const text = typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
};
const lines = [];
const row = (cells) => lines.push(`| ${cells.map(cell).join(' | ')} |`);

lines.push(`# ${title}`, '');
lines.push(
  'Generated by `node bench/results.js` from the JSON lines of `node bench/run.js --out FILE`; do not edit',
  'by hand. Each column is one run; runs taken one after the other on one machine compare, figures of',
  'different machines or days do not (the machine is shared with RabbitMQ and Redis: read ratios taken',
  'within one run). Goals and what each bench measures: the header comment of each `bench/*.bench.js`.',
  '',
);
for (const note of notes) lines.push(note, '');
row(['run', 'date', 'commit', 'machine', 'node', 'load average at start (1, 5, 15 min)']);
row(['---', '---', '---', '---', '---', '---']);
for (const r of runs) {
  const m = r.meta ?? {};
  row([
    r.label,
    m.date,
    m.commit,
    `${m.cpus ?? '?'} × ${m.cpu ?? '?'}, ${m.memory_gib ?? '?'} GiB`,
    m.node,
    // Runs recorded before run.js noted it: the 1-minute figure before their first bench.
    Array.isArray(m.load_avg) ? m.load_avg.join(', ') : ([...r.files.values()][0]?.load_before ?? ''),
  ]);
}
lines.push('');

const files = [...new Set(runs.flatMap((r) => [...r.files.keys()]))];
for (const file of files) {
  const command =
    runs.map((r) => r.files.get(file)?.command).find((c) => typeof c === 'string') ??
    `node bench/run.js --out FILE ${file.replace(/\.bench\.js$/, '')}`;
  lines.push(`## \`${file}\``, '', `Command: \`${command}\``, '');
  row(['', ...runs.map((r) => r.label)]);
  row(['---', ...runs.map(() => '---:')]);
  row([
    'load average before → after',
    ...runs.map((r) => {
      const f = r.files.get(file);
      return f === undefined ? '' : `${f.load_before} → ${f.load_after}`;
    }),
  ]);
  row(['seconds', ...runs.map((r) => r.files.get(file)?.seconds)]);
  row(['exit status', ...runs.map((r) => r.files.get(file)?.status)]);
  lines.push('');
  const keys = [...new Set(runs.flatMap((r) => [...(r.files.get(file)?.results.keys() ?? [])]))];
  for (const key of keys) {
    lines.push(`### ${key}`, '');
    const results = runs.map((r) => r.files.get(file)?.results.get(key));
    const fields = [...new Set(results.flatMap((x) => (x === undefined ? [] : Object.keys(x))))].filter(
      (f) => f !== 'bench' && !KEY_FIELDS.includes(f),
    );
    row(['field', ...runs.map((r) => r.label)]);
    row(['---', ...runs.map(() => '---:')]);
    for (const f of fields) row([f, ...results.map((x) => x?.[f])]);
    lines.push('');
  }
  curves(file);
}

/** The growth curves of one bench file: a chart, a sentence per series, a table of the points. */
function curves(file) {
  const points = runs.flatMap((r) => (r.files.get(file)?.curves ?? []).map((p) => ({ run: r.label, p })));
  const ids = [...new Set(points.map(({ p }) => p.curve))];
  for (const id of ids) {
    const mine = points.filter(({ p }) => p.curve === id);
    const first = mine[0].p;
    const seriesName = ({ run, p }) => (runs.length > 1 ? `${run}: ${p.series}` : p.series);
    const names = [...new Set(mine.map(seriesName))];
    const series = names.map((name) => {
      const byX = new Map();
      for (const m of mine) if (seriesName(m) === name) byX.set(m.p.x, m.p.y); // a repeated x: the last
      return {
        name,
        points: [...byX]
          .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && x > 0 && y > 0)
          .sort((a, b) => a[0] - b[0]),
      };
    });
    const heading = typeof first.title === 'string' ? first.title : id;
    const axis = (label, unit) => `${typeof label === 'string' ? label : ''}${unit ? ` (${unit})` : ''}`;
    lines.push(`### ${heading}`, '');
    if (chartsDir === null) {
      process.stderr.write(`results: curve ${id} not drawn: pass --out FILE or --charts DIR\n`);
    } else {
      const name = `curves-${id}.svg`;
      fs.writeFileSync(
        path.join(chartsDir, name),
        logLogChart({
          title: heading,
          xLabel: axis(first.x_label, first.x_unit),
          yLabel: axis(first.y_label, first.y_unit),
          series,
        }),
      );
      lines.push(`![${heading.replace(/[[\]]/g, '')}](${name})`, '');
    }
    for (const s of series) lines.push(`- ${describeGrowth(s.name, s.points, first.x_unit, first.y_unit)}`);
    if (whys.has(id)) lines.push('', `Why: ${whys.get(id)}`);
    lines.push('');
    const xs = [...new Set(series.flatMap((s) => s.points.map(([x]) => x)))].sort((a, b) => a - b);
    row([axis(first.x_label, first.x_unit), ...series.map((s) => `${s.name} (${first.y_unit ?? ''})`)]);
    row(['---:', ...series.map(() => '---:')]);
    for (const x of xs) row([x, ...series.map((s) => s.points.find(([px]) => px === x)?.[1])]);
    lines.push('');
  }
}

const markdown = lines.join('\n');
if (out === null) process.stdout.write(markdown);
else fs.writeFileSync(out, markdown);
