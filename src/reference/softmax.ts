// Softmax along the last axis, the readable definition:
//   softmax(x)_j = exp(x_j - max x) / sum_k exp(x_k - max x)
// Subtracting the max keeps exp from overflowing. Only the first `len` entries of a row take part
// (maskedSoftmax); the others, and every entry of a row whose max is -Infinity (nothing allowed),
// get weight 0. A NaN anywhere in the row makes the whole row NaN.
import { planMaskedSoftmax, planSoftmax } from '../core/plans.js';
import { fromData, type Tensor } from '../core/tensor.js';
import type { OutOptions } from '../core/types.js';
import { deliver } from '../core/validate.js';

/** Softmax of `x[offset .. offset + len)` into `out`, zeros in `out[offset + len .. offset + n)`. */
export function softmaxRow(x: Float32Array | Float64Array, out: Float32Array | Float64Array, offset: number, n: number, len: number): void {
  let max = -Infinity;
  for (let j = 0; j < len; j++) {
    const v = x[offset + j];
    if (v > max || Number.isNaN(v)) max = v;
    if (Number.isNaN(max)) break;
  }
  if (max === -Infinity) {
    out.fill(0, offset, offset + n);
    return;
  }
  let sum = 0;
  for (let j = 0; j < len; j++) sum += Math.exp(x[offset + j] - max);
  for (let j = 0; j < len; j++) out[offset + j] = Math.exp(x[offset + j] - max) / sum;
  out.fill(0, offset + len, offset + n);
}

export function softmax(x: Tensor, options?: OutOptions): Tensor {
  const p = planSoftmax(x, options);
  const out = new Float32Array(p.x.data.length);
  for (let r = 0; r < p.rows; r++) softmaxRow(p.x.data, out, r * p.n, p.n, p.n);
  return deliver(fromData(out, p.x.shape), p.out);
}

export function maskedSoftmax(x: Tensor, validLens?: ArrayLike<number> | Tensor, options?: OutOptions): Tensor {
  const p = planMaskedSoftmax(x, validLens, options);
  const out = new Float32Array(p.x.data.length);
  for (let r = 0; r < p.rows; r++) softmaxRow(p.x.data, out, r * p.n, p.n, p.rowLens[r]);
  return deliver(fromData(out, p.x.shape), p.out);
}
