// A linear layer's weight W [n, k] (nn.Linear's [out, in]) stored as IEEE binary16, and the product
// C[m, n] = A[m, k] · Wᵀ + bias with it; also the rows of a stored weight (an embedding lookup), for
// both the float32 layout of gemm_pack_f32 and this one.
//
// The binary16 weight lies in gemm_pack_f32's panel layout (assembly/kernels/matmul.ts), two bytes an
// element: K-blocks of KC inputs, each block's P = ceil(n / 16) panels of 16 output rows, each panel
// k-major, so that a product reads the whole weight front to back as one stream and every loaded
// vector of 8 binary16 weights feeds 8 of a row's 16 accumulators:
//
//   element (o, i) of W, with k0 = i - i % KC, kc = min(KC, k - k0), jp = o >> 4, c = o & 15:
//     at  k0·P·16  +  jp·kc·16  +  (i - k0)·16  +  c
//
//   block k0 = 0 (kc = KC)                         block k0 = KC ...
//   | panel 0                 | panel 1     | ... | panel 0 ...
//   | W[0..16, 0]             | W[16..32, 0]|
//   | W[0..16, 1]             | ...         |
//   |   ...                   |             |
//   | W[0..16, kc-1]          |             |
//     (each row: 16 × binary16 = 32 bytes; rows of a last partial panel past n are 0)
//
// The weights are widened in registers (as inline/kvFormats.ts does: the 16 bits put in the top of a
// 32-bit lane, shifted right 3 with the sign, bits 28..30 cleared, give the value times 2^-112,
// exactly; one multiply by 2^112 gives the value, normals and subnormals alike; a one-row product
// multiplies its row of A by 2^112 instead); a weight holding an Infinity or a NaN goes through the
// exact general conversion (`special`). Products and sums are float32, in the same order as
// gemm_packed_f32: each output starts at its bias (or 0) and adds x[i]·w[o, i] for i ascending. Up
// to DIRECT_ROWS rows of A the panels are widened as they are read; above, each panel's block is
// widened into a float32 scratch once and all rows run over it. Both give the same bits, and so does
// any split of the rows or of the panels between threads (test/ops/linear.test.ts checks both).
import { madd4 } from '../inline/simd';
import { HALF_REBIAS, halfHighScaled, halfLowScaled, load1, load4, toHalf } from '../inline/kvFormats';

// must match NR and KC in assembly/kernels/matmul.ts (the layouts are the same)
// @ts-ignore: decorator
@inline const NR: i32 = 16;
// @ts-ignore: decorator
@inline const KC: i32 = 256;

/**
 * Up to this many rows the panels are widened as they are read; above, into scratch once per block:
 * one row ran faster widened as read, two rows and more through scratch, and more so the more rows.
 */
// @ts-ignore: decorator
@inline const DIRECT_ROWS: i32 = 1;

/**
 * Packs W [n, k] (f32, row-major) into bp as binary16 rounded to nearest even, in the layout above
 * (gemm_packed_size_f32(n, k) elements of 2 bytes). Returns 1 when a stored weight is an Infinity or
 * a NaN (pass it as linear_f16's `special`), else 0.
 */
export function linear_pack_f16(bp: usize, w: usize, n: i32, k: i32): i32 {
  const panels = (n + NR - 1) / NR;
  let special: u32 = 0;
  for (let k0 = 0; k0 < k; k0 += KC) {
    const kc = min(KC, k - k0);
    for (let jp = 0; jp < panels; jp++) {
      const dst = bp + (<usize>(k0 * panels * NR + jp * kc * NR) << 1);
      const j0 = jp * NR, nr = min(NR, n - j0);
      for (let c = 0; c < NR; c++) {
        const d = dst + (<usize>c << 1);
        if (c < nr) {
          const src = w + (<usize>((j0 + c) * k + k0) << 2);
          for (let p = 0; p < kc; p++) {
            const h = toHalf(load<f32>(src + (<usize>p << 2)));
            special |= <u32>((h & 0x7c00) == 0x7c00);
            store<u16>(d + (<usize>(p * NR) << 1), h);
          }
        } else {
          for (let p = 0; p < kc; p++) store<u16>(d + (<usize>(p * NR) << 1), 0);
        }
      }
    }
  }
  return <i32>special;
}

/**
 * Lanes 0..3 (low) and 4..7 (high) of eight finite binary16 values h, as float32 times 2^-112 (the
 * value of inline/kvFormats.ts halfLowScaled): interleaved with zeros (each value in the top half of a
 * 32-bit lane, one unpack instruction), shifted right 3 with the sign, bits 28..30 cleared. The
 * constants come from the caller, made once outside its loop (V8 would make a splat again in every
 * iteration: hoisting them took a one-row product from 5.9 to 6.7 G weights/s).
 */
// @ts-ignore: decorator
@inline function halfLo(h: v128, zero: v128, mask: v128): v128 {
  return v128.and(i32x4.shr_s(v128.shuffle<i16>(zero, h, 0, 8, 1, 9, 2, 10, 3, 11), 3), mask);
}
// @ts-ignore: decorator
@inline function halfHi(h: v128, zero: v128, mask: v128): v128 {
  return v128.and(i32x4.shr_s(v128.shuffle<i16>(zero, h, 4, 12, 5, 13, 6, 14, 7, 15), 3), mask);
}

/** Quarter q (lanes 4q .. 4q+3) of the 16 weights of a panel row at bp, as float32. F: finite (u16), any (i16), widened (f32). */
// @ts-ignore: decorator
@inline function quarter<F>(bp: usize, q: i32): v128 {
  if (sizeof<F>() == 4) return v128.load(bp + (<usize>q << 4));
  if (!isSigned<F>()) {
    const h = v128.load(bp + (<usize>(q >> 1) << 4));
    return f32x4.mul(q & 1 ? halfHighScaled(h) : halfLowScaled(h), f32x4.splat(HALF_REBIAS));
  }
  return load4<u16>(bp, q << 2);
}

/**
 * C rows c0, c1 (16 columns each) = start + A rows a0, a1 · panel over kc (start: C itself when
 * `accumulate`, else the bias at `bias`, else 0). `pair` false: row 0 alone, the same instructions
 * per element.
 */
// (not inlined: V8 allocates the registers of each loop better in a small function of its own; with
// the four loops inlined into one function the pair loop ran several times slower)
function tile<F>(c0: usize, c1: usize, a0: usize, a1: usize, panel: usize, kc: i32, accumulate: bool, bias: usize, pair: bool, scaled: bool): void {
  let x0 = f32x4.splat(0), x1 = f32x4.splat(0), x2 = f32x4.splat(0), x3 = f32x4.splat(0);
  let y0 = f32x4.splat(0), y1 = f32x4.splat(0), y2 = f32x4.splat(0), y3 = f32x4.splat(0);
  if (accumulate) {
    x0 = v128.load(c0); x1 = v128.load(c0, 16); x2 = v128.load(c0, 32); x3 = v128.load(c0, 48);
    if (pair) { y0 = v128.load(c1); y1 = v128.load(c1, 16); y2 = v128.load(c1, 32); y3 = v128.load(c1, 48); }
  } else if (bias != 0) {
    x0 = v128.load(bias); x1 = v128.load(bias, 16); x2 = v128.load(bias, 32); x3 = v128.load(bias, 48);
    y0 = x0; y1 = x1; y2 = x2; y3 = x3;
  }
  const step = <usize>(NR * sizeof<F>());
  let bp = panel;
  if (pair) {
    for (let p = 0; p < kc; p++) {
      const b0 = quarter<F>(bp, 0), b1 = quarter<F>(bp, 1), b2 = quarter<F>(bp, 2), b3 = quarter<F>(bp, 3);
      const u = v128.load32_splat(a0 + (<usize>p << 2)), w = v128.load32_splat(a1 + (<usize>p << 2));
      x0 = madd4(u, b0, x0); x1 = madd4(u, b1, x1); x2 = madd4(u, b2, x2); x3 = madd4(u, b3, x3);
      y0 = madd4(w, b0, y0); y1 = madd4(w, b1, y1); y2 = madd4(w, b2, y2); y3 = madd4(w, b3, y3);
      bp += step;
    }
    v128.store(c1, y0); v128.store(c1, y1, 16); v128.store(c1, y2, 32); v128.store(c1, y3, 48);
  } else if (sizeof<F>() == 2 && !isSigned<F>() && scaled) {
    // one row, finite binary16, the row of A times 2^112 (see linear_f16): a decode step's loop
    const zero = i32x4.splat(0), mask = i32x4.splat(0x8fffffff);
    for (let p = 0; p < kc; p++) {
      const u = v128.load32_splat(a0 + (<usize>p << 2));
      const h0 = v128.load(bp), h1 = v128.load(bp, 16);
      x0 = madd4(u, halfLo(h0, zero, mask), x0); x1 = madd4(u, halfHi(h0, zero, mask), x1);
      x2 = madd4(u, halfLo(h1, zero, mask), x2); x3 = madd4(u, halfHi(h1, zero, mask), x3);
      bp += step;
    }
  } else if (sizeof<F>() == 2 && !isSigned<F>()) {
    // one row, finite binary16
    const rebias = f32x4.splat(HALF_REBIAS), zero = i32x4.splat(0), mask = i32x4.splat(0x8fffffff);
    for (let p = 0; p < kc; p++) {
      const u = v128.load32_splat(a0 + (<usize>p << 2));
      const h0 = v128.load(bp), h1 = v128.load(bp, 16);
      x0 = madd4(u, f32x4.mul(halfLo(h0, zero, mask), rebias), x0); x1 = madd4(u, f32x4.mul(halfHi(h0, zero, mask), rebias), x1);
      x2 = madd4(u, f32x4.mul(halfLo(h1, zero, mask), rebias), x2); x3 = madd4(u, f32x4.mul(halfHi(h1, zero, mask), rebias), x3);
      bp += step;
    }
  } else {
    for (let p = 0; p < kc; p++) {
      const u = v128.load32_splat(a0 + (<usize>p << 2));
      x0 = madd4(u, quarter<F>(bp, 0), x0); x1 = madd4(u, quarter<F>(bp, 1), x1);
      x2 = madd4(u, quarter<F>(bp, 2), x2); x3 = madd4(u, quarter<F>(bp, 3), x3);
      bp += step;
    }
  }
  v128.store(c0, x0); v128.store(c0, x1, 16); v128.store(c0, x2, 32); v128.store(c0, x3, 48);
}

/**
 * Every row of C (+)= A · one panel over the K-block [k0, k0 + kc): columns j0 .. j0 + nr of C (a
 * partial panel, nr < 16, through the edge buffer), rows in pairs.
 */
// (not inlined: one function per format keeps each hot loop's registers to itself)
function panelRows<F>(c: usize, a: usize, panel: usize, m: i32, nr: i32, ldc: i32, lda: i32, k0: i32, kc: i32, bias: usize, edge: usize, scaled: bool): void {
  const ldcb = <usize>ldc << 2, ldab = <usize>lda << 2;
  const accumulate = k0 > 0;
  for (let i = 0; i < m; i += 2) {
    const pair = i + 1 < m;
    const a0 = a + <usize>i * ldab + (<usize>k0 << 2), a1 = a0 + ldab;
    const c0 = c + <usize>i * ldcb, c1 = c0 + ldcb;
    if (nr == NR) {
      if (pair) tile<F>(c0, c1, a0, a1, panel, kc, accumulate, bias, true, scaled);
      else tile<F>(c0, c1, a0, a1, panel, kc, accumulate, bias, false, scaled);
    } else {
      if (accumulate) {
        for (let j = 0; j < nr; j++) store<f32>(edge + (<usize>j << 2), load<f32>(c0 + (<usize>j << 2)));
        if (pair) for (let j = 0; j < nr; j++) store<f32>(edge + (<usize>(NR + j) << 2), load<f32>(c1 + (<usize>j << 2)));
      }
      if (pair) tile<F>(edge, edge + NR * 4, a0, a1, panel, kc, accumulate, bias, true, scaled);
      else tile<F>(edge, edge + NR * 4, a0, a1, panel, kc, accumulate, bias, false, scaled);
      for (let j = 0; j < nr; j++) store<f32>(c0 + (<usize>j << 2), load<f32>(edge + (<usize>j << 2)));
      if (pair) for (let j = 0; j < nr; j++) store<f32>(c1 + (<usize>j << 2), load<f32>(edge + (<usize>(NR + j) << 2)));
    }
  }
}

/** Widens kc rows of a binary16 panel into float32 at dst (the values quarter<> gives). */
// @ts-ignore: decorator
@inline function widenPanel(dst: usize, panel: usize, kc: i32, special: bool): void {
  const rebias = f32x4.splat(HALF_REBIAS), zero = i32x4.splat(0), mask = i32x4.splat(0x8fffffff);
  for (let p = 0; p < kc; p++) {
    const s = panel + (<usize>(p * NR) << 1), d = dst + (<usize>(p * NR) << 2);
    if (special) {
      v128.store(d, quarter<i16>(s, 0)); v128.store(d, quarter<i16>(s, 1), 16);
      v128.store(d, quarter<i16>(s, 2), 32); v128.store(d, quarter<i16>(s, 3), 48);
    } else {
      const h0 = v128.load(s), h1 = v128.load(s, 16);
      v128.store(d, f32x4.mul(halfLo(h0, zero, mask), rebias)); v128.store(d, f32x4.mul(halfHi(h0, zero, mask), rebias), 16);
      v128.store(d, f32x4.mul(halfLo(h1, zero, mask), rebias), 32); v128.store(d, f32x4.mul(halfHi(h1, zero, mask), rebias), 48);
    }
  }
}

/** dst[0..k) = x[0..k) · 2^112 when every finite |x| < 2^16 (so that no product overflows); else false. */
function scaleRow(dst: usize, x: usize, k: i32): bool {
  for (let i = 0; i < k; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    if (abs<f32>(v) >= 65536 && abs<f32>(v) != Infinity) return false;
    store<f32>(dst + (<usize>i << 2), v * HALF_REBIAS);
  }
  return true;
}

/** Floats of scratch linear_f16 needs: the edge-tile buffer, a partial panel's bias, one widened panel block. */
export function linear_f16_scratch(k: i32): i32 {
  return 3 * NR + max(KC * NR, k);
}

/**
 * C[m, n] = A[m, k] · Wᵀ (+ bias[n]) with W packed by linear_pack_f16 into `panels` panels: this call
 * computes the columns of panels jp0 .. jp0 + ceil(n / 16), n of them (threads take ranges of
 * panels, or ranges of rows). A rows are k floats apart, C rows ldc; c and bias point at column
 * jp0·16. C must not overlap A, W, the bias or scratch.
 * @param bias    f32 [n], or 0 for none
 * @param special linear_pack_f16's answer: 1 when W holds an Infinity or a NaN
 * @param scratch f32 [linear_f16_scratch(k)], 16-byte aligned
 */
export function linear_f16(c: usize, a: usize, bp: usize, bias: usize, m: i32, n: i32, k: i32, ldc: i32, panels: i32, jp0: i32, special: i32, scratch: usize): void {
  if (m <= 0 || n <= 0) return;
  const ldcb = <usize>ldc << 2;
  if (k == 0) {
    for (let i = 0; i < m; i++) {
      const row = c + <usize>i * ldcb;
      if (bias != 0) memory.copy(row, bias, <usize>n << 2); else memory.fill(row, 0, <usize>n << 2);
    }
    return;
  }
  const edge = scratch, edgeBias = scratch + 2 * NR * 4, wide = scratch + 3 * NR * 4;
  const count = (n + NR - 1) / NR;
  const direct = m <= DIRECT_ROWS;
  // one row of finite binary16 weights: the row times 2^112 (exact while every |x| < 2^16) meets the
  // weights as widened without their multiply by 2^112; each product is the same real number, so it
  // rounds to the same float32 (fused or not) and the sums are the same bits. Saves one of six
  // operations per four weights.
  let xa = a, scaled = false;
  if (direct && special == 0 && m == 1 && scaleRow(wide, a, k)) { xa = wide; scaled = true; }
  for (let k0 = 0; k0 < k; k0 += KC) {
    const kc = min(KC, k - k0);
    const block = bp + (<usize>(k0 * panels * NR + jp0 * kc * NR) << 1);
    for (let jp = 0; jp < count; jp++) {
      const panel = block + (<usize>(jp * kc * NR) << 1);
      const j0 = jp * NR, nr = min(NR, n - j0);
      let pbias: usize = bias != 0 ? bias + (<usize>j0 << 2) : 0;
      if (pbias != 0 && nr < NR && k0 == 0) {
        for (let j = 0; j < NR; j++) store<f32>(edgeBias + (<usize>j << 2), j < nr ? load<f32>(pbias + (<usize>j << 2)) : 0);
        pbias = edgeBias;
      }
      const cj = c + (<usize>j0 << 2);
      if (!direct) {
        widenPanel(wide, panel, kc, special != 0);
        panelRows<f32>(cj, a, wide, m, nr, ldc, k, k0, kc, pbias, edge, false);
      } else if (special != 0) {
        panelRows<i16>(cj, a, panel, m, nr, ldc, k, k0, kc, pbias, edge, false);
      } else {
        panelRows<u16>(cj, xa, panel, m, nr, ldc, k, k0, kc, pbias, edge, scaled);
      }
    }
  }
}

/** Where element (o, i) of a packed W [n, k] lies, counted in elements (the layout above). */
// @ts-ignore: decorator
@inline function packedAt(o: i32, i: i32, n: i32, k: i32): i32 {
  const panels = (n + NR - 1) / NR, k0 = i - i % KC, kc = min(KC, k - k0);
  return k0 * panels * NR + (o >> 4) * kc * NR + (i - k0) * NR + (o & 15);
}

/**
 * Rows `ids` (i32 [count], each in [0, n)) of a W [n, k] packed by gemm_pack_f32 (F = f32) or
 * linear_pack_f16 (F = u16), widened to float32 and times scale: dst [count, k] f32.
 */
// @ts-ignore: decorator
@inline function gatherRows<F>(dst: usize, bp: usize, ids: usize, count: i32, n: i32, k: i32, scale: f32): void {
  for (let r = 0; r < count; r++) {
    const o = load<i32>(ids + (<usize>r << 2));
    const to = dst + <usize>r * (<usize>k << 2);
    for (let k0 = 0; k0 < k; k0 += KC) {
      const kc = min(KC, k - k0);
      const from = bp + <usize>packedAt(o, k0, n, k) * sizeof<F>();
      for (let p = 0; p < kc; p++) {
        const at = from + <usize>(p * NR) * sizeof<F>();
        const v: f32 = sizeof<F>() == 4 ? load<f32>(at) : load1<u16>(at, 0);
        store<f32>(to + (<usize>(k0 + p) << 2), v * scale);
      }
    }
  }
}

/** Rows `ids` (i32 [count]) of W [n, k] packed by gemm_pack_f32, times scale, into dst [count, k] f32. */
export function linear_rows_f32(dst: usize, bp: usize, ids: usize, count: i32, n: i32, k: i32, scale: f32): void {
  gatherRows<f32>(dst, bp, ids, count, n, k, scale);
}

/** Rows `ids` (i32 [count]) of W [n, k] packed by linear_pack_f16, widened, times scale, into dst [count, k] f32. */
export function linear_rows_f16(dst: usize, bp: usize, ids: usize, count: i32, n: i32, k: i32, scale: f32): void {
  gatherRows<u16>(dst, bp, ids, count, n, k, scale);
}
