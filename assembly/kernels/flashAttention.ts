// Fused scaled dot-product attention without the weights: tiles of queries against tiles of keys
// with an online softmax (running max m and sum l per query row), so that memory beyond inputs and
// outputs is one packed K panel set per kv head plus O(tile), never O(Lq·Lk).
// see: FlashAttention-2 (Dao, 2023), Algorithm 1.
//
// Per kv head, K is packed once into 16-key panels, transposed so that a panel row holds one
// feature of 16 consecutive keys (zero-padded past lk):
//
//   Kp[panel][t][0..16) = K[panel·16 + c][t]        c = 0..15
//
// Two query rows r0, r1 then go through key blocks of BLOCK keys (eight panels; smaller blocks ran
// slower):
//
//   S[2][BLOCK]  = scale · Q[r0, r1] · Kpᵀ      2×16 register tile: 4 panel loads + 2 splats -> 8 FMAs per t
//   S            = softcap, mask, key range (-inf outside [lo, hi) of each row)
//   m' = max(m, ⌈rowmax S⌉),  α = e^(m - m'),  P = e^(S - m'),  l = α·l + Σ P   (P by exp2Softmax4)
//   O[2][ev]     = α·O + P · V[block]           2×16 register tile over the block's keys
//
// and at the end out = O / l. Causal and window ranges skip whole blocks: only keys in the union
// of the two rows' ranges are visited, so a causal call costs about half a full one.
//
// Most blocks take a shorter way (FlashAttention-3's lazy rescaling): once a row has its m, a block
// of whole panels with nothing to add to its scores keeps m while its scores stay within LAZY_SLACK
// of it (weights up to 2^8), and each panel's P is taken as it is scored, from the registers
// (scorePanel): no pass over S, no α. m is kept an integer, so that the exp folds it into its
// rounding (exp2Shifted4). A panel that rises further stays raw, and finishLazyBlock moves m for
// the block.
//
// When a kv head's packed keys and values outgrow CHUNK_BYTES, the keys go in chunks of that size,
// and a segment of up to SEGMENT_UNITS pairs goes through each chunk before the next, each pair's O
// and row state kept in its slot of scratch: a chunk is read from the cache by every pair of the
// segment, not from memory by each pair.
//
//                 chunk 0        chunk 1        chunk 2
//   pair u      [blocks.....] [blocks.....] [blocks..]  -> out      slot u: O[2][ev], m, l, ...
//   pair u + 1  [blocks.....] [blocks.....] [blocks..]  -> out      slot u + 1
//   ...         (down a chunk first, then the next chunk)
//
// A pair's blocks split at chunk boundaries only, the same whichever thread computes it, so its bits
// do not depend on the thread count; one chunk (a head that fits) is one pair a segment.
//
// K and V are read through the KV view (inline/kvView.ts): tensors and a KVCache where they lie, or
// a KV pool's blocks through a block table; binary16 and int8 keys are widened as they are packed,
// and a kv head's values widened once into scratch (a prompt reads each value many times).
import { exp2NonPositive4, exp2Shifted4, exp2Softmax4, shiftedExpMagic } from '../inline/exp';
import { alibiRow, applyMask, MASK_NONE, softcapRow } from '../inline/scores';
import { keyHi, keyLo, queryPosition } from '../inline/keyRange';
import { hmax4, hsum4, madd4 } from '../inline/simd';
import { packPanel } from '../inline/panels';
import { kvBlockOf, kvBlockRows, kvBlocksSpanned, kvFormat, kvRow, kvRowIndex, kvRunEnd, kvRunLength, kvSlot, kvTable } from '../inline/kvView';
import { load1, load4 } from '../inline/kvFormats';
import { rowMax, scale, zero } from '../inline/rows';
import { KV_F16, KV_F32, LAYOUT_K, LAYOUT_KV_K_SCALES, LAYOUT_KV_V_SCALES, LAYOUT_OUT, LAYOUT_Q, LAYOUT_V, STRIDE_BATCH, STRIDE_HEAD, STRIDE_ROW } from '../layout';

// @ts-ignore: decorator
@inline const PANEL: i32 = 16;
// @ts-ignore: decorator
@inline const LOG2E: f32 = 1.44269504088896341;
// @ts-ignore: decorator
@inline const BLOCK: i32 = 128;
/** How far (in base 2) a block's scores may rise above a row's running max before it moves: weights stay <= 2^8. */
// @ts-ignore: decorator
@inline const LAZY_SLACK: f32 = 8;
/** The largest |m| for which scorePanel's exp folds m into its rounding (exp2Shifted4). */
// @ts-ignore: decorator
@inline const LAZY_MAX_M: f32 = 2097152;

/**
 * Floats of scratch flash_attention_f32 needs (per thread): the packed K of one kv head, S and O for
 * two rows, row state; and for a view of binary16 or int8 rows (`format`), that kv head's values
 * widened to float32.
 */
export function flash_scratch_f32(lk: i32, e: i32, ev: i32, format: i32): i32 {
  const panels = (lk + PANEL - 1) / PANEL;
  const wide = format != KV_F32 ? (lk * ev + 3) & ~3 : 0, segment = lk > chunkKeys(e, ev) ? SEGMENT_UNITS * (slotBytes(ev) >> 2) : 0;
  return panels * PANEL * e + 2 * BLOCK + (slotBytes(ev) >> 2) + 24 + wide + segment;
}

/**
 * Keys per chunk: as many blocks as keep a chunk's packed keys and values (e + ev floats a key)
 * within CHUNK_BYTES, so that the pairs of a segment read them from the cache.
 */
// @ts-ignore: decorator
@inline function chunkKeys(e: i32, ev: i32): i32 {
  return max(BLOCK, CHUNK_BYTES / ((e + ev) << 2) / BLOCK * BLOCK);
}

/** Bytes of one pair's state: O for both rows (ev floats each, padded to 4), then two rows' (m, l, zero flag, α). */
// @ts-ignore: decorator
@inline function slotBytes(ev: i32): i32 {
  return 8 * ((ev + 3) & ~3) + 2 * ROW_STATE_BYTES;
}

/** The bytes of packed keys and values a chunk of keys may take (see chunkKeys). */
// @ts-ignore: decorator
@inline const CHUNK_BYTES: i32 = 512 << 10;
/** Pairs of query rows that go through each chunk of keys together, each with its state in scratch. */
// @ts-ignore: decorator
@inline const SEGMENT_UNITS: i32 = 64;
/** Byte offsets in one row's state: the running max m, the running sum l, the any-zero flag, α = e^(m_old - m). */
// @ts-ignore: decorator
@inline const ROW_M: i32 = 0;
// @ts-ignore: decorator
@inline const ROW_L: i32 = 4;
// @ts-ignore: decorator
@inline const ROW_ZERO: i32 = 8;
// @ts-ignore: decorator
@inline const ROW_ALPHA: i32 = 12;
// @ts-ignore: decorator
@inline const ROW_STATE_BYTES: i32 = 16;

/**
 * Packs one kv head's lk keys of e floats (the KV view's rows from `head`, ld bytes apart inside a
 * run) into 16-key panels [panels][e][16], zero-padded. A panel whose 16 keys lie in one run goes
 * through packPanel; one that straddles two blocks of a pool (block sizes that are not a multiple
 * of 16) is gathered a key at a time.
 */
function packKeys(kPanels: usize, head: usize, table: usize, rows: i32, ld: usize, lk: i32, e: i32): void {
  const panels = (lk + PANEL - 1) / PANEL;
  for (let p = 0; p < panels; p++) {
    const dst = kPanels + <usize>p * <usize>(PANEL * e) * 4, j0 = p * PANEL, n = min(PANEL, lk - j0);
    if (kvRunEnd(table, rows, j0, j0 + n) == j0 + n) {
      packPanel(dst, kvRow(head, table, rows, ld, j0), n, e, <i32>(ld >> 2));
      continue;
    }
    for (let c = 0; c < PANEL; c++) {
      const src = c < n ? kvRow(head, table, rows, ld, j0 + c) : 0;
      for (let t = 0; t < e; t++) store<f32>(dst + (<usize>(t * PANEL + c) << 2), c < n ? load<f32>(src + (<usize>t << 2)) : 0);
    }
  }
}

/**
 * packKeys for a view of binary16 or int8 rows (T = u16 or i8, read by inline/kvFormats.ts's
 * loaders; an int8 row times its float32 scale at scales + row index · 4): each key is widened once,
 * into its panel's column.
 */
function packKeysWidened<T>(kPanels: usize, head: usize, scales: usize, table: usize, rows: i32, ld: usize, lk: i32, e: i32): void {
  const panels = (lk + PANEL - 1) / PANEL, e4 = e & ~3;
  for (let p = 0; p < panels; p++) {
    const dst = kPanels + <usize>p * <usize>(PANEL * e) * 4, j0 = p * PANEL, n = min(PANEL, lk - j0);
    for (let c = 0; c < PANEL; c++) {
      const col = dst + (<usize>c << 2);
      if (c >= n) {
        for (let t = 0; t < e; t++) store<f32>(col + <usize>(t * PANEL) * 4, 0);
        continue;
      }
      const at = kvRowIndex(table, rows, j0 + c), src = head + <usize>at * ld;
      const sc: f32 = sizeof<T>() == 1 ? load<f32>(scales + (<usize>at << 2)) : 1;
      let t = 0;
      for (; t < e4; t += 4) {
        const x = f32x4.mul(load4<T>(src, t), f32x4.splat(sc)), to = col + <usize>(t * PANEL) * 4;
        store<f32>(to, f32x4.extract_lane(x, 0)); store<f32>(to, f32x4.extract_lane(x, 1), PANEL * 4);
        store<f32>(to, f32x4.extract_lane(x, 2), 2 * PANEL * 4); store<f32>(to, f32x4.extract_lane(x, 3), 3 * PANEL * 4);
      }
      for (; t < e; t++) store<f32>(col + <usize>(t * PANEL) * 4, load1<T>(src, t) * sc);
    }
  }
}

/** Rows 0 .. lk of a binary16 or int8 view (as in packKeysWidened) as float32 rows of ev at dst, ev floats apart. */
function widenViewRows<T>(dst: usize, head: usize, scales: usize, table: usize, rows: i32, ld: usize, lk: i32, ev: i32): void {
  const ev4 = ev & ~3;
  for (let j = 0; j < lk; j++) {
    const at = kvRowIndex(table, rows, j), src = head + <usize>at * ld, to = dst + (<usize>(j * ev) << 2);
    const sc: f32 = sizeof<T>() == 1 ? load<f32>(scales + (<usize>at << 2)) : 1;
    let t = 0;
    for (; t < ev4; t += 4) v128.store(to + (<usize>t << 2), f32x4.mul(load4<T>(src, t), f32x4.splat(sc)));
    for (; t < ev; t++) store<f32>(to + (<usize>t << 2), load1<T>(src, t) * sc);
  }
}

/**
 * S rows [s0, s1] (16 floats at each) = scale · (q0 · panel, q1 · panel) over e features, and when
 * `lazy` (the rows' running maxima m0, m1 are set), their softmax weights in the same pass: when every score
 * of both rows is at most LAZY_SLACK above its row's m, the panel's P = 2^(s - m) is stored in place
 * of S, its sums added to the v128s at sums and sums + 16 (and, when `trackZeros`, its zero weights
 * flagged at sums + 32 and sums + 48), and it returns true. Otherwise (always when not `lazy`)
 * the scores are stored, the lane maxima of each row folded into the v128s at mx and mx + 16 (valid
 * only for fully allowed panels), and it returns false. Keeping m while the scores stay near it is
 * FlashAttention-3's lazy rescaling: weights may exceed 1, by at most 2^LAZY_SLACK, and most blocks
 * need no rescaling of O (finishLazyBlock completes a block that has panels of scores).
 */
// @ts-ignore: decorator
@inline function scorePanel(s0: usize, s1: usize, q0: usize, q1: usize, panel: usize, e: i32, sc: v128, mx: usize, lazy: bool, m0: f32, m1: f32, sums: usize, trackZeros: bool): bool {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  let kt = panel; // feature t of the panel's 16 keys
  for (let t = 0; t < e; t++) {
    const k0 = v128.load(kt), k1 = v128.load(kt, 16), k2 = v128.load(kt, 32), k3 = v128.load(kt, 48);
    const x = v128.load32_splat(q0 + (<usize>t << 2)), y = v128.load32_splat(q1 + (<usize>t << 2));
    a0 = madd4(x, k0, a0); a1 = madd4(x, k1, a1); a2 = madd4(x, k2, a2); a3 = madd4(x, k3, a3);
    b0 = madd4(y, k0, b0); b1 = madd4(y, k1, b1); b2 = madd4(y, k2, b2); b3 = madd4(y, k3, b3);
    kt += PANEL * 4;
  }
  a0 = f32x4.mul(a0, sc); a1 = f32x4.mul(a1, sc); a2 = f32x4.mul(a2, sc); a3 = f32x4.mul(a3, sc);
  b0 = f32x4.mul(b0, sc); b1 = f32x4.mul(b1, sc); b2 = f32x4.mul(b2, sc); b3 = f32x4.mul(b3, sc);
  const top0 = f32x4.pmax(f32x4.pmax(a0, a1), f32x4.pmax(a2, a3)), top1 = f32x4.pmax(f32x4.pmax(b0, b1), f32x4.pmax(b2, b3));
  // false for a score above the limit (+Infinity included); a NaN that pmax drops gives NaN weights
  if (!lazy || !i32x4.all_true(v128.and(f32x4.le(top0, f32x4.splat(m0 + LAZY_SLACK)), f32x4.le(top1, f32x4.splat(m1 + LAZY_SLACK))))) {
    v128.store(s0, a0); v128.store(s0, a1, 16); v128.store(s0, a2, 32); v128.store(s0, a3, 48);
    v128.store(s1, b0); v128.store(s1, b1, 16); v128.store(s1, b2, 32); v128.store(s1, b3, 48);
    v128.store(mx, f32x4.pmax(v128.load(mx), top0));
    v128.store(mx, f32x4.pmax(v128.load(mx, 16), top1), 16);
    return false;
  }
  const c0 = f32x4.splat(shiftedExpMagic(m0)), lo0 = f32x4.splat(m0 - 127), c1 = f32x4.splat(shiftedExpMagic(m1)), lo1 = f32x4.splat(m1 - 127);
  a0 = exp2Shifted4(a0, c0, lo0); a1 = exp2Shifted4(a1, c0, lo0); a2 = exp2Shifted4(a2, c0, lo0); a3 = exp2Shifted4(a3, c0, lo0);
  b0 = exp2Shifted4(b0, c1, lo1); b1 = exp2Shifted4(b1, c1, lo1); b2 = exp2Shifted4(b2, c1, lo1); b3 = exp2Shifted4(b3, c1, lo1);
  v128.store(s0, a0); v128.store(s0, a1, 16); v128.store(s0, a2, 32); v128.store(s0, a3, 48);
  v128.store(s1, b0); v128.store(s1, b1, 16); v128.store(s1, b2, 32); v128.store(s1, b3, 48);
  v128.store(sums, f32x4.add(v128.load(sums), f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3))));
  v128.store(sums, f32x4.add(v128.load(sums, 16), f32x4.add(f32x4.add(b0, b1), f32x4.add(b2, b3))), 16);
  if (trackZeros) {
    const z = f32x4.splat(0);
    v128.store(sums, v128.or(v128.load(sums, 32), v128.or(v128.or(f32x4.eq(a0, z), f32x4.eq(a1, z)), v128.or(f32x4.eq(a2, z), f32x4.eq(a3, z)))), 32);
    v128.store(sums, v128.or(v128.load(sums, 48), v128.or(v128.or(f32x4.eq(b0, z), f32x4.eq(b1, z)), v128.or(f32x4.eq(b2, z), f32x4.eq(b3, z)))), 48);
  }
  return true;
}

/**
 * Completes one row of a block that scorePanel left partly raw (the panels whose bit is set in
 * `raw` hold scores, the others weights against the row's m): the row's max moves to m' = max(m,
 * the raw panels' max `rawMax`), the weights already taken are scaled by α = 2^(m - m'), the raw
 * panels' weights are 2^(s - m'), and the state gets m', α, l = α·(l + fitSum's lanes) + the raw
 * panels' sum, and the zero flag (when `trackZeros`, over the whole block).
 */
function finishLazyBlock(s: usize, np: i32, raw: i32, state: usize, rawMax: f32, fitSum: v128, trackZeros: bool): void {
  // m is set (scorePanel's lazy blocks need it), so beginRow only moves it and stores α
  beginRow(s, np * PANEL, state, rawMax);
  const mNew = load<f32>(state, ROW_M), alpha = load<f32>(state, ROW_ALPHA);
  const va = f32x4.splat(alpha), vm = f32x4.splat(mNew), z = f32x4.splat(0);
  let sum = f32x4.splat(0), zeros = z;
  for (let p = 0; p < np; p++) {
    const at = s + <usize>(p * PANEL) * 4;
    for (let c = 0; c < PANEL * 4; c += 16) {
      const x = v128.load(at + <usize>c);
      const w = (raw >> p) & 1 ? exp2Softmax4(f32x4.sub(x, vm)) : f32x4.mul(x, va);
      v128.store(at + <usize>c, w);
      if ((raw >> p) & 1) sum = f32x4.add(sum, w);
      if (trackZeros) zeros = v128.or(zeros, f32x4.eq(w, z));
    }
  }
  store<f32>(state, alpha * (load<f32>(state, ROW_L) + hsum4(fitSum)) + hsum4(sum), ROW_L);
  if (v128.any_true(zeros)) store<f32>(state, 1, ROW_ZERO);
}

/**
 * O rows [o0, o1] (ev floats) = α·O + P · V over the n keys from j0, where P rows are p0, p1 and V
 * rows are the KV view's from `head` (ldv bytes apart inside a run; every loop over the keys goes a
 * run at a time, its accumulators carried across, so that the sums are those of one run). When
 * `careful`, keys of zero weight are skipped row by row, so that a NaN or infinite value that a row
 * gives no weight cannot reach it.
 */
function accumulateValues(o0: usize, o1: usize, alpha0: f32, alpha1: f32, p0: usize, p1: usize, head: usize, table: usize, rows: i32, ldv: usize, j0: i32, n: i32, ev: i32, careful: bool): void {
  const al0 = f32x4.splat(alpha0), al1 = f32x4.splat(alpha1);
  // V row j0 + j is slot `slot` of block `block` (inline/kvView.ts: one run without a table)
  const block0 = kvBlockOf(table, rows, j0), slot0 = j0 - block0 * rows;
  let c = 0;
  for (; c + 16 <= ev; c += 16) {
    const co = <usize>c << 2;
    let a0 = f32x4.mul(v128.load(o0 + co), al0), a1 = f32x4.mul(v128.load(o0 + co, 16), al0);
    let a2 = f32x4.mul(v128.load(o0 + co, 32), al0), a3 = f32x4.mul(v128.load(o0 + co, 48), al0);
    let b0 = f32x4.mul(v128.load(o1 + co), al1), b1 = f32x4.mul(v128.load(o1 + co, 16), al1);
    let b2 = f32x4.mul(v128.load(o1 + co, 32), al1), b3 = f32x4.mul(v128.load(o1 + co, 48), al1);
    for (let j = 0, block = block0, slot = slot0; j < n; slot = 0) {
      const len = kvRunLength(table, rows, block, slot, n - j), end = j + len;
      let vr = kvSlot(head, table, rows, ldv, block, slot) + co;
      if (!careful) {
        for (; j < end; j++) {
          const v0 = v128.load(vr), v1 = v128.load(vr, 16), v2 = v128.load(vr, 32), v3 = v128.load(vr, 48);
          const x = v128.load32_splat(p0 + (<usize>j << 2)), y = v128.load32_splat(p1 + (<usize>j << 2));
          a0 = madd4(x, v0, a0); a1 = madd4(x, v1, a1); a2 = madd4(x, v2, a2); a3 = madd4(x, v3, a3);
          b0 = madd4(y, v0, b0); b1 = madd4(y, v1, b1); b2 = madd4(y, v2, b2); b3 = madd4(y, v3, b3);
          vr += ldv;
        }
      } else {
        for (; j < end; j++) {
          const w0 = load<f32>(p0 + (<usize>j << 2)), w1 = load<f32>(p1 + (<usize>j << 2));
          if (w0 != 0 || w1 != 0) {
            const v0 = v128.load(vr), v1 = v128.load(vr, 16), v2 = v128.load(vr, 32), v3 = v128.load(vr, 48);
            if (w0 != 0) {
              const x = f32x4.splat(w0);
              a0 = madd4(x, v0, a0); a1 = madd4(x, v1, a1); a2 = madd4(x, v2, a2); a3 = madd4(x, v3, a3);
            }
            if (w1 != 0) {
              const y = f32x4.splat(w1);
              b0 = madd4(y, v0, b0); b1 = madd4(y, v1, b1); b2 = madd4(y, v2, b2); b3 = madd4(y, v3, b3);
            }
          }
          vr += ldv;
        }
      }
      block += kvBlocksSpanned(table, rows, slot, len);
    }
    v128.store(o0 + co, a0); v128.store(o0 + co, a1, 16); v128.store(o0 + co, a2, 32); v128.store(o0 + co, a3, 48);
    v128.store(o1 + co, b0); v128.store(o1 + co, b1, 16); v128.store(o1 + co, b2, 32); v128.store(o1 + co, b3, 48);
  }
  for (; c + 4 <= ev; c += 4) {
    const co = <usize>c << 2;
    let a = f32x4.mul(v128.load(o0 + co), al0), b = f32x4.mul(v128.load(o1 + co), al1);
    for (let j = 0, block = block0, slot = slot0; j < n; slot = 0) {
      const len = kvRunLength(table, rows, block, slot, n - j), end = j + len;
      for (let vr = kvSlot(head, table, rows, ldv, block, slot) + co; j < end; j++, vr += ldv) {
        const w0 = load<f32>(p0 + (<usize>j << 2)), w1 = load<f32>(p1 + (<usize>j << 2));
        const vv = v128.load(vr);
        if (!careful || w0 != 0) a = madd4(f32x4.splat(w0), vv, a);
        if (!careful || w1 != 0) b = madd4(f32x4.splat(w1), vv, b);
      }
      block += kvBlocksSpanned(table, rows, slot, len);
    }
    v128.store(o0 + co, a); v128.store(o1 + co, b);
  }
  for (; c < ev; c++) {
    const co = <usize>c << 2;
    let a = load<f32>(o0 + co) * alpha0, b = load<f32>(o1 + co) * alpha1;
    for (let j = 0, block = block0, slot = slot0; j < n; slot = 0) {
      const len = kvRunLength(table, rows, block, slot, n - j), end = j + len;
      for (let vr = kvSlot(head, table, rows, ldv, block, slot) + co; j < end; j++, vr += ldv) {
        const w0 = load<f32>(p0 + (<usize>j << 2)), w1 = load<f32>(p1 + (<usize>j << 2));
        const vv = load<f32>(vr);
        if (!careful || w0 != 0) a += w0 * vv;
        if (!careful || w1 != 0) b += w1 * vv;
      }
      block += kvBlocksSpanned(table, rows, slot, len);
    }
    store<f32>(o0 + co, a); store<f32>(o1 + co, b);
  }
}

/**
 * Softmax bookkeeping of one row over one block whose max is mb: moves the state's m (at +0) to
 * m' = max(m, ⌈mb⌉), kept an integer, and stores α = e^(m - m') at +12. Returns false when the row
 * has no allowed key in this block: its S is then zeroed (P = 0, the zero flag at +8 set), α = 1,
 * and a NaN score (which rowMax may skip) makes l NaN.
 */
// @ts-ignore: decorator
@inline function beginRow(s: usize, n: i32, state: usize, mb: f32): bool {
  const m = load<f32>(state, ROW_M);
  const mNew = max(m, Mathf.ceil(mb));
  if (mNew == -Infinity) {
    for (let j = 0; j < n; j++) if (isNaN(load<f32>(s + (<usize>j << 2)))) store<f32>(state, NaN, ROW_L);
    zero(s, n);
    store<f32>(state, 1, ROW_ZERO);
    store<f32>(state, 1, ROW_ALPHA);
    return false;
  }
  store<f32>(state, mNew, ROW_M);
  store<f32>(state, f32x4.extract_lane(exp2NonPositive4(f32x4.splat(m - mNew)), 0), ROW_ALPHA);
  return true;
}

/** P = e^(s - m) over s[0 .. n) in place: returns the sum; sets the state's zero flag when some P is 0. */
// @ts-ignore: decorator
@inline function expRow(s: usize, n: i32, m: f32, state: usize): f32 {
  const vm = f32x4.splat(m), zero4 = f32x4.splat(0);
  let sum0 = zero4, sum1 = zero4, zeros = zero4;
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    const o = <usize>j << 2;
    const e0 = exp2Softmax4(f32x4.sub(v128.load(s + o), vm)), e1 = exp2Softmax4(f32x4.sub(v128.load(s + o, 16), vm));
    v128.store(s + o, e0); v128.store(s + o, e1, 16);
    sum0 = f32x4.add(sum0, e0); sum1 = f32x4.add(sum1, e1);
    zeros = v128.or(zeros, v128.or(f32x4.eq(e0, zero4), f32x4.eq(e1, zero4)));
  }
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    const e0 = exp2Softmax4(f32x4.sub(v128.load(s + o), vm));
    v128.store(s + o, e0);
    sum0 = f32x4.add(sum0, e0);
    zeros = v128.or(zeros, f32x4.eq(e0, zero4));
  }
  const sv = f32x4.add(sum0, sum1);
  let sum = f32x4.extract_lane(sv, 0) + f32x4.extract_lane(sv, 1) + f32x4.extract_lane(sv, 2) + f32x4.extract_lane(sv, 3);
  let anyZero = v128.any_true(zeros);
  for (; j < n; j++) {
    const o = <usize>j << 2;
    const ej = f32x4.extract_lane(exp2Softmax4(f32x4.splat(load<f32>(s + o) - m)), 0);
    store<f32>(s + o, ej);
    sum += ej;
    if (ej == 0) anyZero = true;
  }
  if (anyZero) store<f32>(state, 1, ROW_ZERO);
  return sum;
}

/**
 * Both rows' P = e^(s - m) in one loop (four independent exp chains instead of two, which the
 * exp polynomial's latency needs); n is a multiple of 16. Returns nothing: sums go to the states.
 * Zero weights are looked for only when `trackZeros` (the values hold a NaN or an infinity: only
 * then must they be skipped).
 */
// @ts-ignore: decorator
@inline function expRows(s0: usize, s1: usize, n: i32, st0: usize, st1: usize, trackZeros: bool): void {
  const m0 = f32x4.splat(load<f32>(st0, ROW_M)), m1 = f32x4.splat(load<f32>(st1, ROW_M)), zero4 = f32x4.splat(0);
  let sum0 = zero4, sum1 = zero4, zeros0 = zero4, zeros1 = zero4;
  for (let j = 0; j < n; j += 8) {
    const o = <usize>j << 2;
    const e0 = exp2Softmax4(f32x4.sub(v128.load(s0 + o), m0)), e1 = exp2Softmax4(f32x4.sub(v128.load(s0 + o, 16), m0));
    const f0 = exp2Softmax4(f32x4.sub(v128.load(s1 + o), m1)), f1 = exp2Softmax4(f32x4.sub(v128.load(s1 + o, 16), m1));
    v128.store(s0 + o, e0); v128.store(s0 + o, e1, 16);
    v128.store(s1 + o, f0); v128.store(s1 + o, f1, 16);
    sum0 = f32x4.add(sum0, f32x4.add(e0, e1)); sum1 = f32x4.add(sum1, f32x4.add(f0, f1));
    if (trackZeros) {
      zeros0 = v128.or(zeros0, v128.or(f32x4.eq(e0, zero4), f32x4.eq(e1, zero4)));
      zeros1 = v128.or(zeros1, v128.or(f32x4.eq(f0, zero4), f32x4.eq(f1, zero4)));
    }
  }
  addSum(st0, sum0);
  addSum(st1, sum1);
  if (v128.any_true(zeros0)) store<f32>(st0, 1, ROW_ZERO);
  if (v128.any_true(zeros1)) store<f32>(st1, 1, ROW_ZERO);
}

/** state.l = α · l + (sum of the lanes of v). */
// @ts-ignore: decorator
@inline function addSum(state: usize, v: v128): void {
  const sum = f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
  store<f32>(state, load<f32>(state, ROW_ALPHA) * load<f32>(state, ROW_L) + sum, ROW_L);
}

/**
 * Attention output without weights, f32, [B, H, L, D] row-major (grouped-query: head h reads kv
 * head h / (hq / hkv)). Arguments as in attention_f32 (kernels/attention.ts), plus:
 * @param scratch  f32 [flash_scratch_f32(lk, e, ev, the view's format)], 16-byte aligned, one per thread
 * @param k,v      the KV view's rows (layout.ts): float32, or a pool's binary16 or int8 blocks
 * @param alibi    f32 [hq] ALiBi slopes (after softcap, scores -= slope · |p − j| at the query's
 *                 position p), or 0
 * @param sinks    f32 [hq] sink logits (one more term in each row's softmax denominator, with no
 *                 value), or 0
 * @param unitStart,unitEnd  the pairs of query rows to compute, counted over [b, hq, ceil(lq / 2)]
 *                 (all: 0, b·hq·ceil(lq/2)); each pair comes out the same whoever computes it
 */
export function flash_attention_f32(
  out: usize, scratch: usize, q: usize, k: usize, v: usize, mask: usize, lens: usize,
  b: i32, hq: i32, hkv: i32, lq: i32, lk: i32, e: i32, ev: i32,
  scale_: f32, softcap: f32, maskKind: i32, msb: i32, msh: i32, msq: i32, msk: i32,
  causal: i32, lpast: i32, left: i32, right: i32, layout: usize, alibi: usize, sinks: usize, unitStart: i32, unitEnd: i32,
): void {
  const group = hq / hkv;
  const panels = (lk + PANEL - 1) / PANEL;
  const kPanels = scratch;
  const s0 = kPanels + <usize>(panels * PANEL * e) * 4, s1 = s0 + BLOCK * 4;
  const evPad = (ev + 3) & ~3;
  // one pair's state when the keys are one chunk: O for both rows, then per-row state (m, l, any-zero
  // flag, α); then the two rows' max vectors, and a one-pass block's sums and zero flags (scorePanel)
  const fixed = s1 + BLOCK * 4, mx = fixed + <usize>slotBytes(ev);
  const plain = softcap <= 0 && maskKind == MASK_NONE && alibi == 0;
  // element strides (batch, head, row) of q, k, v, out
  const qsb = load<i32>(layout, LAYOUT_Q + STRIDE_BATCH), qsh = load<i32>(layout, LAYOUT_Q + STRIDE_HEAD), qsi = load<i32>(layout, LAYOUT_Q + STRIDE_ROW);
  const ksb = load<i32>(layout, LAYOUT_K + STRIDE_BATCH), ksh = load<i32>(layout, LAYOUT_K + STRIDE_HEAD), ksj = load<i32>(layout, LAYOUT_K + STRIDE_ROW);
  const vsb = load<i32>(layout, LAYOUT_V + STRIDE_BATCH), vsh = load<i32>(layout, LAYOUT_V + STRIDE_HEAD), vsj = load<i32>(layout, LAYOUT_V + STRIDE_ROW);
  const osb = load<i32>(layout, LAYOUT_OUT + STRIDE_BATCH), osh = load<i32>(layout, LAYOUT_OUT + STRIDE_HEAD), osi = load<i32>(layout, LAYOUT_OUT + STRIDE_ROW);
  // the KV view: rows ld bytes apart inside a run, runs per block of a pool, elements of `format`
  // (inline/kvView.ts); binary16 and int8 keys are widened into the panels, their values into vWide
  const format = kvFormat(layout), rows = kvBlockRows(layout);
  const kScales = <usize>load<i32>(layout, LAYOUT_KV_K_SCALES), vScales = <usize>load<i32>(layout, LAYOUT_KV_V_SCALES);
  const vWide = mx + 96;
  // the values the packed kv head's rows are read from: the view, or vWide (one run, ev floats apart)
  let vHead: usize = 0, vTable: usize = 0, ldv: usize = 0;
  // keys in chunks that stay in cache (their panels and values) while a segment of pairs goes
  // through them, each pair's state in its slot; one chunk (and one pair a segment) when lk fits
  const chunked = lk > chunkKeys(e, ev), chunk = chunked ? chunkKeys(e, ev) : max(lk, 1);
  const slots = vWide + (format != KV_F32 ? <usize>((lk * ev + 3) & ~3) * 4 : 0);
  // scores are kept in base 2 (scaled by log2 e), so that the softmax's exps are 2^x: cheaper, and
  // the same weights, since the running max and sum are taken in the same units
  const vscale = f32x4.splat(scale_ * LOG2E);
  const cap2: f32 = softcap * LOG2E; // c·tanh(s / c) in base 2 is (c·log2 e)·tanh(s₂ / (c·log2 e))
  const pairs = (lq + 1) / 2;
  let packed = -1; // the kv head whose keys are in kPanels (bi · hkv + g)
  let valuesNotFinite = false;
  // one unit of work is one pair of query rows: unit = ((bi · hkv + g) · group + hh) · pairs + pair,
  // so a contiguous range of units (a thread's share) packs each kv head's keys once
  for (let u = unitStart; u < unitEnd;) {
    // a segment: units of one kv head (at most SEGMENT_UNITS; one when the keys are one chunk)
    const kvh = u / pairs / group, bi = kvh / hkv, g = kvh % hkv;
    const uEnd = chunked ? min(unitEnd, min((kvh + 1) * group * pairs, u + SEGMENT_UNITS)) : u + 1;
    if (kvh != packed) {
      const table = kvTable(layout, bi), kOffset = bi * ksb + g * ksh, vOffset = bi * vsb + g * vsh;
      packHead(format, kPanels, vWide, k, v, kScales, vScales, kOffset, vOffset, ksj, vsj, table, rows, lk, e, ev);
      if (format == KV_F32) {
        vHead = v + (<usize>vOffset << 2); vTable = table; ldv = <usize>vsj << 2;
      } else {
        vHead = vWide; vTable = 0; ldv = <usize>ev << 2;
      }
      valuesNotFinite = viewNotFinite(vHead, vTable, rows, ldv, lk, ev);
      packed = kvh;
    }
    // every chunk once (lk = 0 too: one pass, which zeroes the outputs)
    for (let c0 = 0; c0 == 0 || c0 < lk; c0 += chunk) {
      const last = c0 + chunk >= lk;
      for (let unit = u; unit < uEnd; unit++) {
        const pair = unit % pairs, head = unit / pairs; // head = (bi · hkv + g) · group + hh = bi · hq + h
        const h = head % hq;
        const validLen = lens == 0 ? lk : load<i32>(lens + (<usize>bi << 2));
        const i0 = pair * 2;
        const i1 = min(i0 + 1, lq - 1); // an odd last row is computed twice and written once
        const p0 = queryPosition(i0, causal, validLen, lq, lpast), p1 = queryPosition(i1, causal, validLen, lq, lpast);
        const lo0 = keyLo(p0, left), hi0 = keyHi(p0, causal, validLen, right);
        const lo1 = keyLo(p1, left), hi1 = keyHi(p1, causal, validLen, right);
        const qh = q + (<usize>(bi * qsb + h * qsh) << 2), oh = out + (<usize>(bi * osb + h * osh) << 2);
        const q0 = qh + (<usize>(i0 * qsi) << 2), q1 = qh + (<usize>(i1 * qsi) << 2);
        const out0 = oh + (<usize>(i0 * osi) << 2), out1 = oh + (<usize>(i1 * osi) << 2);
        // the union of the two ranges (an empty range does not widen it)
        const jlo = lo0 >= hi0 ? lo1 : lo1 >= hi1 ? lo0 : min(lo0, lo1);
        const jhi = lo0 >= hi0 ? hi1 : lo1 >= hi1 ? hi0 : max(hi0, hi1);
        if (jlo >= jhi) {
          if (c0 == 0) { zero(out0, ev); zero(out1, ev); }
          continue;
        }
        // the pair's O rows and row states
        const o0 = chunked ? slots + <usize>(unit - u) * <usize>slotBytes(ev) : fixed, o1 = o0 + <usize>evPad * 4;
        const st0 = o1 + <usize>evPad * 4, st1 = st0 + ROW_STATE_BYTES;
        const slope2: f32 = alibi != 0 ? load<f32>(alibi + (<usize>h << 2)) * LOG2E : 0;
        if (c0 == 0) startRows(o0, o1, st0, st1, sinks != 0 ? load<f32>(sinks + (<usize>h << 2)) * LOG2E : -Infinity, ev);
        // this chunk's blocks of the pair's keys, from a panel's start
        const to = min(jhi, c0 + chunk);
        for (let j0 = max(jlo & ~(PANEL - 1), c0); j0 < to; j0 += BLOCK) {
          const n = min(BLOCK, to - j0);
          const np = (n + PANEL - 1) / PANEL;
          store<f32>(st0, 0, ROW_ZERO); store<f32>(st1, 0, ROW_ZERO);
          v128.store(mx, f32x4.splat(-Infinity)); v128.store(mx, f32x4.splat(-Infinity), 16);
          // a block of whole panels that both rows may fully see, with nothing to add to the scores
          const inside = plain && n == np * PANEL && j0 >= max(lo0, lo1) && j0 + n <= min(hi0, hi1);
          const m0 = load<f32>(st0, ROW_M), m1 = load<f32>(st1, ROW_M);
          if (inside && abs(m0) <= LAZY_MAX_M && abs(m1) <= LAZY_MAX_M) {
            // one pass: weights against the running maxima while the scores are in registers
            lazyBlock(s0, s1, q0, q1, kPanels, j0, np, e, vscale, mx, m0, m1, st0, st1, valuesNotFinite);
          } else {
            // the block's scores in full, their row maxima, then the softmax step
            for (let p = 0; p < np; p++) {
              scorePanel(s0 + <usize>(p * PANEL) * 4, s1 + <usize>(p * PANEL) * 4, q0, q1, panelAt(kPanels, j0 / PANEL + p, e), e, vscale, mx, false, 0, 0, 0, false);
            }
            let mb0: f32, mb1: f32;
            if (inside) {
              // the maxima folded in while scoring are the row maxima
              mb0 = hmax4(v128.load(mx)); mb1 = hmax4(v128.load(mx, 16));
            } else {
              prepareRow(s0, n, j0, lo0, hi0, cap2, mask, maskKind, bi * msb + h * msh + i0 * msq, msk, slope2, p0);
              prepareRow(s1, n, j0, lo1, hi1, cap2, mask, maskKind, bi * msb + h * msh + i1 * msq, msk, slope2, p1);
              mb0 = rowMax(s0, n); mb1 = rowMax(s1, n);
            }
            weighBlock(s0, s1, n, np, st0, st1, mb0, mb1, valuesNotFinite);
          }
          // 0 · v is 0 unless v is NaN or infinite: only then must zero weights be skipped
          const careful = valuesNotFinite && (load<f32>(st0, ROW_ZERO) != 0 || load<f32>(st1, ROW_ZERO) != 0);
          accumulateValues(o0, o1, load<f32>(st0, ROW_ALPHA), load<f32>(st1, ROW_ALPHA), s0, s1, vHead, vTable, rows, ldv, j0, n, ev, careful);
        }
        if (last) {
          finishRow(out0, o0, load<f32>(st0, ROW_M), load<f32>(st0, ROW_L), ev);
          if (i1 != i0) finishRow(out1, o1, load<f32>(st1, ROW_M), load<f32>(st1, ROW_L), ev);
        }
      }
    }
    u = uEnd;
  }
}

/**
 * Packs the keys of one kv head (kOffset elements into k, the KV view's rows from there) into 16-key
 * panels at kPanels, and for a binary16 or int8 view widens its values (vOffset elements into v) once
 * into float32 rows at vWide. int8's row scales are indexed by the row's index among the head's rows
 * (element offset / row stride).
 */
// @ts-ignore: decorator
@inline function packHead(
  format: i32, kPanels: usize, vWide: usize, k: usize, v: usize, kScales: usize, vScales: usize,
  kOffset: i32, vOffset: i32, ksj: i32, vsj: i32, table: usize, rows: i32, lk: i32, e: i32, ev: i32,
): void {
  const bytes: i32 = format == KV_F32 ? 4 : format == KV_F16 ? 2 : 1;
  const kh = k + <usize>kOffset * bytes, vh = v + <usize>vOffset * bytes, ldk = <usize>(ksj * bytes), ldv = <usize>(vsj * bytes);
  if (format == KV_F32) {
    packKeys(kPanels, kh, table, rows, ldk, lk, e);
    return;
  }
  const ks = kScales + (<usize>(kOffset / ksj) << 2), vs = vScales + (<usize>(vOffset / vsj) << 2);
  if (format == KV_F16) {
    packKeysWidened<u16>(kPanels, kh, ks, table, rows, ldk, lk, e);
    widenViewRows<u16>(vWide, vh, vs, table, rows, ldv, lk, ev);
  } else {
    packKeysWidened<i8>(kPanels, kh, ks, table, rows, ldk, lk, e);
    widenViewRows<i8>(vWide, vh, vs, table, rows, ldv, lk, ev);
  }
}

/** Is any of the lk value rows (ev floats) of a float32 view NaN or ±Infinity? (anyNotFinite a run at a time.) */
// @ts-ignore: decorator
@inline function viewNotFinite(head: usize, table: usize, rows: i32, ld: usize, lk: i32, ev: i32): bool {
  let notFinite = false;
  for (let j = 0; j < lk;) {
    const end = kvRunEnd(table, rows, j, lk);
    notFinite = notFinite || anyNotFinite(kvRow(head, table, rows, ld, j), end - j, ev, <i32>(ld >> 2));
    j = end;
  }
  return notFinite;
}

/** Panel p of the packed keys (PANEL keys of e floats each). */
// @ts-ignore: decorator
@inline function panelAt(kPanels: usize, p: i32, e: i32): usize {
  return kPanels + <usize>(p * PANEL * e) * 4;
}

/**
 * Starts a pair's rows: O = 0, and a sink (sink2, in base 2; -Infinity for none) as each row's first
 * logit, with no value: m = ⌈sink2⌉ (m is kept an integer), l = 2^(sink2 - m).
 */
// @ts-ignore: decorator
@inline function startRows(o0: usize, o1: usize, st0: usize, st1: usize, sink2: f32, ev: i32): void {
  const mSink = Mathf.ceil(sink2);
  const lSink: f32 = sink2 == -Infinity ? 0 : f32x4.extract_lane(exp2NonPositive4(f32x4.splat(sink2 - mSink)), 0);
  store<f32>(st0, mSink, ROW_M); store<f32>(st0, lSink, ROW_L);
  store<f32>(st1, mSink, ROW_M); store<f32>(st1, lSink, ROW_L);
  zero(o0, ev); zero(o1, ev);
}

/**
 * A block of np whole panels from key j0 that both rows fully see, with nothing to add to the scores,
 * in one pass: each panel's weights taken against the running maxima m0, m1 while its scores are in
 * registers (scorePanel); the panels whose scores outgrow them are finished by finishLazyBlock. The
 * rows' states get α, l and the zero flags (looked for when `trackZeros`).
 */
// @ts-ignore: decorator
@inline function lazyBlock(
  s0: usize, s1: usize, q0: usize, q1: usize, kPanels: usize, j0: i32, np: i32, e: i32, vscale: v128, mx: usize,
  m0: f32, m1: f32, st0: usize, st1: usize, trackZeros: bool,
): void {
  const sums = mx + 32;
  v128.store(sums, f32x4.splat(0)); v128.store(sums, f32x4.splat(0), 16);
  v128.store(sums, f32x4.splat(0), 32); v128.store(sums, f32x4.splat(0), 48);
  let raw = 0;
  for (let p = 0; p < np; p++) {
    const fit = scorePanel(s0 + <usize>(p * PANEL) * 4, s1 + <usize>(p * PANEL) * 4, q0, q1,
      panelAt(kPanels, j0 / PANEL + p, e), e, vscale, mx, true, m0, m1, sums, trackZeros);
    if (!fit) raw |= 1 << p;
  }
  if (raw == 0) {
    store<f32>(st0, 1, ROW_ALPHA); store<f32>(st1, 1, ROW_ALPHA);
    addSum(st0, v128.load(sums)); addSum(st1, v128.load(sums, 16));
    if (v128.any_true(v128.load(sums, 32))) store<f32>(st0, 1, ROW_ZERO);
    if (v128.any_true(v128.load(sums, 48))) store<f32>(st1, 1, ROW_ZERO);
  } else {
    finishLazyBlock(s0, np, raw, st0, hmax4(v128.load(mx)), v128.load(sums), trackZeros);
    finishLazyBlock(s1, np, raw, st1, hmax4(v128.load(mx, 16)), v128.load(sums, 16), trackZeros);
  }
}

/**
 * The softmax step of a block scored in full (n scores of each row in s0, s1, np panels, row maxima
 * mb0, mb1): each row's running max moves (beginRow) and its scores become weights, added to l; both
 * rows in one loop (expRows) when both have allowed keys and the block is whole panels.
 */
// @ts-ignore: decorator
@inline function weighBlock(s0: usize, s1: usize, n: i32, np: i32, st0: usize, st1: usize, mb0: f32, mb1: f32, trackZeros: bool): void {
  const live0 = beginRow(s0, n, st0, mb0), live1 = beginRow(s1, n, st1, mb1);
  if (live0 && live1 && n == np * PANEL) expRows(s0, s1, n, st0, st1, trackZeros);
  else {
    if (live0) store<f32>(st0, load<f32>(st0, ROW_ALPHA) * load<f32>(st0, ROW_L) + expRow(s0, n, load<f32>(st0, ROW_M), st0), ROW_L);
    if (live1) store<f32>(st1, load<f32>(st1, ROW_ALPHA) * load<f32>(st1, ROW_L) + expRow(s1, n, load<f32>(st1, ROW_M), st1), ROW_L);
  }
}

/**
 * Softcap, mask, ALiBi and key range of one row of one block: s[0 .. n) holds keys j0 .. j0 + n, in
 * base 2 (softcap and the ALiBi slope come already multiplied by log2 e; p is the query's position).
 */
// @ts-ignore: decorator
@inline function prepareRow(s: usize, n: i32, j0: i32, lo: i32, hi: i32, softcap: f32, mask: usize, maskKind: i32, mrow: i32, msk: i32, slope: f32, p: i32): void {
  if (softcap > 0) softcapRow(s, n, softcap);
  const t0 = max(0, lo - j0), t1 = min(n, hi - j0);
  if (maskKind != MASK_NONE) {
    // scores are in base 2
    if (t1 > t0) applyMask(s + (<usize>t0 << 2), t1 - t0, mask, maskKind, mrow + (j0 + t0) * msk, msk, LOG2E);
  }
  if (slope != 0) alibiRow(s, t0, t1, slope, p, j0);
  // keys outside [lo, hi)
  const a = min(n, max(0, lo - j0));
  for (let t = 0; t < a; t++) store<f32>(s + (<usize>t << 2), -Infinity);
  for (let t = max(a, hi - j0); t < n; t++) store<f32>(s + (<usize>t << 2), -Infinity);
}

/** Is any of rows x[r, 0 .. n) (r < rows, rows stride floats apart) NaN or ±Infinity? (x - x is NaN exactly then.) */
function anyNotFinite(x: usize, rows: i32, n: i32, stride: i32): bool {
  let acc = f32x4.splat(0);
  let s: f32 = 0;
  for (let r = 0; r < rows; r++) {
    const row = x + (<usize>(r * stride) << 2);
    let t = 0;
    for (; t + 4 <= n; t += 4) {
      const v = v128.load(row + (<usize>t << 2));
      acc = f32x4.add(acc, f32x4.sub(v, v));
    }
    for (; t < n; t++) { const v = load<f32>(row + (<usize>t << 2)); s += v - v; }
  }
  s += f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  return s != s;
}

/** out = O / l; NaN where a score was NaN (l is NaN), zeros where the row saw no key. */
// @ts-ignore: decorator
@inline function finishRow(out: usize, o: usize, m: f32, l: f32, ev: i32): void {
  if (isNaN(l)) { for (let c = 0; c < ev; c++) store<f32>(out + (<usize>c << 2), NaN); return; }
  if (l == 0 || m == -Infinity) { zero(out, ev); return; }
  memory.copy(out, o, <usize>ev << 2);
  scale(out, 1.0 / l, ev);
}
