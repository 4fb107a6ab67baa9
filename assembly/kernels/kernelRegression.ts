// Nadaraya–Watson kernel regression with a Gaussian kernel, one query at a time:
//   s_j = -||(q - k_j) · w||² / 2,   weights = softmax(s),   out = sum_j weights_j · v_j
import { hsum4, madd4 } from '../inline/simd';
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
    if (d == 1) scoresScalarKeys(s, load<f32>(qi), k, m, c);
    else for (let j = 0; j < m; j++) store<f32>(s + (<usize>j << 2), c * squaredDistance(qi, k + <usize>j * (<usize>d << 2), d));
    if (softmaxInPlace(s, m)) weightedRows(o, s, v, m, dv, dv);
    else { zero(s, m); zero(o, dv); } // only when m = 0
  }
}

/** One-dimensional keys (the essay's case): s_j = c · (q - k_j)², vectorized over j. */
function scoresScalarKeys(s: usize, qv: f32, k: usize, m: i32, c: f32): void {
  const vq = f32x4.splat(qv), vc = f32x4.splat(c);
  let j = 0;
  for (; j + 4 <= m; j += 4) {
    const o = <usize>j << 2;
    const diff = f32x4.sub(vq, v128.load(k + o));
    v128.store(s + o, f32x4.mul(vc, f32x4.mul(diff, diff)));
  }
  for (; j < m; j++) {
    const diff = qv - load<f32>(k + (<usize>j << 2));
    store<f32>(s + (<usize>j << 2), c * diff * diff);
  }
}

/** ||a - b||² over d elements. */
function squaredDistance(a: usize, b: usize, d: i32): f32 {
  let acc = f32x4.splat(0);
  let t = 0;
  for (; t + 4 <= d; t += 4) {
    const o = <usize>t << 2;
    const diff = f32x4.sub(v128.load(a + o), v128.load(b + o));
    acc = madd4(diff, diff, acc);
  }
  let s = hsum4(acc);
  for (; t < d; t++) {
    const diff = load<f32>(a + (<usize>t << 2)) - load<f32>(b + (<usize>t << 2));
    s += diff * diff;
  }
  return s;
}
