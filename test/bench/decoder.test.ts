// bench/decoder.js's harness, run on a tiny model: its table by part must time every part of a decode
// step, for float32 weights and for weights quantized while loading (int4, through the engine's
// createLinearBuilder), and its main table must give finite rates. (Quantized layers once went
// untimed there: their linear layers read 0 ms and Infinity GB/s.)
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The data rows of the first markdown table at or after the line containing `title`, as cells. */
function table(out: string, title: string): string[][] {
  const lines = out.split('\n'), at = lines.findIndex((l) => l.includes(title));
  expect(at, `no "${title}" in the output:\n${out}`).toBeGreaterThanOrEqual(0);
  const rows: string[][] = [];
  for (const line of lines.slice(at)) {
    if (!line.startsWith('|')) { if (rows.length > 0) break; continue; }
    rows.push(line.split('|').slice(1, -1).map((c) => c.trim()));
  }
  return rows.slice(2); // (the header and its rule)
}

describe('bench/decoder.js', () => {
  it('times every part of a decode step, float32 and int4 quantized on load alike', () => {
    const out = execFileSync(process.execPath, ['bench/decoder.js', '--model', 'tiny-qwen2', '--weights', 'float32,int4', '--threads', '1', '--prompt', '8', '--decode', '4', '--rounds', '1'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    const parts = table(out, 'A decode step by part');
    expect(parts.map((r) => r[1])).toEqual(['float32', 'int4']);
    for (const r of parts) {
      // linear layers, LM head, attention, norms/adds/activation, embedding, sampling
      for (const [i, name] of ['linear layers', 'LM head', 'attention', 'norms', 'embedding', 'sampling'].entries()) {
        expect(Number(r[3 + i]), `${r[1]}: ${name} (${r[3 + i]} ms)`).toBeGreaterThan(0);
      }
    }
    const main = table(out, '| model | weights | threads | prefill tok/s');
    expect(main.map((r) => r[1])).toEqual(['float32', 'int4']);
    // step / linear, and the linear layers' GB/s (the bare GEMV's in parentheses)
    for (const r of main) expect([Number(r[8]), Number.parseFloat(r[9])].every((v) => Number.isFinite(v) && v > 0), `${r[1]}: ${r[8]}, ${r[9]}`).toBe(true);
  });
});
