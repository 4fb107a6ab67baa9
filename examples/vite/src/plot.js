// Two small SVG charts, written as strings like attentionHeatmap's output: a line chart with points
// and a horizontal bar chart. Only what the pages need; numbers are formatted by the caller.

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * A line chart: `lines` [{ xs, ys, color }], `points` [{ x, y, color, label }], an optional vertical
 * `marker` { x, y, label }, axis titles, fixed x and y ranges.
 */
export function lineChart({ width = 460, height = 280, xRange, yRange, lines = [], points = [], marker, xTitle = '', yTitle = '' }) {
  const m = { left: 48, right: 14, top: 14, bottom: 40 };
  const w = width - m.left - m.right, h = height - m.top - m.bottom;
  const sx = (x) => m.left + ((x - xRange[0]) / (xRange[1] - xRange[0])) * w;
  const sy = (y) => m.top + (1 - (y - yRange[0]) / (yRange[1] - yRange[0])) * h;
  const ticks = (lo, hi, n) => Array.from({ length: n + 1 }, (_, i) => lo + ((hi - lo) * i) / n);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-size="11" role="img">`];
  out.push(`<rect x="${m.left}" y="${m.top}" width="${w}" height="${h}" fill="#fff" stroke="#ccc"/>`);
  for (const t of ticks(...xRange, 7)) out.push(`<line x1="${sx(t)}" x2="${sx(t)}" y1="${m.top + h}" y2="${m.top + h + 4}" stroke="#888"/><text x="${sx(t)}" y="${m.top + h + 16}" text-anchor="middle">${+t.toFixed(1)}</text>`);
  for (const t of ticks(...yRange, 4)) out.push(`<line x1="${m.left - 4}" x2="${m.left}" y1="${sy(t)}" y2="${sy(t)}" stroke="#888"/><text x="${m.left - 6}" y="${sy(t)}" text-anchor="end" dominant-baseline="central">${+t.toFixed(1)}</text>`);
  out.push(`<text x="${m.left + w / 2}" y="${height - 6}" text-anchor="middle" font-size="12">${esc(xTitle)}</text>`);
  out.push(`<text transform="translate(12 ${m.top + h / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(yTitle)}</text>`);
  for (const { xs, ys, color } of lines) {
    const d = xs.map((x, i) => `${i ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(ys[i]).toFixed(1)}`).join('');
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
  }
  if (marker) {
    out.push(`<line x1="${sx(marker.x)}" x2="${sx(marker.x)}" y1="${m.top}" y2="${m.top + h}" stroke="#555" stroke-dasharray="4 3"/>`);
    out.push(`<circle cx="${sx(marker.x)}" cy="${sy(marker.y)}" r="5" fill="#a50f15"/><text x="${sx(marker.x) + 8}" y="${sy(marker.y) - 8}">${esc(marker.label)}</text>`);
  }
  for (const p of points) out.push(`<circle cx="${sx(p.x)}" cy="${sy(p.y)}" r="5" fill="${p.color}" stroke="#fff"/><text x="${sx(p.x)}" y="${sy(p.y) + 18}" text-anchor="middle" fill="#555">${esc(p.label)}</text>`);
  out.push('</svg>');
  return out.join('');
}

/**
 * Horizontal grouped bars: `groups` [{ label, bars: [{ series, value, text }] }], one colour per series.
 * Values are drawn on a log scale when they span more than two decades (wasm vs reference do).
 */
export function barChart({ groups, colors, width = 760, unit = '' }) {
  const rowH = 16, gap = 10, right = 60, top = 28;
  const left = Math.max(0, ...groups.map((g) => 6.2 * g.label.length)) + 14; // labels are 11 px sans-serif
  const values = groups.flatMap((g) => g.bars.map((b) => b.value)).filter((v) => v > 0 && Number.isFinite(v));
  const max = Math.max(...values, 1e-9), min = Math.min(...values, max);
  const log = max / min > 100;
  const lo = log ? 10 ** Math.floor(Math.log10(min)) : 0;
  const scale = (v) => (log ? Math.log10(v / lo) / Math.log10((max * 1.05) / lo) : v / (max * 1.05)) * (width - left - right);
  const height = top + groups.reduce((s, g) => s + g.bars.length * rowH + gap, 0) + 8;
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-size="11" role="img">`];
  const series = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.series)))];
  series.forEach((s, i) => out.push(`<rect x="${left + i * 130}" y="6" width="12" height="12" fill="${colors[s]}"/><text x="${left + i * 130 + 16}" y="16">${esc(s)}</text>`));
  out.push(`<text x="${width - right}" y="16" text-anchor="end" fill="#666">${esc(unit)}${log ? ' (log scale)' : ''}</text>`);
  let y = top;
  for (const g of groups) {
    out.push(`<text x="${left - 8}" y="${y + (g.bars.length * rowH) / 2}" text-anchor="end" dominant-baseline="central">${esc(g.label)}</text>`);
    for (const b of g.bars) {
      const w = b.value > 0 && Number.isFinite(b.value) ? Math.max(1, scale(b.value)) : 0;
      out.push(`<rect class="bar" x="${left}" y="${y + 1}" width="${w.toFixed(1)}" height="${rowH - 2}" fill="${colors[b.series]}"/>`);
      out.push(`<text x="${left + w + 4}" y="${y + rowH / 2}" dominant-baseline="central">${esc(b.text)}</text>`);
      y += rowH;
    }
    y += gap;
  }
  out.push('</svg>');
  return out.join('');
}
