// Kernel regression, its squared-error loss and the loss's derivative with respect to the kernel
// width w: the readable definition (float64 throughout). The gradient, by hand:
//
//   D_ij = ||q_i - k_j||²                 squared distance of query i to key j
//   s_ij = -w² D_ij / 2                   score; -Infinity for the left-out key (j = i with leaveOneOut)
//   a_ij = exp(s_ij) / Σ_l exp(s_il)      attention weight
//   ŷ_i  = Σ_j a_ij v_j                   prediction (a vector of dv values)
//
//   ∂s_ij/∂w = -w D_ij
//   ∂a_ij/∂w = a_ij (∂s_ij/∂w - Σ_l a_il ∂s_il/∂w) = -w a_ij (D_ij - D̄_i),   D̄_i = Σ_l a_il D_il
//   ∂ŷ_i/∂w  = Σ_j ∂a_ij/∂w v_j = -w Σ_j a_ij (D_ij - D̄_i) v_j
//            = -w Σ_j a_ij (D_ij - D̄_i)(v_j - ŷ_i)       (Σ_j a_ij (D_ij - D̄_i) = 0, so ŷ_i may be
//                                                          subtracted: the same value, fewer digits lost)
//
//   loss      = r Σ_i Σ_t (ŷ_it - y_it)²                      r = 1/(n·dv) for 'mean', 1 for 'sum'
//   ∂loss/∂w  = 2r Σ_i Σ_t (ŷ_it - y_it) ∂ŷ_it/∂w
//
// ∂ŷ/∂w is minus w times the covariance of distance and value under the weights: widening the kernel
// (w down) pulls the prediction towards values of far keys. At w = 0 every weight is equal and the
// derivative is 0, so gradient descent must not start there. A query with no key left (no keys, or
// one key and leaveOneOut) predicts 0, whatever w: its derivative is 0.
import { lossResult, planKernelRegressionLoss } from '../core/kernelRegressionLoss.js';
import { fromData, type Tensor } from '../core/tensor.js';
import type { KernelRegressionLossOptions, KernelRegressionLossResult } from '../core/types.js';
import { deliver } from '../core/validate.js';
import { softmaxRow } from './softmax.js';

export function kernelRegressionLoss(queries: Tensor, keys: Tensor, values: Tensor, targets: Tensor, options?: KernelRegressionLossOptions): KernelRegressionLossResult {
  const p = planKernelRegressionLoss(queries, keys, values, targets, options);
  const { n, m, d, dv, w } = p;
  const Q = p.queries.data, K = p.keys.data, V = p.values.data, Y = p.targets.data;
  const output = new Float32Array(n * dv);
  // no output (n or dv is 0): no row buffers, no loop over the empty rows
  const rows = output.length > 0 ? n : 0;
  const dist = new Float64Array(rows > 0 ? m : 0), scores = new Float64Array(dist.length), a = new Float64Array(dist.length);
  let squares = 0, products = 0;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < m; j++) {
      let dist2 = 0, scaled2 = 0;
      for (let t = 0; t < d; t++) {
        const diff = Q[i * d + t] - K[j * d + t];
        dist2 += diff * diff;
        scaled2 += (diff * w) * (diff * w); // the score as kernelRegression computes it
      }
      dist[j] = dist2;
      scores[j] = p.leaveOneOut && j === i ? -Infinity : -scaled2 / 2;
    }
    softmaxRow(scores, a, 0, m, m); // all zeros when no key is left
    let meanDist = 0;
    for (let j = 0; j < m; j++) if (a[j] !== 0) meanDist += a[j] * dist[j];
    for (let t = 0; t < dv; t++) {
      let yhat = 0;
      for (let j = 0; j < m; j++) if (a[j] !== 0) yhat += a[j] * V[j * dv + t];
      // c = Σ_j a_ij (D_ij - D̄_i)(v_jt - ŷ_it), so that ∂ŷ_it/∂w = -w c
      let c = 0;
      for (let j = 0; j < m; j++) if (a[j] !== 0) c += a[j] * (dist[j] - meanDist) * (V[j * dv + t] - yhat);
      output[i * dv + t] = yhat;
      const e = yhat - Y[i * dv + t];
      squares += e * e;
      products += e * c;
    }
  }
  return lossResult(p, deliver(fromData(output, p.outputShape), p.out), squares, products);
}
