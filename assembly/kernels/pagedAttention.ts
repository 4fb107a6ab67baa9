// Attention of many sequences' new tokens over their keys and values in a paged pool (vLLM's
// PagedAttention), one (token, query head) unit at a time: scores against the allowed positions of
// the token's sequence, read block by block where they lie (no gather, no copy), the softmax (with an
// optional sink logit per head), and the weighted sum of values. Memory beyond inputs and outputs is
// one row of scores and one row of value sums per thread.
//
// The KV view a unit reads (src/wasm/batchAttention.ts builds it):
//
//   pool block b, kv head g, slot s  at  pool + ((b · hkv + g) · bs + s) · d floats   (keys d = e, values d = ev)
//   rowInfo[r] = (token, tableAt, kvLength, position): row r of the call is token `token` of q and out;
//                its sequence holds kvLength positions, whose blocks are tables[tableAt ..]; the token
//                itself is at `position`
//
// Key j of the sequence is in block tables[tableAt + j / bs], slot j % bs: a block's slots for one kv
// head are contiguous rows, so scores and value sums run over whole runs of slots.
import { scoreKeys, expShiftSum, rowMax, scale, weightedRows, zero } from '../inline/rows';
import { softcapRow } from '../inline/scores';
import { keyHi, keyLo, CAUSAL_NONE, CAUSAL_TOP_LEFT } from '../inline/keyRange';
import { exp1 } from '../inline/exp';

/**
 * Floats of scratch one thread needs: the scores of the longest sequence for each of `group` query
 * heads, one row of value sums, and a flag per head.
 */
export function paged_scratch_f32(maxLength: i32, ev: i32, group: i32): i32 {
  return group * ((maxLength + 3) & ~3) + ((ev + 3) & ~3) + group;
}

/**
 * Softmax of one head's n scores in place, with an optional sink logit in the denominator. Returns
 * 0 when the row has weights, 1 when nothing is allowed (a zero row), 2 when a NaN makes it NaN.
 */
// @ts-ignore: decorator
@inline function softmaxWithSink(s: usize, n: i32, hasSink: bool, sink: f32): i32 {
  let m = rowMax(s, n);
  if (m == -Infinity) {
    // rowMax may skip NaN lanes; a NaN score makes the row NaN, as in scaledDotProductAttention
    for (let j = 0; j < n; j++) if (isNaN(load<f32>(s + (<usize>j << 2)))) return 2;
    if (!hasSink) return 1;
  }
  m = max<f32>(m, sink);
  let sum = expShiftSum(s, s, m, n, 0, 0, 0, 0, 1);
  if (hasSink) sum += exp1(sink - m);
  scale(s, 1.0 / sum, n);
  return 0;
}

/**
 * @param out      f32 [t, hq, ev]
 * @param scratch  f32 [paged_scratch_f32(longest kvLength, ev, hq / hkv)]
 * @param q        f32 [t, hq, e] (already turned by rotary)
 * @param kPool    f32 [blocks, hkv, bs, e];  vPool: f32 [blocks, hkv, bs, ev]
 * @param tables   i32 block indices of every sequence, one run per sequence
 * @param rowInfo  i32 [rows, 4]: token, tableAt, kvLength, position of each row computed here
 * @param causal   0: every position of the sequence; 1: positions <= the token's
 * @param left,right  sliding window sides, -1 = unbounded
 * @param alibi    f32 [hq] slopes (scores -= slope · |position − j|), or 0
 * @param sinks    f32 [hq] sink logits, or 0
 * @param unitStart,unitEnd  units (row · hkv + kv head) to compute; threads split this range. A unit
 *                 computes the hq / hkv query heads that share the kv head, so each block run of keys
 *                 and values is read from memory once and reused from cache by every head of the group.
 */
export function paged_attention_f32(
  out: usize, scratch: usize, q: usize, kPool: usize, vPool: usize, tables: usize, rowInfo: usize,
  hq: i32, hkv: i32, e: i32, ev: i32, bs: i32, scale_: f32, softcap: f32, causal: i32, left: i32, right: i32,
  alibi: usize, sinks: usize, maxLength: i32, unitStart: i32, unitEnd: i32,
): void {
  const group = hq / hkv;
  const stride = <usize>((maxLength + 3) & ~3) << 2; // bytes between the heads' score rows
  const sums = scratch + <usize>group * stride;
  const done = sums + (<usize>((ev + 3) & ~3) << 2); // i32 per head: 1 when its row needs no values' pass
  for (let unit = unitStart; unit < unitEnd; unit++) {
    const g = unit % hkv, h0 = g * group;
    const info = rowInfo + (<usize>(unit / hkv) << 4);
    const t = load<i32>(info), tableAt = load<i32>(info, 4), length = load<i32>(info, 8), p = load<i32>(info, 12);
    const o0 = out + (<usize>(t * hq + h0) * <usize>ev << 2), q0 = q + (<usize>(t * hq + h0) * <usize>e << 2);
    zero(o0, group * ev);
    const lo = keyLo(p, left), hi = keyHi(p, causal == 0 ? CAUSAL_NONE : CAUSAL_TOP_LEFT, length, right);
    if (lo >= hi) continue; // no position allowed: zero rows (a sink alone has no value)
    const n = hi - lo;
    const table = tables + (<usize>tableAt << 2);
    // scores, block run by block run, every head of the group against the run while it is in cache
    for (let j = lo; j < hi;) {
      const slot = j % bs, run = min(bs - slot, hi - j);
      const block = load<i32>(table + (<usize>(j / bs) << 2));
      const k = kPool + (<usize>(((block * hkv + g) * bs + slot) * e) << 2);
      for (let x = 0; x < group; x++) {
        scoreKeys(scratch + <usize>x * stride + (<usize>(j - lo) << 2), q0 + (<usize>(x * e) << 2), k, run, e, e, scale_);
      }
      j += run;
    }
    for (let x = 0; x < group; x++) {
      const s = scratch + <usize>x * stride, h = h0 + x;
      if (softcap > 0) softcapRow(s, n, softcap);
      if (alibi != 0) {
        const slope = load<f32>(alibi + (<usize>h << 2));
        for (let j = 0; j < n; j++) {
          const at = s + (<usize>j << 2);
          store<f32>(at, load<f32>(at) - slope * <f32>abs(p - (lo + j)));
        }
      }
      const state = softmaxWithSink(s, n, sinks != 0, sinks != 0 ? load<f32>(sinks + (<usize>h << 2)) : -Infinity);
      // a row with no weights is left out of the values' pass: zeros, or NaN
      if (state == 2) for (let c = 0; c < ev; c++) store<f32>(o0 + (<usize>(x * ev + c) << 2), NaN);
      store<i32>(done + (<usize>x << 2), state != 0 ? 1 : 0);
    }
    // output = sum_j w_j v_j, block run by block run (a zero weight skips its value, so a NaN there cannot leak)
    for (let j = lo; j < hi;) {
      const slot = j % bs, run = min(bs - slot, hi - j);
      const block = load<i32>(table + (<usize>(j / bs) << 2));
      const v = vPool + (<usize>(((block * hkv + g) * bs + slot) * ev) << 2);
      for (let x = 0; x < group; x++) {
        if (load<i32>(done + (<usize>x << 2)) != 0) continue;
        const s = scratch + <usize>x * stride;
        const o = o0 + (<usize>(x * ev) << 2);
        weightedRows(sums, s + (<usize>(j - lo) << 2), v, run, ev, ev);
        let c = 0;
        for (; c + 4 <= ev; c += 4) {
          const oc = <usize>c << 2;
          v128.store(o + oc, f32x4.add(v128.load(o + oc), v128.load(sums + oc)));
        }
        for (; c < ev; c++) store<f32>(o + (<usize>c << 2), load<f32>(o + (<usize>c << 2)) + load<f32>(sums + (<usize>c << 2)));
      }
      j += run;
    }
  }
}
