// RMSNorm along the last axis, the readable definition (Zhang & Sennrich 2019):
//   y = x / sqrt(mean(x²) + eps) · w        (Llama, Mistral, Qwen, Phi-3)
//   y = x / sqrt(mean(x²) + eps) · (1 + w)  (unitOffset: Gemma, whose checkpoints store w - 1)
// in float64. A row holding NaN is all NaN; in a row holding ±Infinity those entries are NaN and the
// others 0 (x · 1/∞); an all-zero row with eps = 0 is NaN (0 · 1/0); all as in PyTorch.

import type { RmsNormOptions } from '../core/modelTypes.js';
import { planRmsNorm } from '../core/rmsNormPlan.js';
import { fromData, type Tensor } from '../core/tensor.js';
import { deliver } from '../core/validate.js';

export function rmsNorm(x: Tensor, weight: Tensor, options?: RmsNormOptions): Tensor {
  const p = planRmsNorm(x, weight, options);
  const { d, eps } = p, xs = p.x.data, w = p.weight.data;
  const out = new Float32Array(xs.length);
  const offset = p.unitOffset ? 1 : 0;
  for (let at = 0; at < p.rows * d; at += d) {
    let sq = 0;
    for (let c = 0; c < d; c++) sq += xs[at + c] * xs[at + c];
    const inv = 1 / Math.sqrt(sq / d + eps);
    for (let c = 0; c < d; c++) out[at + c] = xs[at + c] * inv * (offset + w[c]);
  }
  return deliver(fromData(out, p.x.shape), p.out);
}
