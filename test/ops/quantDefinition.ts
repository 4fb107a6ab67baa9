// The int8/int4 storage of a linear layer (docs/MODELS.md, "Storage of a linear layer"), written once for the tests that check
// createLinear against it (linearQuant.test.ts: float weights quantized by the layer;
// linearQuantized.test.ts: weights given already quantized; test/models: GGUF blocks): per-group
// scales (int8 max|w| / 127; int4 m / -8 with m the first element of largest magnitude), round half
// to even, the input rows quantized per group to int8 (Q8_0), and y = b + Σ_g s_w · s_x · (exact
// integer sum).
import { expect } from 'vitest';
import { type Tensor, tensor } from '../../src/index.js';

export type Quant = 'int8' | 'int4';

/** A weight's (or activations') groups: one integer per value and one scale per group, row-major. */
export interface Groups { s: number[]; q: number[] }

/** Rounds to the nearest integer, ties to even. */
export function roundEven(q: number): number {
  const f = Math.floor(q), d = q - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

/** One group of values quantized as docs/MODELS.md defines: its float32 scale and integers. */
export function quantizeGroup(v: ArrayLike<number>, bits: 8 | 4): { s: number; q: number[] } {
  const g = Array.from(v);
  let s: number;
  if (g.some(Number.isNaN)) s = NaN;
  else if (bits === 8) s = Math.fround(Math.max(...g.map(Math.abs)) / 127);
  else {
    let m = 0;
    for (const w of g) if (Math.abs(w) > Math.abs(m)) m = w; // the first of largest magnitude
    s = Math.fround(m / -8);
  }
  const [lo, hi] = bits === 8 ? [-127, 127] : [-8, 7];
  const q = g.map((w) => (s === 0 || !Number.isFinite(s) ? 0 : Math.min(hi, Math.max(lo, roundEven(Math.fround(w / s)))) | 0)); // | 0: no -0
  return { s, q };
}

/** Rows [rows, k] quantized in groups of g. */
export function quantizeRows(data: ArrayLike<number>, rows: number, k: number, g: number, bits: 8 | 4): Groups {
  const s: number[] = [], q: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < k; j += g) {
      const group = quantizeGroup(Array.prototype.slice.call(data, r * k + j, r * k + j + g), bits);
      s.push(group.s);
      q.push(...group.q);
    }
  }
  return { s, q };
}

/**
 * y = b + Σ_g s_w · s_x · Σ q_w · q_x for a weight W [N, K] as groups of g, the integer sums exact,
 * groups added in ascending order: in float64 with `round` the identity, or rounded to float32 at every
 * step (acc += (s_w · s_x) · float(isum)) with Math.fround, as the wasm kernels compute it.
 */
function groupsProduct(x: Tensor, W: Groups, N: number, b: Tensor | undefined, g: number, round: (v: number) => number): Float32Array {
  const [T, K] = x.shape, G = K / g;
  const X = quantizeRows(x.data, T, K, g, 8);
  const y = new Float32Array(T * N);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < N; o++) {
      let acc = b ? b.data[o] : 0;
      for (let j = 0; j < G; j++) {
        let dot = 0;
        for (let i = j * g; i < (j + 1) * g; i++) dot += W.q[o * K + i] * X.q[t * K + i];
        acc = round(acc + round(round(W.s[o * G + j] * X.s[t * G + j]) * dot));
      }
      y[t * N + o] = acc;
    }
  }
  return y;
}

/** y = b + Σ_g s_w · s_x · Σ q_w · q_x in float64 (the integer sums exact), for a weight W [N, K] as groups of g. */
export const productOf = (x: Tensor, W: Groups, N: number, b: Tensor | undefined, g: number): Tensor =>
  tensor(groupsProduct(x, W, N, b, g, (v) => v), [x.shape[0], N]);

/**
 * What the wasm kernels compute, in float32 step by step: acc = b (or 0), then per group ascending
 * acc += (s_w · s_x) · float(isum). Both builds must give exactly these bits.
 */
export const float32StepsOf = (x: Tensor, W: Groups, N: number, b: Tensor | undefined, g: number): Float32Array => groupsProduct(x, W, N, b, g, Math.fround);

/** Every element the same bits, NaN equal to NaN. */
export function expectIdentical(a: Tensor | Float32Array, b: Tensor | Float32Array, label: string): void {
  const x = 'data' in a ? a.data : a, y = 'data' in b ? b.data : b;
  expect(x.length, label).toBe(y.length);
  let diff = -1;
  for (let i = 0; i < x.length && diff < 0; i++) if (!Object.is(x[i], y[i]) && !(Number.isNaN(x[i]) && Number.isNaN(y[i]))) diff = i;
  expect(diff, `${label}: first difference at ${diff}: ${x[diff]} vs ${y[diff]}`).toBe(-1);
}
