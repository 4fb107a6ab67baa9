// Attention of many sequences' new tokens over their keys and values in a paged pool (vLLM's
// PagedAttention), one (token, query head) unit at a time: scores against the allowed positions of
// the token's sequence, read block by block where they lie (no gather, no copy), the softmax (with an
// optional sink logit per head), and the weighted sum of values. Memory beyond inputs and outputs is
// one row of scores per query head of a group, per thread. Keys and values are read in the pool's
// storage format through assembly/inline/kvFormats.ts (float32, binary16, int8 with row scales).
//
// The KV view a unit reads (src/wasm/pagedAttention.ts builds it for batchAttention and for decode rows over tensors; assembly/inline/kvView.ts, always
// with a block table):
//
//   kv head g's rows    head = pool + g · headRows · d elements  (keys d = e, values d = ev; headRows =
//                       blocks · bs: each kv head's blocks side by side); their int8 scales or binary16
//                       flags likewise from kScales, vScales, one float a row
//   rowInfo[r]          (token, tableAt, kvLength, position) (assembly/layout.ts names the offsets): row r
//                       of the call is token `token` of q and out; its sequence holds kvLength positions,
//                       whose blocks are table = tables[tableAt ..]; the token itself is at `position`
//
// Key j of the sequence is row table[j / bs] · bs + j % bs of its kv head: a block's slots are
// contiguous rows, so scores and value sums run over whole runs of slots (pagedPass walks them, once
// over the keys and once over the values).
import { dot, expShiftSum, rowMax, scale, scoreKeys, zero } from '../inline/rows';
import { hsum4, madd4, sums4 } from '../inline/simd';
import { HALF_REBIAS, halfHighScaled, halfLowScaled, int8Quarter0, int8Quarter1, int8Quarter2, int8Quarter3, load1, load4, loadScaled1, loadScaled4 } from '../inline/kvFormats';
import { alibiRow, softcapRow } from '../inline/scores';
import { kvBlockOf, kvNextAdjacent, kvSlot } from '../inline/kvView';
import { keyHi, keyLo, CAUSAL_NONE, CAUSAL_TOP_LEFT } from '../inline/keyRange';
import { exp1 } from '../inline/exp';
import { PAGED_ROW_BYTES, PAGED_ROW_KV_LENGTH, PAGED_ROW_POSITION, PAGED_ROW_TABLE_AT, PAGED_ROW_TOKEN } from '../layout';

/**
 * Floats of scratch one thread needs: the scores of the longest sequence for each of `group` query
 * heads, a flag per head, for int8 pools each head's query rounded to 16 bits with its scale, and
 * WIDE_ROWS rows of a narrow pool's run widened to float32 (see WIDEN_MIN_GROUP).
 */
export function paged_scratch_f32(maxLength: i32, e: i32, ev: i32, group: i32): i32 {
  return group * ((maxLength + 3) & ~3) + group + 1 + 4 + group * (((e + 7) & ~7) >> 1) + group + 4 + WIDE_ROWS * max(e, ev);
}

/**
 * Query heads per kv head from which a binary16 or int8 pool's runs are widened once into float32
 * rows of scratch (WIDE_ROWS at a time, in L1; int8 rows times their scales) and read by the float32
 * loops, two heads at a time: widening in registers repeats for every head, which from 4 heads a kv
 * head on costs more than widening once (at 3 the two were even, at 2 widening once was slower).
 * Smaller groups widen in registers (int8 through 16-bit integer dot products), as memory-bound
 * decode wants.
 */
// @ts-ignore: decorator
@inline const WIDEN_MIN_GROUP: i32 = 4;
/**
 * The most rows a run takes (a run: consecutive slots of one block, which every head of the group
 * scores, then weighs). Blocks larger than this (a KVCache or tensor read as one block per kv head,
 * src/wasm/pagedAttention.ts; a pool of large blocks) go in runs of this many rows, so that the
 * values' pass, which reads a run once per 16 columns, finds it in L2 (64 KB of rows of 64 floats)
 * where a whole long kv head would go through memory that many times. Not fewer: blocks of up to
 * 256 rows stay whole runs (runs of 64 made blocks of 256 slower).
 */
// @ts-ignore: decorator
@inline const RUN_ROWS: i32 = 256;
/** Rows of a run widened at a time (see WIDEN_MIN_GROUP). */
// @ts-ignore: decorator
@inline const WIDE_ROWS: i32 = 16;

/**
 * n binary16 rows of d elements at src as float32 rows at dst, d floats apart: exact, Infinity and
 * NaN included. A row its flag (at flags, one float32 a row) says is free of Infinity and NaN is
 * widened eight lanes a load by halfLowScaled/halfHighScaled and one multiply by 2^112 (the same
 * bits: both steps are exact), four operations per four values where load4 takes twelve.
 */
// @ts-ignore: decorator
@inline function widenHalfRows(dst: usize, src: usize, flags: usize, n: i32, d: i32): void {
  const d4 = d & ~3, d8 = d & ~7, rebias = f32x4.splat(HALF_REBIAS);
  for (let r = 0; r < n; r++) {
    const from = src + (<usize>(r * d) << 1), to = dst + (<usize>(r * d) << 2);
    let t = 0;
    if (load<f32>(flags + (<usize>r << 2)) == 0) {
      for (; t < d8; t += 8) {
        const h = v128.load(from + (<usize>t << 1));
        v128.store(to + (<usize>t << 2), f32x4.mul(halfLowScaled(h), rebias));
        v128.store(to + (<usize>t << 2), f32x4.mul(halfHighScaled(h), rebias), 16);
      }
    }
    for (; t < d4; t += 4) v128.store(to + (<usize>t << 2), load4<u16>(from, t));
    for (; t < d; t++) store<f32>(to + (<usize>t << 2), load1<u16>(from, t));
  }
}

/** n int8 rows of d elements at src, each times its row's scale (one float32 a row at scales), as float32 rows at dst, d floats apart. */
// @ts-ignore: decorator
@inline function widenInt8Rows(dst: usize, src: usize, scales: usize, n: i32, d: i32): void {
  const d4 = d & ~3, d16 = d & ~15;
  for (let r = 0; r < n; r++) {
    const from = src + <usize>(r * d), to = dst + (<usize>(r * d) << 2);
    const sc: f32 = load<f32>(scales + (<usize>r << 2)), vsc = f32x4.splat(sc);
    let t = 0;
    for (; t < d16; t += 16) {
      const b = v128.load(from + <usize>t), at = to + (<usize>t << 2);
      v128.store(at, f32x4.mul(int8Quarter0(b), vsc)); v128.store(at, f32x4.mul(int8Quarter1(b), vsc), 16);
      v128.store(at, f32x4.mul(int8Quarter2(b), vsc), 32); v128.store(at, f32x4.mul(int8Quarter3(b), vsc), 48);
    }
    for (; t < d4; t += 4) v128.store(to + (<usize>t << 2), f32x4.mul(load4<i8>(from, t), vsc));
    for (; t < d; t++) store<f32>(to + (<usize>t << 2), load1<i8>(from, t) * sc);
  }
}

/** Widens n rows of a binary16 or int8 run (flags or scales at `rowScales`) into float32 rows at dst. */
// @ts-ignore: decorator
@inline function widenRunRows<T>(dst: usize, src: usize, rowScales: usize, n: i32, d: i32): void {
  if (sizeof<T>() == 2) widenHalfRows(dst, src, rowScales, n, d);
  else widenInt8Rows(dst, src, rowScales, n, d);
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
  let j = 0;
  if (sizeof<T>() == 2) j = scoreHalfQuads(s, q, k, n, e, scale_, rowScales);
  for (; j < n; j++) {
    const kj = k + <usize>j * row;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
    let t = 0;
    if (sizeof<T>() == 2 && load<f32>(rowScales + (<usize>j << 2)) == 0) {
      // a binary16 row free of Infinity and NaN: lanes times 2^-112, rebiased once for the whole dot
      for (; t + 8 <= e; t += 8) {
        const h = v128.load(kj + (<usize>t << 1));
        a0 = madd4(v128.load(q + (<usize>t << 2)), halfLowScaled(h), a0);
        a1 = madd4(v128.load(q + (<usize>t << 2), 16), halfHighScaled(h), a1);
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

/** Elements of the query a head's int8 dot products take in one pass of 32-bit sums: 2048 · 2 · 127 · 32767 < 2^31. */
const INT8_DOT_CHUNK = 2048;

/**
 * Rounds query row q (e floats) to 16 bits for the int8 dot products: q16[t] = round(q[t] / qs) with
 * qs = max|q| / 32767, into q16 (e rounded up to 8 i16, the rest zero). Returns qs; 0 for a zero row,
 * and -1 when the row holds Infinity or NaN or is too small to scale (the caller then takes the float
 * path, which keeps them).
 */
// @ts-ignore: decorator
@inline function quantizeQuery16(q16: usize, q: usize, e: i32): f32 {
  let m: f32 = 0;
  for (let t = 0; t < e; t++) m = max<f32>(m, abs<f32>(load<f32>(q + (<usize>t << 2))));
  if (!isFinite(m)) return -1;
  const qs: f32 = m / 32767, inv: f32 = m > 0 ? <f32>32767 / m : 0;
  if (!isFinite(inv)) return -1; // a row so small that 1 / qs overflows
  for (let t = 0; t < ((e + 7) & ~7); t++) {
    const x: f32 = t < e ? load<f32>(q + (<usize>t << 2)) * inv : 0;
    store<i16>(q16 + (<usize>t << 1), <i16>min<i32>(32767, max<i32>(-32767, <i32>nearest<f32>(x))));
  }
  return qs;
}

/**
 * s[j] = mult · rowScale_j · (q16 · k_j) for n int8 key rows of e elements at k: each 8 key bytes are
 * loaded sign-extended to 16 bits and multiplied with the 16-bit query by i32x4.dot_i16x8_s (8 products,
 * 3 operations, against 8 widenings, 2 conversions and 2 multiply-adds in float32). Four keys share each
 * load of the query; sums stay in 32 bits for INT8_DOT_CHUNK elements, then go on in float32.
 */
// @ts-ignore: decorator
@inline function scoreRunInt8(s: usize, q16: usize, k: usize, n: i32, e: i32, mult: f32, rowScales: usize): void {
  const ld = <usize>e;
  const e8 = e & ~7;
  const vm = f32x4.splat(mult);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const k0 = k + <usize>j * ld, k1 = k0 + ld, k2 = k1 + ld, k3 = k2 + ld;
    let f0 = f32x4.splat(0), f1 = f0, f2 = f0, f3 = f0;
    for (let c = 0; c < e8; c += INT8_DOT_CHUNK) {
      const end = min(e8, c + INT8_DOT_CHUNK);
      let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      for (let t = c; t < end; t += 8) {
        const x = v128.load(q16 + (<usize>t << 1)), o = <usize>t;
        a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.load8x8_s(k0 + o), x));
        a1 = i32x4.add(a1, i32x4.dot_i16x8_s(v128.load8x8_s(k1 + o), x));
        a2 = i32x4.add(a2, i32x4.dot_i16x8_s(v128.load8x8_s(k2 + o), x));
        a3 = i32x4.add(a3, i32x4.dot_i16x8_s(v128.load8x8_s(k3 + o), x));
      }
      f0 = f32x4.add(f0, f32x4.convert_i32x4_s(a0)); f1 = f32x4.add(f1, f32x4.convert_i32x4_s(a1));
      f2 = f32x4.add(f2, f32x4.convert_i32x4_s(a2)); f3 = f32x4.add(f3, f32x4.convert_i32x4_s(a3));
    }
    let r = sums4(f0, f1, f2, f3);
    if (e8 < e) {
      let t0 = 0, t1 = 0, t2 = 0, t3 = 0;
      for (let t = e8; t < e; t++) {
        const x = <i32>load<i16>(q16 + (<usize>t << 1)), o = <usize>t;
        t0 += x * <i32>load<i8>(k0 + o); t1 += x * <i32>load<i8>(k1 + o);
        t2 += x * <i32>load<i8>(k2 + o); t3 += x * <i32>load<i8>(k3 + o);
      }
      r = f32x4.add(r, f32x4.convert_i32x4_s(i32x4(t0, t1, t2, t3)));
    }
    v128.store(s + (<usize>j << 2), f32x4.mul(f32x4.mul(r, vm), v128.load(rowScales + (<usize>j << 2))));
  }
  for (; j < n; j++) {
    const kj = k + <usize>j * ld;
    let f: f32 = 0;
    for (let c = 0; c < e; c += INT8_DOT_CHUNK) {
      const end = min(e, c + INT8_DOT_CHUNK);
      let a = i32x4.splat(0), t = c;
      for (; t + 8 <= end; t += 8) a = i32x4.add(a, i32x4.dot_i16x8_s(v128.load8x8_s(kj + <usize>t), v128.load(q16 + (<usize>t << 1))));
      let tail = 0;
      for (; t < end; t++) tail += <i32>load<i16>(q16 + (<usize>t << 1)) * <i32>load<i8>(kj + <usize>t);
      f += hsum4(f32x4.convert_i32x4_s(a)) + <f32>tail;
    }
    store<f32>(s + (<usize>j << 2), f * mult * load<f32>(rowScales + (<usize>j << 2)));
  }
}

/**
 * The binary16 scores of scoreRun four keys at a time, for every quad of keys free of Infinity and
 * NaN (a quad with one goes key by key from the first such key on): eight accumulators, each load of
 * the query serving four keys, each 16-byte load of a key giving eight lanes. Returns how many keys
 * it scored.
 */
// @ts-ignore: decorator
@inline function scoreHalfQuads(s: usize, q: usize, k: usize, n: i32, e: i32, scale_: f32, flags: usize): i32 {
  const ld = <usize>e << 1;
  const e4 = e & ~3;
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    if (v128.any_true(v128.load(flags + (<usize>j << 2)))) break;
    const k0 = k + <usize>j * ld, k1 = k0 + ld, k2 = k1 + ld, k3 = k2 + ld;
    const z = f32x4.splat(0);
    let a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
    let t = 0;
    for (; t + 8 <= e; t += 8) {
      const x = v128.load(q + (<usize>t << 2)), y = v128.load(q + (<usize>t << 2), 16), o = <usize>t << 1;
      const h0 = v128.load(k0 + o), h1 = v128.load(k1 + o), h2 = v128.load(k2 + o), h3 = v128.load(k3 + o);
      a0 = madd4(x, halfLowScaled(h0), a0); b0 = madd4(y, halfHighScaled(h0), b0);
      a1 = madd4(x, halfLowScaled(h1), a1); b1 = madd4(y, halfHighScaled(h1), b1);
      a2 = madd4(x, halfLowScaled(h2), a2); b2 = madd4(y, halfHighScaled(h2), b2);
      a3 = madd4(x, halfLowScaled(h3), a3); b3 = madd4(y, halfHighScaled(h3), b3);
    }
    if (t < e4) {
      const x = v128.load(q + (<usize>t << 2));
      a0 = madd4(x, loadScaled4(k0, t), a0); a1 = madd4(x, loadScaled4(k1, t), a1);
      a2 = madd4(x, loadScaled4(k2, t), a2); a3 = madd4(x, loadScaled4(k3, t), a3);
      t += 4;
    }
    let r = f32x4.mul(sums4(f32x4.add(a0, b0), f32x4.add(a1, b1), f32x4.add(a2, b2), f32x4.add(a3, b3)), f32x4.splat(HALF_REBIAS));
    if (t < e) {
      let t0: f32 = 0, t1: f32 = 0, t2: f32 = 0, t3: f32 = 0;
      for (; t < e; t++) {
        const x = load<f32>(q + (<usize>t << 2));
        t0 += x * load1<u16>(k0, t); t1 += x * load1<u16>(k1, t); t2 += x * load1<u16>(k2, t); t3 += x * load1<u16>(k3, t);
      }
      r = f32x4.add(r, f32x4(t0, t1, t2, t3));
    }
    v128.store(s + (<usize>j << 2), f32x4.mul(r, f32x4.splat(scale_)));
  }
  return j;
}

/**
 * scoreKeys for two query heads at once over n float32 key rows of e elements at k: four keys and two
 * heads make eight accumulators, so each key load serves both heads (six loads for eight products,
 * against five for four). Every score is summed in the order scoreKeys sums it, so the results are
 * bit for bit those of two scoreKeys calls.
 */
// @ts-ignore: decorator
@inline function scorePairF32(s0: usize, s1: usize, q0: usize, q1: usize, k: usize, n: i32, e: i32, scale_: f32): void {
  const ld = <usize>e << 2;
  const e4 = e & ~3;
  const vs = f32x4.splat(scale_);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const k0 = k + <usize>j * ld, k1 = k0 + ld, k2 = k1 + ld, k3 = k2 + ld;
    const z = f32x4.splat(0);
    let a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
    for (let t = 0; t < e4; t += 4) {
      const o = <usize>t << 2;
      // each key vector is used at once by both heads, so that few registers are live (V8 keeps 16)
      const x = v128.load(q0 + o), y = v128.load(q1 + o);
      const c0 = v128.load(k0 + o); a0 = madd4(x, c0, a0); b0 = madd4(y, c0, b0);
      const c1 = v128.load(k1 + o); a1 = madd4(x, c1, a1); b1 = madd4(y, c1, b1);
      const c2 = v128.load(k2 + o); a2 = madd4(x, c2, a2); b2 = madd4(y, c2, b2);
      const c3 = v128.load(k3 + o); a3 = madd4(x, c3, a3); b3 = madd4(y, c3, b3);
    }
    let r0 = sums4(a0, a1, a2, a3), r1 = sums4(b0, b1, b2, b3);
    if (e4 < e) {
      let t0: f32 = 0, t1: f32 = 0, t2: f32 = 0, t3: f32 = 0, u0: f32 = 0, u1: f32 = 0, u2: f32 = 0, u3: f32 = 0;
      for (let t = e4; t < e; t++) {
        const o = <usize>t << 2, x = load<f32>(q0 + o), y = load<f32>(q1 + o);
        const c0 = load<f32>(k0 + o), c1 = load<f32>(k1 + o), c2 = load<f32>(k2 + o), c3 = load<f32>(k3 + o);
        t0 += x * c0; t1 += x * c1; t2 += x * c2; t3 += x * c3;
        u0 += y * c0; u1 += y * c1; u2 += y * c2; u3 += y * c3;
      }
      r0 = f32x4.add(r0, f32x4(t0, t1, t2, t3));
      r1 = f32x4.add(r1, f32x4(u0, u1, u2, u3));
    }
    v128.store(s0 + (<usize>j << 2), f32x4.mul(r0, vs));
    v128.store(s1 + (<usize>j << 2), f32x4.mul(r1, vs));
  }
  for (; j < n; j++) {
    store<f32>(s0 + (<usize>j << 2), dot(q0, k + <usize>j * ld, e) * scale_);
    store<f32>(s1 + (<usize>j << 2), dot(q1, k + <usize>j * ld, e) * scale_);
  }
}

/** Whether none of the n weights at w is zero (then no value row needs skipping). */
// @ts-ignore: decorator
@inline function noZeros(w: usize, n: i32): bool {
  let j = 0;
  let zeros = i32x4.splat(0);
  for (; j + 4 <= n; j += 4) zeros = v128.or(zeros, f32x4.eq(v128.load(w + (<usize>j << 2)), f32x4.splat(0)));
  if (v128.any_true(zeros)) return false;
  for (; j < n; j++) if (load<f32>(w + (<usize>j << 2)) == 0) return false;
  return true;
}

/**
 * accumulateRun for two query heads at once over n float32 value rows: 16 columns of both heads in
 * eight accumulators, so each value load serves both. A row one head gives no weight is added to the
 * other head alone (a zero weight skips its value); each output is summed in accumulateRun's order.
 */
// @ts-ignore: decorator
@inline function accumulatePairF32(out0: usize, out1: usize, w0: usize, w1: usize, v: usize, n: i32, ev: i32): void {
  const row = <usize>ev << 2;
  const nonZero = noZeros(w0, n) && noZeros(w1, n);
  let c = 0;
  for (; c + 16 <= ev; c += 16) {
    const o = out0 + (<usize>c << 2), p = out1 + (<usize>c << 2);
    let a0 = v128.load(o), a1 = v128.load(o, 16), a2 = v128.load(o, 32), a3 = v128.load(o, 48);
    let b0 = v128.load(p), b1 = v128.load(p, 16), b2 = v128.load(p, 32), b3 = v128.load(p, 48);
    let vr = v + (<usize>c << 2);
    if (nonZero) {
      // the common case, without a branch in the loop
      for (let j = 0; j < n; j++, vr += row) {
        const xs = v128.load32_splat(w0 + (<usize>j << 2)), ys = v128.load32_splat(w1 + (<usize>j << 2));
        const c0 = v128.load(vr); a0 = madd4(xs, c0, a0); b0 = madd4(ys, c0, b0);
        const c1 = v128.load(vr, 16); a1 = madd4(xs, c1, a1); b1 = madd4(ys, c1, b1);
        const c2 = v128.load(vr, 32); a2 = madd4(xs, c2, a2); b2 = madd4(ys, c2, b2);
        const c3 = v128.load(vr, 48); a3 = madd4(xs, c3, a3); b3 = madd4(ys, c3, b3);
      }
    } else for (let j = 0; j < n; j++, vr += row) {
      const x = load<f32>(w0 + (<usize>j << 2)), y = load<f32>(w1 + (<usize>j << 2));
      if (x != 0 && y != 0) {
        const xs = f32x4.splat(x), ys = f32x4.splat(y);
        const c0 = v128.load(vr); a0 = madd4(xs, c0, a0); b0 = madd4(ys, c0, b0);
        const c1 = v128.load(vr, 16); a1 = madd4(xs, c1, a1); b1 = madd4(ys, c1, b1);
        const c2 = v128.load(vr, 32); a2 = madd4(xs, c2, a2); b2 = madd4(ys, c2, b2);
        const c3 = v128.load(vr, 48); a3 = madd4(xs, c3, a3); b3 = madd4(ys, c3, b3);
      } else if (x != 0) {
        const xs = f32x4.splat(x);
        a0 = madd4(xs, v128.load(vr), a0); a1 = madd4(xs, v128.load(vr, 16), a1);
        a2 = madd4(xs, v128.load(vr, 32), a2); a3 = madd4(xs, v128.load(vr, 48), a3);
      } else if (y != 0) {
        const ys = f32x4.splat(y);
        b0 = madd4(ys, v128.load(vr), b0); b1 = madd4(ys, v128.load(vr, 16), b1);
        b2 = madd4(ys, v128.load(vr, 32), b2); b3 = madd4(ys, v128.load(vr, 48), b3);
      }
    }
    v128.store(o, a0); v128.store(o, a1, 16); v128.store(o, a2, 32); v128.store(o, a3, 48);
    v128.store(p, b0); v128.store(p, b1, 16); v128.store(p, b2, 32); v128.store(p, b3, 48);
  }
  if (c < ev) {
    // the last ev % 16 columns, one head at a time
    accumulateColumns<f32>(out0, w0, v, n, ev, c);
    accumulateColumns<f32>(out1, w1, v, n, ev, c);
  }
}

/** 2^-112: a rebiased binary16 weight times this is the weight. */
// @ts-ignore: decorator
@inline const HALF_UNBIAS: f32 = 1.925929944387236e-34;

/** Whether any of the n row flags at p is set (binary16 rows holding Infinity or NaN). */
// @ts-ignore: decorator
@inline function anyFlagged(p: usize, n: i32): bool {
  let j = 0;
  let any = i32x4.splat(0);
  for (; j + 4 <= n; j += 4) any = v128.or(any, v128.load(p + (<usize>j << 2)));
  if (v128.any_true(any)) return true;
  for (; j < n; j++) if (load<f32>(p + (<usize>j << 2)) != 0) return true;
  return false;
}

/**
 * out[0 .. ev) += sum_j w[j] · v_j over n rows of ev elements of type T at v (one block run), skipping
 * zero weights (a NaN value with no weight cannot leak). The weights are first put in the form the
 * loops take, in place: int8's times the row scale; binary16's come times the 2^112 rebias from the
 * softmax, and rows holding Infinity or NaN are added here exactly and then left out. Columns 32 at
 * a time in 8 accumulators (one weight splat serves 8 vectors), then 16, 4 and single ones.
 */
// @ts-ignore: decorator
@inline function accumulateRun<T>(out: usize, w: usize, v: usize, n: i32, ev: i32, rowScales: usize): void {
  const row = <usize>ev * sizeof<T>();
  if (sizeof<T>() == 1) for (let j = 0; j < n; j++) store<f32>(w + (<usize>j << 2), load<f32>(w + (<usize>j << 2)) * load<f32>(rowScales + (<usize>j << 2)));
  if (sizeof<T>() == 2 && anyFlagged(rowScales, n)) {
    // the weights carry the 2^112 rebias already (the softmax put it in); flagged rows are added exactly
    for (let j = 0; j < n; j++) {
      const wj = load<f32>(w + (<usize>j << 2));
      if (wj == 0 || load<f32>(rowScales + (<usize>j << 2)) == 0) continue;
      const vj = v + <usize>j * row, wt = wj * HALF_UNBIAS;
      for (let c = 0; c < ev; c++) store<f32>(out + (<usize>c << 2), load<f32>(out + (<usize>c << 2)) + wt * load1<u16>(vj, c));
      store<f32>(w + (<usize>j << 2), 0);
    }
  }
  let c = 0;
  for (; c + 32 <= ev; c += 32) {
    const o = out + (<usize>c << 2);
    let a0 = v128.load(o), a1 = v128.load(o, 16), a2 = v128.load(o, 32), a3 = v128.load(o, 48);
    let a4 = v128.load(o, 64), a5 = v128.load(o, 80), a6 = v128.load(o, 96), a7 = v128.load(o, 112);
    for (let j = 0; j < n; j++) {
      const wj = load<f32>(w + (<usize>j << 2));
      if (wj == 0) continue;
      const vj = v + <usize>j * row + <usize>c * sizeof<T>();
      const x = f32x4.splat(wj);
      if (sizeof<T>() == 4) {
        a0 = madd4(x, v128.load(vj), a0); a1 = madd4(x, v128.load(vj, 16), a1);
        a2 = madd4(x, v128.load(vj, 32), a2); a3 = madd4(x, v128.load(vj, 48), a3);
        a4 = madd4(x, v128.load(vj, 64), a4); a5 = madd4(x, v128.load(vj, 80), a5);
        a6 = madd4(x, v128.load(vj, 96), a6); a7 = madd4(x, v128.load(vj, 112), a7);
      } else if (sizeof<T>() == 2) {
        const h0 = v128.load(vj), h1 = v128.load(vj, 16), h2 = v128.load(vj, 32), h3 = v128.load(vj, 48);
        a0 = madd4(x, halfLowScaled(h0), a0); a1 = madd4(x, halfHighScaled(h0), a1);
        a2 = madd4(x, halfLowScaled(h1), a2); a3 = madd4(x, halfHighScaled(h1), a3);
        a4 = madd4(x, halfLowScaled(h2), a4); a5 = madd4(x, halfHighScaled(h2), a5);
        a6 = madd4(x, halfLowScaled(h3), a6); a7 = madd4(x, halfHighScaled(h3), a7);
      } else {
        const b0 = v128.load(vj), b1 = v128.load(vj, 16);
        a0 = madd4(x, int8Quarter0(b0), a0); a1 = madd4(x, int8Quarter1(b0), a1);
        a2 = madd4(x, int8Quarter2(b0), a2); a3 = madd4(x, int8Quarter3(b0), a3);
        a4 = madd4(x, int8Quarter0(b1), a4); a5 = madd4(x, int8Quarter1(b1), a5);
        a6 = madd4(x, int8Quarter2(b1), a6); a7 = madd4(x, int8Quarter3(b1), a7);
      }
    }
    v128.store(o, a0); v128.store(o, a1, 16); v128.store(o, a2, 32); v128.store(o, a3, 48);
    v128.store(o, a4, 64); v128.store(o, a5, 80); v128.store(o, a6, 96); v128.store(o, a7, 112);
  }
  for (; c + 16 <= ev; c += 16) {
    const o = out + (<usize>c << 2);
    let a0 = v128.load(o), a1 = v128.load(o, 16), a2 = v128.load(o, 32), a3 = v128.load(o, 48);
    for (let j = 0; j < n; j++) {
      const wj = load<f32>(w + (<usize>j << 2));
      if (wj == 0) continue;
      const vj = v + <usize>j * row + <usize>c * sizeof<T>();
      const x = f32x4.splat(wj);
      if (sizeof<T>() == 4) {
        a0 = madd4(x, v128.load(vj), a0); a1 = madd4(x, v128.load(vj, 16), a1);
        a2 = madd4(x, v128.load(vj, 32), a2); a3 = madd4(x, v128.load(vj, 48), a3);
      } else if (sizeof<T>() == 2) {
        const h0 = v128.load(vj), h1 = v128.load(vj, 16);
        a0 = madd4(x, halfLowScaled(h0), a0); a1 = madd4(x, halfHighScaled(h0), a1);
        a2 = madd4(x, halfLowScaled(h1), a2); a3 = madd4(x, halfHighScaled(h1), a3);
      } else {
        const b = v128.load(vj);
        a0 = madd4(x, int8Quarter0(b), a0); a1 = madd4(x, int8Quarter1(b), a1);
        a2 = madd4(x, int8Quarter2(b), a2); a3 = madd4(x, int8Quarter3(b), a3);
      }
    }
    v128.store(o, a0); v128.store(o, a1, 16); v128.store(o, a2, 32); v128.store(o, a3, 48);
  }
  accumulateColumns<T>(out, w, v, n, ev, c);
}

/**
 * Columns c .. ev of accumulateRun (fewer than 16): four at a time, then single ones. binary16 rows
 * are read scaled by 2^-112 (accumulateRun has put the rebias in the weights).
 */
// @ts-ignore: decorator
@inline function accumulateColumns<T>(out: usize, w: usize, v: usize, n: i32, ev: i32, c: i32): void {
  const row = <usize>ev * sizeof<T>();
  for (; c + 4 <= ev; c += 4) {
    const o = out + (<usize>c << 2);
    let a = v128.load(o);
    for (let j = 0; j < n; j++) {
      const wj = load<f32>(w + (<usize>j << 2));
      if (wj != 0) a = madd4(f32x4.splat(wj), sizeof<T>() == 2 ? loadScaled4(v + <usize>j * row, c) : load4<T>(v + <usize>j * row, c), a);
    }
    v128.store(o, a);
  }
  for (; c < ev; c++) {
    let a = load<f32>(out + (<usize>c << 2));
    for (let j = 0; j < n; j++) {
      const wj = load<f32>(w + (<usize>j << 2));
      if (wj != 0) a += wj * (sizeof<T>() == 2 ? loadScaled1(v + <usize>j * row, c) : load1<T>(v + <usize>j * row, c));
    }
    store<f32>(out + (<usize>c << 2), a);
  }
}

/**
 * Reads one float of every 64-byte line of the `bytes` at p and returns their sum: touching the next
 * block run while the current one is computed starts its memory traffic early where the hardware
 * prefetcher cannot: at a jump to a block that is not the next one in memory. A sequence's
 * consecutive blocks are one stream (each kv head's blocks lie side by side), which the prefetcher
 * follows better than any touch (touching them too slowed long sequences down). Every line of the
 * next block is touched, not one in four: that ran faster.
 */
// @ts-ignore: decorator
@inline function touch(p: usize, bytes: usize): f32 {
  let s: f32 = 0;
  for (let o: usize = 0; o < bytes; o += 64) s += load<f32>(p + o);
  return s;
}

/**
 * Softmax of one head's n scores in place, times `post` (a power of two, so the weights' bits are
 * the softmax's times it), with an optional sink logit in the denominator. Returns 0 when the row has
 * weights, 1 when nothing is allowed (a zero row), 2 when a NaN makes it NaN.
 */
// @ts-ignore: decorator
@inline function softmaxWithSink(s: usize, n: i32, hasSink: bool, sink: f32, post: f32): i32 {
  let m = rowMax(s, n);
  if (m == -Infinity) {
    // rowMax may skip NaN lanes; a NaN score makes the row NaN, as in scaledDotProductAttention
    for (let j = 0; j < n; j++) if (isNaN(load<f32>(s + (<usize>j << 2)))) return 2;
    if (!hasSink) return 1;
  }
  m = max<f32>(m, sink);
  let sum = expShiftSum(s, s, m, n, 0, 0, 0, 0, 1);
  if (hasSink) sum += exp1(sink - m);
  scale(s, post / sum, n);
  return 0;
}

/**
 * Scores of the group's query heads against n key rows of T at k (their int8 scales or binary16
 * flags at rowScales, a float a row): head x's query is the row of e floats at q + x · e floats (for
 * int8, its 16-bit copy at q16 + x · q16Row with its scale at qScales, see quantizeQuery16), its
 * scores go to s + x · stride. float32 rows go two heads at a time (scorePairF32), an odd last one
 * alone; binary16 and int8 rows one head at a time (scoreRun, scoreRunInt8).
 */
// @ts-ignore: decorator
@inline function scoreGroup<T>(s: usize, stride: usize, q: usize, k: usize, rowScales: usize, n: i32, e: i32, group: i32, scale_: f32, q16: usize, q16Row: usize, qScales: usize): void {
  let x = 0;
  if (sizeof<T>() == 4) {
    for (; x + 2 <= group; x += 2) {
      const sx = s + <usize>x * stride, qx = q + (<usize>(x * e) << 2);
      scorePairF32(sx, sx + stride, qx, qx + (<usize>e << 2), k, n, e, scale_);
    }
  }
  for (; x < group; x++) {
    const sx = s + <usize>x * stride;
    if (sizeof<T>() == 1) {
      const qs = load<f32>(qScales + (<usize>x << 2));
      if (qs >= 0) {
        scoreRunInt8(sx, q16 + <usize>x * q16Row, k, n, e, scale_ * qs, rowScales);
        continue;
      }
    }
    scoreRun<T>(sx, q + (<usize>(x * e) << 2), k, n, e, scale_, rowScales);
  }
}

/**
 * scoreGroup over float32 rows widened from a binary16 or int8 run (a call per WIDE_ROWS rows, not
 * inlined: the float32 pools' own loops stay inline in pagedAttention).
 */
function scoreGroupF32(s: usize, stride: usize, q: usize, k: usize, n: i32, e: i32, group: i32, scale_: f32): void {
  scoreGroup<f32>(s, stride, q, k, 0, n, e, group, scale_, 0, 0, 0);
}

/**
 * out rows of the group's heads (ev floats each, one after another) += weights (head x's at w + x ·
 * stride) times n value rows of T at v (rowScales as in scoreGroup), leaving out a head whose row has
 * no weights (done[x] != 0): float32 rows two heads at a time while neither is done
 * (accumulatePairF32), then one head at a time (accumulateRun).
 */
// @ts-ignore: decorator
@inline function accumulateGroup<T>(out: usize, w: usize, stride: usize, done: usize, v: usize, rowScales: usize, n: i32, ev: i32, group: i32): void {
  let x = 0;
  if (sizeof<T>() == 4) {
    for (; x + 2 <= group; x += 2) {
      if (load<i32>(done + (<usize>x << 2)) != 0 || load<i32>(done + (<usize>x << 2), 4) != 0) break;
      const wx = w + <usize>x * stride, ox = out + (<usize>(x * ev) << 2);
      accumulatePairF32(ox, ox + (<usize>ev << 2), wx, wx + stride, v, n, ev);
    }
  }
  for (; x < group; x++) {
    if (load<i32>(done + (<usize>x << 2)) != 0) continue;
    accumulateRun<T>(out + (<usize>(x * ev) << 2), w + <usize>x * stride, v, n, ev, rowScales);
  }
}

/** accumulateGroup over float32 rows widened from a binary16 or int8 run (not inlined, as scoreGroupF32). */
function accumulateGroupF32(out: usize, w: usize, stride: usize, done: usize, v: usize, n: i32, ev: i32, group: i32): void {
  accumulateGroup<f32>(out, w, stride, done, v, 0, n, ev, group);
}

/**
 * One pass of a unit over its allowed positions lo .. hi: the keys (every head's scores into its row
 * at s + x · stride) or, when `values`, the values (out += the weights in those rows times them). It
 * goes a run at a time (consecutive slots of one block, at most RUN_ROWS), which every head of the
 * group reads while it is in cache. The rows are the KV view's (inline/kvView.ts): the kv head's
 * first row at `head`, d elements of T a row, the sequence's blocks of bs rows in `table`; a row's
 * int8 scale or binary16 flag is at the same row index from `scales`. With `widen`, a run is widened
 * into float32 rows at `wide`, WIDE_ROWS at a time, first. q to qScales are the keys' pass's
 * (scoreGroup), out and done the values' (accumulateGroup). Returns the sum of what touch read.
 */
// @ts-ignore: decorator
@inline function pagedPass<T>(
  values: bool, head: usize, scales: usize, d: i32, table: usize, bs: i32, lo: i32, hi: i32,
  s: usize, stride: usize, group: i32, widen: bool, wide: usize,
  q: usize, scale_: f32, q16: usize, q16Row: usize, qScales: usize, out: usize, done: usize,
): f32 {
  const ld = <usize>d * sizeof<T>();
  let touched: f32 = 0;
  for (let j = lo, block = kvBlockOf(table, bs, lo), slot = lo - block * bs; j < hi;) {
    const run = min(min(bs - slot, hi - j), RUN_ROWS);
    const rows = kvSlot(head, table, bs, ld, block, slot), rowScales = kvSlot(scales, table, bs, 4, block, slot);
    // the run ends its block and the next block is elsewhere in memory: start reading it (touch)
    if (slot + run == bs && j + run < hi && !kvNextAdjacent(table, block)) {
      touched += touch(kvSlot(head, table, bs, ld, block + 1, 0), <usize>min(bs, hi - j - run) * ld);
    }
    const sj = s + (<usize>(j - lo) << 2);
    if (widen) {
      for (let r = 0; r < run; r += WIDE_ROWS) {
        const m = min(WIDE_ROWS, run - r), sr = sj + (<usize>r << 2);
        widenRunRows<T>(wide, rows + <usize>r * ld, rowScales + (<usize>r << 2), m, d);
        if (values) accumulateGroupF32(out, sr, stride, done, wide, m, d, group);
        else scoreGroupF32(sr, stride, q, wide, m, d, group, scale_);
      }
    } else if (values) {
      accumulateGroup<T>(out, sj, stride, done, rows, rowScales, run, d, group);
    } else {
      scoreGroup<T>(sj, stride, q, rows, rowScales, run, d, group, scale_, q16, q16Row, qScales);
    }
    j += run;
    slot += run;
    if (slot == bs) { block++; slot = 0; }
  }
  return touched;
}

/**
 * @param out      f32 [t, hq, ev]
 * @param scratch  f32 [paged_scratch_f32(longest kvLength, ev, hq / hkv)]
 * @param q        f32 [t, hq, e] (already turned by rotary)
 * @param kPool    [hkv, blocks, bs, e] in the pool's format;  vPool: [hkv, blocks, bs, ev]
 * @param kScales,vScales  f32 [hkv, blocks, bs]: int8's row scales, binary16's flags (1: the row holds
 *                 an Infinity or a NaN); 0 for float32
 * @param headRows rows of one kv head in the pool: blocks · bs
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
  hq: i32, hkv: i32, e: i32, ev: i32, bs: i32, headRows: i32, scale_: f32, softcap: f32, causal: i32, left: i32, right: i32,
  alibi: usize, sinks: usize, maxLength: i32, unitStart: i32, unitEnd: i32,
): void {
  const group = hq / hkv;
  const stride = <usize>((maxLength + 3) & ~3) << 2; // bytes between the heads' score rows
  const done = scratch + <usize>group * stride; // i32 per head: 1 when its row needs no values' pass
  // int8 pools: each head's query in 16 bits (rows of e rounded up to 8), then the heads' scales
  const q16 = (done + (<usize>(group + 1) << 2) + 15) & ~15, q16Row = <usize>((e + 7) & ~7) << 1;
  const qScales = q16 + <usize>group * q16Row;
  // binary16 or int8 with many heads a kv head: each run widened once, WIDE_ROWS rows at a time, here
  const widen = sizeof<T>() != 4 && group >= WIDEN_MIN_GROUP;
  const wide = (qScales + (<usize>group << 2) + 15) & ~15;
  for (let unit = unitStart; unit < unitEnd; unit++) {
    const g = unit % hkv, h0 = g * group;
    const info = rowInfo + <usize>(unit / hkv) * PAGED_ROW_BYTES;
    const t = load<i32>(info + PAGED_ROW_TOKEN), tableAt = load<i32>(info + PAGED_ROW_TABLE_AT);
    const length = load<i32>(info + PAGED_ROW_KV_LENGTH), p = load<i32>(info + PAGED_ROW_POSITION);
    const o0 = out + (<usize>(t * hq + h0) * <usize>ev << 2), q0 = q + (<usize>(t * hq + h0) * <usize>e << 2);
    zero(o0, group * ev);
    const lo = keyLo(p, left), hi = keyHi(p, causal == 0 ? CAUSAL_NONE : CAUSAL_TOP_LEFT, length, right);
    if (lo >= hi) continue; // no position allowed: zero rows (a sink alone has no value)
    const n = hi - lo;
    // the KV view of kv head g: its rows (headRows of them) and their scales or flags, the sequence's blocks
    const kHead = kPool + <usize>(g * headRows) * (<usize>e * sizeof<T>()), vHead = vPool + <usize>(g * headRows) * (<usize>ev * sizeof<T>());
    const kHeadScales = kScales + (<usize>(g * headRows) << 2), vHeadScales = vScales + (<usize>(g * headRows) << 2);
    const table = tables + (<usize>tableAt << 2);
    if (sizeof<T>() == 1 && !widen) for (let x = 0; x < group; x++) store<f32>(qScales + (<usize>x << 2), quantizeQuery16(q16 + <usize>x * q16Row, q0 + (<usize>(x * e) << 2), e));
    // scores: every head of the group against each run of keys while it is in cache
    let touched = pagedPass<T>(false, kHead, kHeadScales, e, table, bs, lo, hi, scratch, stride, group, widen, wide, q0, scale_, q16, q16Row, qScales, o0, done);
    for (let x = 0; x < group; x++) {
      const s = scratch + <usize>x * stride, h = h0 + x;
      if (softcap > 0) softcapRow(s, n, softcap);
      if (alibi != 0) alibiRow(s, 0, n, load<f32>(alibi + (<usize>h << 2)), p, lo);
      // binary16 values are read times 2^-112 (unless widened): their weights take the 2^112 here, in the softmax's scaling pass
      const state = softmaxWithSink(s, n, sinks != 0, sinks != 0 ? load<f32>(sinks + (<usize>h << 2)) : -Infinity, sizeof<T>() == 2 && !widen ? HALF_REBIAS : 1);
      // a row with no weights is left out of the values' pass: zeros, or NaN
      if (state == 2) for (let c = 0; c < ev; c++) store<f32>(o0 + (<usize>(x * ev + c) << 2), NaN);
      store<i32>(done + (<usize>x << 2), state != 0 ? 1 : 0);
    }
    // output = sum_j w_j v_j, run by run (a zero weight skips its value, so a NaN there cannot leak)
    touched += pagedPass<T>(true, vHead, vHeadScales, ev, table, bs, lo, hi, scratch, stride, group, widen, wide, q0, scale_, q16, q16Row, qScales, o0, done);
    store<f32>(done + (<usize>group << 2), touched);
  }
}

/** The paged attention kernel over a float32 pool; the _f16 and _i8 exports read binary16 and int8 pools (kScales/vScales: see pagedAttention). */
export function paged_attention_f32(
  out: usize, scratch: usize, q: usize, kPool: usize, vPool: usize, kScales: usize, vScales: usize, tables: usize, rowInfo: usize,
  hq: i32, hkv: i32, e: i32, ev: i32, bs: i32, headRows: i32, scale_: f32, softcap: f32, causal: i32, left: i32, right: i32,
  alibi: usize, sinks: usize, maxLength: i32, unitStart: i32, unitEnd: i32,
): void {
  pagedAttention<f32>(out, scratch, q, kPool, vPool, kScales, vScales, tables, rowInfo, hq, hkv, e, ev, bs, headRows, scale_, softcap, causal, left, right, alibi, sinks, maxLength, unitStart, unitEnd);
}

export function paged_attention_f16(
  out: usize, scratch: usize, q: usize, kPool: usize, vPool: usize, kScales: usize, vScales: usize, tables: usize, rowInfo: usize,
  hq: i32, hkv: i32, e: i32, ev: i32, bs: i32, headRows: i32, scale_: f32, softcap: f32, causal: i32, left: i32, right: i32,
  alibi: usize, sinks: usize, maxLength: i32, unitStart: i32, unitEnd: i32,
): void {
  pagedAttention<u16>(out, scratch, q, kPool, vPool, kScales, vScales, tables, rowInfo, hq, hkv, e, ev, bs, headRows, scale_, softcap, causal, left, right, alibi, sinks, maxLength, unitStart, unitEnd);
}

export function paged_attention_i8(
  out: usize, scratch: usize, q: usize, kPool: usize, vPool: usize, kScales: usize, vScales: usize, tables: usize, rowInfo: usize,
  hq: i32, hkv: i32, e: i32, ev: i32, bs: i32, headRows: i32, scale_: f32, softcap: f32, causal: i32, left: i32, right: i32,
  alibi: usize, sinks: usize, maxLength: i32, unitStart: i32, unitEnd: i32,
): void {
  pagedAttention<i8>(out, scratch, q, kPool, vPool, kScales, vScales, tables, rowInfo, hq, hkv, e, ev, bs, headRows, scale_, softcap, causal, left, right, alibi, sinks, maxLength, unitStart, unitEnd);
}
