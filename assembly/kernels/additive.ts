// Additive (Bahdanau) attention scores: scores[b, i, j] = sum_t wv[t] · tanh(qp[b, i, t] + kp[b, j, t]),
// where qp = query Wqᵀ and kp = key Wkᵀ come from gemm_f32.
import { tanh1, tanh4 } from '../inline/exp';
import { hsum4, madd4 } from '../inline/simd';
import { weightedRows } from '../inline/rows';

/**
 * @param out  f32 [b, lq, lk]
 * @param qp   f32 [b, lq, h] projected queries
 * @param kp   f32 [b, lk, h] projected keys
 * @param wv   f32 [h]
 * @param rowStart,rowEnd  the query rows to score, counted over [b, lq] (all: 0, b·lq)
 */
export function additive_scores_f32(out: usize, qp: usize, kp: usize, wv: usize, b: i32, lq: i32, lk: i32, h: i32, rowStart: i32, rowEnd: i32): void {
  const hb = <usize>h << 2;
  for (let row = rowStart; row < rowEnd; row++) {
    const bi = row / lq;
    const qi = qp + <usize>row * hb;
    const orow = out + <usize>row * (<usize>lk << 2);
    for (let j = 0; j < lk; j++) {
      const kj = kp + <usize>(bi * lk + j) * hb;
      let acc = f32x4.splat(0);
      let t = 0;
      for (; t + 4 <= h; t += 4) {
        const o = <usize>t << 2;
        acc = madd4(v128.load(wv + o), tanh4(f32x4.add(v128.load(qi + o), v128.load(kj + o))), acc);
      }
      let s = hsum4(acc);
      for (; t < h; t++) {
        const o = <usize>t << 2;
        s += load<f32>(wv + o) * tanh1(load<f32>(qi + o) + load<f32>(kj + o));
      }
      store<f32>(orow + (<usize>j << 2), s);
    }
  }
}

/**
 * out[b, i] = sum_j w[b, i, j] · v[b, j], skipping keys of zero weight (a masked NaN value cannot leak in).
 * @param out  f32 [b, lq, dv]
 * @param w    f32 [b, lq, lk] weights
 * @param v    f32 [b, lk, dv]
 * @param rowStart,rowEnd  the rows to compute, counted over [b, lq] (all: 0, b·lq)
 */
export function weighted_rows_f32(out: usize, w: usize, v: usize, b: i32, lq: i32, lk: i32, dv: i32, rowStart: i32, rowEnd: i32): void {
  for (let row = rowStart; row < rowEnd; row++) {
    const vb = v + <usize>(row / lq) * <usize>lk * (<usize>dv << 2);
    const r = <usize>row;
    weightedRows(out + r * (<usize>dv << 2), w + r * (<usize>lk << 2), vb, lk, dv, dv);
  }
}
