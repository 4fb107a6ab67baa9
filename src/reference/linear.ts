// A linear layer y = x Wᵀ + b (nn.Linear's layout, W [out, in]) holding its own copy of the weight
// in its storage format, the readable definition:
//
//   'float32'  W as given
//   'float16'  every weight rounded to IEEE binary16, nearest even (./kvFormats.ts: the same bits as
//              the wasm kernels' conversion), then read back as its exact value
//
//   'int8'     each row's groups of g inputs (groupSize) as q = clamp(round(w / s), -127, 127) with
//              one float32 s = max|w| / 127 per group
//   'int4'     the same groups as q = clamp(round(w / s), -8, 7) with s = m / -8, m the group's
//              element of largest magnitude (its sign kept, the first of equals; GGML's Q4_0)
//              Both: s is the float32 quotient, w / s the float32 quotient of two float32 values,
//              round() to nearest with ties to even. A group whose s is 0, an Infinity or a NaN (a
//              NaN anywhere in the group makes s NaN) holds q = 0: its values read back as 0 · s.
//
//   a QuantizedWeight (q and s given): stored as given, q = 0 in a group whose s is 0 (as above), so
//              the layer is the one quantizing float weights to these q and s would have made
//
//   forward, float:  y[t, o] = b[o] + Σ_i x[t, i] · W[o, i]        float64 sums of the stored values
//   forward, int:    each row of x quantized per group as int8's weights are (Q8_0 activations:
//                    s_x = max|x| / 127, q_x in [-127, 127]), then
//                    y[t, o] = b[o] + Σ_g s_w[o, g] · s_x[t, g] · Σ_{i in g} q_w[o, i] · q_x[t, i]
//                    with exact integer sums, the rest in float64. So a NaN or an Infinity in a row of
//                    x makes s_x non-finite and q_x = 0 in its group, and every output of the row NaN
//                    (s_w · s_x · 0); a non-finite weight makes its output row NaN the same way.
//   lookup:   rows ids of the stored W, times scale: out[r, i] = float32(W[ids[r], i] · float32(scale))
//             (the product of two float32 values, rounded once: what float32 arithmetic gives);
//             for int8/int4 the stored value is float32(q · s)
//
// The wasm engine (src/wasm/linear.ts) stores the same values and computes in float32 (the integer
// sums exactly, so for int8/int4 it differs only in how it adds the groups).

import { disposeSymbol } from '../core/dispose.js';
import { LINEAR_APPEND, type LinearPlan, planLinear, planLinearAppend, planLinearBuilder, planLinearForward, planLinearLookup, type QuantizedPlan } from '../core/linearPlan.js';
import type { LinearBuilder, LinearBuilderOptions, LinearLayer, LinearOptions, QuantizedWeight } from '../core/modelTypes.js';
import { fromData, type Tensor } from '../core/tensor.js';
import { deliver } from '../core/validate.js';
import { fromFloat16Bits, toFloat16Bits } from './kvFormats.js';

/** 1.5 · 2^52: adding it leaves no fraction bits in a float64, so the addition rounds to an integer, ties to even. */
const ROUNDER = 6755399441055744;

/**
 * Rounds to the nearest integer, ties to even, for |v| < 2^51 (quantizeValue's v / s lies within
 * ±128: |v| ≤ 127 · |s| up to rounding): the float64 addition does the rounding, under the default
 * rounding mode, which JavaScript has no other. (The floor-and-compare form it replaced was the
 * same on that range and ~5x slower; loadDecoder quantizes whole checkpoints through it.)
 */
function roundEven(v: number): number {
  return v + ROUNDER - ROUNDER;
}

/**
 * The float32 scale of values[at, at + g): int8's max|v| / 127, or int4's m / -8 with m the first
 * value of largest magnitude; NaN when one of them is NaN.
 */
export function groupScale(values: ArrayLike<number>, at: number, g: number, bits: 8 | 4): number {
  let big = 0, m = 0;
  for (let i = at; i < at + g; i++) {
    const v = values[i];
    if (Number.isNaN(v)) return NaN;
    if (Math.abs(v) > big) { big = Math.abs(v); m = v; }
  }
  return Math.fround(bits === 8 ? big / 127 : m / -8);
}

/** q = clamp(round(float32(v / s)), lo, hi) for a finite nonzero s, else 0. */
export function quantizeValue(v: number, s: number, lo: number, hi: number): number {
  if (s === 0 || !Number.isFinite(s)) return 0;
  return Math.min(hi, Math.max(lo, roundEven(Math.fround(v / s))));
}

/** Rows of `values` ([rows, k]) quantized in groups of g: q (integers) and one scale per group. */
function quantizeRows(values: ArrayLike<number>, rows: number, k: number, g: number, bits: 8 | 4): { q: Int8Array; s: Float32Array } {
  const q = new Int8Array(rows * k), s = new Float32Array(rows * (k / g));
  quantizeRowsInto(values, rows, k, g, bits, q, s);
  return { q, s };
}

/**
 * quantizeRows into q (rows · k) and s (rows · k / g): what createLinear stores for float weights of
 * dtype int8 (bits 8) or int4 (bits 4), so that a weight quantized here a piece at a time and given
 * to createLinear as a QuantizedWeight is the layer its float weights make (loadDecoder does so).
 */
export function quantizeRowsInto(values: ArrayLike<number>, rows: number, k: number, g: number, bits: 8 | 4, q: Int8Array, s: Float32Array): void {
  // groupScale and quantizeValue written out over a group's values: a whole checkpoint goes through here
  const lo = bits === 8 ? -127 : -8, hi = bits === 8 ? 127 : 7;
  const groups = rows * (k / g);
  for (let j = 0, at = 0; j < groups; j++, at += g) {
    let big = 0, m = 0, nan = false;
    for (let i = at; i < at + g; i++) {
      const v = values[i];
      if (Number.isNaN(v)) nan = true;
      const a = Math.abs(v);
      if (a > big) { big = a; m = v; }
    }
    const scale = nan ? Number.NaN : Math.fround(bits === 8 ? big / 127 : m / -8);
    s[j] = scale;
    if (scale === 0 || !Number.isFinite(scale)) {
      q.fill(0, at, at + g);
      continue;
    }
    for (let i = at; i < at + g; i++) {
      const r = roundEven(Math.fround(values[i] / scale));
      q[i] = Math.min(hi, Math.max(lo, r));
    }
  }
}

export function createLinear(weight: Tensor | QuantizedWeight, options?: LinearOptions): LinearLayer {
  const plan = planLinear(weight, options);
  const { inFeatures, outFeatures, dtype } = plan;
  if (dtype === 'int8' || dtype === 'int4') return createQuantLinear(plan);
  // the stored weight: a copy, rounded to binary16 for 'float16'
  let W: Float32Array | null = Float32Array.from(plan.W!.data);
  if (dtype === 'float16') for (let i = 0; i < W.length; i++) W[i] = fromFloat16Bits(toFloat16Bits(W[i]));
  const bias = plan.bias ? Float32Array.from(plan.bias.data) : null;
  const stored = (): Float32Array => {
    if (W === null) throw new Error('qkv: this linear layer has been disposed');
    return W;
  };
  return {
    inFeatures,
    outFeatures,
    dtype,
    bytes: outFeatures * inFeatures * (dtype === 'float16' ? 2 : 4) + (bias ? outFeatures * 4 : 0),
    forward(x, options) {
      const w = stored();
      const { x: X, T, out } = planLinearForward(inFeatures, outFeatures, x, options);
      const y = new Float32Array(T * outFeatures);
      for (let t = 0; t < T; t++) {
        for (let o = 0; o < outFeatures; o++) {
          let sum = bias ? bias[o] : 0;
          for (let i = 0; i < inFeatures; i++) sum += X.data[t * inFeatures + i] * w[o * inFeatures + i];
          y[t * outFeatures + o] = sum;
        }
      }
      return deliver(fromData(y, [T, outFeatures]), out);
    },
    lookup(ids, options) {
      const w = stored();
      const l = planLinearLookup(inFeatures, outFeatures, ids, options);
      const n = l.ids.length;
      const y = new Float32Array(n * inFeatures);
      for (let r = 0; r < n; r++) {
        const row = l.ids[r] * inFeatures;
        for (let i = 0; i < inFeatures; i++) y[r * inFeatures + i] = w[row + i] * l.scale;
      }
      return deliver(fromData(y, [n, inFeatures]), l.out);
    },
    dispose() {
      W = null;
    },
    [disposeSymbol]() {
      W = null;
    },
  };
}

/**
 * A quantized weight's q and scales as the layer keeps them: copies, with q = 0 in every group whose
 * scale is 0 (as quantizeRows stores such a group), so that the layer is the one quantizing float
 * weights to these q and s would have made.
 */
function storeQuantized({ q, scales }: QuantizedPlan, g: number): { q: Int8Array; s: Float32Array } {
  const values = new Int8Array(q.data.buffer, q.data.byteOffset, q.data.length).slice();
  const s = Float32Array.from(scales.data);
  for (let j = 0; j < s.length; j++) if (s[j] === 0) values.fill(0, j * g, (j + 1) * g);
  return { q: values, s };
}

/** createLinear for 'int8' and 'int4': the weight held as q and per-group scales. */
function createQuantLinear(plan: LinearPlan): LinearLayer {
  const { inFeatures: K, outFeatures: N, dtype, groupSize: g } = plan;
  const G = K / g;
  let stored: { q: Int8Array; s: Float32Array } | null = plan.quantized ? storeQuantized(plan.quantized, g) : quantizeRows(plan.W!.data, N, K, g, dtype === 'int8' ? 8 : 4);
  const bias = plan.bias ? Float32Array.from(plan.bias.data) : null;
  const use = () => {
    if (stored === null) throw new Error('qkv: this linear layer has been disposed');
    return stored;
  };
  return {
    inFeatures: K,
    outFeatures: N,
    dtype,
    bytes: N * K * (dtype === 'int8' ? 1 : 0.5) + N * G * 4 + (bias ? N * 4 : 0),
    forward(x, options) {
      const w = use();
      const { x: X, T, out } = planLinearForward(K, N, x, options);
      const xq = quantizeRows(X.data, T, K, g, 8); // Q8_0 activations
      const y = new Float32Array(T * N);
      for (let t = 0; t < T; t++) {
        for (let o = 0; o < N; o++) {
          let sum = bias ? bias[o] : 0;
          for (let j = 0; j < G; j++) {
            let dot = 0; // exact: |dot| <= g · 127 · 127
            for (let i = j * g; i < (j + 1) * g; i++) dot += w.q[o * K + i] * xq.q[t * K + i];
            sum += w.s[o * G + j] * xq.s[t * G + j] * dot;
          }
          y[t * N + o] = sum;
        }
      }
      return deliver(fromData(y, [T, N]), out);
    },
    lookup(ids, options) {
      const w = use();
      const l = planLinearLookup(K, N, ids, options);
      const n = l.ids.length;
      const y = new Float32Array(n * K);
      for (let r = 0; r < n; r++) {
        const row = l.ids[r];
        for (let i = 0; i < K; i++) y[r * K + i] = Math.fround(w.q[row * K + i] * w.s[row * G + Math.floor(i / g)]) * l.scale;
      }
      return deliver(fromData(y, [n, K]), l.out);
    },
    dispose() {
      stored = null;
    },
    [disposeSymbol]() {
      stored = null;
    },
  };
}

/**
 * createLinearBuilder: the rows gathered into the whole float weight, then createLinear of it (the
 * definition; the wasm engine's builder quantizes each piece as it comes instead).
 */
export function createLinearBuilder(shape: readonly number[], options: LinearBuilderOptions): LinearBuilder {
  const { dtype, groupSize, outFeatures: N, inFeatures: K, bias } = planLinearBuilder(shape, options);
  const b = bias ? fromData(Float32Array.from(bias.data), [N]) : undefined;
  let W: Float32Array | null = new Float32Array(N * K);
  let rows = 0;
  const open = (what: string): Float32Array => {
    if (W === null) throw new Error(`qkv: ${what}: this linear builder has been finished or disposed`);
    return W;
  };
  const dispose = (): void => {
    W = null;
  };
  return {
    outFeatures: N,
    inFeatures: K,
    get rows() {
      return rows;
    },
    append(given) {
      const w = open(LINEAR_APPEND);
      const R = planLinearAppend(K, N - rows, given);
      w.set(R.data, rows * K);
      rows += R.shape[0];
    },
    finish() {
      const w = open('LinearBuilder.finish');
      if (rows < N) throw new RangeError(`LinearBuilder.finish: ${rows} of the weight's ${N} rows are in`);
      const layer = createLinear(fromData(w, [N, K]), { dtype, groupSize, bias: b });
      W = null;
      return layer;
    },
    dispose,
    [disposeSymbol]: dispose,
  };
}
