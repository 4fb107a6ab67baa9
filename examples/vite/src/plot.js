// Two small SVG charts, written as strings like attentionHeatmap's output: a line chart with points
// and a horizontal bar chart. Only what the pages and the tour (examples/tour.js) need; no DOM.

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Round ticks in [lo, hi]: the multiples of 1, 2 or 5 times a power of ten whose count is nearest `target`. */
export function roundTicks(lo, hi, target = 6) {
  const power = 10 ** Math.floor(Math.log10((hi - lo) / Math.max(1, target - 1)));
  const multiples = (step) => {
    const ticks = [];
    for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) ticks.push(Number((k * step).toPrecision(12)));
    return ticks;
  };
  const candidates = [0.5, 1, 2, 5, 10].map((f) => multiples(f * power));
  return candidates.reduce((best, t) => (Math.abs(t.length - target) < Math.abs(best.length - target) ? t : best));
}

/**
 * A line chart: `lines` [{ xs, ys, color, dash? }], `points` [{ x, y, color, label?, r? }], an optional
 * vertical `marker` { x, y, label }, a `legend` [{ label, color, dash?, point? }] in the top right
 * corner, axis titles, fixed x and y ranges with round ticks.
 */
export function lineChart({ width = 460, height = 280, xRange, yRange, lines = [], points = [], marker, legend = [], xTitle = '', yTitle = '' }) {
  const m = { left: 48, right: 14, top: 14, bottom: 40 };
  const w = width - m.left - m.right, h = height - m.top - m.bottom;
  const sx = (x) => m.left + ((x - xRange[0]) / (xRange[1] - xRange[0])) * w;
  const sy = (y) => m.top + (1 - (y - yRange[0]) / (yRange[1] - yRange[0])) * h;
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="11" role="img">`];
  out.push(`<rect x="${m.left}" y="${m.top}" width="${w}" height="${h}" fill="#fff" stroke="#ccc"/>`);
  for (const t of roundTicks(...xRange, Math.max(3, Math.round(w / 60)))) out.push(`<line x1="${sx(t)}" x2="${sx(t)}" y1="${m.top + h}" y2="${m.top + h + 4}" stroke="#888"/><text x="${sx(t)}" y="${m.top + h + 16}" text-anchor="middle">${t}</text>`);
  for (const t of roundTicks(...yRange, Math.max(3, Math.round(h / 50)))) out.push(`<line x1="${m.left - 4}" x2="${m.left}" y1="${sy(t)}" y2="${sy(t)}" stroke="#888"/><text x="${m.left - 6}" y="${sy(t)}" text-anchor="end" dominant-baseline="central">${t}</text>`);
  out.push(`<text x="${m.left + w / 2}" y="${height - 6}" text-anchor="middle" font-size="12">${esc(xTitle)}</text>`);
  out.push(`<text transform="translate(12 ${m.top + h / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(yTitle)}</text>`);
  for (const { xs, ys, color, dash } of lines) {
    const d = xs.map((x, i) => `${i ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(ys[i]).toFixed(1)}`).join('');
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`);
  }
  if (marker) {
    out.push(`<line x1="${sx(marker.x)}" x2="${sx(marker.x)}" y1="${m.top}" y2="${m.top + h}" stroke="#555" stroke-dasharray="4 3"/>`);
    out.push(`<circle cx="${sx(marker.x)}" cy="${sy(marker.y)}" r="5" fill="#a50f15"/><text x="${sx(marker.x) + 8}" y="${sy(marker.y) - 8}">${esc(marker.label)}</text>`);
  }
  for (const p of points) {
    out.push(`<circle cx="${sx(p.x)}" cy="${sy(p.y)}" r="${p.r ?? 5}" fill="${p.color}" stroke="#fff"/>`);
    if (p.label !== undefined) out.push(`<text x="${sx(p.x)}" y="${sy(p.y) + 18}" text-anchor="middle" fill="#555">${esc(p.label)}</text>`);
  }
  if (legend.length) {
    const lw = Math.max(...legend.map((l) => 6.2 * l.label.length)) + 40, x0 = m.left + w - lw - 6, y0 = m.top + 6;
    out.push(`<rect x="${x0}" y="${y0}" width="${lw}" height="${legend.length * 16 + 6}" fill="#fff" fill-opacity="0.85" stroke="#ddd"/>`);
    legend.forEach((l, i) => {
      const y = y0 + 11 + i * 16;
      out.push(l.point
        ? `<circle cx="${x0 + 17}" cy="${y}" r="3" fill="${l.color}"/>`
        : `<line x1="${x0 + 6}" x2="${x0 + 28}" y1="${y}" y2="${y}" stroke="${l.color}" stroke-width="2"${l.dash ? ` stroke-dasharray="${l.dash}"` : ''}/>`);
      out.push(`<text x="${x0 + 34}" y="${y}" dominant-baseline="central">${esc(l.label)}</text>`);
    });
  }
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
