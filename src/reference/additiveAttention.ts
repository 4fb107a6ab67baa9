// Additive (Bahdanau) attention, the readable definition (d2l 11.3):
//   scores[b, i, j] = wv · tanh(Wq q[b, i] + Wk k[b, j])       (Wq [h, Dq], Wk [h, Dk], wv [1, h])
//   weights[b, i]   = maskedSoftmax(scores[b, i], validLens)   (keys >= the valid length get 0)
//   output[b, i]    = sum_j weights[b, i, j] · v[b, j]
import { planAdditive } from '../core/plans.js';
import { fromData, type Tensor } from '../core/tensor.js';
import type { AdditiveOptions, AdditiveParams, OutputWithWeights } from '../core/types.js';
import { deliver, emptyResult } from '../core/validate.js';
import { softmaxRow } from './softmax.js';

/** x [rows, D] times W [h, D] transposed -> [rows, h] in float64. */
function project(x: Float32Array, rows: number, D: number, W: Float32Array, h: number): Float64Array {
  const out = new Float64Array(rows * h);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < h; t++) {
      let s = 0;
      for (let c = 0; c < D; c++) s += W[t * D + c] * x[r * D + c];
      out[r * h + t] = s;
    }
  }
  return out;
}

export function additiveAttention(query: Tensor, key: Tensor, value: Tensor, params: AdditiveParams, options?: AdditiveOptions): OutputWithWeights {
  const p = planAdditive(query, key, value, params, options);
  const { B, Lq, Lk, Dv, h } = p;
  // nothing to compute, however many empty rows there are
  if (p.empty) return { output: emptyResult([B, Lq, Dv], p.out), ...(p.returnWeights ? { weights: emptyResult([B, Lq, Lk]) } : {}) };
  const qh = project(p.query.data, B * Lq, p.Dq, p.Wq.data, h);
  const kh = project(p.key.data, B * Lk, p.Dk, p.Wk.data, h);
  const scores = new Float64Array(Lk);
  const row = new Float64Array(Lk);
  const weights = p.returnWeights ? new Float32Array(B * Lq * Lk) : null;
  const output = new Float32Array(B * Lq * Dv);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < Lq; i++) {
      const r = b * Lq + i;
      for (let j = 0; j < Lk; j++) {
        let s = 0;
        for (let t = 0; t < h; t++) s += p.wv.data[t] * Math.tanh(qh[r * h + t] + kh[(b * Lk + j) * h + t]);
        scores[j] = s;
      }
      softmaxRow(scores, row, 0, Lk, p.rowLens ? p.rowLens[r] : Lk);
      if (weights) weights.set(row, r * Lk);
      for (let t = 0; t < Dv; t++) {
        let sum = 0;
        for (let j = 0; j < Lk; j++) if (row[j] !== 0) sum += row[j] * p.value.data[(b * Lk + j) * Dv + t];
        output[r * Dv + t] = sum;
      }
    }
  }
  const result: OutputWithWeights = { output: deliver(fromData(output, [B, Lq, Dv]), p.out) };
  if (weights) result.weights = fromData(weights, [B, Lq, Lk]);
  return result;
}
