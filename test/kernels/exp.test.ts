// The error bounds stated in assembly/inline/exp.ts, measured against float64 Math.exp / Math.tanh.
import { describe, expect, it } from 'vitest';
import { loadKernels } from '../../src/wasm/loader.js';
import { Arena } from '../../src/wasm/memory.js';

const kernels = await loadKernels();
const arena = new Arena(kernels.memory, kernels.heap_base());

function run(kernel: (out: number, x: number, n: number) => void, xs: Float32Array): Float32Array {
  return arena.scoped(() => {
    const p = arena.write(xs);
    kernel(p, p, xs.length);
    return arena.read(p, xs.length);
  });
}

/** Every float32 step of `count` points spread over [lo, hi], plus the ends. */
function grid(lo: number, hi: number, count: number): Float32Array {
  const xs = new Float32Array(count + 1);
  for (let i = 0; i <= count; i++) xs[i] = lo + ((hi - lo) * i) / count;
  return xs;
}

/** |y - exact| in units in the last place of the float32 nearest to `exact`. */
function ulps(y: number, exact: number): number {
  return Math.abs(y - exact) / 2 ** (Math.floor(Math.log2(exact)) - 23);
}

function worstUlps(lo: number, hi: number, count: number, kernel = kernels.exp_f32): number {
  const xs = grid(lo, hi, count);
  const ys = run(kernel, xs);
  let worst = 0;
  for (let i = 0; i < xs.length; i++) worst = Math.max(worst, ulps(ys[i], Math.exp(xs[i])));
  return worst;
}

describe('exp approximation', () => {
  // odd counts: the SIMD body and the scalar tail both run
  it('is within 1 ulp over [-87.3, 0], the range softmax uses (scores minus their max)', () => {
    expect(worstUlps(-87.3, 0, 400_003)).toBeLessThanOrEqual(1);
  });

  it('has a x <= 0 variant for softmax sized to the 1e-4 tolerance: relative error < 3.5e-6 over [-10, 0], < 7e-6 over [-87.3, 0]', () => {
    const worstRelative = (lo: number, hi: number, count: number): number => {
      const xs = grid(lo, hi, count);
      const ys = run(kernels.exp_softmax_f32, xs);
      let worst = 0;
      for (let i = 0; i < xs.length; i++) worst = Math.max(worst, Math.abs(ys[i] / Math.exp(xs[i]) - 1));
      return worst;
    };
    const near = worstRelative(-10, 0, 400_003), far = worstRelative(-87.3, 0, 400_003);
    expect(near).toBeLessThan(3.5e-6);
    expect(far).toBeLessThan(7e-6);
    // a bound that is not vacuous: the degree-4 polynomial cannot do better than its fit, 2.6e-6
    expect(near).toBeGreaterThan(1e-6);
  });

  it('gives the softmax variant exactly 0 below -87.7 and for -Infinity, NaN for NaN, in SIMD body and tail', () => {
    for (const n of [1, 3, 4, 5, 15, 16, 17]) {
      const xs = Float32Array.from({ length: n }, (_, i) => [0, -88, -1e30, -Infinity, NaN, -1][i % 6]);
      const ys = run(kernels.exp_softmax_f32, xs);
      for (let i = 0; i < n; i++) {
        if (Number.isNaN(xs[i])) expect(Number.isNaN(ys[i])).toBe(true);
        else if (xs[i] < -87.7) expect(ys[i]).toBe(0);
        else expect(Math.abs(ys[i] / Math.exp(xs[i]) - 1)).toBeLessThan(3.5e-6);
      }
    }
  });

  it('has a base-2 variant for the fused attention, within 3 ulp of 2^x over [-126, 0], 0 below', () => {
    const xs = grid(-126, 0, 400_003);
    const ys = run(kernels.exp2_nonpositive_f32, xs);
    let worst = 0;
    for (let i = 0; i < xs.length; i++) worst = Math.max(worst, ulps(ys[i], 2 ** xs[i]));
    expect(worst).toBeLessThanOrEqual(3);
    const edges = run(kernels.exp2_nonpositive_f32, Float32Array.from([0, -127, -Infinity, NaN, -1, -0.5]));
    expect(Array.from(edges.subarray(0, 3))).toEqual([1, 0, 0]);
    expect(Number.isNaN(edges[3])).toBe(true);
    expect(edges[4]).toBe(0.5); // whole powers of two are exact
    expect(ulps(edges[5], Math.SQRT1_2)).toBeLessThanOrEqual(3);
  });

  it('has a base-2 softmax variant for the fused attention\'s weights, within 7e-6 of 2^x over [-126, 0], 0 below -126.5', () => {
    const xs = grid(-126, 0, 400_003);
    const ys = run(kernels.exp2_softmax_f32, xs);
    let worst = 0;
    for (let i = 0; i < xs.length; i++) worst = Math.max(worst, Math.abs(ys[i] / 2 ** xs[i] - 1));
    expect(worst).toBeLessThan(7e-6);
    expect(worst).toBeGreaterThan(1e-7); // a polynomial sized to the tolerance, not to the last bit
    for (const n of [1, 3, 4, 5, 15, 16, 17]) {
      const edges = Float32Array.from({ length: n }, (_, i) => [0, -127, -Infinity, NaN, -1, -126.6][i % 6]);
      const out = run(kernels.exp2_softmax_f32, edges);
      for (let i = 0; i < n; i++) {
        const x = edges[i];
        if (Number.isNaN(x)) expect(Number.isNaN(out[i])).toBe(true);
        else if (x < -126.5) expect(out[i]).toBe(0);
        else expect(Math.abs(out[i] / 2 ** x - 1)).toBeLessThan(7e-6);
      }
    }
  });

  it('has a shifted variant for the fused attention\'s one-pass weights: 2^(x - m) for an integer m, within 7e-6 over [m - 126, m + 8]', () => {
    for (const m of [0, 5, -1000, 123_456, 2 ** 21, -(2 ** 21)]) {
      // x in float32 (near 2^21 its steps are 1/4); the exact value from the float32 x, in float64
      const xs = grid(m - 126, m + 8, 100_003);
      const shifted = (out: number, x: number, n: number) => kernels.exp2_shifted_f32(out, x, n, m);
      const ys = run(shifted, xs);
      let worst = 0;
      for (let i = 0; i < xs.length; i++) worst = Math.max(worst, Math.abs(ys[i] / 2 ** (xs[i] - m) - 1));
      expect(worst, `m = ${m}`).toBeLessThan(7e-6);
      for (const n of [1, 3, 4, 5, 7]) {
        const edges = Float32Array.from({ length: n }, (_, i) => [m, m - 127, -Infinity, NaN, m - 1, m - 200, m + 8][i % 7]);
        const out = run(shifted, edges);
        for (let i = 0; i < n; i++) {
          const x = edges[i];
          if (Number.isNaN(x)) expect(Number.isNaN(out[i])).toBe(true);
          else if (x - m < -126.5) expect(out[i], `m = ${m}, x - m = ${x - m}`).toBe(0);
          else expect(Math.abs(out[i] / 2 ** (x - m) - 1), `m = ${m}, x - m = ${x - m}`).toBeLessThan(7e-6);
        }
      }
    }
  });

  it('is within 1 ulp over [0, 88] and 5 ulp over (88, 88.72]', () => {
    expect(worstUlps(0, 88, 200_001)).toBeLessThanOrEqual(1);
    expect(worstUlps(88, 88.72, 10_001)).toBeLessThanOrEqual(5);
  });

  it('is exact at 0, flushes below -87.34 to 0, overflows above 88.73 to Infinity, keeps NaN', () => {
    const ys = run(kernels.exp_f32, Float32Array.from([0, -88, -1e30, -Infinity, 89, 1e30, Infinity, NaN, 0]));
    expect(Array.from(ys.subarray(0, 7))).toEqual([1, 0, 0, 0, Infinity, Infinity, Infinity]);
    expect(Number.isNaN(ys[7])).toBe(true);
    expect(ys[8]).toBe(1);
  });
});

describe('tanh approximation', () => {
  it('is within 2.5e-7 (absolute) over [-20, 20]', () => {
    const xs = grid(-20, 20, 100_001);
    const ys = run(kernels.tanh_f32, xs);
    let worst = 0;
    for (let i = 0; i < xs.length; i++) worst = Math.max(worst, Math.abs(ys[i] - Math.tanh(xs[i])));
    expect(worst).toBeLessThanOrEqual(2.5e-7);
  });

  it('saturates to ±1 and keeps NaN', () => {
    const ys = run(kernels.tanh_f32, Float32Array.from([Infinity, -Infinity, 1e30, -1e30, NaN]));
    expect(Array.from(ys.subarray(0, 4))).toEqual([1, -1, 1, -1]);
    expect(Number.isNaN(ys[4])).toBe(true);
  });
});
