// Nadaraya–Watson kernel regression with a Gaussian kernel, one query at a time:
//   s_j = -||(q - k_j) · w||² / 2,   weights = softmax(s),   out = sum_j weights_j · v_j
import { distanceScores } from '../inline/distance';
import { softmaxInPlace, weightedRows, zero } from '../inline/rows';

/**
 * @param out      f32 [n, dv]
 * @param weights  f32 [n, m] or 0: the softmax weights, when wanted
 * @param scratch  f32 [m]: one row of scores (unused when weights are written)
 * @param q        f32 [n, d]
 * @param k        f32 [m, d]
 * @param v        f32 [m, dv]
 * @param w        kernel width parameter (distances are multiplied by w)
 */
export function kernel_regression_f32(out: usize, weights: usize, scratch: usize, q: usize, k: usize, v: usize, n: i32, m: i32, d: i32, dv: i32, w: f32): void {
  const c: f32 = -0.5 * w * w;
  for (let i = 0; i < n; i++) {
    const s = weights != 0 ? weights + <usize>i * (<usize>m << 2) : scratch;
    const o = out + <usize>i * (<usize>dv << 2);
    const qi = q + <usize>i * (<usize>d << 2);
    distanceScores(s, qi, k, m, d, c);
    if (softmaxInPlace(s, m)) weightedRows(o, s, v, m, dv, dv);
    else { zero(s, m); zero(o, dv); } // only when m = 0
  }
}
