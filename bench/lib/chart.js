// The chart of a serve-load run (issue 25: "a chart of them against N"): aggregate tokens/s, time to
// first token and inter-token latency against the number of concurrent clients N, as one SVG string
// (no DOM, no fonts or scripts to fetch), for `node bench/serve-load.js --chart` and `--from`.
//
//   title: model, weights, threads, machine
//   subtitle: shape, prompts and tokens, Node, date
//   ┌ tokens/s ──────────┐ ┌ time to first token ┐ ┌ inter-token latency ┐   panel titles
//    ● whole run ■ …        ● p50 ■ p99             ● p50 ■ p99               legends
//   │                    │ │       (log y)       │ │                     │
//   └──1───4───16───64───┘ └─────────────────────┘ └─────────────────────┘   a tick at each measured N
//        clients N              clients N               clients N            (log2 x, shared)
//
// `rows` are serve-load's --json rows. A field that is null or absent was not measured and is not
// drawn (a series with no value leaves the legend); NaN, Infinity or a non-number is an error, as is
// an empty run: a chart should not quietly draw a blank.

/** The panels, left to right: which row fields each draws, and how. */
export const PANELS = [
  {
    title: 'tokens/s, all clients together', unit: 'tokens/s', log: false,
    series: [{ key: 'tokensPerSecond', label: 'whole run' }, { key: 'decodeTokensPerSecond', label: 'while all decode' }],
  },
  {
    title: 'time to first token (ms, log scale)', unit: 'ms', log: true,
    series: [{ key: 'ttftP50Ms', label: 'p50' }, { key: 'ttftP99Ms', label: 'p99' }],
  },
  {
    title: 'inter-token latency (ms)', unit: 'ms', log: false,
    series: [{ key: 'interTokenP50Ms', label: 'p50' }, { key: 'interTokenP99Ms', label: 'p99' }],
  },
];

// Okabe and Ito's colour-blind-safe blue and vermilion; the second series is also dashed with square
// marks, so the two read apart in grey too.
const STYLES = [
  { color: '#0072b2', dash: '', mark: 'circle' },
  { color: '#d55e00', dash: '6 4', mark: 'square' },
];

const WIDTH = 900, HEIGHT = 340, FONT = 11;
const PANEL = { width: WIDTH / 3, left: 62, right: 10, top: 84, plotHeight: 208 }; // plot area inside each third
const PLOT_WIDTH = PANEL.width - PANEL.left - PANEL.right;

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const px = (x) => String(Math.round(x * 100) / 100);
/** Rough width of a label: 0.6 em a character is close enough for sans-serif digits and words. */
const textWidth = (text, size = FONT) => 0.6 * size * text.length;
/** 1,026 / 13.5 / 0.25: whole numbers from 100 up, three significant digits below. */
const fmt = (x) => (Math.abs(x) >= 100 ? Math.round(x).toLocaleString('en-US') : String(Number(x.toPrecision(3))));

/** The rows checked and sorted by N; throws on anything that cannot be drawn. */
function checkedRows(rows) {
  if (!Array.isArray(rows)) throw new TypeError(`serveLoadChart: rows must be an array, got ${rows === null ? 'null' : typeof rows}`);
  if (rows.length === 0) throw new RangeError('serveLoadChart: no rows to draw (a run measures at least one N)');
  const seen = new Set();
  rows.forEach((row, i) => {
    if (row === null || typeof row !== 'object') throw new TypeError(`serveLoadChart: rows[${i}] must be an object`);
    if (!Number.isInteger(row.clients) || row.clients < 1) throw new RangeError(`serveLoadChart: rows[${i}].clients must be a positive integer, got ${row.clients}`);
    if (seen.has(row.clients)) throw new RangeError(`serveLoadChart: two rows for ${row.clients} clients`);
    seen.add(row.clients);
    for (const panel of PANELS) {
      for (const { key } of panel.series) {
        const v = row[key];
        if (v === null || v === undefined) continue;
        if (typeof v !== 'number') throw new TypeError(`serveLoadChart: rows[${i}].${key} must be a number or null, got ${typeof v}`);
        if (!Number.isFinite(v)) throw new RangeError(`serveLoadChart: rows[${i}].${key} is ${v}; a value that was not measured is null`);
        if (panel.log ? !(v > 0) : v < 0) throw new RangeError(`serveLoadChart: rows[${i}].${key} is ${v}, expected ${panel.log ? 'above 0 (log scale)' : '0 or more'}`);
      }
    }
  });
  return [...rows].sort((a, b) => a.clients - b.clients);
}

/** Step of about `span / target` that is 1, 2, 2.5 or 5 times a power of ten. */
function niceStep(span, target) {
  const raw = span / target, power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw * 0.999);
}

/** A linear scale from 0 to a round top above the largest value: { ticks, at(v) → 0..1 }. */
function linearScale(values) {
  const max = Math.max(0, ...values);
  if (max === 0) return { ticks: [0, 1], at: (v) => v };
  const step = niceStep(max, 4), top = Math.ceil((1.04 * max) / step - 1e-9) * step; // no mark on the frame
  const ticks = [];
  for (let k = 0; k * step <= top + step * 1e-9; k++) ticks.push(Number((k * step).toPrecision(12)));
  return { ticks, at: (v) => v / top };
}

/**
 * A log10 scale between round bounds of the 1-2-5 sequence around the values, ticked at 1, 2 and 5
 * times each power of ten, or at the powers alone when that makes more than 8 ticks.
 */
function logScale(values) {
  if (values.length === 0) return { ticks: [1, 10], at: (v) => Math.log10(v) };
  const seq = (k) => [1, 2, 5][((k % 3) + 3) % 3] * 10 ** Math.floor(k / 3); // k = 0, 1, 2, 3, …: 1, 2, 5, 10, …
  const below = (v) => { // the last k with seq(k) <= v
    let k = 3 * Math.floor(Math.log10(v));
    while (seq(k + 1) <= v * (1 + 1e-9)) k++;
    while (seq(k) > v * (1 + 1e-9)) k--;
    return k;
  };
  const min = Math.min(...values) / 1.08, max = Math.max(...values) * 1.08; // no mark on the frame
  let lo = below(min), hi = below(max);
  if (seq(hi) < max * (1 - 1e-9)) hi++;
  if (lo === hi) { lo--; hi++; }
  let ticks = Array.from({ length: hi - lo + 1 }, (_, i) => Number(seq(lo + i).toPrecision(12)));
  if (ticks.length > 8) {
    lo = 3 * Math.floor(lo / 3);
    hi = 3 * Math.ceil(hi / 3);
    ticks = Array.from({ length: (hi - lo) / 3 + 1 }, (_, i) => Number(seq(lo + 3 * i).toPrecision(12)));
  }
  const a = Math.log10(seq(lo)), b = Math.log10(seq(hi));
  return { ticks, at: (v) => (Math.log10(v) - a) / (b - a) };
}

/** The shared x scale: log2 of N, the measured N inset from the frame; one N sits in the middle. */
function clientScale(counts) {
  const lo = Math.log2(counts[0]), hi = Math.log2(counts[counts.length - 1]);
  if (hi === lo) return () => 0.5;
  const pad = 0.08;
  return (n) => pad + ((Math.log2(n) - lo) / (hi - lo)) * (1 - 2 * pad);
}

/** A series' mark at (x, y): a circle or a square, with a tooltip. */
function mark(style, x, y, attrs, tooltip) {
  const shape = style.mark === 'circle'
    ? `<circle cx="${px(x)}" cy="${px(y)}" r="4"`
    : `<rect x="${px(x - 4.5)}" y="${px(y - 4.5)}" width="9" height="9"`; // its corners show around a circle on the same spot
  return `${shape} fill="${style.color}" stroke="#fff" stroke-width="1"${attrs}><title>${esc(tooltip)}</title>${style.mark === 'circle' ? '</circle>' : '</rect>'}`;
}

/** The title lines from the run's settings; fields it lacks are left out. */
function titles(s) {
  const has = (k) => s[k] !== undefined && s[k] !== null && s[k] !== '';
  const run = [has('model') && s.model, has('weights') && `${s.weights} weights`, has('threads') && `${s.threads} thread${String(s.threads) === '1' ? '' : 's'}`];
  const machine = has('cpu') ? `${s.cpu}${has('cores') ? `, ${s.cores} cores` : ''}` : null;
  const title = `qkv serve under load${run.some(Boolean) ? `: ${run.filter(Boolean).join(', ')}` : ''}${machine ? `; ${machine}` : ''}`;
  const shape = [has('layers') && `${s.layers} layers`, has('hidden') && `hidden ${s.hidden}`].filter(Boolean).join(', ');
  const load = [
    has('prompt') && `prompts of ${s.prompt} tokens`, has('tokens') && `${s.tokens} tokens each`,
    has('requests') && `${s.requests} request${s.requests === 1 ? '' : 's'} per client`,
  ].filter(Boolean).join(', ');
  const when = [has('node') && `Node ${s.node}`, has('date') && s.date].filter(Boolean).join(', ');
  return { title, subtitle: [shape, load, when].filter(Boolean).join('; ') };
}

/** A line of text that is squeezed to `max` px if it would run longer. */
function line(x, y, text, size, extra, max) {
  const fit = textWidth(text, size) > max ? ` textLength="${px(max)}" lengthAdjust="spacingAndGlyphs"` : '';
  return `<text x="${px(x)}" y="${px(y)}" font-size="${size}"${extra}${fit}>${esc(text)}</text>`;
}

/**
 * The SVG of one serve-load run: `{ settings, rows }` as `serve-load.js --json` writes it. Rows need
 * `clients` (a positive integer, each N once); every other field is a number or null (not measured).
 * @returns a standalone SVG document, 900 × 340 px
 * @throws TypeError for a value of the wrong type, RangeError for no rows, NaN, Infinity, a repeated N,
 *   or a latency of 0 or less (its scale is logarithmic)
 */
export function serveLoadChart({ settings = {}, rows } = {}) {
  const sorted = checkedRows(rows);
  const counts = sorted.map((r) => r.clients);
  const xAt = clientScale(counts);
  const { title, subtitle } = titles(settings ?? {});
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="${FONT}" role="img">`];
  out.push(`<title>${esc(title)}</title>`, `<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`);
  out.push(line(12, 20, title, 14, ' font-weight="600"', WIDTH - 24));
  if (subtitle) out.push(line(12, 37, subtitle, FONT, ' fill="#555"', WIDTH - 24));
  PANELS.forEach((panel, p) => {
    const x0 = p * PANEL.width + PANEL.left, y0 = PANEL.top, w = PLOT_WIDTH, h = PANEL.plotHeight;
    const drawn = panel.series
      .map((s, i) => ({ ...s, style: STYLES[i], points: sorted.filter((r) => r[s.key] !== null && r[s.key] !== undefined).map((r) => ({ n: r.clients, v: r[s.key] })) }))
      .filter((s) => s.points.length > 0);
    const values = drawn.flatMap((s) => s.points.map((q) => q.v));
    const y = panel.log ? logScale(values) : linearScale(values);
    const sx = (n) => x0 + xAt(n) * w, sy = (v) => y0 + (1 - y.at(v)) * h;
    out.push(`<g class="panel" data-panel="${p}">`);
    out.push(`<text x="${px(x0 + w / 2)}" y="${y0 - 30}" text-anchor="middle" font-size="12" font-weight="600">${esc(panel.title)}</text>`);
    // the legend, centred over the plot
    const items = drawn.map((s) => ({ s, width: 30 + textWidth(s.label) }));
    let lx = x0 + w / 2 - (items.reduce((a, it) => a + it.width, 0) + 12 * Math.max(0, items.length - 1)) / 2;
    for (const { s, width } of items) {
      out.push(`<g class="legend"><line x1="${px(lx)}" x2="${px(lx + 24)}" y1="${y0 - 12}" y2="${y0 - 12}" stroke="${s.style.color}" stroke-width="2"${s.style.dash ? ` stroke-dasharray="${s.style.dash}"` : ''}/>`);
      out.push(`${mark(s.style, lx + 12, y0 - 12, '', s.label)}<text x="${px(lx + 30)}" y="${y0 - 12}" dominant-baseline="central">${esc(s.label)}</text></g>`);
      lx += width + 12;
    }
    // grid and ticks: y at the scale's ticks, x at each measured N
    for (const t of y.ticks) {
      out.push(`<line x1="${px(x0)}" x2="${px(x0 + w)}" y1="${px(sy(t))}" y2="${px(sy(t))}" stroke="#e6e6e6"/>`);
      out.push(`<text x="${px(x0 - 6)}" y="${px(sy(t))}" text-anchor="end" dominant-baseline="central" fill="#333">${esc(fmt(t))}</text>`);
    }
    for (const n of counts) {
      out.push(`<line x1="${px(sx(n))}" x2="${px(sx(n))}" y1="${y0}" y2="${y0 + h}" stroke="#f0f0f0"/>`);
      out.push(`<line class="tick" x1="${px(sx(n))}" x2="${px(sx(n))}" y1="${y0 + h}" y2="${y0 + h + 4}" stroke="#555"/><text x="${px(sx(n))}" y="${y0 + h + 16}" text-anchor="middle" fill="#333">${n}</text>`);
    }
    out.push(`<rect x="${px(x0)}" y="${y0}" width="${px(w)}" height="${h}" fill="none" stroke="#999"/>`);
    out.push(`<text x="${px(x0 + w / 2)}" y="${y0 + h + 34}" text-anchor="middle">clients N (log2 scale)</text>`);
    // the axis title clears the widest tick label, and stays inside the panel's third
    const ux = Math.max(p * PANEL.width + 10, x0 - 16 - Math.max(...y.ticks.map((t) => textWidth(fmt(t)))));
    out.push(`<text transform="translate(${px(ux)} ${px(y0 + h / 2)}) rotate(-90)" text-anchor="middle">${esc(panel.unit)}</text>`);
    if (drawn.length === 0) out.push(`<text x="${px(x0 + w / 2)}" y="${px(y0 + h / 2)}" text-anchor="middle" fill="#777">not measured</text>`);
    for (const s of drawn) {
      const path = s.points.map((q, i) => `${i ? 'L' : 'M'}${px(sx(q.n))},${px(sy(q.v))}`).join('');
      out.push(`<path d="${path}" fill="none" stroke="${s.style.color}" stroke-width="2"${s.style.dash ? ` stroke-dasharray="${s.style.dash}"` : ''}/>`);
    }
    // the first series' marks last: where p50 equals p99, its circle shows inside p99's square
    for (const s of [...drawn].reverse()) {
      for (const q of s.points) {
        out.push(mark(s.style, sx(q.n), sy(q.v), ` class="point" data-series="${s.key}" data-clients="${q.n}"`, `${q.n} client${q.n === 1 ? '' : 's'}, ${s.label}: ${fmt(q.v)} ${panel.unit}`));
      }
    }
    out.push('</g>');
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
