// Attention of many sequences' new tokens over their keys and values in a paged pool (vLLM's
// PagedAttention), one (token, query head) unit at a time: scores against the allowed positions of
// the token's sequence, read block by block where they lie (no gather, no copy), the softmax (with an
// optional sink logit per head), and the weighted sum of values. Memory beyond inputs and outputs is
// one row of scores and one row of value sums per thread.
//
// The KV view a unit reads (src/wasm/batchAttention.ts builds it):
//
//   pool block b, kv head g, slot s  at  pool + ((b · hkv + g) · bs + s) · d floats   (keys d = e, values d = ev)
//   rowInfo[t] = (tableAt, kvLength, position): token t's sequence holds kvLength positions, whose
//                blocks are tables[tableAt ..]; t itself is at `position`
//
// Key j of the sequence is in block tables[tableAt + j / bs], slot j % bs: a block's slots for one kv
// head are contiguous rows, so scores and value sums run over whole runs of slots.
import { scoreKeys, expShiftSum, rowMax, scale, weightedRows, zero } from '../inline/rows';
import { softcapRow } from '../inline/scores';
import { keyHi, keyLo, CAUSAL_NONE, CAUSAL_TOP_LEFT } from '../inline/keyRange';
import { exp1 } from '../inline/exp';

/** Floats of scratch one thread needs: the scores of the longest sequence, and one row of value sums. */
export function paged_scratch_f32(maxLength: i32, ev: i32): i32 {
  return ((maxLength + 3) & ~3) + ((ev + 3) & ~3);
}

/**
 * @param out      f32 [t, hq, ev]
 * @param scratch  f32 [paged_scratch_f32(longest kvLength, ev)]
 * @param q        f32 [t, hq, e] (already turned by rotary)
 * @param kPool    f32 [blocks, hkv, bs, e];  vPool: f32 [blocks, hkv, bs, ev]
 * @param tables   i32 block indices of every sequence, one run per sequence
 * @param rowInfo  i32 [t, 3]: tableAt, kvLength, position of each token
 * @param causal   0: every position of the sequence; 1: positions <= the token's
 * @param left,right  sliding window sides, -1 = unbounded
 * @param alibi    f32 [hq] slopes (scores -= slope · |position − j|), or 0
 * @param sinks    f32 [hq] sink logits, or 0
 * @param unitStart,unitEnd  units (token · hq + head) to compute; threads split this range
 */
export function paged_attention_f32(
  out: usize, scratch: usize, q: usize, kPool: usize, vPool: usize, tables: usize, rowInfo: usize,
  hq: i32, hkv: i32, e: i32, ev: i32, bs: i32, scale_: f32, softcap: f32, causal: i32, left: i32, right: i32,
  alibi: usize, sinks: usize, maxLength: i32, unitStart: i32, unitEnd: i32,
): void {
  const group = hq / hkv;
  const sums = scratch + (<usize>((maxLength + 3) & ~3) << 2);
  for (let unit = unitStart; unit < unitEnd; unit++) {
    const t = unit / hq, h = unit % hq, g = h / group;
    const info = rowInfo + <usize>t * 12;
    const tableAt = load<i32>(info), length = load<i32>(info, 4), p = load<i32>(info, 8);
    const o = out + (<usize>unit * <usize>ev << 2);
    zero(o, ev);
    const lo = keyLo(p, left), hi = keyHi(p, causal == 0 ? CAUSAL_NONE : CAUSAL_TOP_LEFT, length, right);
    if (lo >= hi) continue; // no position allowed: a zero row (a sink alone has no value)
    const n = hi - lo;
    const qi = q + (<usize>unit * <usize>e << 2);
    const table = tables + (<usize>tableAt << 2);
    // scores, block run by block run
    for (let j = lo; j < hi;) {
      const slot = j % bs, run = min(bs - slot, hi - j);
      const block = load<i32>(table + (<usize>(j / bs) << 2));
      const k = kPool + (<usize>(((block * hkv + g) * bs + slot) * e) << 2);
      scoreKeys(scratch + (<usize>(j - lo) << 2), qi, k, run, e, e, scale_);
      j += run;
    }
    if (softcap > 0) softcapRow(scratch, n, softcap);
    if (alibi != 0) {
      const slope = load<f32>(alibi + (<usize>h << 2));
      for (let j = 0; j < n; j++) {
        const at = scratch + (<usize>j << 2);
        store<f32>(at, load<f32>(at) - slope * <f32>abs(p - (lo + j)));
      }
    }
    // softmax over the allowed positions and the sink
    let m = rowMax(scratch, n);
    const sink: f32 = sinks != 0 ? load<f32>(sinks + (<usize>h << 2)) : -Infinity;
    if (m == -Infinity) {
      // rowMax may skip NaN lanes; a NaN score makes the row NaN, as in scaledDotProductAttention
      let nan = false;
      for (let j = 0; j < n; j++) if (isNaN(load<f32>(scratch + (<usize>j << 2)))) nan = true;
      if (nan) for (let c = 0; c < ev; c++) store<f32>(o + (<usize>c << 2), NaN);
      if (nan || sink == -Infinity) continue; // nothing allowed and no sink: a zero row
    }
    m = max<f32>(m, sink);
    let sum = expShiftSum(scratch, m, n);
    if (sinks != 0) sum += exp1(sink - m);
    scale(scratch, 1.0 / sum, n);
    // output = sum_j w_j v_j, block run by block run (a zero weight skips its value, so a NaN there cannot leak)
    for (let j = lo; j < hi;) {
      const slot = j % bs, run = min(bs - slot, hi - j);
      const block = load<i32>(table + (<usize>(j / bs) << 2));
      const v = vPool + (<usize>(((block * hkv + g) * bs + slot) * ev) << 2);
      weightedRows(sums, scratch + (<usize>(j - lo) << 2), v, run, ev, ev);
      let c = 0;
      for (; c + 4 <= ev; c += 4) {
        const oc = <usize>c << 2;
        v128.store(o + oc, f32x4.add(v128.load(o + oc), v128.load(sums + oc)));
      }
      for (; c < ev; c++) store<f32>(o + (<usize>c << 2), load<f32>(o + (<usize>c << 2)) + load<f32>(sums + (<usize>c << 2)));
      j += run;
    }
  }
}
