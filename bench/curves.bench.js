// Growth curves (issue 21): how cost grows with the work, measured at log-spaced points (three a
// decade) and printed as one JSON line per point and series: `bench`, `curve` (its id), `title`,
// `series`, `x` with `x_label` and `x_unit`, `y` with `y_label` and `y_unit`, and what else explains
// the point (counts, GC time, Redis memory). bench/results.js draws each curve as
// bench/curves-<curve>.svg (log-log, with a dashed linear reference through the first point) and
// says under it where it stops being linear.
//  1. publish-size: a Context's cost per message against the size of the changed value, 100 B to
//     1 MB, published by a Handler to RabbitMQ (its own exchange, one bound queue capped in length
//     and bytes): the change as the program pays it, and the time from the first change until the
//     broker confirmed the last message, per message. As many messages as make about 64 MB (at
//     least 20, at most 5,000), best of 3 rounds; the GC pause time of the best round beside it.
//  2. store-size: the Redis store against the size of one context, 1 KB to 1 MB (fields of ~256 B
//     each): the write of the whole context (a `born` message), apply() of a message changing one
//     field, and sync() by a reader that keeps nothing (knownContexts 0, as a client's first call):
//     one version behind (delta) and from nothing (full). Medians of as many rounds as fit in about
//     1.5 s (at least 5).
//  3. store-live: apply() and sync() of a random one of N live contexts (a small request-like
//     context each), N from 1,000 to 1,000,000, one call at a time, medians over about 1 s; and
//     redis-memory-live: Redis's used_memory above what it was before, against N. Redis's CPU per
//     call (INFO's used_cpu_user + used_cpu_sys) beside each point. The contexts are
//     copies of one the store wrote (DUMP, then pipelined RESTOREs, each with a TTL of an hour should
//     the bench die), under the bench's own key prefix, and all deleted at the end. The fill stops
//     early (and says so) if used_memory grows by more than BENCH_CURVES_REDIS_MIB (default 3072).
//  4. lcmon-open: the peak resident memory of `lcmon -sc` against the objects left open at the end
//     of its input (N `born` messages that never finish, 1,000 to 464,000), above what it takes
//     for an empty input (VmHWM, read at its exit); beside it the objects it still held at the end
//     (its --stats line) and the same for N lines of objects that complete at once (none open).
// How long: about 3 minutes on 2 cores with little else running (publish ~40 s, store-size ~20 s,
// store-live ~60 s with the fill and clean-up, lcmon ~60 s); nearly 8 minutes under a load average
// of 17-20. BENCH_CURVES=publish,size,live,lcmon picks parts.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { Context, Handler } from '@contexture/context';
import { RedisContextStore } from '@contexture/collector/store';
import { AMQP_URL, REDIS_URL, removeKeys, report, round, uniqueName } from './support.js';

const LCMON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../packages/lcmon/dist/src/bin/lcmon.js');
const PARTS = new Set((process.env.BENCH_CURVES ?? 'publish,size,live,lcmon').split(','));
const REDIS_LIMIT_MIB = Number(process.env.BENCH_CURVES_REDIS_MIB ?? 3072);
// The most open objects of the lcmon curve (two points past lcmon -sc's cap of 100,000 open objects).
const LCMON_MAX = Number(process.env.BENCH_CURVES_LCMON_MAX ?? 500_000);

/** Three points a decade from `from` to `to` (both powers of ten), rounded to whole numbers. */
function logSpaced(from, to) {
  const out = [];
  for (let e = Math.log10(from); e <= Math.log10(to) + 1e-9; e += 1 / 3) out.push(Math.round(10 ** e));
  return out;
}

/** Prints one point of a curve. */
function point(curve, series, x, y, extra = {}) {
  report({
    bench: `curves.${curve.id}`,
    curve: curve.id,
    title: curve.title,
    series,
    x,
    x_label: curve.xLabel,
    x_unit: curve.xUnit,
    y: round(y, y < 10 ? 3 : 1),
    y_label: curve.yLabel,
    y_unit: curve.yUnit,
    ...extra,
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const load = () => round(os.loadavg()[0]);

/** GC pause time (ms) while `fn` runs. */
async function withGc(fn) {
  let gcMs = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcMs += e.duration;
  });
  obs.observe({ entryTypes: ['gc'] });
  try {
    const result = await fn();
    await new Promise((r) => setImmediate(r)); // let the observer see the last entries
    return { result, gcMs };
  } finally {
    obs.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// 1. publish-size

async function publishSize() {
  const curve = {
    id: 'publish-size',
    title: 'Publish cost against message size',
    xLabel: 'size of the changed value',
    xUnit: 'B',
    yLabel: 'time per message',
    yUnit: 'µs',
  };
  const exchange = uniqueName('bench-curves');
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createChannel();
  await ch.assertExchange(exchange, 'topic', { durable: true });
  const q = await ch.assertQueue('', {
    exclusive: true,
    arguments: { 'x-max-length': 1000, 'x-max-length-bytes': 32 * 2 ** 20, 'x-overflow': 'drop-head' },
  });
  await ch.bindQueue(q.queue, exchange, '#');
  try {
    // The first size is measured twice, the first time as a warm-up (code compiled, connection
    // paths hot) and not reported.
    const sizes = logSpaced(100, 1_000_000);
    for (const [k, size] of [sizes[0], ...sizes].entries()) {
      const n = Math.max(20, Math.min(5000, Math.round((64 * 2 ** 20) / size)));
      // Two values in turn, so that every change is a change.
      const values = ['a', 'b'].map((c) => c + 'x'.repeat(size - 1));
      let best = null;
      for (let r = 0; r < 3; r++) {
        const handler = new Handler({
          url: AMQP_URL,
          exchange,
          bufferSize: n + 10,
          maxInFlight: 1000,
          heartbeatInterval: 0,
          logger: null,
        });
        new Context({ name: 'bench.curves', handler, transient: true });
        await handler.flush();
        const { result, gcMs } = await withGc(async () => {
          let changeMs = 0;
          const t0 = performance.now();
          const ctx = new Context({ name: 'bench.curves', handler });
          for (let i = 0; i < n; ) {
            const t = performance.now();
            for (const end = Math.min(n, i + 50); i < end; i++) ctx.v = values[i % 2];
            changeMs += performance.now() - t;
            await new Promise((res) => setImmediate(res)); // the flush runs meanwhile, as in a program
          }
          await handler.flush();
          return { changeMs, totalMs: performance.now() - t0 };
        });
        const stats = handler.stats();
        await handler.close();
        if (stats.dropped !== 0) throw new Error(`publish-size ${size} B: ${stats.dropped} messages dropped`);
        if (best === null || result.totalMs < best.totalMs) best = { ...result, gcMs };
      }
      if (k === 0) continue;
      const extra = { messages: n, gc_ms: round(best.gcMs, 1), load_avg_1min: load() };
      point(curve, 'change (what the program pays)', size, (best.changeMs * 1000) / n, extra);
      point(curve, 'published and confirmed', size, (best.totalMs * 1000) / n, {
        ...extra,
        mb_per_s: round((n * size) / 2 ** 20 / (best.totalMs / 1000), 1),
      });
    }
  } finally {
    await ch.deleteExchange(exchange).catch(() => {});
    await conn.close();
  }
}

// ---------------------------------------------------------------------------------------------
// 2. store-size

const FIELD = 'f'.repeat(240);

/** A context of about `bytes` bytes: fields f00000, f00001, … of ~256 B each (key, quotes and value). */
function contextOf(bytes) {
  const obj = {};
  const k = Math.max(1, Math.round(bytes / 256));
  for (let i = 0; i < k; i++) obj[`f${String(i).padStart(5, '0')}`] = `${i}${FIELD}`.slice(0, 240);
  return obj;
}

const META = { rkey: 'bench.curves', headers: { hostname: 'bench' } };
function message(id, seq, obj, status) {
  const now = Date.now() / 1000;
  const m = { obj_id: id, obj, seq, handler_id: 'h', time_in: now, time_out: now, qtime: 0, qlen: 1 };
  if (status !== undefined) m.status = status;
  return m;
}

/** Times `op` (ms) once. */
async function timed(op) {
  const t0 = performance.now();
  await op();
  return performance.now() - t0;
}

async function storeSize() {
  const curve = {
    id: 'store-size',
    title: 'Redis store against the size of a context',
    xLabel: 'context size',
    xUnit: 'B',
    yLabel: 'time per call',
    yUnit: 'µs',
  };
  const prefix = `${uniqueName('bench-curves-size')}:`;
  const writer = new RedisContextStore({ redis: REDIS_URL, prefix });
  const reader = new RedisContextStore({ redis: REDIS_URL, prefix, knownContexts: 0 });
  const redis = new Redis(REDIS_URL);
  try {
    // Warm-up: the scripts loaded, the code paths compiled, before the first point.
    for (let i = 0; i < 200; i++) {
      await writer.apply(message('warm', i, { n: i }, i === 0 ? 'born' : undefined), META);
      await reader.sync('warm', null);
    }
    for (const bytes of logSpaced(1000, 1_000_000)) {
      const obj = contextOf(bytes);
      const actual = JSON.stringify(obj).length;
      const times = { born: [], apply: [], delta: [], full: [] };
      // Several contexts of this size, each written whole once (born).
      const ids = Array.from({ length: 7 }, (_, i) => `size-${bytes}-${i}`);
      for (const id of ids) times.born.push(await timed(() => writer.apply(message(id, 0, obj, 'born'), META)));
      const seqs = new Map(ids.map((id) => [id, 0]));
      const incarnations = new Map();
      for (const id of ids) incarnations.set(id, (await reader.sync(id, null)).incarnation);
      const end = performance.now() + 1500;
      for (let r = 0; r < 300 && (r < 5 || performance.now() < end); r++) {
        const id = ids[r % ids.length];
        const seq = seqs.get(id) + 1;
        seqs.set(id, seq);
        let version = 0;
        times.apply.push(
          await timed(async () => {
            version = (await writer.apply(message(id, seq, { f00000: `${seq}${FIELD}`.slice(0, 240) }), META)).version;
          }),
        );
        times.delta.push(
          await timed(async () => {
            const s = await reader.sync(id, version - 1, incarnations.get(id));
            if (s?.type !== 'delta') throw new Error(`store-size: sync gave ${s?.type}, expected a delta`);
          }),
        );
        times.full.push(await timed(() => reader.sync(id, null)));
      }
      const extra = {
        context_bytes: actual,
        fields: Object.keys(obj).length,
        // How Redis holds the hash (a listpack is searched field by field; a hashtable is not).
        redis_encoding: await redis.object('ENCODING', `${prefix}ctx:{${ids[0]}}`),
        load_avg_1min: load(),
      };
      point(curve, 'write the whole context (born)', bytes, median(times.born) * 1000, {
        ...extra,
        rounds: times.born.length,
      });
      const rounds = times.apply.length;
      point(curve, 'apply: change one field', bytes, median(times.apply) * 1000, { ...extra, rounds });
      point(curve, 'sync one version behind (delta)', bytes, median(times.delta) * 1000, { ...extra, rounds });
      point(curve, 'sync from nothing (full)', bytes, median(times.full) * 1000, { ...extra, rounds });
    }
  } finally {
    await writer.close();
    await reader.close();
    redis.disconnect();
    await removeKeys(prefix);
  }
}

// ---------------------------------------------------------------------------------------------
// 3. store-live and redis-memory-live

async function usedMemory(redis) {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? Number.NaN);
}

/** Redis's CPU seconds (user + sys) so far. */
async function redisCpu(redis) {
  const info = await redis.info('cpu');
  let total = 0;
  for (const f of ['used_cpu_user', 'used_cpu_sys']) total += Number(new RegExp(`${f}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return total;
}

async function storeLive() {
  const curve = {
    id: 'store-live',
    title: 'Redis store against the number of live contexts',
    xLabel: 'live contexts',
    xUnit: 'contexts',
    yLabel: 'time per call',
    yUnit: 'µs',
  };
  const memoryCurve = {
    id: 'redis-memory-live',
    title: 'Redis memory against the number of live contexts',
    xLabel: 'live contexts',
    xUnit: 'contexts',
    yLabel: 'used_memory above the start',
    yUnit: 'MiB',
  };
  const prefix = `${uniqueName('bench-curves-live')}:`;
  const redis = new Redis(REDIS_URL);
  const writer = new RedisContextStore({ redis: REDIS_URL, prefix });
  const reader = new RedisContextStore({ redis: REDIS_URL, prefix, knownContexts: 0 });
  const key = (i) => `${prefix}ctx:{live-${i}}`;
  let filled = 0;
  try {
    // The template: a context as a request leaves it, written by the store (born, then one update).
    const template = 'template';
    await writer.apply(message(template, 0, { user: 'ann', path: '/api/items/123', method: 'GET' }, 'born'), META);
    await writer.apply(message(template, 1, { status: 200, n: 1 }), META);
    const stateKey = `${prefix}ctx:{${template}}`;
    const dumps = [await redis.dumpBuffer(stateKey), await redis.dumpBuffer(`${stateKey}:d`)];
    if (dumps.some((d) => d === null)) throw new Error('store-live: the template context has no keys');
    for (let i = 0; i < 200; i++) {
      const r = await writer.apply(message(template, 2 + i, { n: 2 + i }), META);
      await reader.sync(template, r.version - 1);
      await reader.sync(template, null);
    }
    const before = await usedMemory(redis);
    let seq = 1000;
    let stopped = null;
    for (const n of logSpaced(1000, 1_000_000)) {
      // Fill up to n, pipelined, checking Redis's memory after each chunk.
      while (filled < n && stopped === null) {
        const chunk = Math.min(n - filled, 5000);
        const p = redis.pipeline();
        for (let i = filled; i < filled + chunk; i++) {
          p.restore(key(i), 3_600_000, dumps[0]);
          p.restore(`${key(i)}:d`, 3_600_000, dumps[1]);
        }
        const results = await p.exec();
        const failed = results.find(([err]) => err !== null);
        if (failed !== undefined) throw failed[0];
        filled += chunk;
        if ((await usedMemory(redis)) - before > REDIS_LIMIT_MIB * 2 ** 20) stopped = filled;
      }
      if (filled < n) break;
      const times = { apply: [], delta: [], full: [] };
      const cpu0 = await redisCpu(redis);
      const end = performance.now() + 1000;
      for (let r = 0; r < 2000 && (r < 50 || performance.now() < end); r++) {
        const id = `live-${Math.floor(Math.random() * n)}`;
        const s = ++seq;
        let result = null;
        times.apply.push(await timed(async () => (result = await writer.apply(message(id, s, { n: s }), META))));
        times.delta.push(await timed(() => reader.sync(id, result.version - 1)));
        times.full.push(await timed(() => reader.sync(`live-${Math.floor(Math.random() * n)}`, null)));
      }
      const cpuUs = (((await redisCpu(redis)) - cpu0) * 1e6) / (3 * times.apply.length);
      const used = (await usedMemory(redis)) - before;
      // Redis's own CPU per call (all three kinds alike, and whatever else Redis served meanwhile):
      // what of the time is Redis's work rather than waiting.
      const extra = { rounds: times.apply.length, redis_cpu_us_per_call: round(cpuUs, 1), load_avg_1min: load() };
      point(curve, 'apply: change one field', n, median(times.apply) * 1000, extra);
      point(curve, 'sync one version behind (delta)', n, median(times.delta) * 1000, extra);
      point(curve, 'sync from nothing (full)', n, median(times.full) * 1000, extra);
      point(memoryCurve, 'used_memory growth', n, used / 2 ** 20, {
        bytes_per_context: Math.round(used / n),
        keys: 2 * n,
        load_avg_1min: load(),
      });
    }
    if (stopped !== null)
      report({
        bench: 'curves.store-live',
        stopped_at_contexts: stopped,
        note: `Redis used_memory grew by more than ${REDIS_LIMIT_MIB} MiB`,
      });
  } finally {
    await writer.close();
    await reader.close();
    // Every copy by name (fast), then whatever else is under the prefix.
    for (let i = 0; i < filled; i += 2000) {
      const keys = [];
      for (let j = i; j < Math.min(filled, i + 2000); j++) keys.push(key(j), `${key(j)}:d`);
      await redis.unlink(...keys);
    }
    redis.disconnect();
    await removeKeys(prefix);
  }
}

// ---------------------------------------------------------------------------------------------
// 4. lcmon-open

/**
 * Peak RSS (KiB) of the process, written on stderr at its exit by a module loaded before lcmon:
 * VmHWM of /proc/self/status, which starts afresh at exec (getrusage's maxrss does not on Linux:
 * it keeps the spawning process's peak).
 */
const PEAK_RSS = `data:text/javascript,import fs from 'node:fs';process.on('exit',()=>{let k;try{k=/VmHWM:\\s*(\\d+)/.exec(fs.readFileSync('/proc/self/status','utf8'))[1]}catch{k=process.resourceUsage().maxRSS}process.stderr.write('\\npeak_rss_kib='+k+'\\n')})`;

/** Runs lcmon -sc --stats over a file; resolves with its peak RSS (KiB) and the objects open at the end. */
function lcmonRun(file) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', PEAK_RSS, LCMON, '-sc', '--stats'], {
      stdio: [fs.openSync(file, 'r'), 'pipe', 'pipe'],
    });
    let err = '';
    child.stdout.resume();
    child.stderr.on('data', (b) => (err += b));
    child.on('error', reject);
    child.on('close', (code) => {
      const rss = /peak_rss_kib=(\d+)/.exec(err);
      const open = /(\d+) objects? open/.exec(err);
      if (code !== 0 || rss === null) reject(new Error(`lcmon -sc exited ${code}: ${err}`));
      else resolve({ rssKib: Number(rss[1]), open: open === null ? null : Number(open[1]) });
    });
  });
}

async function lcmonOpen() {
  const curve = {
    id: 'lcmon-open',
    title: 'lcmon -sc memory against open objects',
    xLabel: 'objects opened and never finished',
    xUnit: 'objects',
    yLabel: 'peak RSS above an empty input',
    yUnit: 'MiB',
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-curves-'));
  const prefix = randomUUID().slice(0, 24);
  const line = (i, status) =>
    `{"rkey":"web.handle","headers":{"hostname":"bench"},"object":{"obj_id":"${prefix}${String(i).padStart(12, '0')}","obj":{"url":"/items/${i}","method":"GET","user":"ann"},"seq":0,"status":"${status}","handler_id":"h","time_in":1700000000.5,"time_out":1700000000.6,"qtime":0.0001,"qlen":1}}\n`;
  const writeFile = async (n, status = 'born') => {
    const file = path.join(dir, `${n}-${status}.jsonl`);
    const out = fs.createWriteStream(file);
    let chunk = '';
    for (let i = 0; i < n; i++) {
      chunk += line(i, status);
      if (chunk.length > 1 << 20) {
        if (!out.write(chunk)) await new Promise((res) => out.once('drain', res));
        chunk = '';
      }
    }
    out.end(chunk);
    await new Promise((res) => out.on('close', res));
    return file;
  };
  try {
    const empty = await writeFile(0);
    let base = Infinity;
    for (let r = 0; r < 3; r++) base = Math.min(base, (await lcmonRun(empty)).rssKib);
    for (const n of logSpaced(1000, LCMON_MAX)) {
      const file = await writeFile(n);
      let best = null;
      for (let r = 0; r < (n <= 10_000 ? 2 : 1); r++) {
        const got = await lcmonRun(file);
        if (best === null || got.rssKib < best.rssKib) best = got;
      }
      fs.rmSync(file);
      // The same number of lines, each an object that completes at once (transient): none stays
      // open, so what this takes is what reading the input takes.
      const control = await writeFile(n, 'transient');
      const none = await lcmonRun(control);
      fs.rmSync(control);
      point(curve, 'lcmon -sc', n, Math.max(0.01, (best.rssKib - base) / 1024), {
        peak_rss_mib: round(best.rssKib / 1024, 1),
        empty_input_rss_mib: round(base / 1024, 1),
        open_at_end: best.open,
        bytes_per_open_object: best.open ? Math.round(((best.rssKib - base) * 1024) / best.open) : null,
        same_lines_none_open_mib: round((none.rssKib - base) / 1024, 1),
        load_avg_1min: load(),
      });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (PARTS.has('publish')) await publishSize();
if (PARTS.has('size')) await storeSize();
if (PARTS.has('live')) await storeLive();
if (PARTS.has('lcmon')) await lcmonOpen();
