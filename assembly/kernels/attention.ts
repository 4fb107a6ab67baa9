// Scaled dot-product attention, one query row at a time: scores against the allowed key range,
// softmax, weighted sum of values. Memory beyond inputs and outputs is one row of Lk scores.
//
// The key range of query i comes from causal / window / validLens and is contiguous (inline/keyRange.ts).
// Inside the range, a boolean mask (0 = forbidden) or an additive mask adjusts single scores.
import { applyMask, MASK_NONE, softcapRow } from '../inline/scores';
import { scoreKeys, softmaxInPlace, weightedRows, zero } from '../inline/rows';
import { keyHi, keyLo, queryPosition } from '../inline/keyRange';
import { kvBlockRows, kvRow, kvRunEnd, kvTable } from '../inline/kvView';
import { LAYOUT_K, LAYOUT_OUT, LAYOUT_Q, LAYOUT_V, STRIDE_BATCH, STRIDE_HEAD, STRIDE_ROW } from '../layout';
export { CAUSAL_NONE, CAUSAL_TOP_LEFT, CAUSAL_BOTTOM_RIGHT } from '../inline/keyRange';

export { MASK_NONE, MASK_BOOLEAN, MASK_ADDITIVE } from '../inline/scores';

/**
 * Attention over [B, H, L, D] row-major tensors, f32 (grouped-query: head h reads kv head h / (hq / hkv)).
 * @param out      f32 [b, hq, lq, ev]
 * @param weights  f32 [b, hq, lq, lk] or 0: the softmax weights, when wanted
 * @param scratch  f32 [lk]: one row of scores (unused when weights are written)
 * @param q        f32 [b, hq, lq, e] by default (see layout)
 * @param k        f32 [b, hkv, lk, e]: past keys followed by the new ones (see layout: or a KV pool's blocks)
 * @param v        f32 [b, hkv, lk, ev]
 * @param mask     u8 (MASK_BOOLEAN) or f32 (MASK_ADDITIVE) read at b·msb + h·msh + i·msq + j·msk (element strides, 0 = broadcast), or 0
 * @param lens     i32 [b] valid key lengths, or 0
 * @param softcap  > 0: scores = softcap · tanh(scores / softcap) before the mask; 0 = off
 * @param causal   CAUSAL_NONE, CAUSAL_TOP_LEFT or CAUSAL_BOTTOM_RIGHT
 * @param lpast    how many of the lk keys are past keys (for top-left alignment)
 * @param left,right  sliding window sides in keys, -1 = unbounded
 * @param layout   the layout block (layout.ts): element strides (batch, head, row) of q, k, v and out,
 *                 in that order, rows contiguous inside (so [B, L, H, D] views of projections need no
 *                 transpose); then the KV view's block table, when k and v are a pool's blocks
 *                 (float32 only: binary16 and int8 views go to flash_attention_f32)
 * @param rowStart,rowEnd  the query rows to compute, counted over [b, hq, lq] (all: 0, b·hq·lq);
 *                 threads split this range, and each row comes out the same whoever computes it
 */
export function attention_f32(
  out: usize, weights: usize, scratch: usize, q: usize, k: usize, v: usize, mask: usize, lens: usize,
  b: i32, hq: i32, hkv: i32, lq: i32, lk: i32, e: i32, ev: i32,
  scale: f32, softcap: f32, maskKind: i32, msb: i32, msh: i32, msq: i32, msk: i32,
  causal: i32, lpast: i32, left: i32, right: i32, layout: usize, rowStart: i32, rowEnd: i32,
): void {
  const group = hq / hkv;
  const ksj = load<i32>(layout, LAYOUT_K + STRIDE_ROW), vsj = load<i32>(layout, LAYOUT_V + STRIDE_ROW);
  const ldk = <usize>ksj << 2, ldv = <usize>vsj << 2, rows = kvBlockRows(layout);
  // one unit of work is one query row: row = (bi · hq + h) · lq + i
  for (let row = rowStart; row < rowEnd; row++) {
    const i = row % lq, h = (row / lq) % hq, bi = row / (lq * hq);
    const validLen = lens == 0 ? lk : load<i32>(lens + (<usize>bi << 2));
    const g = h / group;
    const kBase = k + (<usize>(bi * load<i32>(layout, LAYOUT_K + STRIDE_BATCH) + g * load<i32>(layout, LAYOUT_K + STRIDE_HEAD)) << 2);
    const vBase = v + (<usize>(bi * load<i32>(layout, LAYOUT_V + STRIDE_BATCH) + g * load<i32>(layout, LAYOUT_V + STRIDE_HEAD)) << 2);
    const o = out + (<usize>(bi * load<i32>(layout, LAYOUT_OUT + STRIDE_BATCH) + h * load<i32>(layout, LAYOUT_OUT + STRIDE_HEAD) + i * load<i32>(layout, LAYOUT_OUT + STRIDE_ROW)) << 2);
    const s = weights != 0 ? weights + <usize>row * (<usize>lk << 2) : scratch;
    const p = queryPosition(i, causal, validLen, lq, lpast);
    const lo = keyLo(p, left), hi = keyHi(p, causal, validLen, right);
    zero(o, ev);
    if (weights != 0) zero(s, lk);
    if (lo >= hi) continue; // no key allowed: zero output, zero weights
    const n = hi - lo;
    const sr = s + (<usize>lo << 2);
    const qi = q + (<usize>(bi * load<i32>(layout, LAYOUT_Q + STRIDE_BATCH) + h * load<i32>(layout, LAYOUT_Q + STRIDE_HEAD) + i * load<i32>(layout, LAYOUT_Q + STRIDE_ROW)) << 2);
    // scores, a run of the KV view's rows at a time (the whole range without a block table)
    const table = kvTable(layout, bi);
    for (let j = lo; j < hi;) {
      const end = kvRunEnd(table, rows, j, hi);
      scoreKeys(s + (<usize>j << 2), qi, kvRow(kBase, table, rows, ldk, j), end - j, e, ksj, scale);
      j = end;
    }
    if (softcap > 0) softcapRow(sr, n, softcap);
    if (maskKind != MASK_NONE) applyMask(sr, n, mask, maskKind, bi * msb + h * msh + i * msq + lo * msk, msk, 1);
    if (!softmaxInPlace(sr, n)) {
      if (weights != 0) zero(sr, n);
      continue;
    }
    // output = sum_j w_j v_j, skipping keys of zero weight (so a masked NaN value cannot leak in)
    for (let j = lo; j < hi;) {
      const end = kvRunEnd(table, rows, j, hi);
      weightedRows(o, s + (<usize>j << 2), kvRow(vBase, table, rows, ldv, j), end - j, ev, vsj, j > lo);
      j = end;
    }
  }
}
