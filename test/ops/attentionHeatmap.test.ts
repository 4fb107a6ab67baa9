// attentionHeatmap: the SVG is well-formed XML, cells sit where their (row, column) says, the colour
// scale follows the finite values, NaN is grey, and every piece of text is escaped.
import { describe, expect, it } from 'vitest';
import { escapeXml, formatTick, formatValue, NAN_COLOR, niceTicks } from '../../src/heatmap.js';
import { attentionHeatmap, reference, tensor } from '../../src/index.js';
import { parseXml } from '../xml.js';

const cellsOf = (svg: string) => {
  const els = parseXml(svg);
  const cells: { x: number; y: number; w: number; fill: string; panel: number }[] = [];
  let panel = -1;
  for (const el of els) {
    if (el.name === 'g' && el.attrs.class === 'panel') panel = Number(el.attrs['data-panel']);
    else if (el.name === 'g') panel = -1;
    else if (el.name === 'rect' && panel >= 0 && el.attrs.stroke === undefined) {
      cells.push({ x: Number(el.attrs.x), y: Number(el.attrs.y), w: Number(el.attrs.width), fill: el.attrs.fill, panel });
    }
  }
  return cells;
};
const texts = (svg: string): string[] => parseXml(svg).filter((e) => e.name === 'text').map((e) => e.text);

const DARKEST_RED = '#67000d', LIGHTEST_RED = '#fff5f0';

describe('attentionHeatmap', () => {
  it('draws a 1x1 map as one cell in the darkest colour, with a colour bar from 0 to its value', () => {
    const svg = attentionHeatmap(tensor([1], [1, 1]));
    const root = parseXml(svg)[0];
    expect(root.name).toBe('svg');
    expect(root.attrs.xmlns).toBe('http://www.w3.org/2000/svg');
    expect(Number(root.attrs.width)).toBeGreaterThan(0);
    expect(Number(root.attrs.height)).toBeGreaterThan(0);
    const cells = cellsOf(svg);
    expect(cells).toHaveLength(1);
    expect(cells[0].fill).toBe(DARKEST_RED);
    expect(texts(svg)).toEqual(expect.arrayContaining(['Keys', 'Queries', '0', '0.5', '1']));
  });

  it('puts cell (i, j) at row i, column j, coloured by its value', () => {
    // the one large value of a [3, 5] map sits in row 1, column 3
    const data = new Array(15).fill(0);
    data[1 * 5 + 3] = 0.9;
    const cells = cellsOf(attentionHeatmap(tensor(data, [3, 5]), { cellSize: 10 }));
    expect(cells).toHaveLength(15);
    const x0 = cells[0].x, y0 = cells[0].y;
    const dark = cells.filter((c) => c.fill === DARKEST_RED);
    expect(dark).toHaveLength(1);
    expect((dark[0].x - x0) / 10).toBeCloseTo(3, 6);
    expect((dark[0].y - y0) / 10).toBeCloseTo(1, 6);
    expect(cells.filter((c) => c.fill === LIGHTEST_RED)).toHaveLength(14);
  });

  it('draws NaN grey with a NaN swatch, Infinity in the end colours, and scales by the finite values', () => {
    const svg = attentionHeatmap(tensor([0, NaN, 0.5, Infinity, -Infinity, 0.25], [2, 3]));
    const fills = cellsOf(svg).map((c) => c.fill);
    expect(fills[1]).toBe(NAN_COLOR);
    expect(fills[2]).toBe(DARKEST_RED); // 0.5 is the largest finite value
    expect(fills[3]).toBe(DARKEST_RED); // +Infinity clamps to the top
    expect(fills[4]).toBe(LIGHTEST_RED); // -Infinity to the bottom
    expect(fills[0]).toBe(LIGHTEST_RED);
    expect(fills[5]).not.toBe(fills[0]);
    expect(fills[5]).not.toBe(fills[2]);
    expect(texts(svg)).toEqual(expect.arrayContaining(['NaN', '0.5', '0.25', '0']));
    // no NaN swatch when there is no NaN
    expect(texts(attentionHeatmap(tensor([0, 1], [1, 2])))).not.toContain('NaN');
  });

  it('copes with all-NaN and constant maps', () => {
    expect(cellsOf(attentionHeatmap(tensor([NaN, NaN], [1, 2]))).map((c) => c.fill)).toEqual([NAN_COLOR, NAN_COLOR]);
    const zeros = cellsOf(attentionHeatmap(tensor([0, 0, 0, 0], [2, 2])));
    expect(new Set(zeros.map((c) => c.fill))).toEqual(new Set([LIGHTEST_RED]));
  });

  it('escapes labels and titles for XML, and replaces characters XML cannot hold', () => {
    const nasty = ['<script>alert(1)</script>', 'a & b', 'say "hi"', "it's", 'bell\u0007'];
    const svg = attentionHeatmap(tensor(new Array(10).fill(0.1), [2, 5]), {
      rowLabels: ['</svg>', '&amp;'], colLabels: nasty, title: '<b>&', xLabel: 'x < y', yLabel: 'q"',
    });
    const t = texts(svg); // parseXml throws on anything unescaped
    expect(svg).not.toContain('<script>');
    expect(svg).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(t).toEqual(expect.arrayContaining(['&lt;/svg&gt;', '&amp;amp;', 'a &amp; b', 'say &quot;hi&quot;', 'it&apos;s', 'bell\ufffd', '&lt;b&gt;&amp;', 'x &lt; y']));
    expect(escapeXml('\ud800 lone surrogate')).toBe('\ufffd lone surrogate');
    expect(escapeXml('😀 pair')).toBe('😀 pair');
  });

  it('without labels ticks the row and column indices, at round steps when cells are small; false draws none', () => {
    expect(texts(attentionHeatmap(tensor(new Array(15).fill(0), [3, 5])))).toEqual(expect.arrayContaining(['0', '1', '2', '3', '4']));
    const n = 50; // 6 px cells: a tick every 5, labels at least two label heights apart
    const ticks = texts(attentionHeatmap(tensor(new Array(n * n).fill(0), [n, n]), { colorbar: false })).filter((s) => /^\d+$/.test(s)).map(Number);
    expect([...new Set(ticks)].sort((a, b) => a - b)).toEqual([0, 5, 10, 15, 20, 25, 30, 35, 40, 45]);
    expect(ticks.filter((t) => t === 45)).toHaveLength(2); // one on each axis
    const tall = texts(attentionHeatmap(tensor(new Array(200 * 3).fill(0), [200, 3]), { colorbar: false })).filter((s) => /^\d+$/.test(s)).map(Number);
    expect(tall.filter((t) => t > 2)).toEqual([20, 40, 60, 80, 100, 120, 140, 160, 180]); // 2 px cells: every 20 rows
    const bare = texts(attentionHeatmap(tensor(new Array(15).fill(0), [3, 5]), { rowLabels: false, colLabels: false }));
    expect(bare.filter((s) => /^[34]$/.test(s))).toEqual([]); // 0..1 may still be colour-bar ticks, 3 and 4 are not
  });

  it('marks every labelled row and column with a tick, and draws a 50 x 50 map at a size that reads', () => {
    const n = 50;
    const els = parseXml(attentionHeatmap(tensor(new Array(n * n).fill(0.5), [n, n])));
    const panel = els.find((e) => e.name === 'rect' && e.attrs.fill === 'none' && e.attrs.stroke === '#555')!;
    expect(Number(panel.attrs.width)).toBeGreaterThanOrEqual(300); // 6 px cells, not 4
    const ticks = els.filter((e) => e.name === 'line' && e.attrs.class === 'tick');
    expect(ticks).toHaveLength(20); // 0, 5, …, 45 on each axis
    const rows = ticks.filter((t) => t.attrs.y1 === t.attrs.y2), cols = ticks.filter((t) => t.attrs.x1 === t.attrs.x2);
    expect([rows.length, cols.length]).toEqual([10, 10]);
    // each tick sits at the centre of its row and leaves the panel's edge outwards
    const x0 = Number(panel.attrs.x), y0 = Number(panel.attrs.y), cell = Number(panel.attrs.width) / n;
    expect(rows.map((t) => (Number(t.attrs.y1) - y0) / cell - 0.5).map((r) => Math.round(r * 1e6) / 1e6)).toEqual([0, 5, 10, 15, 20, 25, 30, 35, 40, 45]);
    expect(rows.every((t) => Number(t.attrs.x2) === x0 && Number(t.attrs.x1) < x0)).toBe(true);
    expect(cols.every((t) => Number(t.attrs.y1) === y0 + Number(panel.attrs.height) && Number(t.attrs.y2) > Number(t.attrs.y1))).toBe(true);
    // index labels keep a readable size however small the cells
    const sizes = els.filter((e) => e.name === 'text' && /^\d+$/.test(e.text) && e.attrs['font-size']).map((e) => Number(e.attrs['font-size']));
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(10);
    // the caller's labels get ticks too; false draws neither
    const words = ['a', 'b', 'c'];
    expect(parseXml(attentionHeatmap(tensor(new Array(9).fill(0), [3, 3]), { rowLabels: words, colLabels: words })).filter((e) => e.attrs.class === 'tick')).toHaveLength(6);
    expect(parseXml(attentionHeatmap(tensor(new Array(9).fill(0), [3, 3]), { rowLabels: false, colLabels: false })).filter((e) => e.attrs.class === 'tick')).toHaveLength(0);
  });

  it('labels every row and column when there is room, and thins them out when cells are small', () => {
    const few = texts(attentionHeatmap(tensor(new Array(6).fill(0), [2, 3]), { rowLabels: ['q0', 'q1'], colLabels: [10, 20, 30] }));
    expect(few).toEqual(expect.arrayContaining(['q0', 'q1', '10', '20', '30']));
    const n = 100;
    const labels = Array.from({ length: n }, (_, i) => `t${i}`);
    const many = texts(attentionHeatmap(tensor(new Array(n * n).fill(0), [n, n]), { rowLabels: labels, colLabels: labels }));
    const shown = many.filter((s) => /^t\d+$/.test(s));
    expect(shown.length).toBeGreaterThan(10);
    expect(shown.length).toBeLessThan(2 * n);
    expect(shown).toContain('t0');
  });

  it('lays [H, Lq, Lk] out as a grid of titled panels sharing one scale', () => {
    const H = 6, Lq = 2, Lk = 3;
    const data = Array.from({ length: H * Lq * Lk }, (_, i) => i);
    const svg = attentionHeatmap(tensor(data, [H, Lq, Lk]), { columns: 4, cellSize: 10 });
    const cells = cellsOf(svg);
    expect(cells).toHaveLength(H * Lq * Lk);
    expect(texts(svg)).toEqual(expect.arrayContaining(['head 0', 'head 5']));
    const origin = (p: number) => cells.find((c) => c.panel === p)!;
    expect(origin(1).x).toBeGreaterThan(origin(0).x);
    expect(origin(1).y).toBe(origin(0).y);
    expect(origin(4).x).toBe(origin(0).x); // the second row starts under the first panel
    expect(origin(4).y).toBeGreaterThan(origin(0).y);
    // one scale: the last value is the darkest, the first the lightest, whatever the panel
    expect(cells[cells.length - 1].fill).toBe(DARKEST_RED);
    expect(cells[0].fill).toBe(LIGHTEST_RED);
  });

  it('takes d2l\'s [rows, cols, Lq, Lk] grid and panel titles', () => {
    const svg = attentionHeatmap(tensor(new Array(2 * 3 * 4).fill(0.5), [1, 2, 3, 4]), { panelTitles: ['a', 'b'] });
    const cells = cellsOf(svg);
    expect(new Set(cells.map((c) => c.panel))).toEqual(new Set([0, 1]));
    expect(cells.filter((c) => c.panel === 1)[0].y).toBe(cells[0].y); // one row of two panels
    expect(texts(svg)).toEqual(expect.arrayContaining(['a', 'b']));
  });

  it('draws the weights an op returns, and zero-size maps as an empty frame', () => {
    const { weights } = reference.kernelRegression(tensor([57], [1]), tensor([56, 58], [2]), tensor([43, 48], [2]), { returnWeights: true });
    const cells = cellsOf(attentionHeatmap(weights!));
    expect(cells.map((c) => c.fill)).toEqual([DARKEST_RED, DARKEST_RED]); // 0.5 and 0.5
    expect(cellsOf(attentionHeatmap(tensor([], [0, 3])))).toHaveLength(0);
    expect(cellsOf(attentionHeatmap(tensor([], [2, 0, 3])))).toHaveLength(0);
  });

  it('follows min, max, colormap, colorbar and tooltips options', () => {
    const w = tensor([0.25, 0.75], [1, 2]);
    const fixed = cellsOf(attentionHeatmap(w, { min: 0, max: 1, colormap: 'viridis' })).map((c) => c.fill);
    expect(fixed[0]).not.toBe('#440154');
    expect(fixed[1]).not.toBe('#fde725');
    const custom = cellsOf(attentionHeatmap(w, { colormap: (t) => (t > 0.5 ? 'black' : 'white') })).map((c) => c.fill);
    expect(custom).toEqual(['white', 'black']);
    expect(parseXml(attentionHeatmap(w, { colorbar: false })).some((e) => e.attrs.class === 'colorbar')).toBe(false);
    const titles = parseXml(attentionHeatmap(w, { tooltips: true })).filter((e) => e.name === 'title').map((e) => e.text);
    expect(titles).toContain('row 0, column 1: 0.75');
    expect(parseXml(attentionHeatmap(w, { tooltips: false })).filter((e) => e.name === 'title')).toHaveLength(1);
  });

  it('rejects what it cannot draw with TypeError or RangeError naming the problem', () => {
    expect(() => attentionHeatmap(null as never)).toThrow(TypeError);
    expect(() => attentionHeatmap({ data: [1], shape: 'x' } as never)).toThrow(TypeError);
    expect(() => attentionHeatmap(tensor([1, 2], [2]))).toThrow(/\[Lq, Lk\].*got \[2\]/);
    expect(() => attentionHeatmap(tensor(new Array(32).fill(0), [2, 2, 2, 2, 2]))).toThrow(RangeError);
    expect(() => attentionHeatmap({ data: [1, 2, 3], shape: [2, 2] })).toThrow(/3 values.*\[2, 2\] needs 4/);
    expect(() => attentionHeatmap(tensor([1, 2], [1, 2]), { colLabels: ['a'] })).toThrow(/colLabels has 1 labels, expected 2/);
    expect(() => attentionHeatmap(tensor([1, 2], [1, 2]), { rowLabels: 'ab' as never })).toThrow(TypeError);
    expect(() => attentionHeatmap(tensor([1, 2], [1, 2]), { cellSize: 0 })).toThrow(RangeError);
    expect(() => attentionHeatmap(tensor([1, 2], [1, 2]), { min: 1, max: 0 })).toThrow(/max/);
    expect(() => attentionHeatmap(tensor([1, 2], [1, 2]), { colormap: 'jet' as never })).toThrow(/colormap/);
  });
});

describe('niceTicks: round colour-bar ticks', () => {
  it('picks multiples of 1, 2, 2.5 or 5 times a power of ten, 4 to 10 of them, inside the range', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(niceTicks(0, 0.5)).toEqual([0, 0.1, 0.2, 0.3, 0.4, 0.5]);
    expect(niceTicks(0.013, 0.87)).toEqual([0.2, 0.4, 0.6, 0.8]);
    expect(niceTicks(-3, 7)).toEqual([-2.5, 0, 2.5, 5]);
    expect(niceTicks(43, 48)).toEqual([43, 44, 45, 46, 47, 48]);
    expect(niceTicks(1e-6, 3.7e-6)).toEqual([1e-6, 1.5e-6, 2e-6, 2.5e-6, 3e-6, 3.5e-6]);
    for (const [lo, hi] of [[0, 1], [0.013, 0.87], [-1e4, 1e4], [0.1234, 0.1299], [5, 5.001], [1e-40, 3e-38]]) {
      const ticks = niceTicks(lo, hi);
      expect(ticks.length, `${lo}..${hi}`).toBeGreaterThanOrEqual(4);
      expect(ticks.length, `${lo}..${hi}`).toBeLessThanOrEqual(10);
      expect(ticks.every((t) => t >= lo - 1e-12 * Math.abs(lo) && t <= hi + 1e-12 * Math.abs(hi)), `${ticks} in ${lo}..${hi}`).toBe(true);
      // evenly spaced, and their labels tell them apart
      const step = ticks[1] - ticks[0];
      expect(ticks.every((t, i) => i === 0 || Math.abs(t - ticks[i - 1] - step) <= 1e-9 * step), `${ticks}`).toBe(true);
      expect(new Set(ticks.map((t) => formatTick(t, step))).size, `${ticks.map((t) => formatTick(t, step))}`).toBe(ticks.length);
    }
    expect(niceTicks(0.5, 0.5)).toEqual([0.5]);
    expect([5, 5.00025, 5.0005].map((t) => formatTick(t, 0.00025))).toEqual(['5', '5.00025', '5.0005']);
    expect([0, 0.25, 0.5].map((t) => formatTick(t, 0.25))).toEqual(['0', '0.25', '0.5']);
  });

  it('are what the colour bar shows, each at the height of its value', () => {
    const values = Array.from({ length: 100 }, (_, i) => 0.013 + (0.857 * i) / 99);
    const svg = attentionHeatmap(tensor(values, [10, 10]), { rowLabels: false, colLabels: false });
    const bar = parseXml(svg).filter((e) => e.name === 'text' && /^[\d.]+$/.test(e.text ?? ''));
    expect(bar.map((e) => e.text)).toEqual(['0', '0.2', '0.4', '0.6', '0.8']); // the scale starts at 0 unless options.min says otherwise
    const ys = bar.map((e) => Number(e.attrs.y));
    // equal steps in value are equal steps on screen, higher values higher up
    expect(ys[0] - ys[1]).toBeCloseTo(ys[1] - ys[2], 1);
    expect(ys[0]).toBeGreaterThan(ys[4]);
    // a short bar (one query row, 60 px) gets fewer ticks, so that they do not crowd
    const short = parseXml(attentionHeatmap(tensor([0.5, 0.5], [1, 2]), { rowLabels: false, colLabels: false }))
      .filter((e) => e.name === 'text' && /^[\d.]+$/.test(e.text ?? '')).map((e) => e.text);
    expect(short).toEqual(['0', '0.25', '0.5']);
  });
});

describe('formatValue', () => {
  it('gives up to three significant digits, and exponents for very small and large values', () => {
    expect([0, 1, 0.5, 0.125, 0.1234, 45.5, 1 / 3].map(formatValue)).toEqual(['0', '1', '0.5', '0.125', '0.123', '45.5', '0.333']);
    expect(formatValue(1.2e-5)).toBe('1.2e-5');
    expect(formatValue(-2.5e7)).toBe('-2.5e7');
    expect(formatValue(NaN)).toBe('NaN');
  });
});
