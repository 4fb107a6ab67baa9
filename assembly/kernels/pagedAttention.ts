// Attention of many sequences' new tokens over their keys and values in a paged pool (vLLM's
// PagedAttention), one (token, query head) unit at a time: scores against the allowed positions of
// the token's sequence, read block by block where they lie (no gather, no copy), the softmax (with an
// optional sink logit per head), and the weighted sum of values. Memory beyond inputs and outputs is
// one row of scores per query head of a group, per thread. Keys and values are read in the pool's
// storage format through assembly/inline/kvFormats.ts (float32, binary16, int8 with row scales).
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
import { expShiftSum, rowMax, scale, scoreKeys, zero } from '../inline/rows';
import { hsum4, madd4 } from '../inline/simd';
import { HALF_REBIAS, load1, load4, loadScaled4 } from '../inline/kvFormats';
import { softcapRow } from '../inline/scores';
import { keyHi, keyLo, CAUSAL_NONE, CAUSAL_TOP_LEFT } from '../inline/keyRange';
import { exp1 } from '../inline/exp';

/** Floats of scratch one thread needs: the scores of the longest sequence for each of `group` query heads, and a flag per head. */
export function paged_scratch_f32(maxLength: i32, ev: i32, group: i32): i32 {
  return group * ((maxLength + 3) & ~3) + group + 1;
}

/**
 * s[j] = scale · (q · k_j) (times k_j's row scale for int8) for n rows of e elements of type T at k
 * (contiguous: one block run of one kv head). float32 rows go through scoreKeys (four keys share each
 * load of q); the narrow formats widen each key's elements in registers, two accumulators a key.
 */
// @ts-ignore: decorator
@inline function scoreRun<T>(s: usize, q: usize, k: usize, n: i32, e: i32, scale_: f32, rowScales: usize): void {
  if (sizeof<T>() == 4) {
    scoreKeys(s, q, k, n, e, e, scale_);
    return;
  }
  const row = <usize>e * sizeof<T>();
  const e4 = e & ~3;
  for (let j = 0; j < n; j++) {
    const kj = k + <usize>j * row;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
    let t = 0;
    if (sizeof<T>() == 2 && load<f32>(rowScales + (<usize>j << 2)) == 0) {
      // a binary16 row free of Infinity and NaN: lanes times 2^-112, rebiased once for the whole dot
      for (; t + 8 <= e4; t += 8) {
        a0 = madd4(v128.load(q + (<usize>t << 2)), loadScaled4(kj, t), a0);
        a1 = madd4(v128.load(q + (<usize>t << 2), 16), loadScaled4(kj, t + 4), a1);
      }
      for (; t < e4; t += 4) a0 = madd4(v128.load(q + (<usize>t << 2)), loadScaled4(kj, t), a0);
      let dot = hsum4(f32x4.add(a0, a1)) * HALF_REBIAS;
      for (; t < e; t++) dot += load<f32>(q + (<usize>t << 2)) * load1<T>(kj, t);
      store<f32>(s + (<usize>j << 2), dot * scale_);
      continue;
    }
    for (; t + 8 <= e4; t += 8) {
      a0 = madd4(v128.load(q + (<usize>t << 2)), load4<T>(kj, t), a0);
      a1 = madd4(v128.load(q + (<usize>t << 2), 16), load4<T>(kj, t + 4), a1);
    }
    for (; t < e4; t += 4) a0 = madd4(v128.load(q + (<usize>t << 2)), load4<T>(kj, t), a0);
    let dot = hsum4(f32x4.add(a0, a1));
    for (; t < e; t++) dot += load<f32>(q + (<usize>t << 2)) * load1<T>(kj, t);
    const rs: f32 = sizeof<T>() == 1 ? load<f32>(rowScales + (<usize>j << 2)) : 1;
    store<f32>(s + (<usize>j << 2), dot * scale_ * rs);
  }
}

/**
 * out[0 .. ev) += sum_j w[j] · v_j over n rows of ev elements of type T at v (one block run), skipping
 * zero weights (a NaN value with no weight cannot leak). For int8, w[j] is first multiplied by v_j's
 * row scale. Columns 16 at a time in 4 accumulators, then 4, then single ones.
 */
// @ts-ignore: decorator
@inline function accumulateRun<T>(out: usize, w: usize, v: usize, n: i32, ev: i32, rowScales: usize): void {
  const row = <usize>ev * sizeof<T>();
  if (sizeof<T>() == 1) for (let j = 0; j < n; j++) store<f32>(w + (<usize>j << 2), load<f32>(w + (<usize>j << 2)) * load<f32>(rowScales + (<usize>j << 2)));
  let c = 0;
  for (; c + 16 <= ev; c += 16) {
    const o = out + (<usize>c << 2);
    let a0 = v128.load(o), a1 = v128.load(o, 16), a2 = v128.load(o, 32), a3 = v128.load(o, 48);
    for (let j = 0; j < n; j++) {
      const wj = load<f32>(w + (<usize>j << 2));
      if (wj == 0) continue;
      const vj = v + <usize>j * row;
      if (sizeof<T>() == 2 && load<f32>(rowScales + (<usize>j << 2)) == 0) {
        // a binary16 row free of Infinity and NaN: the weight takes the 2^112 rebias
        const x = f32x4.splat(wj * HALF_REBIAS);
        a0 = madd4(x, loadScaled4(vj, c), a0); a1 = madd4(x, loadScaled4(vj, c + 4), a1);
        a2 = madd4(x, loadScaled4(vj, c + 8), a2); a3 = madd4(x, loadScaled4(vj, c + 12), a3);
        continue;
      }
      const x = f32x4.splat(wj);
      a0 = madd4(x, load4<T>(vj, c), a0); a1 = madd4(x, load4<T>(vj, c + 4), a1);
      a2 = madd4(x, load4<T>(vj, c + 8), a2); a3 = madd4(x, load4<T>(vj, c + 12), a3);
    }
    v128.store(o, a0); v128.store(o, a1, 16); v128.store(o, a2, 32); v128.store(o, a3, 48);
  }
  for (; c + 4 <= ev; c += 4) {
    const o = out + (<usize>c << 2);
    let a = v128.load(o);
    for (let j = 0; j < n; j++) {
      const wj = load<f32>(w + (<usize>j << 2));
      if (wj != 0) a = madd4(f32x4.splat(wj), load4<T>(v + <usize>j * row, c), a);
    }
    v128.store(o, a);
  }
  for (; c < ev; c++) {
    let a = load<f32>(out + (<usize>c << 2));
    for (let j = 0; j < n; j++) {
      const wj = load<f32>(w + (<usize>j << 2));
      if (wj != 0) a += wj * load1<T>(v + <usize>j * row, c);
    }
    store<f32>(out + (<usize>c << 2), a);
  }
}

/**
 * Reads one float of every 64-byte line of the `bytes` at p and returns their sum: touching the next
 * block run while the current one is computed starts its memory traffic early (the hardware
 * prefetcher does not follow the jump from one block to the next). Measured, 16 decode rows over
 * 256..2048 positions: one line in four 1.2x, every line 1.35x (Hq = 14, Hkv = 2); 1.6x with one
 * query head per kv head.
 */
// @ts-ignore: decorator
@inline function touch(p: usize, bytes: usize): f32 {
  let s: f32 = 0;
  for (let o: usize = 0; o < bytes; o += 64) s += load<f32>(p + o);
  return s;
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
// @ts-ignore: decorator
@inline function pagedAttention<T>(
  out: usize, scratch: usize, q: usize, kPool: usize, vPool: usize, kScales: usize, vScales: usize, tables: usize, rowInfo: usize,
  hq: i32, hkv: i32, e: i32, ev: i32, bs: i32, scale_: f32, softcap: f32, causal: i32, left: i32, right: i32,
  alibi: usize, sinks: usize, maxLength: i32, unitStart: i32, unitEnd: i32,
): void {
  const group = hq / hkv;
  const stride = <usize>((maxLength + 3) & ~3) << 2; // bytes between the heads' score rows
  const done = scratch + <usize>group * stride; // i32 per head: 1 when its row needs no values' pass
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
    let touched: f32 = 0;
    for (let j = lo; j < hi;) {
      const slot = j % bs, run = min(bs - slot, hi - j);
      const block = load<i32>(table + (<usize>(j / bs) << 2));
      const at = (block * hkv + g) * bs + slot;
      const k = kPool + <usize>(at * e) * sizeof<T>(), ks = kScales + (<usize>at << 2);
      if (j + run < hi) {
        const next = (load<i32>(table + (<usize>((j + run) / bs) << 2)) * hkv + g) * bs;
        touched += touch(kPool + <usize>(next * e) * sizeof<T>(), <usize>(min(bs, hi - j - run) * e) * sizeof<T>());
      }
      for (let x = 0; x < group; x++) {
        scoreRun<T>(scratch + <usize>x * stride + (<usize>(j - lo) << 2), q0 + (<usize>(x * e) << 2), k, run, e, scale_, ks);
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
      const at = (block * hkv + g) * bs + slot;
      const v = vPool + <usize>(at * ev) * sizeof<T>(), vs = vScales + (<usize>at << 2);
      if (j + run < hi) {
        const next = (load<i32>(table + (<usize>((j + run) / bs) << 2)) * hkv + g) * bs;
        touched += touch(vPool + <usize>(next * ev) * sizeof<T>(), <usize>(min(bs, hi - j - run) * ev) * sizeof<T>());
      }
      for (let x = 0; x < group; x++) {
        if (load<i32>(done + (<usize>x << 2)) != 0) continue;
        accumulateRun<T>(o0 + (<usize>(x * ev) << 2), scratch + <usize>x * stride + (<usize>(j - lo) << 2), v, run, ev, vs);
      }
      j += run;
    }
    store<f32>(done + (<usize>group << 2), touched);
  }
}

/** The paged attention kernel over a float32 pool; the _f16 and _i8 exports read binary16 and int8 pools (kScales/vScales: their row scales, 0 otherwise). */
export function paged_attention_f32(
  out: usize, scratch: usize, q: usize, kPool: usize, vPool: usize, kScales: usize, vScales: usize, tables: usize, rowInfo: usize,
  hq: i32, hkv: i32, e: i32, ev: i32, bs: i32, scale_: f32, softcap: f32, causal: i32, left: i32, right: i32,
  alibi: usize, sinks: usize, maxLength: i32, unitStart: i32, unitEnd: i32,
): void {
  pagedAttention<f32>(out, scratch, q, kPool, vPool, kScales, vScales, tables, rowInfo, hq, hkv, e, ev, bs, scale_, softcap, causal, left, right, alibi, sinks, maxLength, unitStart, unitEnd);
}

export function paged_attention_f16(
  out: usize, scratch: usize, q: usize, kPool: usize, vPool: usize, kScales: usize, vScales: usize, tables: usize, rowInfo: usize,
  hq: i32, hkv: i32, e: i32, ev: i32, bs: i32, scale_: f32, softcap: f32, causal: i32, left: i32, right: i32,
  alibi: usize, sinks: usize, maxLength: i32, unitStart: i32, unitEnd: i32,
): void {
  pagedAttention<u16>(out, scratch, q, kPool, vPool, kScales, vScales, tables, rowInfo, hq, hkv, e, ev, bs, scale_, softcap, causal, left, right, alibi, sinks, maxLength, unitStart, unitEnd);
}

export function paged_attention_i8(
  out: usize, scratch: usize, q: usize, kPool: usize, vPool: usize, kScales: usize, vScales: usize, tables: usize, rowInfo: usize,
  hq: i32, hkv: i32, e: i32, ev: i32, bs: i32, scale_: f32, softcap: f32, causal: i32, left: i32, right: i32,
  alibi: usize, sinks: usize, maxLength: i32, unitStart: i32, unitEnd: i32,
): void {
  pagedAttention<i8>(out, scratch, q, kPool, vPool, kScales, vScales, tables, rowInfo, hq, hkv, e, ev, bs, scale_, softcap, causal, left, right, alibi, sinks, maxLength, unitStart, unitEnd);
}
