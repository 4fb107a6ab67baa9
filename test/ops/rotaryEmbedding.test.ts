// rotaryEmbedding on the reference engine and on wasm engines of 1 and 2 threads, against the float64
// formula (ropeRow in test/support.ts, not the reference engine's code): rotated halves and interleaved
// pairs, partial dims, positions per row, per batch and token-major, cos/sin tables, and calls one after
// another (the wasm engine keeps the last angles it computed).
import { describe, expect, it } from 'vitest';
import { type Engine, reference, tensor } from '../../src/index.js';
import { expectClose, random, ropeRow, wasmEngines } from '../support.js';

const [wasm1, wasm2] = await wasmEngines();
const engines: [string, Engine][] = [['reference', reference], ['wasm, 1 thread', wasm1], ['wasm, 2 threads', wasm2]];

describe.each(engines)('rotaryEmbedding on %s', (_, engine) => {
  it.each([2, 4, 6, 8, 16, 18, 64, 66, 130])('matches the float64 formula, D = %i, halves and interleaved, full and partial', (D) => {
    const x = random([2, 3, 5, D], D);
    for (const interleaved of [false, true]) {
      for (const dim of [D, D - 2]) {
        const got = engine.rotaryEmbedding(x, { interleaved, dim, base: 500 });
        const want = new Float32Array(x.data.length);
        for (let r = 0; r < 2 * 3 * 5; r++) want.set(ropeRow(x.data.subarray(r * D, (r + 1) * D), r % 5, dim, 500, interleaved), r * D);
        expectClose(got, { data: want, shape: x.shape }, `interleaved ${interleaved}, dim ${dim}`);
      }
    }
  });

  it('one call after another with the same positions, then another base, dim, positions or tables: each its own angles', () => {
    // the wasm engine keeps the last angles it computed (src/wasm/rotary.ts): none may serve a call they do not fit
    const D = 8, x = random([4, 2, D], 11);
    const calls: { positions: number[]; base?: number; dim?: number; tables?: boolean }[] = [
      { positions: [3, 9, 9, 40] }, { positions: [3, 9, 9, 40] }, { positions: [3, 9, 9, 40], base: 500 }, { positions: [3, 9, 9, 40], dim: 4 },
      { positions: [3, 9, 9, 41] }, { positions: [3, 9, 9, 40], tables: true }, { positions: [3, 9, 9, 40] }, { positions: [40, 9, 9, 3] },
    ];
    const cos = random([64, D / 2], 12), sin = random([64, D / 2], 13);
    for (const [i, c] of calls.entries()) {
      const options = { positions: c.positions, base: c.base, dim: c.dim, ...(c.tables ? { cos, sin } : {}) };
      const got = engine.rotaryEmbedding(x, options);
      const want = new Float32Array(x.data.length);
      for (let r = 0; r < 8; r++) {
        const p = c.positions[Math.floor(r / 2)];
        want.set(ropeRow(x.data.subarray(r * D, (r + 1) * D), p, c.dim ?? D, c.base ?? 10000, false, c.tables ? { cos, sin } : undefined), r * D);
      }
      expectClose(got, { data: want, shape: x.shape }, `call ${i}: ${JSON.stringify(c)}`);
    }
  });

  it('takes positions [L], [B, L] and token-major [T, H, D] with positions [T], and cos/sin tables', () => {
    const D = 8, x = random([2, 2, 3, D], 7);
    const perBatch = [4, 9, 1, 0, 2, 30];
    const got = engine.rotaryEmbedding(x, { positions: perBatch });
    const want = new Float32Array(x.data.length);
    for (let r = 0; r < 12; r++) {
      const b = Math.floor(r / 6), l = r % 3;
      want.set(ropeRow(x.data.subarray(r * D, (r + 1) * D), perBatch[b * 3 + l], D, 10000, false), r * D);
    }
    expectClose(got, { data: want, shape: x.shape }, '[B, L] positions');
    const tokens = random([5, 3, D], 8), positions = tensor([7, 0, 3, 3, 12], [5]);
    const cos = random([16, D / 2], 9), sin = random([16, D / 2], 10);
    const t = engine.rotaryEmbedding(tokens, { positions, cos, sin });
    const tw = new Float32Array(tokens.data.length);
    for (let r = 0; r < 15; r++) tw.set(ropeRow(tokens.data.subarray(r * D, (r + 1) * D), positions.data[Math.floor(r / 3)], D, 0, false, { cos, sin }), r * D);
    expectClose(t, { data: tw, shape: tokens.shape }, 'token-major with tables');
    expect(() => engine.rotaryEmbedding(tokens, { positions: [16, 0, 0, 0, 0], cos, sin })).toThrow(RangeError);
    expect(() => engine.rotaryEmbedding(tokens, { dim: 3 })).toThrow(/even integer/);
    expect(() => engine.rotaryEmbedding(tokens, { positions: [1, 2] })).toThrow(RangeError);
    expect(() => engine.rotaryEmbedding(tokens, { cos })).toThrow(TypeError);
  });
});
