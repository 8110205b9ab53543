// Issue 3 benchmarks, each side by side with its baseline in the same run:
//  1. live consume-and-print: lcmon vs a plain amqplib consumer that prints each body, each in turn
//     on its own anonymous queue while the same stream is published (ratio = lcmon rate / plain rate),
//     then both at once on one stream (each its own queue), the ratio taken per round
//  2. lcmon -s and lcmon -sc over a file of 1,000,000 saved lines (lcmon -v format), in lines/s
// Every figure is the best of a few rounds (the machine is shared). Output goes to a pipe that the
// bench drains, as `lcmon | something` would.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { AMQP_URL, report, round, uniqueName } from './support.js';

const LCMON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../packages/lcmon/dist/src/bin/lcmon.js');
const LIVE_MESSAGES = Number(process.env.BENCH_LCMON_MESSAGES ?? 200_000);
const FILE_LINES = Number(process.env.BENCH_LCMON_LINES ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_LCMON_ROUNDS ?? 2);
// Which parts to run: `live`, `file`, or both (the default), comma-separated.
const PARTS = new Set((process.env.BENCH_LCMON_PARTS ?? 'live,file').split(','));
const HANDLER = randomUUID();
const idPrefix = randomUUID().slice(0, 24);

if (process.argv[2] === '--plain') {
  await plainConsumer(process.argv[3], Number(process.argv[4]));
} else {
  if (PARTS.has('live')) await live();
  if (PARTS.has('file')) await fromFile();
}

/** The baseline: what one writes with amqplib to print what an exchange carries. */
async function plainConsumer(exchange, n) {
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true });
  await ch.bindQueue(queue, exchange, '#');
  let seen = 0;
  await ch.consume(
    queue,
    (msg) => {
      process.stdout.write(`${msg.content.toString('utf8')}\n`);
      if (++seen === n) process.stdout.write('', () => process.exit(0));
    },
    { noAck: true },
  );
  process.stderr.write('ready\n');
}

/** Bodies as a Context publishes them: one context of 5 messages after another. */
function body(i) {
  const seq = i % 5;
  const t = 1_700_000_000 + i / 1000;
  const b = {
    obj_id: `${randomUUIDFor(Math.floor(i / 5))}`,
    obj: seq === 0 ? { url: `/items/${i}`, method: 'GET' } : { step: seq, ok: true },
    seq,
  };
  if (seq === 0) b.status = 'born';
  if (seq === 4) {
    b.status = 'finished';
    b.elapsed = 0.004;
  }
  Object.assign(b, { handler_id: HANDLER, time_in: t, time_out: t + 0.0004, qtime: 0.0003, qlen: i % 17 });
  return b;
}
function randomUUIDFor(k) {
  return idPrefix + String(k).padStart(12, '0');
}

/** Runs a command with stdout drained (and counted), stdin from a file or nothing; resolves with ms and lines. */
function timed(cmd, args, stdinFile, onReady) {
  return new Promise((resolve, reject) => {
    let t0 = performance.now();
    const child = spawn(cmd, args, { stdio: [stdinFile ? fs.openSync(stdinFile, 'r') : 'ignore', 'pipe', 'pipe'] });
    let lines = 0;
    let err = '';
    let ready = false;
    child.stdout.on('data', (b) => {
      for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) lines++;
    });
    child.stderr.on('data', (b) => {
      err += b;
      if (!ready && onReady && /^(ready|lcmon: listening)/m.test(err)) {
        ready = true;
        t0 = performance.now();
        onReady().catch(reject);
      }
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve({ ms: performance.now() - t0, lines })
        : reject(new Error(`${args.join(' ')} exited ${code}: ${err}`)),
    );
  });
}

/**
 * Live: each consumer in turn binds its own anonymous queue to the exchange, then the bench
 * publishes the same stream as fast as the broker confirms it; the time runs from the first publish
 * to the consumer's exit after the last message.
 */
async function live() {
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createConfirmChannel();
  const exchange = uniqueName('bench-lcmon');
  await ch.assertExchange(exchange, 'topic', { durable: true });
  const bodies = Array.from({ length: LIVE_MESSAGES }, (_, i) => Buffer.from(JSON.stringify(body(i))));
  const publish = async () => {
    for (let i = 0; i < bodies.length; i++) {
      const ok = ch.publish(exchange, 'web.handle', bodies[i], {
        contentType: 'application/json',
        headers: { hostname: 'bench' },
      });
      if (!ok) await new Promise((res) => ch.once('drain', res));
      if (i % 5000 === 4999) await ch.waitForConfirms();
    }
    await ch.waitForConfirms();
  };
  const best = { lcmon: Infinity, plain: Infinity };
  try {
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate who goes first, so neither always meets a warmer broker.
      const runs = [
        [
          'lcmon',
          () => timed(process.execPath, [LCMON, '-e', exchange, '-n', String(LIVE_MESSAGES)], undefined, publish),
        ],
        [
          'plain',
          () =>
            timed(
              process.execPath,
              [fileURLToPath(import.meta.url), '--plain', exchange, String(LIVE_MESSAGES)],
              undefined,
              publish,
            ),
        ],
      ];
      if (r % 2 === 1) runs.reverse();
      for (const [name, fn] of runs) {
        const { ms, lines } = await fn();
        if (lines !== LIVE_MESSAGES) throw new Error(`${name} printed ${lines} lines, expected ${LIVE_MESSAGES}`);
        best[name] = Math.min(best[name], ms);
      }
    }
  } finally {
    await ch.deleteExchange(exchange).catch(() => {});
    await conn.close();
  }
  const lcmonRate = LIVE_MESSAGES / (best.lcmon / 1000);
  const plainRate = LIVE_MESSAGES / (best.plain / 1000);
  report({
    bench: 'lcmon.live',
    messages: LIVE_MESSAGES,
    lcmon_msgs_per_s: Math.round(lcmonRate),
    plain_amqplib_msgs_per_s: Math.round(plainRate),
    ratio: round(lcmonRate / plainRate),
    goal: 'ratio >= 0.9',
    goal_met: lcmonRate / plainRate >= 0.9,
    note: 'each in turn on its own anonymous queue, the same stream published as fast as the broker confirms; printed to a pipe',
    load_avg_1min: round(os.loadavg()[0]),
  });
  await together(bodies);
}

/**
 * Live, side by side: lcmon and the plain consumer both bound (each its own anonymous queue) before
 * one stream is published, so both meet the same publisher and the same moments of the machine;
 * each one's time runs from the first publish to its exit after the last message. A consumer that
 * cannot keep up with the stream finishes later than the other.
 */
async function together(bodies) {
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createConfirmChannel();
  const exchange = uniqueName('bench-lcmon-both');
  await ch.assertExchange(exchange, 'topic', { durable: true });
  const ratios = [];
  const rates = { lcmon: [], plain: [] };
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const lcmon = consumer(process.execPath, [LCMON, '-e', exchange, '-n', String(LIVE_MESSAGES)]);
      const plain = consumer(process.execPath, [
        fileURLToPath(import.meta.url),
        '--plain',
        exchange,
        String(LIVE_MESSAGES),
      ]);
      await Promise.all([lcmon.ready, plain.ready]);
      const t0 = performance.now();
      for (let i = 0; i < bodies.length; i++) {
        const ok = ch.publish(exchange, 'web.handle', bodies[i], {
          contentType: 'application/json',
          headers: { hostname: 'bench' },
        });
        if (!ok) await new Promise((res) => ch.once('drain', res));
        if (i % 5000 === 4999) await ch.waitForConfirms();
      }
      await ch.waitForConfirms();
      const [a, b] = await Promise.all([lcmon.done, plain.done]);
      for (const [name, got] of [
        ['lcmon', a],
        ['plain', b],
      ]) {
        if (got.lines !== LIVE_MESSAGES)
          throw new Error(`${name} printed ${got.lines} lines, expected ${LIVE_MESSAGES}`);
      }
      rates.lcmon.push(LIVE_MESSAGES / ((a.at - t0) / 1000));
      rates.plain.push(LIVE_MESSAGES / ((b.at - t0) / 1000));
      ratios.push((b.at - t0) / (a.at - t0));
    }
  } finally {
    await ch.deleteExchange(exchange).catch(() => {});
    await conn.close();
  }
  const total = (xs) => xs.reduce((x, y) => x + y, 0);
  report({
    bench: 'lcmon.live-together',
    messages: LIVE_MESSAGES,
    rounds: ROUNDS,
    lcmon_msgs_per_s: Math.round(total(rates.lcmon) / ROUNDS),
    plain_amqplib_msgs_per_s: Math.round(total(rates.plain) / ROUNDS),
    ratio_lowest_round: round(Math.min(...ratios)),
    ratio_highest_round: round(Math.max(...ratios)),
    goal: 'ratio_lowest_round >= 0.9',
    goal_met: Math.min(...ratios) >= 0.9,
    note: 'both consumers bound before one stream is published; each timed from the first publish to its last message',
    load_avg_1min: round(os.loadavg()[0]),
  });
}

/** A consumer process with stdout drained and counted: `ready` once it listens, `done` at its exit (0). */
function consumer(cmd, args) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let lines = 0;
  let err = '';
  let onReady;
  const ready = new Promise((resolve) => (onReady = resolve));
  child.stdout.on('data', (b) => {
    for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) lines++;
  });
  child.stderr.on('data', (b) => {
    err += b;
    if (/^(ready|lcmon: listening)/m.test(err)) onReady();
  });
  const done = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve({ at: performance.now(), lines })
        : reject(new Error(`${args.join(' ')} exited ${code}: ${err}`)),
    );
  });
  return { ready, done };
}

async function fromFile() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-lcmon-'));
  const file = path.join(dir, 'saved.jsonl');
  try {
    const out = fs.createWriteStream(file);
    let chunk = '';
    for (let i = 0; i < FILE_LINES; i++) {
      chunk += `{"rkey":"web.handle","headers":{"hostname":"bench"},"object":${JSON.stringify(body(i))}}\n`;
      if (chunk.length > 1 << 20) {
        if (!out.write(chunk)) await new Promise((res) => out.once('drain', res));
        chunk = '';
      }
    }
    out.end(chunk);
    await new Promise((res) => out.on('close', res));
    const bytes = fs.statSync(file).size;
    // The ceiling on one thread: JSON.parse of every line, nothing else (file already in memory).
    const text = fs.readFileSync(file, 'utf8');
    let parseMs = Infinity;
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = performance.now();
      for (let start = 0, nl; (nl = text.indexOf('\n', start)) !== -1; start = nl + 1)
        JSON.parse(text.slice(start, nl));
      parseMs = Math.min(parseMs, performance.now() - t0);
    }
    report({
      bench: 'lcmon.file-baseline',
      what: 'JSON.parse of each line, one thread, in memory',
      lines: FILE_LINES,
      lines_per_s: Math.round(FILE_LINES / (parseMs / 1000)),
    });
    for (const [mode, expected] of [
      ['-s', FILE_LINES],
      ['-sc', FILE_LINES / 5],
    ]) {
      let bestMs = Infinity;
      for (let r = 0; r < ROUNDS; r++) {
        const { ms, lines } = await timed(process.execPath, [LCMON, mode], file);
        if (lines !== expected) throw new Error(`lcmon ${mode} printed ${lines} lines, expected ${expected}`);
        bestMs = Math.min(bestMs, ms);
      }
      report({
        bench: `lcmon${mode}`,
        lines: FILE_LINES,
        avg_line_bytes: Math.round(bytes / FILE_LINES),
        lines_per_s: Math.round(FILE_LINES / (bestMs / 1000)),
        seconds: round(bestMs / 1000),
        goal: 'lines_per_s >= 250000',
        goal_met: FILE_LINES / (bestMs / 1000) >= 250_000,
        load_avg_1min: round(os.loadavg()[0]),
      });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
