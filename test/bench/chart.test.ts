// The serve-load chart (bench/lib/chart.js): well-formed SVG with one mark per N per series, placed
// on a log2 axis of N shared by the three panels; a single N, N that are not powers of two, and
// figures that were not measured (null) are drawn sensibly; a run it cannot draw is a clear error.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: bench/ is plain JavaScript without declarations
import { PANELS, serveLoadChart } from '../../bench/lib/chart.js';
import { parseXml } from '../xml.js';

type Row = Record<string, number | null | undefined>;
interface Panel { title: string; log: boolean; series: { key: string; label: string }[] }
const chart = serveLoadChart as (run: { settings?: Record<string, unknown>; rows?: unknown }) => string;
const SERIES = (PANELS as Panel[]).flatMap((p) => p.series.map((s) => s.key));

/** A full row for N clients whose figures grow with N (latencies on the log panel stay above 0). */
const row = (n: number): Row => ({
  clients: n, tokensPerSecond: 10 + n, decodeTokensPerSecond: 12 + n, ttftP50Ms: 100 * n, ttftP99Ms: 150 * n,
  interTokenP50Ms: 50 + n, interTokenP99Ms: 80 + 2 * n, steps: 32, stepP50AtMostMs: 100,
});

/** The data marks, by series, in document order: the centre of each circle or square and its N. */
function marks(svg: string): Map<string, { clients: number; x: number; y: number }[]> {
  const bySeries = new Map<string, { clients: number; x: number; y: number }[]>();
  for (const el of parseXml(svg)) {
    if (el.attrs.class !== 'point') continue;
    const a = el.attrs;
    const [x, y] = el.name === 'circle' ? [Number(a.cx), Number(a.cy)] : [Number(a.x) + Number(a.width) / 2, Number(a.y) + Number(a.height) / 2];
    const list = bySeries.get(a['data-series']) ?? [];
    list.push({ clients: Number(a['data-clients']), x, y });
    bySeries.set(a['data-series'], list);
  }
  return bySeries;
}
const texts = (svg: string): string[] => parseXml(svg).filter((e) => e.name === 'text').map((e) => e.text);
/** The plot frames, left to right: the unfilled rectangles with a stroke. */
const frames = (svg: string) => parseXml(svg).filter((e) => e.name === 'rect' && e.attrs.fill === 'none')
  .map((e) => ({ x: Number(e.attrs.x), width: Number(e.attrs.width) }));

describe('serveLoadChart', () => {
  it('draws one mark per N per series, x growing with N at log2 spacing, the same x in every panel', () => {
    const counts = [1, 4, 16, 64];
    const svg = chart({ settings: { model: 'Qwen2.5-0.5B', weights: 'float32', threads: 1, cpu: 'AMD EPYC', cores: 2 }, rows: counts.map(row) });
    const root = parseXml(svg)[0];
    expect([root.name, root.attrs.xmlns, root.attrs.width]).toEqual(['svg', 'http://www.w3.org/2000/svg', '900']);
    const bySeries = marks(svg);
    expect([...bySeries.keys()].sort()).toEqual([...SERIES].sort());
    const offsets: number[][] = [];
    for (const [key, points] of bySeries) {
      expect(points.map((p) => p.clients), key).toEqual(counts);
      const xs = points.map((p) => p.x);
      for (let i = 1; i < xs.length; i++) expect(xs[i], key).toBeGreaterThan(xs[i - 1]);
      // 1, 4, 16, 64 are equally spaced in log2
      expect(xs[2] - xs[1], key).toBeCloseTo(xs[1] - xs[0], 1);
      expect(xs[3] - xs[2], key).toBeCloseTo(xs[1] - xs[0], 1);
      offsets.push(xs.map((x) => x - xs[0]));
      // figures that grow with N are drawn higher up (smaller y), on the linear and the log panels
      for (let i = 1; i < points.length; i++) expect(points[i].y, key).toBeLessThan(points[i - 1].y);
    }
    for (const o of offsets) expect(o.map((d) => d.toFixed(1))).toEqual(offsets[0].map((d) => d.toFixed(1)));
    // a tick label at each N under each of the three panels, the series' labels in the legends
    const t = texts(svg);
    for (const n of counts) expect(t.filter((s) => s === String(n)).length, `tick ${n}`).toBeGreaterThanOrEqual(3);
    expect(t).toEqual(expect.arrayContaining(['whole run', 'while all decode', 'p50', 'p99', 'clients N (log2 scale)']));
    expect(t.some((s) => s.includes('Qwen2.5-0.5B, float32 weights, 1 thread; AMD EPYC, 2 cores'))).toBe(true);
  });

  it('places N that are not powers of two by log2 N, whatever the rows\' order', () => {
    const svg = chart({ rows: [3, 1, 6, 2].map(row) });
    for (const [key, points] of marks(svg)) {
      expect(points.map((p) => p.clients), key).toEqual([1, 2, 3, 6]);
      const [x1, x2, x3, x6] = points.map((p) => p.x);
      expect((x2 - x1) / (x6 - x1), key).toBeCloseTo(Math.log2(2) / Math.log2(6), 3);
      expect((x3 - x1) / (x6 - x1), key).toBeCloseTo(Math.log2(3) / Math.log2(6), 3);
    }
    expect(texts(svg)).toEqual(expect.arrayContaining(['1', '2', '3', '6']));
  });

  it('draws a single N in the middle of each panel, with its tick', () => {
    const svg = chart({ rows: [row(8)] });
    const panels = frames(svg);
    expect(panels).toHaveLength(3);
    for (const [key, points] of marks(svg)) {
      expect(points, key).toHaveLength(1);
      const panel = panels.find((f) => points[0].x > f.x && points[0].x < f.x + f.width)!;
      expect(points[0].x, key).toBeCloseTo(panel.x + panel.width / 2, 1);
    }
    expect(texts(svg).filter((s) => s === '8')).toHaveLength(3);
  });

  it('leaves out what was not measured: no marks, no legend entry, "not measured" for an empty panel', () => {
    const rows: Row[] = [1, 4, 16].map((n) => ({ ...row(n), decodeTokensPerSecond: null, interTokenP50Ms: null, interTokenP99Ms: undefined }));
    rows[1].ttftP99Ms = null; // one missing figure: the series keeps its other two
    const svg = chart({ rows });
    const bySeries = marks(svg);
    expect([...bySeries.keys()].sort()).toEqual(['tokensPerSecond', 'ttftP50Ms', 'ttftP99Ms']);
    expect(bySeries.get('ttftP99Ms')!.map((p) => p.clients)).toEqual([1, 16]);
    const t = texts(svg);
    expect(t).not.toContain('while all decode');
    expect(t).toContain('not measured');
  });

  it('escapes the settings it writes', () => {
    const svg = chart({ settings: { model: '<b>&', cpu: 'a "cpu"' }, rows: [row(1)] });
    expect(texts(svg).some((s) => s.includes('&lt;b&gt;&amp;'))).toBe(true); // parseXml throws on anything unescaped
    expect(svg).not.toContain('<b>');
  });

  it('refuses a run it cannot draw, saying what is wrong', () => {
    expect(() => chart({ rows: [] })).toThrow(new RangeError('serveLoadChart: no rows to draw (a run measures at least one N)'));
    expect(() => chart({})).toThrow(TypeError);
    expect(() => chart({ rows: [{ ...row(1), ttftP99Ms: NaN }] })).toThrow(/rows\[0\]\.ttftP99Ms is NaN; a value that was not measured is null/);
    expect(() => chart({ rows: [row(1), { ...row(2), tokensPerSecond: Infinity }] })).toThrow(/rows\[1\]\.tokensPerSecond is Infinity/);
    expect(() => chart({ rows: [{ ...row(1), interTokenP50Ms: '70' as unknown as number }] })).toThrow(TypeError);
    expect(() => chart({ rows: [{ ...row(1), clients: 0 }] })).toThrow(/clients must be a positive integer, got 0/);
    expect(() => chart({ rows: [{ ...row(1), clients: 2.5 }] })).toThrow(RangeError);
    expect(() => chart({ rows: [row(4), row(4)] })).toThrow(/two rows for 4 clients/);
    expect(() => chart({ rows: [{ ...row(1), ttftP50Ms: 0 }] })).toThrow(/ttftP50Ms is 0, expected above 0 \(log scale\)/);
    expect(() => chart({ rows: [{ ...row(1), tokensPerSecond: -1 }] })).toThrow(/tokensPerSecond is -1, expected 0 or more/);
  });

  it('drew docs/serve-load.svg from docs/serve-load.json (serve-load.js --from)', () => {
    const docs = new URL('../../docs/', import.meta.url);
    const run = JSON.parse(readFileSync(new URL('serve-load.json', docs), 'utf8'));
    expect(readFileSync(new URL('serve-load.svg', docs), 'utf8')).toBe(chart(run));
  });
});
