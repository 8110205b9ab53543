// Growth curves as hand-written SVG (no library, no browser): log-log axes with labelled ticks at
// each power of ten (and at 2 and 5 when the axis spans less than two decades), one line with
// markers per series, a title, axis labels, a legend, and for each series a dashed line of slope 1
// through its first point (what linear growth from there would give), so a reader sees where a
// curve departs from linear. Also the numbers behind the sentence bench/results.js writes under
// each chart: the local slope of each segment on log-log.
//
//   import { logLogChart, localSlopes } from './svg-chart.js';
//   fs.writeFileSync('curve.svg', logLogChart({ title, xLabel, yLabel, series: [{ name, points: [[x, y], …] }] }));

const WIDTH = 720;
const HEIGHT = 440;
const MARGIN = { left: 78, right: 34, top: 44, bottom: 56 };
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

/** Text made safe for an SVG text node or attribute value. */
export function escapeXml(text) {
  return String(text).replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c],
  );
}

/** A tick label: 1, 20, 500, 1k, 2M, 0.1, 0.05 … (SI prefixes from k up). */
export function tickLabel(v) {
  const units = [
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  for (const [scale, suffix] of units) if (v >= scale) return `${trim(v / scale)}${suffix}`;
  return trim(v);
}
const trim = (v) => String(Number(v.toPrecision(3)));

/** Tick values for a log axis over [lo, hi]: the powers of ten, and 2 and 5 times them on a short axis. */
export function logTicks(lo, hi) {
  const from = Math.floor(Math.log10(lo));
  const to = Math.ceil(Math.log10(hi));
  const steps = to - from <= 2 ? [1, 2, 5] : [1];
  const ticks = [];
  for (let e = from; e <= to; e++) {
    for (const m of steps) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push(Number(v.toPrecision(12)));
    }
  }
  return ticks;
}

/** The axis domain: the data's range widened to whole decades, or to 1-2-5 steps when it spans less than two. */
function domain(values) {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const down = (v) => 10 ** Math.floor(Math.log10(v));
  const up = (v) => 10 ** Math.ceil(Math.log10(v));
  if (Math.log10(up(hi) / down(lo)) > 2) return [down(lo), up(hi)];
  const steps = (v) => [1, 2, 5, 10].map((m) => m * down(v));
  const a = steps(lo)
    .filter((s) => s <= lo * 1.0001)
    .pop();
  let b = steps(hi).find((s) => s >= hi * 0.9999);
  if (b <= a) b = a * 10;
  return [a, b];
}

/**
 * Local slopes on log-log of a series' points (sorted by x): the slope of each segment between two
 * neighbouring points, `{ from, to, slope }` (1 is linear, 0 flat, 2 quadratic).
 */
export function localSlopes(points) {
  const out = [];
  for (let i = 1; i < points.length; i++) {
    const [x0, y0] = points[i - 1];
    const [x1, y1] = points[i];
    out.push({ from: points[i - 1], to: points[i], slope: Math.log(y1 / y0) / Math.log(x1 / x0) });
  }
  return out;
}

/**
 * An SVG document: a log-log chart of the series. `series`: `[{ name, points: [[x, y], …] }]`; points
 * with x or y not a positive finite number are left out (a log axis has no place for them).
 */
export function logLogChart({ title, xLabel, yLabel, series, reference = true }) {
  const clean = series
    .map((s) => ({
      name: s.name,
      points: s.points
        .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && x > 0 && y > 0)
        .sort((a, b) => a[0] - b[0]),
    }))
    .filter((s) => s.points.length > 0);
  const out = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`,
    `<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
  );
  if (clean.length === 0) {
    out.push(`<text x="${WIDTH / 2}" y="${HEIGHT / 2}" text-anchor="middle">no data</text>`, '</svg>');
    return `${out.join('\n')}\n`;
  }
  const [x0, x1] = domain(clean.flatMap((s) => s.points.map((p) => p[0])));
  const [y0, y1] = domain(clean.flatMap((s) => s.points.map((p) => p[1])));
  const left = MARGIN.left;
  const right = WIDTH - MARGIN.right;
  const top = MARGIN.top;
  const bottom = HEIGHT - MARGIN.bottom;
  const sx = (x) => left + ((Math.log10(x) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0))) * (right - left);
  const sy = (y) => bottom - ((Math.log10(y) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * (bottom - top);
  const f = (v) => v.toFixed(1);

  out.push(
    `<defs><clipPath id="plot"><rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}"/></clipPath></defs>`,
  );
  // Grid and ticks.
  out.push('<g stroke="#e3e3e3" stroke-width="1">');
  for (const t of logTicks(x0, x1)) out.push(`<line x1="${f(sx(t))}" y1="${top}" x2="${f(sx(t))}" y2="${bottom}"/>`);
  for (const t of logTicks(y0, y1)) out.push(`<line x1="${left}" y1="${f(sy(t))}" x2="${right}" y2="${f(sy(t))}"/>`);
  out.push('</g>');
  out.push(
    `<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#444" stroke-width="1"/>`,
  );
  out.push('<g fill="#222">');
  for (const t of logTicks(x0, x1))
    out.push(`<text x="${f(sx(t))}" y="${bottom + 17}" text-anchor="middle">${escapeXml(tickLabel(t))}</text>`);
  for (const t of logTicks(y0, y1))
    out.push(`<text x="${left - 7}" y="${f(sy(t) + 4)}" text-anchor="end">${escapeXml(tickLabel(t))}</text>`);
  out.push('</g>');
  out.push(
    `<text x="${(left + right) / 2}" y="${HEIGHT - 14}" text-anchor="middle" font-size="13">${escapeXml(xLabel)}</text>`,
    `<text transform="translate(18 ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle" font-size="13">${escapeXml(yLabel)}</text>`,
  );

  // Series: the dashed linear reference under the data, then the line and its markers.
  clean.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const [fx, fy] = s.points[0];
    if (reference && s.points.length > 1) {
      const endX = x1;
      out.push(
        `<line clip-path="url(#plot)" x1="${f(sx(fx))}" y1="${f(sy(fy))}" x2="${f(sx(endX))}" y2="${f(sy((fy * endX) / fx))}" stroke="${colour}" stroke-width="1.2" stroke-dasharray="5 4" opacity="0.55"/>`,
      );
    }
    const path = s.points.map(([x, y], j) => `${j === 0 ? 'M' : 'L'}${f(sx(x))} ${f(sy(y))}`).join(' ');
    out.push(`<path d="${path}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    out.push(`<g fill="${colour}">`);
    for (const [x, y] of s.points)
      out.push(
        `<circle cx="${f(sx(x))}" cy="${f(sy(y))}" r="3.2"><title>${escapeXml(`${s.name}: ${x} → ${y}`)}</title></circle>`,
      );
    out.push('</g>');
  });

  // Legend, top left inside the plot.
  const entries = clean.map((s) => s.name);
  if (reference) entries.push('dashed: linear growth from the first point');
  const lineHeight = 17;
  const legendWidth = Math.min(right - left - 16, 24 + 6.6 * Math.max(...entries.map((e) => e.length)));
  out.push(
    `<rect x="${left + 8}" y="${top + 8}" width="${f(legendWidth)}" height="${entries.length * lineHeight + 8}" fill="#fff" fill-opacity="0.9" stroke="#ccc"/>`,
  );
  entries.forEach((e, i) => {
    const y = top + 8 + lineHeight * (i + 1) - 3;
    const isRef = reference && i === entries.length - 1;
    const colour = isRef ? '#777' : COLOURS[i % COLOURS.length];
    out.push(
      `<line x1="${left + 14}" y1="${y - 4}" x2="${left + 30}" y2="${y - 4}" stroke="${colour}" stroke-width="2"${isRef ? ' stroke-dasharray="4 3"' : ''}/>`,
      `<text x="${left + 36}" y="${y}">${escapeXml(e)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
