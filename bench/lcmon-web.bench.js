// Issue 20: lcmon --web under load. The real bin serves the page (`lcmon --web 127.0.0.1:0`,
// default bounds) while this process publishes RATE messages a second for SECONDS to the real
// broker, and Debian's chromium (/usr/bin/chromium, through playwright-core) shows the page.
// Traffic: OPEN objects open at once, each born, 8 updates, finished (10 messages, so about RATE/10
// objects finish a second and as many are born), plus HOT long-lived objects taking a fifth of the
// messages (each far above 10 updates a second: the server coalesces them). Every second a probe
// object is born, and the time from its publish to its row at the top of the page's table is
// measured (render_latency_*: broker, lcmon, the coalescing tick, SSE, the page's next frame).
// Every 5 s the lcmon process's RSS and JS heap (as the page shows it) and the page's JS heap and
// DOM node count (Chrome DevTools Protocol) are sampled; samples read `at:rss/server heap/page heap`.
// Goals: the memory of both stays bounded (the JS heaps flat after the first 20 s; RSS, which V8
// grows and gives back lazily, levelling off), render latency p95 under 1 s, no frame gap in the
// page over 1 s.
// BENCH_LCMON_WEB_SECONDS (60), BENCH_LCMON_WEB_RATE (5000), BENCH_LCMON_WEB_OPEN (1000).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { launchChromium } from '@contexture/test-support/browser';
import { AMQP_URL, percentile, report, round, uniqueName } from './support.js';

const SECONDS = Number(process.env.BENCH_LCMON_WEB_SECONDS ?? 60);
const RATE = Number(process.env.BENCH_LCMON_WEB_RATE ?? 5000);
const OPEN = Number(process.env.BENCH_LCMON_WEB_OPEN ?? 1000);
const HOT = 10;
const LCMON = fileURLToPath(new URL('../packages/lcmon/bin/lcmon.js', import.meta.url));

const mib = (bytes) => round(bytes / 1024 / 1024, 1);

function rssOf(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]) * 1024;
}

async function startLcmon(exchange) {
  const child = spawn(process.execPath, [LCMON, '--web', '127.0.0.1:0', '-e', exchange], {
    env: { ...process.env, CONTEXTURE_URL: AMQP_URL },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  const url = await new Promise((resolve, reject) => {
    child.stderr.on('data', (s) => {
      stderr += s;
      const m = /web view on (http:\/\/\S+)/.exec(stderr);
      if (m !== null) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`lcmon exited (${code}): ${stderr}`)));
  });
  return { child, url, stderr: () => stderr };
}

async function main() {
  const exchange = uniqueName('bench-lcmon-web');
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createConfirmChannel();
  await ch.assertExchange(exchange, 'topic', { durable: true });
  const lcmon = await startLcmon(exchange);
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(lcmon.url);
    await page.waitForFunction(() => document.getElementById('link').textContent === 'live');
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    // The page's longest gap between two frames since the last read: how long it was unresponsive.
    await page.evaluate(() => {
      window.benchGap = 0;
      let last = performance.now();
      const frame = (t) => {
        window.benchGap = Math.max(window.benchGap, t - last);
        last = t;
        requestAnimationFrame(frame);
      };
      requestAnimationFrame(frame);
    });

    const headers = { hostname: 'bench' };
    const send = (rkey, body) =>
      ch.publish(exchange, rkey, Buffer.from(JSON.stringify(body)), { contentType: 'application/json', headers });
    const now = () => Date.now() / 1000;
    let serial = 0;
    const slots = Array.from({ length: OPEN }, () => ({ id: `o-${serial++}`, seq: 0 }));
    const hot = Array.from({ length: HOT }, (_, i) => ({ id: `hot-${i}`, seq: 0 }));
    const step = (s, rkey) => {
      const body = { obj_id: s.id, seq: s.seq, time_in: now(), handler_id: 'bench', obj: {} };
      if (s.seq === 0) {
        body.status = 'born';
        body.obj = { path: `/api/items/${s.id}`, method: 'GET', user: `u${serial % 97}` };
      } else if (s.seq === 9 && rkey !== 'hot.bench') {
        body.status = 'finished';
        body.obj = { status_code: 200 };
      } else {
        body.obj = { step: s.seq, [`f${s.seq % 7}`]: s.seq * 3.5 };
      }
      send(rkey, body);
      s.seq++;
      if (body.status === 'finished') {
        s.id = `o-${serial++}`;
        s.seq = 0;
      }
    };
    const probeTag = uniqueName('probe');
    // When each probe's row is drawn: recorded in the page as the row is inserted (Date.now(), the
    // same clock as the publish time here).
    await page.evaluate((tag) => {
      window.benchSeen = {};
      new MutationObserver((records) => {
        const at = Date.now();
        for (const r of records)
          for (const n of r.addedNodes) if (n.dataset?.id?.startsWith(tag)) window.benchSeen[n.dataset.id] ??= at;
      }).observe(document.getElementById('rows'), { childList: true });
    }, probeTag);
    /** Probe id → when it was published (Date.now()). */
    const probes = new Map();
    await ch.waitForConfirms();
    const samples = [];
    let published = 0;
    let slot = 0;
    let hotAt = 0;
    const t0 = performance.now();
    let nextProbe = 1000;
    let nextSample = 0;
    const sample = async (at) => {
      const m = Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((x) => [x.name, x.value]));
      const gap = await page.evaluate(() => {
        const g = window.benchGap;
        window.benchGap = 0;
        return g;
      });
      // The server's JS heap, as the page shows it (MiB, from its last stats event).
      const serverHeap = Number(await page.textContent('#c-heap'));
      samples.push({ at, rss: rssOf(lcmon.child.pid), serverHeap, heap: m.JSHeapUsedSize, nodes: m.Nodes, gap });
    };
    while (performance.now() - t0 < SECONDS * 1000) {
      const elapsed = performance.now() - t0;
      const target = Math.floor((RATE * elapsed) / 1000);
      while (published < target) {
        if (published % 5 === 0) step(hot[hotAt++ % HOT], 'hot.bench');
        else step(slots[slot++ % OPEN], slot % 2 === 0 ? 'web.bench' : 'api.bench');
        published++;
      }
      await ch.waitForConfirms();
      if (elapsed >= nextProbe) {
        nextProbe += 1000;
        const id = `${probeTag}-${nextProbe}`;
        send('probe.bench', { obj_id: id, seq: 0, status: 'born', time_in: now(), obj: { probe: nextProbe } });
        probes.set(id, Date.now());
      }
      if (elapsed >= nextSample) {
        nextSample += 5000;
        await sample(Math.round(elapsed / 1000));
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const seconds = (performance.now() - t0) / 1000;
    // The last probes get a moment to arrive.
    await new Promise((r) => setTimeout(r, 3000));
    const seen = await page.evaluate(() => window.benchSeen);
    const latencies = [];
    let missed = 0;
    for (const [id, at] of probes) {
      if (seen[id] === undefined) missed++;
      else latencies.push(seen[id] - at);
    }
    await sample(Math.round(seconds));
    const counters = await page.evaluate(() =>
      Object.fromEntries(
        ['c-rate', 'c-open', 'c-malformed', 'c-coalesced', 'c-dropped'].map((id) => [
          id,
          Number(document.getElementById(id).textContent),
        ]),
      ),
    );
    const shown = await page.textContent('#shown');
    const dropDetail = await page.getAttribute('#c-dropped', 'title');
    const rows = await page.evaluate(() => document.querySelectorAll('#rows tr').length);
    const late = samples.filter((s) => s.at >= 20);
    const lat = latencies.slice().sort((a, b) => a - b);
    const max = (xs) => Math.max(...xs);
    report({
      bench: 'lcmon-web',
      scenario: `${RATE}_msgs_per_s_${SECONDS}s`,
      seconds: round(seconds, 1),
      msgs_per_s_published: Math.round(published / seconds),
      open_objects_target: OPEN + HOT,
      page_open: counters['c-open'],
      page_rows: rows,
      page_shown: shown,
      coalesced: counters['c-coalesced'],
      dropped: counters['c-dropped'],
      dropped_detail: dropDetail,
      malformed: counters['c-malformed'],
      render_latency_ms_p50: round(percentile(lat, 50), 0),
      render_latency_ms_p95: round(percentile(lat, 95), 0),
      render_latency_ms_max: round(lat[lat.length - 1] ?? NaN, 0),
      probes: lat.length,
      probes_never_shown: missed,
      max_frame_gap_ms: round(max(samples.map((s) => s.gap)), 0),
      server_rss_mib_at_20s: mib(late[0]?.rss ?? NaN),
      server_rss_mib_max: mib(max(samples.map((s) => s.rss))),
      server_rss_mib_end: mib(samples[samples.length - 1].rss),
      server_rss_growth_mib: mib(samples[samples.length - 1].rss - (late[0]?.rss ?? NaN)),
      server_heap_mib_at_20s: late[0]?.serverHeap ?? null,
      server_heap_mib_max: max(samples.map((s) => s.serverHeap)),
      server_heap_mib_end: samples[samples.length - 1].serverHeap,
      page_heap_mib_at_20s: mib(late[0]?.heap ?? NaN),
      page_heap_mib_max: mib(max(samples.map((s) => s.heap))),
      page_heap_mib_end: mib(samples[samples.length - 1].heap),
      page_heap_growth_mib: mib(samples[samples.length - 1].heap - (late[0]?.heap ?? NaN)),
      page_dom_nodes_max: max(samples.map((s) => s.nodes)),
      samples: samples.map((s) => `${s.at}s:${mib(s.rss)}/${s.serverHeap}/${mib(s.heap)}MiB`).join(' '),
    });
  } finally {
    await browser.close();
    lcmon.child.kill('SIGINT');
    if (lcmon.child.exitCode === null) await new Promise((r) => lcmon.child.once('exit', r));
    await ch.deleteExchange(exchange).catch(() => {});
    await conn.close();
  }
}

await main();
