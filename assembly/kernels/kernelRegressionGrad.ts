// Nadaraya–Watson kernel regression and the gradient of its squared error with respect to the
// kernel width w, one query row at a time (the derivation is in src/reference/kernelRegressionLoss.ts):
//
//   D_j = ||q - k_j||²,   a = softmax_j(-w² D_j / 2)   (key `masked + i` left out of row i),
//   ŷ = Σ_j a_j v_j,   D̄ = Σ_j a_j D_j,   ∂ŷ/∂w = -w Σ_j a_j (D_j - D̄)(v_j - ŷ)
//
// Per row the kernel writes ŷ and, in float64, Σ_t e_t² and Σ_t e_t · c_t with e = ŷ - y and
// c_t = Σ_j a_j (D_j - D̄)(v_jt - ŷ_t); the caller sums the rows in order (so every thread count
// gives the same bits) and applies -2w and the reduction. c is summed over centred values (v - ŷ)
// rather than as Σ a_j (D_j - D̄) v_j - ŷ Σ a_j (D_j - D̄): values far from zero with a small spread
// (weights of about 45 kg that differ by 5) would otherwise lose digits to cancellation.
import { distanceScores } from '../inline/distance';
import { weightedSum, zero } from '../inline/rows';
import { hsum4, madd4 } from '../inline/simd';
// the softmax and weighted-rows kernels are called rather than inlined (as softmaxInPlace and
// weightedRows would be): 4 KB less per build, for a call per query row
import { weighted_rows_f32 } from './additive';
import { softmax_rows_f32 } from './softmax';

/**
 * @param out      f32 [n, dv]: the predictions ŷ
 * @param stats    f64 [n, 2]: per row, Σ_t e_t² and Σ_t e_t · c_t
 * @param scratch  f32 [2 · m4 + dv], 16-byte aligned, m4 = m rounded up to a multiple of 4: distances, weights, c
 * @param q        f32 [n, d]
 * @param k        f32 [m, d]
 * @param v        f32 [m, dv]
 * @param y        f32 [n, dv]: the targets
 * @param w        kernel width parameter (distances are multiplied by w)
 * @param masked   leave-one-out: row i leaves out key `masked + i` (the caller passes its first row's
 *                 index, so that a thread's share masks the right keys); -1: no key is left out
 */
export function kernel_regression_grad_f32(
  out: usize, stats: usize, scratch: usize, q: usize, k: usize, v: usize, y: usize,
  n: i32, m: i32, d: i32, dv: i32, w: f32, masked: i32,
): void {
  const c: f32 = -0.5 * w * w;
  const rowBytes = ((<usize>m << 2) + 15) & ~(<usize>15);
  const dist = scratch, a = scratch + rowBytes, cov = a + rowBytes;
  for (let i = 0; i < n; i++) {
    const o = out + <usize>i * (<usize>dv << 2);
    const yi = y + <usize>i * (<usize>dv << 2);
    distanceScores(dist, q + <usize>i * (<usize>d << 2), k, m, d, 1);
    scaleInto(a, dist, c, m); // the bits of kernel_regression_f32's scores
    if (masked >= 0) store<f32>(a + (<usize>(masked + i) << 2), -Infinity);
    // a row with no key left (m = 0, or m = 1 with leave-one-out) comes out all zeros: it predicts 0,
    // and its c is 0, so that a NaN or infinite target still makes the gradient NaN
    softmax_rows_f32(a, a, 1, m, 0, 1);
    weighted_rows_f32(o, a, v, 1, 1, m, dv, 0, 1);
    const mean = weightedSum(a, dist, m);
    let sq: f64 = 0, g: f64 = 0;
    if (dv == 1) {
      const yhat = load<f32>(o);
      const e = <f64>yhat - <f64>load<f32>(yi);
      sq = e * e;
      g = e * <f64>covariance(a, dist, mean, v, yhat, m);
    } else {
      centreDistances(a, dist, mean, m);
      centredRows(cov, a, v, o, m, dv);
      for (let t = 0; t < dv; t++) {
        const e = <f64>load<f32>(o + (<usize>t << 2)) - <f64>load<f32>(yi + (<usize>t << 2));
        sq += e * e;
        g += e * <f64>load<f32>(cov + (<usize>t << 2));
      }
    }
    const st = stats + (<usize>i << 4);
    store<f64>(st, sq);
    store<f64>(st, g, 8);
  }
}

/** out[j] = c · x[j] for j in [0, m). */
function scaleInto(out: usize, x: usize, c: f32, m: i32): void {
  const vc = f32x4.splat(c);
  let j = 0;
  for (; j + 4 <= m; j += 4) v128.store(out + (<usize>j << 2), f32x4.mul(vc, v128.load(x + (<usize>j << 2))));
  for (; j < m; j++) store<f32>(out + (<usize>j << 2), c * load<f32>(x + (<usize>j << 2)));
}

/**
 * a[j] = a[j] · (dist[j] - mean), and 0 where a[j] is 0: a key without weight contributes nothing,
 * even when its distance overflowed to Infinity.
 */
function centreDistances(a: usize, dist: usize, mean: f32, m: i32): void {
  const z = f32x4.splat(0), vm = f32x4.splat(mean);
  let j = 0;
  for (; j + 4 <= m; j += 4) {
    const o = <usize>j << 2;
    const aj = v128.load(a + o);
    v128.store(a + o, v128.bitselect(z, f32x4.mul(aj, f32x4.sub(v128.load(dist + o), vm)), f32x4.eq(aj, z)));
  }
  for (; j < m; j++) {
    const o = <usize>j << 2;
    const aj = load<f32>(a + o);
    store<f32>(a + o, aj == 0 ? 0 : aj * (load<f32>(dist + o) - mean));
  }
}

/**
 * Σ_j a[j] · (dist[j] - mean) · (v[j] - yhat) over m keys (dv = 1), skipping zero a[j] (see
 * weightedSum): eight keys a step in two accumulators.
 */
function covariance(a: usize, dist: usize, mean: f32, v: usize, yhat: f32, m: i32): f32 {
  const z = f32x4.splat(0), vm = f32x4.splat(mean), vy = f32x4.splat(yhat);
  let acc0 = z, acc1 = z;
  let j = 0;
  for (; j + 8 <= m; j += 8) {
    const o = <usize>j << 2;
    const a0 = v128.load(a + o), a1 = v128.load(a + o, 16);
    const t0 = f32x4.mul(f32x4.mul(a0, f32x4.sub(v128.load(dist + o), vm)), f32x4.sub(v128.load(v + o), vy));
    const t1 = f32x4.mul(f32x4.mul(a1, f32x4.sub(v128.load(dist + o, 16), vm)), f32x4.sub(v128.load(v + o, 16), vy));
    acc0 = f32x4.add(acc0, v128.bitselect(z, t0, f32x4.eq(a0, z)));
    acc1 = f32x4.add(acc1, v128.bitselect(z, t1, f32x4.eq(a1, z)));
  }
  for (; j + 4 <= m; j += 4) {
    const o = <usize>j << 2;
    const a0 = v128.load(a + o);
    const t0 = f32x4.mul(f32x4.mul(a0, f32x4.sub(v128.load(dist + o), vm)), f32x4.sub(v128.load(v + o), vy));
    acc0 = f32x4.add(acc0, v128.bitselect(z, t0, f32x4.eq(a0, z)));
  }
  let s = hsum4(f32x4.add(acc0, acc1));
  for (; j < m; j++) {
    const o = <usize>j << 2;
    const aj = load<f32>(a + o);
    if (aj != 0) s += aj * (load<f32>(dist + o) - mean) * (load<f32>(v + o) - yhat);
  }
  return s;
}

/** cov[t] = Σ_j a[j] · (v[j, t] - yhat[t]) for t in [0, dv): the rows of v stream by once, zero a[j] skipped. */
function centredRows(cov: usize, a: usize, v: usize, yhat: usize, m: i32, dv: i32): void {
  zero(cov, dv);
  const ldv = <usize>dv << 2;
  let vr = v;
  for (let j = 0; j < m; j++, vr += ldv) {
    const aj = load<f32>(a + (<usize>j << 2));
    if (aj == 0) continue;
    const x = f32x4.splat(aj);
    let t = 0;
    for (; t + 4 <= dv; t += 4) {
      const o = <usize>t << 2;
      v128.store(cov + o, madd4(x, f32x4.sub(v128.load(vr + o), v128.load(yhat + o)), v128.load(cov + o)));
    }
    for (; t < dv; t++) {
      const o = <usize>t << 2;
      store<f32>(cov + o, load<f32>(cov + o) + aj * (load<f32>(vr + o) - load<f32>(yhat + o)));
    }
  }
}
