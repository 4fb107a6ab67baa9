// attentionHeatmap(): attention weights as an SVG picture, like d2l's show_heatmaps.
// A string in, a string out: no DOM, no canvas, so the same call works in Node (write it to a file)
// and in browsers (innerHTML, or a Blob URL for an <img>).
//
//   title
//   yLabel  row labels  ┌ panel title ┐ ┌ panel title ┐   ┌─┐ max
//                       │ Lq × Lk     │ │             │   │ │ colour bar
//                       └─────────────┘ └─────────────┘   └─┘ min
//                          column labels                      (NaN swatch when there are NaNs)
//                             xLabel
//
// Panels share one colour scale so that heads can be compared; row labels sit left of the first
// column of panels and column labels under the last row, as matplotlib's sharex/sharey do.

/** A colour map: `t` in [0, 1] (0 = the scale's minimum) to a CSS colour. */
export type Colormap = (t: number) => string;

/** Options of {@link attentionHeatmap}. Every field is optional. */
export interface HeatmapOptions {
  /**
   * Labels of the query rows (length Lq), e.g. the query tokens. Default: the row indices as axis
   * ticks, every 1, 2, 5, 10, … rows as room allows; `false` draws none.
   */
  rowLabels?: ArrayLike<string | number> | false;
  /** Labels of the key columns (length Lk), e.g. the key tokens. Default: the column indices as ticks; `false` draws none. */
  colLabels?: ArrayLike<string | number> | false;
  /** Axis title under the column labels. Default `'Keys'` (as in d2l); `''` hides it. */
  xLabel?: string;
  /** Axis title left of the row labels. Default `'Queries'` (as in d2l); `''` hides it. */
  yLabel?: string;
  /** A title over the whole picture. Default: none. */
  title?: string;
  /**
   * One title per panel, in row-major order. Default: `head 0`, `head 1`, … for `[H, Lq, Lk]`,
   * none for `[Lq, Lk]` and `[rows, cols, Lq, Lk]`.
   */
  panelTitles?: ArrayLike<string>;
  /** Panels per row for `[H, Lq, Lk]`. Default `min(H, 4)`. */
  columns?: number;
  /**
   * Side of one cell in px. Default: what makes a panel about 320 px wide (240 px when there are
   * several panels), between 2 and 24.
   */
  cellSize?: number;
  /** `'reds'` (default, matplotlib's Reds as in d2l), `'blues'`, `'viridis'`, or a function of t in [0, 1]. */
  colormap?: 'reds' | 'blues' | 'viridis' | Colormap;
  /** The value drawn with the first colour. Default: the smaller of 0 and the smallest finite value. */
  min?: number;
  /** The value drawn with the last colour. Default: the largest finite value (min + 1 when that is not above min). */
  max?: number;
  /** Draw the colour bar. Default true. */
  colorbar?: boolean;
  /** A `<title>` tooltip with row, column and value on every cell. Default: when there are at most 4096 cells. */
  tooltips?: boolean;
  /** Font size in px of titles and labels. Default 12. */
  fontSize?: number;
}

/** The colour of NaN cells (and the NaN swatch beside the colour bar). */
export const NAN_COLOR = '#9e9e9e';

// ColorBrewer's 9-class sequential schemes (what matplotlib's Reds and Blues interpolate) and viridis
// sampled at 9 points; between anchors colours are interpolated linearly in sRGB.
const ANCHORS: Record<'reds' | 'blues' | 'viridis', readonly string[]> = {
  reds: ['#fff5f0', '#fee0d2', '#fcbba1', '#fc9272', '#fb6a4a', '#ef3b2c', '#cb181d', '#a50f15', '#67000d'],
  blues: ['#f7fbff', '#deebf7', '#c6dbef', '#9ecae1', '#6baed6', '#4292c6', '#2171b5', '#08519c', '#08306b'],
  viridis: ['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725'],
};

function interpolate(anchors: readonly string[]): Colormap {
  const rgb = anchors.map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
  return (t) => {
    const x = Math.min(1, Math.max(0, t)) * (rgb.length - 1);
    const i = Math.min(rgb.length - 2, Math.floor(x));
    const f = x - i;
    const c = rgb[i].map((a, k) => Math.round(a + (rgb[i + 1][k] - a) * f));
    return `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
  };
}

/** Escapes text for XML content and attribute values; characters XML 1.0 forbids become U+FFFD. */
/**
 * A CSS colour as attentionHeatmap writes it into an attribute: #rgb…#rrggbbaa, a function such as
 * rgb(…) or hsl(…) of numbers, or a name. No quote, '<' or '&' can pass, so no caller-controlled
 * string becomes markup.
 */
const CSS_COLOR = /^(#[0-9a-f]{3,8}|[a-z]+\([0-9a-z.,%\s/+-]*\)|[a-z]+)$/i;

/** A user's colormap whose every answer is checked to be a colour. */
function checkedColors(colormap: (t: number) => unknown): (t: number) => string {
  return (t) => {
    const c = colormap(t);
    if (typeof c !== 'string') throw new TypeError(`attentionHeatmap: options.colormap must return a CSS colour string, got ${c === null ? 'null' : typeof c}`);
    if (!CSS_COLOR.test(c)) {
      throw new RangeError(`attentionHeatmap: options.colormap returned ${JSON.stringify(c.slice(0, 40))}, which is not a CSS colour (#rrggbb, rgb(…), hsl(…) or a name)`);
    }
    return c;
  };
}

export function escapeXml(text: string): string {
  return text
    // biome-ignore lint/suspicious/noControlCharactersInRegex: it replaces the characters XML forbids
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
    .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** A number with up to 3 significant digits, as on a matplotlib colour bar: 0.5, 0.125, 1.2e-5. */
export function formatValue(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e-3 && a < 1e5) return String(Number(x.toPrecision(3)));
  return x.toExponential(2).replace(/\.?0+e/, 'e').replace('e+', 'e');
}

/**
 * Round colour-bar ticks for `[min, max]`, in the spirit of matplotlib's MaxNLocator: the multiples,
 * within the range, of the largest step of 1, 2, 2.5 or 5 times a power of ten that still gives at
 * least `target - 1` of them (so 4 to about 10). A range of one value has one tick.
 */
export function niceTicks(min: number, max: number, target = 5): number[] {
  if (!(max > min) || !Number.isFinite(max - min)) return [min];
  const multiples = (step: number): number[] => {
    const ticks: number[] = [];
    for (let k = Math.ceil(min / step - 1e-9); k * step <= max + step * 1e-9; k++) ticks.push(Number((k * step).toPrecision(12)));
    return ticks;
  };
  const power = 10 ** Math.floor(Math.log10((max - min) / (target - 1)));
  const steps = [power / 10, power, power * 10].flatMap((p) => [1, 2, 2.5, 5].map((m) => m * p));
  for (const step of steps.reverse()) {
    const ticks = multiples(step);
    if (ticks.length >= target - 1) return ticks;
  }
  return [min, max];
}

/**
 * A tick's label: as {@link formatValue}, but with as many decimals as the ticks' step needs, so that
 * ticks over a narrow range (5, 5.00025, …) stay apart.
 */
export function formatTick(x: number, step: number): string {
  const a = Math.abs(x);
  if (!(step > 0) || !(a < 1e5) || (a < 1e-3 && x !== 0)) return formatValue(x);
  const exponent = Math.floor(Math.log10(step));
  const decimals = Math.max(0, -exponent + (Number((step / 10 ** exponent).toPrecision(6)) === 2.5 ? 1 : 0));
  return String(Number(x.toFixed(Math.min(decimals, 20))));
}

const shapeText = (shape: readonly number[]): string => `[${shape.join(', ')}]`;
const px = (x: number): string => String(Math.round(x * 100) / 100);
/** Rough width of a label: 0.6 em per character is close enough for sans-serif digits and words. */
const textWidth = (text: string, fontSize: number): number => 0.6 * fontSize * [...text].length;

function labelsOption(name: string, labels: ArrayLike<string | number> | undefined, expected: number): string[] | null {
  if (labels === undefined) return null;
  if (labels === null || typeof labels !== 'object' || typeof labels.length !== 'number') {
    throw new TypeError(`attentionHeatmap: options.${name} must be an array of strings or numbers`);
  }
  if (labels.length !== expected) {
    throw new RangeError(`attentionHeatmap: options.${name} has ${labels.length} labels, expected ${expected}`);
  }
  return Array.from(labels, (l) => String(l));
}

function positiveOption(name: string, value: number | undefined): void {
  if (value !== undefined && (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value))) {
    throw new RangeError(`attentionHeatmap: options.${name} must be a positive finite number, got ${String(value)}`);
  }
}

/**
 * Draws attention weights as an SVG heatmap: one panel for `[Lq, Lk]`, a grid of panels (one per head)
 * for `[H, Lq, Lk]`, or d2l's `[rows, cols, Lq, Lk]` grid; one shared colour scale with a colour bar;
 * optional row and column labels. Rows are queries (top to bottom), columns keys (left to right).
 * NaN cells are grey (`#9e9e9e`); ±Infinity is drawn with the end colours. All text is escaped.
 *
 * ```js
 * const { weights } = engine.kernelRegression(queries, keys, values, { returnWeights: true });
 * fs.writeFileSync('heatmap.svg', attentionHeatmap(weights, { xLabel: 'training inputs', yLabel: 'test inputs' }));
 * ```
 * @param weights a tensor (or any `{ data, shape }`), e.g. the `weights` an op returns with `returnWeights: true`
 * @returns a standalone SVG document (`<svg xmlns=…>…</svg>`) with width and height in px and a viewBox
 * @throws TypeError when weights is not `{ data, shape }` or an option has the wrong type;
 *   RangeError when the shape is not 2-D to 4-D, does not match the data's size, or labels do not fit it
 */
export function attentionHeatmap(
  weights: { readonly data: ArrayLike<number>; readonly shape: readonly number[] },
  options: HeatmapOptions = {},
): string {
  if (weights === null || typeof weights !== 'object' || !Array.isArray(weights.shape) || weights.data === null || typeof weights.data !== 'object' || typeof weights.data.length !== 'number') {
    throw new TypeError('attentionHeatmap: weights must be a tensor { data, shape }');
  }
  if (options === null || typeof options !== 'object') throw new TypeError('attentionHeatmap: options must be an object');
  const shape = weights.shape;
  const { data } = weights;
  if (shape.length < 2 || shape.length > 4 || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new RangeError(`attentionHeatmap: weights must be [Lq, Lk], [H, Lq, Lk] or [rows, cols, Lq, Lk], got ${shapeText(shape)}`);
  }
  const size = shape.reduce((a, b) => a * b, 1);
  if (data.length !== size) {
    throw new RangeError(`attentionHeatmap: weights has ${data.length} values, but its shape ${shapeText(shape)} needs ${size}`);
  }
  const lq = shape[shape.length - 2];
  const lk = shape[shape.length - 1];
  const panels = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  positiveOption('cellSize', options.cellSize);
  positiveOption('fontSize', options.fontSize);
  if (options.columns !== undefined && !(Number.isInteger(options.columns) && options.columns >= 1)) {
    throw new RangeError(`attentionHeatmap: options.columns must be a positive integer, got ${String(options.columns)}`);
  }
  const columns = Math.max(1, shape.length === 4 ? shape[1] : shape.length === 3 ? Math.min(panels, options.columns ?? 4) : 1);
  const rows = Math.ceil(panels / columns);

  // without labels, the indices are the ticks (0, 5, 10, …): only they are thinned to round steps
  const indices = (n: number): string[] => Array.from({ length: n }, (_, i) => String(i));
  const rowLabels = options.rowLabels === false ? null : labelsOption('rowLabels', options.rowLabels, lq) ?? indices(lq);
  const colLabels = options.colLabels === false ? null : labelsOption('colLabels', options.colLabels, lk) ?? indices(lk);
  const roundRows = options.rowLabels === undefined, roundCols = options.colLabels === undefined;
  const panelTitles = options.panelTitles !== undefined
    ? labelsOption('panelTitles', options.panelTitles, panels)
    : shape.length === 3 ? Array.from({ length: panels }, (_, h) => `head ${h}`) : null;
  const colormap = typeof options.colormap === 'function' ? options.colormap : ANCHORS[options.colormap ?? 'reds'];
  if (colormap === undefined) throw new RangeError(`attentionHeatmap: options.colormap must be 'reds', 'blues', 'viridis' or a function, got ${String(options.colormap)}`);
  const color = typeof colormap === 'function' ? checkedColors(colormap) : interpolate(colormap);

  // the colour scale: finite values only, so a NaN or an Infinity does not wash out the picture
  let lo = Infinity, hi = -Infinity, hasNaN = false;
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if (Number.isNaN(x)) hasNaN = true;
    else if (Number.isFinite(x)) { if (x < lo) lo = x; if (x > hi) hi = x; }
  }
  if (lo > hi) { lo = 0; hi = 1; } // no finite value at all
  const min = options.min ?? Math.min(0, lo);
  let max = options.max ?? hi;
  if (typeof min !== 'number' || typeof max !== 'number' || !Number.isFinite(min) || !Number.isFinite(max)) {
    throw new RangeError(`attentionHeatmap: options.min and options.max must be finite numbers, got ${String(options.min)} and ${String(options.max)}`);
  }
  if (!(max > min)) {
    if (options.max !== undefined) throw new RangeError(`attentionHeatmap: options.max (${max}) must be above min (${min})`);
    max = min + 1;
  }
  const fill = (x: number): string => (Number.isNaN(x) ? NAN_COLOR : color((x - min) / (max - min)));

  // layout, in px
  const fs = options.fontSize ?? 12;
  const cell = options.cellSize ?? Math.max(2, Math.min(24, Math.floor((panels > 1 ? 240 : 320) / Math.max(lq, lk, 1))));
  const panelW = lk * cell, panelH = lq * cell;
  // index ticks keep a readable size and are thinned to round steps (0, 5, 10, …) at least two labels
  // apart; the caller's labels shrink with small cells, to 8 px at least, so that more of them show
  const axisFs = (round: boolean): number => (round ? Math.max(8, fs - 1) : Math.min(fs, Math.max(cell, 8)));
  const rowFs = axisFs(roundRows), colFs = axisFs(roundCols);
  const every = (labels: string[] | null, round: boolean, size: number, along: 'rows' | 'columns'): number => {
    if (labels === null) return 1;
    if (!round) return Math.max(1, Math.ceil(size * 1.1 / cell));
    const widest = along === 'columns' ? Math.max(0, ...labels.map((l) => textWidth(l, size))) + 6 : 0;
    const k = Math.max(1, Math.ceil(Math.max(2 * size, widest) / cell));
    const power = 10 ** Math.floor(Math.log10(k));
    return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= k)!;
  };
  const rowEvery = every(rowLabels, roundRows, rowFs, 'rows'), colEvery = every(colLabels, roundCols, colFs, 'columns');
  const tick = 3; // tick marks outside the panel at every labelled row and column
  const rowLabelW = rowLabels === null ? 0 : Math.max(0, ...rowLabels.map((l) => textWidth(l, rowFs))) + tick + 6;
  const colLabelsTurned = colLabels !== null && colLabels.some((l) => textWidth(l, colFs) > cell * colEvery - 2);
  const colLabelH = colLabels === null ? 0 : (colLabelsTurned ? Math.max(0, ...colLabels.map((l) => textWidth(l, colFs))) : colFs) + tick + 6;
  const xLabel = options.xLabel ?? 'Keys', yLabel = options.yLabel ?? 'Queries';
  const titleH = options.title ? fs * 1.2 + 8 : 0;
  const panelTitleH = panelTitles === null ? 0 : fs + 6;
  const gap = 10;
  const yLabelW = yLabel ? fs * 1.2 + 4 : 0;
  const pad = 6;
  const left = pad + yLabelW + rowLabelW;
  const top = pad + Math.max(titleH, fs / 2); // room for the colour bar's top tick
  const gridW = columns * panelW + (columns - 1) * gap;
  const gridH = rows * (panelTitleH + panelH) + Math.max(0, rows - 1) * gap;
  const barH = Math.max(60, Math.min(gridH - panelTitleH, 320));
  // fewer ticks on a short bar: 3 or more on the shortest (60 px), 5 or more on a tall one
  const ticks = niceTicks(min, max, Math.min(6, Math.max(3, Math.floor(barH / (1.25 * fs)))));
  const tickStep = ticks.length > 1 ? ticks[1] - ticks[0] : 0;
  const tickW = Math.max(...[...ticks.map((v) => formatTick(v, tickStep)), ...(hasNaN ? ['NaN'] : [])].map((t) => textWidth(t, fs)));
  const barW = options.colorbar === false ? 0 : 16 + 12 + 4 + tickW;
  const width = Math.ceil(left + gridW + barW + pad + (colLabelsTurned ? colFs : 0));
  const barBottom = options.colorbar === false ? 0 : top + panelTitleH + barH + (hasNaN ? 24 : fs / 2);
  const yLabelBottom = yLabel ? top + textWidth(yLabel, fs) : 0; // a rotated y label longer than the grid
  const height = Math.ceil(Math.max(top + gridH + colLabelH + (xLabel ? fs * 1.2 + 4 : 0), barBottom, yLabelBottom) + pad);
  const tooltips = options.tooltips ?? size <= 4096;

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="${px(fs)}" role="img">`);
  out.push(`<title>${escapeXml(options.title ?? `attention weights ${shapeText(shape)}`)}</title>`);
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  if (options.title) out.push(`<text x="${px(left + gridW / 2)}" y="${px(pad + fs * 1.2)}" text-anchor="middle" font-size="${px(fs * 1.2)}" font-weight="600">${escapeXml(options.title)}</text>`);

  for (let p = 0; p < panels; p++) {
    const r = Math.floor(p / columns), c = p % columns;
    const x0 = left + c * (panelW + gap);
    const y0 = top + r * (panelTitleH + panelH + gap) + panelTitleH;
    if (panelTitles !== null) out.push(`<text x="${px(x0 + panelW / 2)}" y="${px(y0 - 5)}" text-anchor="middle">${escapeXml(panelTitles[p])}</text>`);
    out.push(`<g class="panel" data-panel="${p}" shape-rendering="crispEdges">`);
    const base = p * lq * lk;
    for (let i = 0; i < lq; i++) {
      for (let j = 0; j < lk; j++) {
        const x = data[base + i * lk + j];
        const rect = `<rect x="${px(x0 + j * cell)}" y="${px(y0 + i * cell)}" width="${px(cell)}" height="${px(cell)}" fill="${fill(x)}"`;
        out.push(tooltips ? `${rect}><title>${escapeXml(`row ${rowLabels?.[i] ?? i}, column ${colLabels?.[j] ?? j}: ${formatValue(x)}`)}</title></rect>` : `${rect}/>`);
      }
    }
    out.push(`</g>`);
    out.push(`<rect x="${px(x0)}" y="${px(y0)}" width="${px(panelW)}" height="${px(panelH)}" fill="none" stroke="#555" stroke-width="0.5"/>`);
    if (rowLabels !== null && c === 0) {
      for (let i = 0; i < lq; i += rowEvery) {
        const y = y0 + (i + 0.5) * cell;
        out.push(`<line class="tick" x1="${px(x0 - tick)}" y1="${px(y)}" x2="${px(x0)}" y2="${px(y)}" stroke="#555" stroke-width="0.75"/>`);
        out.push(`<text x="${px(x0 - tick - 2)}" y="${px(y)}" text-anchor="end" dominant-baseline="central" font-size="${px(rowFs)}">${escapeXml(rowLabels[i])}</text>`);
      }
    }
    const lastInColumn = r === rows - 1 || p + columns >= panels;
    if (colLabels !== null && lastInColumn) {
      for (let j = 0; j < lk; j += colEvery) {
        const x = x0 + (j + 0.5) * cell, y = y0 + panelH + tick + 3;
        out.push(`<line class="tick" x1="${px(x)}" y1="${px(y0 + panelH)}" x2="${px(x)}" y2="${px(y0 + panelH + tick)}" stroke="#555" stroke-width="0.75"/>`);
        out.push(colLabelsTurned
          ? `<text transform="translate(${px(x)} ${px(y)}) rotate(90)" dominant-baseline="central" font-size="${px(colFs)}">${escapeXml(colLabels[j])}</text>`
          : `<text x="${px(x)}" y="${px(y + colFs)}" text-anchor="middle" font-size="${px(colFs)}">${escapeXml(colLabels[j])}</text>`);
      }
    }
  }

  if (xLabel) out.push(`<text x="${px(left + gridW / 2)}" y="${px(top + gridH + colLabelH + fs * 1.2)}" text-anchor="middle">${escapeXml(xLabel)}</text>`);
  if (yLabel) {
    const cy = top + Math.max(gridH, textWidth(yLabel, fs)) / 2;
    out.push(`<text transform="translate(${px(pad + fs)} ${px(cy)}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`);
  }

  if (options.colorbar !== false) {
    // 64 bands rather than a gradient: no ids, which would clash when several SVGs share one page
    const bx = left + gridW + 16, by = top + panelTitleH, bands = 64;
    out.push(`<g class="colorbar" shape-rendering="crispEdges">`);
    for (let k = 0; k < bands; k++) {
      out.push(`<rect x="${px(bx)}" y="${px(by + (k * barH) / bands)}" width="12" height="${px(barH / bands + 0.5)}" fill="${color(1 - (k + 0.5) / bands)}"/>`);
    }
    out.push(`<rect x="${px(bx)}" y="${px(by)}" width="12" height="${px(barH)}" fill="none" stroke="#555" stroke-width="0.5"/>`);
    for (const v of ticks) {
      const y = max > min ? by + barH * (1 - (v - min) / (max - min)) : by + barH / 2;
      out.push(`<line x1="${px(bx + 12)}" y1="${px(y)}" x2="${px(bx + 15)}" y2="${px(y)}" stroke="#555" stroke-width="0.5"/>`);
      out.push(`<text x="${px(bx + 17)}" y="${px(y)}" dominant-baseline="central">${formatTick(v, tickStep)}</text>`);
    }
    if (hasNaN) {
      out.push(`<rect x="${px(bx)}" y="${px(by + barH + 8)}" width="12" height="12" fill="${NAN_COLOR}"/>`);
      out.push(`<text x="${px(bx + 16)}" y="${px(by + barH + 14)}" dominant-baseline="central">NaN</text>`);
    }
    out.push(`</g>`);
  }
  out.push('</svg>');
  return out.join('\n');
}
