// Matrix product C = A · B (or A · Bᵀ) on row-major f32 matrices, with B packed into panels.
//
// B is packed one K-block at a time (KC rows of K) into panels of 16 columns, each panel stored
// k-major so that the micro-kernel reads it front to back:
//
//   Bp[panel][p][0..16) = B[k0 + p, panel·16 + c]      (transposeB: B[panel·16 + c, k0 + p])
//
// zero-padded past n. The micro-kernel computes a 2×16 tile of C with 8 v128 accumulators, the most
// V8 keeps in registers on x86 (4×16, 6×8 and 8×8 tiles ran slower); per k it loads one panel row
// (4 v128) and splats two elements of A:
//
//             Bp[panel][p] = [ b0 | b1 | b2 | b3 ]
//   A[i,   p]  ->            c00  c01  c02  c03
//   A[i+1, p]  ->            c10  c11  c12  c13
//
// Loops: K-blocks (so a panel, 16·KC floats = 16 KiB, stays in L1), panels, then row pairs streaming A.
// Edge tiles (a last odd row, a last partial panel) go through a 2×16 buffer.
//
// Reading ahead: with 4 or more row pairs (T >= 8, a decode step of many sequences), each k step of
// the first `spread` pairs of a panel (4, 8 or 16) also loads one i32 of the NEXT panel, 64 / spread
// bytes after the one before, so that those pairs together touch each of its 64-byte lines once.
// The next panel then streams in from memory while this one is reused from L1, instead of in a burst
// when its first pair starts (which left that pair waiting: T = 16 ran at 41 GFLOP/s against 49 for
// T = 128). The loads change no arithmetic. With fewer pairs (T < 8, bound by memory anyway) reading
// ahead lost up to 30%, so they do not.
import { madd4 } from '../inline/simd';
import { packPanel } from '../inline/panels';

// @ts-ignore: decorator
@inline const NR: i32 = 16;
// @ts-ignore: decorator
@inline const KC: i32 = 256;

/** Floats of scratch gemm_f32 needs for n columns and inner size k: one K-block's panels, the edge buffer. */
export function gemm_scratch_f32(n: i32, k: i32): i32 {
  return min(k, KC) * ((n + NR - 1) / NR) * NR + 3 * NR;
}

/** Packs rows k0 .. k0 + kc of B into panels (see above). */
function packB(bp: usize, b: usize, n: i32, k: i32, k0: i32, kc: i32, transposeB: bool): void {
  const panels = (n + NR - 1) / NR;
  for (let jp = 0; jp < panels; jp++) {
    const dst = bp + <usize>(jp * kc * NR) * 4;
    const j0 = jp * NR, nr = min(NR, n - j0);
    if (!transposeB) {
      for (let p = 0; p < kc; p++) {
        const src = b + (<usize>((k0 + p) * n + j0) << 2), d = dst + (<usize>(p * NR) << 2);
        if (nr == NR) {
          v128.store(d, v128.load(src)); v128.store(d, v128.load(src, 16), 16);
          v128.store(d, v128.load(src, 32), 32); v128.store(d, v128.load(src, 48), 48);
        } else {
          for (let c = 0; c < nr; c++) store<f32>(d + (<usize>c << 2), load<f32>(src + (<usize>c << 2)));
          for (let c = nr; c < NR; c++) store<f32>(d + (<usize>c << 2), 0);
        }
      }
    } else {
      // B is [n, k]: each panel row gathers one k of 16 rows of B
      packPanel(dst, b + (<usize>(j0 * k + k0) << 2), nr, kc, k);
    }
  }
}

/**
 * C rows c0, c1 (16 columns each) = start + A rows a0, a1 · panel over kc, where start is C itself
 * (accumulate), else the 16 bias values at `bias` (bias != 0), else 0. With `touch` (a constant at
 * each call, so the other form has no trace of it), each k step also loads the i32 at `ahead`, then
 * `stride` bytes on, and the sum of those loads is returned (reading ahead: see the top).
 */
// @ts-ignore: decorator
@inline function tile2x16(c0: usize, c1: usize, a0: usize, a1: usize, panel: usize, kc: i32, accumulate: bool, bias: usize, touch: bool, ahead: usize, stride: usize): i32 {
  let x0 = f32x4.splat(0), x1 = f32x4.splat(0), x2 = f32x4.splat(0), x3 = f32x4.splat(0);
  let y0 = f32x4.splat(0), y1 = f32x4.splat(0), y2 = f32x4.splat(0), y3 = f32x4.splat(0);
  if (accumulate) {
    x0 = v128.load(c0); x1 = v128.load(c0, 16); x2 = v128.load(c0, 32); x3 = v128.load(c0, 48);
    y0 = v128.load(c1); y1 = v128.load(c1, 16); y2 = v128.load(c1, 32); y3 = v128.load(c1, 48);
  } else if (bias != 0) {
    x0 = v128.load(bias); x1 = v128.load(bias, 16); x2 = v128.load(bias, 32); x3 = v128.load(bias, 48);
    y0 = x0; y1 = x1; y2 = x2; y3 = x3;
  }
  let bp = panel, touched = 0, at = ahead;
  for (let p = 0; p < kc; p++) {
    if (touch) {
      touched += load<i32>(at);
      at += stride;
    }
    const b0 = v128.load(bp), b1 = v128.load(bp, 16), b2 = v128.load(bp, 32), b3 = v128.load(bp, 48);
    const u = v128.load32_splat(a0 + (<usize>p << 2)), w = v128.load32_splat(a1 + (<usize>p << 2));
    x0 = madd4(u, b0, x0); x1 = madd4(u, b1, x1); x2 = madd4(u, b2, x2); x3 = madd4(u, b3, x3);
    y0 = madd4(w, b0, y0); y1 = madd4(w, b1, y1); y2 = madd4(w, b2, y2); y3 = madd4(w, b3, y3);
    bp += NR * 4;
  }
  v128.store(c0, x0); v128.store(c0, x1, 16); v128.store(c0, x2, 32); v128.store(c0, x3, 48);
  v128.store(c1, y0); v128.store(c1, y1, 16); v128.store(c1, y2, 32); v128.store(c1, y3, 48);
  return touched;
}

/**
 * C row c0 (16 columns) = start + A row a0 · panel over kc: tile2x16's first row alone, with the
 * same instructions per element (so a last odd row, or a decode step's only row, gives the same bits).
 */
// @ts-ignore: decorator
@inline function tile1x16(c0: usize, a0: usize, panel: usize, kc: i32, accumulate: bool, bias: usize): void {
  let x0 = f32x4.splat(0), x1 = f32x4.splat(0), x2 = f32x4.splat(0), x3 = f32x4.splat(0);
  if (accumulate) {
    x0 = v128.load(c0); x1 = v128.load(c0, 16); x2 = v128.load(c0, 32); x3 = v128.load(c0, 48);
  } else if (bias != 0) {
    x0 = v128.load(bias); x1 = v128.load(bias, 16); x2 = v128.load(bias, 32); x3 = v128.load(bias, 48);
  }
  let bp = panel;
  for (let p = 0; p < kc; p++) {
    const u = v128.load32_splat(a0 + (<usize>p << 2));
    x0 = madd4(u, v128.load(bp), x0); x1 = madd4(u, v128.load(bp, 16), x1);
    x2 = madd4(u, v128.load(bp, 32), x2); x3 = madd4(u, v128.load(bp, 48), x3);
    bp += NR * 4;
  }
  v128.store(c0, x0); v128.store(c0, x1, 16); v128.store(c0, x2, 32); v128.store(c0, x3, 48);
}

/**
 * One K-block of C[m, n] (+)= A[m, k0 .. k0 + kc) · the block's panels, which start at `panels0`
 * (panel jp at panels0 + jp·kc·16 floats). C rows are ldc floats apart, A rows lda.
 * `edge`: the 2×16 edge-tile buffer followed by 16 floats for a partial panel's bias.
 */
// @ts-ignore: decorator
@inline function multiplyBlock(c: usize, a: usize, panels0: usize, m: i32, n: i32, ldc: i32, lda: i32, k0: i32, kc: i32, bias: usize, edge: usize): void {
  const panels = (n + NR - 1) / NR;
  const edgeBias = edge + 2 * NR * 4;
  const ldcb = <usize>ldc << 2, ldab = <usize>lda << 2;
  const accumulate = k0 > 0;
  const panelBytes = <usize>(kc * NR) << 2;
  // the next panel's words loaded ahead (see the top), summed and stored so that no load is dropped
  let touched = 0;
  const spread: usize = m >> 1 >= 16 ? 16 : m >> 1 >= 8 ? 8 : m >> 1 >= 4 ? 4 : 0, stride: usize = spread > 0 ? 64 / spread : 0;
  for (let jp = 0; jp < panels; jp++) {
    const panel = panels0 + <usize>(jp * kc * NR) * 4;
    const next = jp + 1 < panels ? panel + panelBytes : panel;
    const j0 = jp * NR, nr = min(NR, n - j0);
    let pbias: usize = bias != 0 ? bias + (<usize>j0 << 2) : 0;
    if (pbias != 0 && nr < NR && !accumulate) {
      for (let j = 0; j < NR; j++) store<f32>(edgeBias + (<usize>j << 2), j < nr ? load<f32>(pbias + (<usize>j << 2)) : 0);
      pbias = edgeBias;
    }
    for (let i = 0; i < m; i += 2) {
      const pair = i + 1 < m;
      const a0 = a + <usize>i * ldab + (<usize>k0 << 2), a1 = a0 + ldab;
      const c0 = c + <usize>i * ldcb + (<usize>j0 << 2), c1 = c0 + ldcb;
      if (nr == NR && pair) {
        const q = <usize>(i >> 1);
        if (q < spread) touched += tile2x16(c0, c1, a0, a1, panel, kc, accumulate, pbias, true, next + q * <usize>kc * stride, stride);
        else tile2x16(c0, c1, a0, a1, panel, kc, accumulate, pbias, false, 0, 0);
      } else if (nr == NR) {
        tile1x16(c0, a0, panel, kc, accumulate, pbias);
      } else {
        // edge tile: through the buffer, then the valid part back
        if (accumulate) {
          for (let j = 0; j < nr; j++) store<f32>(edge + (<usize>j << 2), load<f32>(c0 + (<usize>j << 2)));
          if (pair) for (let j = 0; j < nr; j++) store<f32>(edge + (<usize>(NR + j) << 2), load<f32>(c1 + (<usize>j << 2)));
        }
        if (pair) tile2x16(edge, edge + NR * 4, a0, a1, panel, kc, accumulate, pbias, false, 0, 0);
        else tile1x16(edge, a0, panel, kc, accumulate, pbias);
        for (let j = 0; j < nr; j++) store<f32>(c0 + (<usize>j << 2), load<f32>(edge + (<usize>j << 2)));
        if (pair) for (let j = 0; j < nr; j++) store<f32>(c1 + (<usize>j << 2), load<f32>(edge + (<usize>(NR + j) << 2)));
      }
    }
  }
  store<i32>(edge, touched);
}

/** C[m, n] = the bias (or 0) in every row: the product over an empty K. */
function fillRows(c: usize, m: i32, n: i32, ldc: i32, bias: usize): void {
  for (let i = 0; i < m; i++) {
    const row = c + <usize>i * (<usize>ldc << 2);
    if (bias != 0) memory.copy(row, bias, <usize>n << 2); else memory.fill(row, 0, <usize>n << 2);
  }
}

/**
 * C[m, n] = A[m, k] · B[k, n] (+ bias[n]), or A · Bᵀ with B stored [n, k] when transposeB;
 * row-major, f32. C must not overlap A, B or scratch. The bias (a linear layer's) starts each
 * element's sum, so y = x Wᵀ + b needs no second pass.
 * @param bias    f32 [n], or 0 for none
 * @param scratch f32 [gemm_scratch_f32(n, k)], 16-byte aligned
 */
export function gemm_f32(c: usize, a: usize, b: usize, m: i32, n: i32, k: i32, transposeB: bool, bias: usize, scratch: usize): void {
  if (m == 0 || n == 0) return;
  if (k == 0) { fillRows(c, m, n, n, bias); return; }
  const panels = (n + NR - 1) / NR;
  const edge = scratch + <usize>(min(k, KC) * panels * NR) * 4; // 2×16 buffer for edge tiles, then 16 bias values
  for (let k0 = 0; k0 < k; k0 += KC) {
    const kc = min(KC, k - k0);
    packB(scratch, b, n, k, k0, kc, transposeB);
    multiplyBlock(c, a, scratch, m, n, n, k, k0, kc, bias, edge);
  }
}

/**
 * B packed once for gemm_packed_f32 (a prepared layer's weights): every K-block's panels, one
 * block after the other,
 *
 *   block k0 at float k0·P·16 (P = ceil(n / 16) panels), panel jp of it at + jp·kc·16
 *
 * which is the layout gemm_f32 packs into its scratch one block at a time: a product over the
 * packed B reads it front to back, one sequential stream.
 */
export function gemm_packed_size_f32(n: i32, k: i32): i32 {
  return k * ((n + NR - 1) / NR) * NR;
}

/** Packs B ([k, n], or [n, k] with transposeB) into bp (gemm_packed_size_f32(n, k) floats). */
export function gemm_pack_f32(bp: usize, b: usize, n: i32, k: i32, transposeB: bool): void {
  const panels = (n + NR - 1) / NR;
  for (let k0 = 0; k0 < k; k0 += KC) packB(bp + <usize>(k0 * panels * NR) * 4, b, n, k, k0, min(KC, k - k0), transposeB);
}

/** Floats of scratch gemm_packed_f32 needs: the edge-tile buffer and a partial panel's bias. */
export function gemm_packed_scratch_f32(): i32 {
  return 3 * NR;
}

/**
 * C[m, n] = A[m, k] · B (+ bias[n]) with B packed by gemm_pack_f32 for `panels` panels: this call
 * computes the columns of panels jp0 .. jp0 + ceil(n / 16), n of them, so that threads can take
 * ranges of panels. C rows are ldc floats apart; c and bias point at column jp0·16.
 * @param scratch f32 [gemm_packed_scratch_f32()], 16-byte aligned
 */
export function gemm_packed_f32(c: usize, a: usize, bp: usize, bias: usize, m: i32, n: i32, k: i32, ldc: i32, panels: i32, jp0: i32, scratch: usize): void {
  if (m == 0 || n == 0) return;
  if (k == 0) { fillRows(c, m, n, ldc, bias); return; }
  for (let k0 = 0; k0 < k; k0 += KC) {
    const kc = min(KC, k - k0);
    multiplyBlock(c, a, bp + <usize>(k0 * panels * NR + jp0 * kc * NR) * 4, m, n, ldc, k, k0, kc, bias, scratch);
  }
}
