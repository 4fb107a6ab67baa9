// Nadaraya–Watson kernel regression (attention pooling with a Gaussian kernel), the readable definition:
//   weights[i, j] = softmax_j( -|| (queries[i] - keys[j]) · w ||² / 2 )
//   output[i]     = sum_j weights[i, j] · values[j]
// With w = 1 this is the non-parametric estimator; a larger w narrows the kernel so that only the
// nearest keys count.
import { planKernelRegression } from '../core/plans.js';
import { fromData, type Tensor } from '../core/tensor.js';
import type { KernelRegressionOptions, OutputWithWeights } from '../core/types.js';
import { deliver } from '../core/validate.js';
import { softmaxRow } from './softmax.js';

export function kernelRegression(queries: Tensor, keys: Tensor, values: Tensor, options?: KernelRegressionOptions): OutputWithWeights {
  const p = planKernelRegression(queries, keys, values, options);
  const { n, m, d, dv, w } = p;
  const Q = p.queries.data, Kd = p.keys.data, V = p.values.data;
  const weights = p.returnWeights ? new Float32Array(n * m) : null;
  const output = new Float32Array(n * dv);
  // nothing to compute (no output, no weights): no row buffers, no loop over the empty rows
  const rows = output.length > 0 || (weights !== null && weights.length > 0) ? n : 0;
  const scores = new Float64Array(rows > 0 ? m : 0);
  const row = new Float64Array(rows > 0 ? m : 0);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < m; j++) {
      let dist2 = 0;
      for (let t = 0; t < d; t++) {
        const diff = (Q[i * d + t] - Kd[j * d + t]) * w;
        dist2 += diff * diff;
      }
      scores[j] = -dist2 / 2;
    }
    softmaxRow(scores, row, 0, m, m);
    if (weights) weights.set(row, i * m);
    for (let t = 0; t < dv; t++) {
      let sum = 0;
      for (let j = 0; j < m; j++) if (row[j] !== 0) sum += row[j] * V[j * dv + t];
      output[i * dv + t] = sum;
    }
  }
  const result: OutputWithWeights = { output: deliver(fromData(output, p.outputShape), p.out) };
  if (weights) result.weights = fromData(weights, p.weightsShape);
  return result;
}
