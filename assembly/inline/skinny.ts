// The inner loops of the skinny products (kernels/gemv.ts): B is read where it lies, once.
//
// Plain layout, B [k, n]: one row of C takes 8 rows of B at a time, each a sequential stream
//
//   C[0..w) += a[0]·B[0, 0..w) + a[1]·B[1, 0..w) + ... + a[7]·B[7, 0..w)
//
// in two chains (even and odd rows of B), so that the adds do not wait on one another.
//
// Transposed layout, B [n, k]: dot products of rows of A with 4 rows of B, 4 sequential streams:
//
//   A row i    . . . . . . . .  (k)        acc[i][r] += A[i, p..p+4) * B[j + r, p..p+4)
//   B row j+r  . . . . . . . .  r < 4
//
// Every element of C is computed by the same instructions in the same order whichever columns
// its call covers, so that splitting N across threads changes no bit.
import { hsum4, madd4 } from './simd';

/** Four lanes at p, or (`whole` false) one in lane 0 and zeros: the same arithmetic either way. */
// @ts-ignore: decorator
@inline function lanes(p: usize, whole: bool): v128 {
  return whole ? v128.load(p) : v128.load32_zero(p);
}

/** C[o] + sum over g < 8 of s_g · B[g, o]: even rows in one chain, odd rows in another. */
// @ts-ignore: decorator
@inline function rows8(c: v128, s0: v128, s1: v128, s2: v128, s3: v128, s4: v128, s5: v128, s6: v128, s7: v128, r0: usize, ldb: usize, whole: bool): v128 {
  let x = madd4(s0, lanes(r0, whole), c);
  let y = f32x4.mul(s1, lanes(r0 + ldb, whole));
  x = madd4(s2, lanes(r0 + 2 * ldb, whole), x); y = madd4(s3, lanes(r0 + 3 * ldb, whole), y);
  x = madd4(s4, lanes(r0 + 4 * ldb, whole), x); y = madd4(s5, lanes(r0 + 5 * ldb, whole), y);
  x = madd4(s6, lanes(r0 + 6 * ldb, whole), x); y = madd4(s7, lanes(r0 + 7 * ldb, whole), y);
  return f32x4.add(x, y);
}

/** C[0..w) += sum over g < 8 of a[g] · B[g, 0..w); B rows `ldb` bytes apart. */
// @ts-ignore: decorator
@inline export function axpy8(cp: usize, ap: usize, bp: usize, ldb: usize, w: i32): void {
  const s0 = v128.load32_splat(ap), s1 = v128.load32_splat(ap, 4), s2 = v128.load32_splat(ap, 8), s3 = v128.load32_splat(ap, 12);
  const s4 = v128.load32_splat(ap, 16), s5 = v128.load32_splat(ap, 20), s6 = v128.load32_splat(ap, 24), s7 = v128.load32_splat(ap, 28);
  const end = <usize>(w & ~3) << 2;
  let o: usize = 0;
  for (; o < end; o += 16) v128.store(cp + o, rows8(v128.load(cp + o), s0, s1, s2, s3, s4, s5, s6, s7, bp + o, ldb, true));
  // the last w % 4 columns one at a time in lane 0, with the same instructions as the lanes above
  const tail = <usize>w << 2;
  for (; o < tail; o += 4) v128.store32_lane(cp + o, rows8(v128.load32_zero(cp + o), s0, s1, s2, s3, s4, s5, s6, s7, bp + o, ldb, false), 0);
}

/** C[0..w) += a[0] · B[0, 0..w): one row of B, for the last k % 8. */
// @ts-ignore: decorator
@inline export function axpy1(cp: usize, ap: usize, bp: usize, w: i32): void {
  const s = v128.load32_splat(ap);
  const end = <usize>(w & ~3) << 2;
  let o: usize = 0;
  for (; o < end; o += 16) v128.store(cp + o, madd4(s, v128.load(bp + o), v128.load(cp + o)));
  const tail = <usize>w << 2;
  for (; o < tail; o += 4) v128.store32_lane(cp + o, madd4(s, v128.load32_zero(bp + o), v128.load32_zero(cp + o)), 0);
}

/** Where a dot product starts: C itself (accumulate), else the bias (bias != 0), else 0. */
// @ts-ignore: decorator
@inline function start(cp: usize, bias: usize, accumulate: bool): f32 {
  return accumulate ? load<f32>(cp) : bias != 0 ? load<f32>(bias) : 0;
}

/**
 * C[0] = start + the dot product of A row a0 with B row b0 over k: one stream through B, 8
 * accumulators (32 floats a step).
 */
// @ts-ignore: decorator
@inline export function dot1x1(cp: usize, bias: usize, accumulate: bool, a0: usize, b0: usize, k: i32): void {
  let x0 = f32x4.splat(0), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0, x6 = x0, x7 = x0;
  const end32 = <usize>(k & ~31) << 2;
  let o: usize = 0;
  for (; o < end32; o += 128) {
    x0 = madd4(v128.load(a0 + o), v128.load(b0 + o), x0); x1 = madd4(v128.load(a0 + o, 16), v128.load(b0 + o, 16), x1);
    x2 = madd4(v128.load(a0 + o, 32), v128.load(b0 + o, 32), x2); x3 = madd4(v128.load(a0 + o, 48), v128.load(b0 + o, 48), x3);
    x4 = madd4(v128.load(a0 + o, 64), v128.load(b0 + o, 64), x4); x5 = madd4(v128.load(a0 + o, 80), v128.load(b0 + o, 80), x5);
    x6 = madd4(v128.load(a0 + o, 96), v128.load(b0 + o, 96), x6); x7 = madd4(v128.load(a0 + o, 112), v128.load(b0 + o, 112), x7);
  }
  const end4 = <usize>(k & ~3) << 2;
  for (; o < end4; o += 16) x0 = madd4(v128.load(a0 + o), v128.load(b0 + o), x0);
  let d = hsum4(f32x4.add(f32x4.add(f32x4.add(x0, x1), f32x4.add(x2, x3)), f32x4.add(f32x4.add(x4, x5), f32x4.add(x6, x7))));
  const tail = <usize>k << 2;
  for (; o < tail; o += 4) d += load<f32>(a0 + o) * load<f32>(b0 + o);
  store<f32>(cp, start(cp, bias, accumulate) + d);
}

/**
 * C[0, 0..4) = start + dots of A row a0 with B rows b0..b3 over k. Two accumulators per dot (even
 * and odd blocks of 4), so that the one-row tile still runs 8 independent chains.
 */
// @ts-ignore: decorator
@inline export function dot1x4(cp: usize, bias: usize, accumulate: bool, a0: usize, b0: usize, b1: usize, b2: usize, b3: usize, count: i32, k: i32): void {
  let x0 = f32x4.splat(0), x1 = f32x4.splat(0), x2 = f32x4.splat(0), x3 = f32x4.splat(0);
  let y0 = f32x4.splat(0), y1 = f32x4.splat(0), y2 = f32x4.splat(0), y3 = f32x4.splat(0);
  const end8 = <usize>(k & ~7) << 2;
  let o: usize = 0;
  for (; o < end8; o += 32) {
    const u = v128.load(a0 + o), v = v128.load(a0 + o, 16);
    x0 = madd4(u, v128.load(b0 + o), x0); x1 = madd4(u, v128.load(b1 + o), x1);
    x2 = madd4(u, v128.load(b2 + o), x2); x3 = madd4(u, v128.load(b3 + o), x3);
    y0 = madd4(v, v128.load(b0 + o, 16), y0); y1 = madd4(v, v128.load(b1 + o, 16), y1);
    y2 = madd4(v, v128.load(b2 + o, 16), y2); y3 = madd4(v, v128.load(b3 + o, 16), y3);
  }
  if (k & 4) {
    const u = v128.load(a0 + o);
    x0 = madd4(u, v128.load(b0 + o), x0); x1 = madd4(u, v128.load(b1 + o), x1);
    x2 = madd4(u, v128.load(b2 + o), x2); x3 = madd4(u, v128.load(b3 + o), x3);
    o += 16;
  }
  let d0 = hsum4(f32x4.add(x0, y0)), d1 = hsum4(f32x4.add(x1, y1)), d2 = hsum4(f32x4.add(x2, y2)), d3 = hsum4(f32x4.add(x3, y3));
  const tail = <usize>k << 2;
  for (; o < tail; o += 4) {
    const u = load<f32>(a0 + o);
    d0 += u * load<f32>(b0 + o); d1 += u * load<f32>(b1 + o); d2 += u * load<f32>(b2 + o); d3 += u * load<f32>(b3 + o);
  }
  store<f32>(cp, start(cp, bias, accumulate) + d0);
  if (count > 1) store<f32>(cp, start(cp + 4, bias + (bias != 0 ? 4 : 0), accumulate) + d1, 4);
  if (count > 2) store<f32>(cp, start(cp + 8, bias + (bias != 0 ? 8 : 0), accumulate) + d2, 8);
  if (count > 3) store<f32>(cp, start(cp + 12, bias + (bias != 0 ? 12 : 0), accumulate) + d3, 12);
}

/** C rows c0, c1, columns 0..count (<= 4) = start + dots of A rows a0, a1 with B rows b0..b3 over k. */
// @ts-ignore: decorator
@inline export function dot2x4(c0: usize, c1: usize, bias: usize, accumulate: bool, a0: usize, a1: usize, b0: usize, b1: usize, b2: usize, b3: usize, count: i32, k: i32): void {
  let x0 = f32x4.splat(0), x1 = f32x4.splat(0), x2 = f32x4.splat(0), x3 = f32x4.splat(0);
  let y0 = f32x4.splat(0), y1 = f32x4.splat(0), y2 = f32x4.splat(0), y3 = f32x4.splat(0);
  const end = <usize>(k & ~3) << 2;
  let o: usize = 0;
  for (; o < end; o += 16) {
    const u = v128.load(a0 + o), v = v128.load(a1 + o);
    const p0 = v128.load(b0 + o), p1 = v128.load(b1 + o), p2 = v128.load(b2 + o), p3 = v128.load(b3 + o);
    x0 = madd4(u, p0, x0); x1 = madd4(u, p1, x1); x2 = madd4(u, p2, x2); x3 = madd4(u, p3, x3);
    y0 = madd4(v, p0, y0); y1 = madd4(v, p1, y1); y2 = madd4(v, p2, y2); y3 = madd4(v, p3, y3);
  }
  let d0 = hsum4(x0), d1 = hsum4(x1), d2 = hsum4(x2), d3 = hsum4(x3);
  let e0 = hsum4(y0), e1 = hsum4(y1), e2 = hsum4(y2), e3 = hsum4(y3);
  const tail = <usize>k << 2;
  for (; o < tail; o += 4) {
    const u = load<f32>(a0 + o), v = load<f32>(a1 + o);
    const p0 = load<f32>(b0 + o), p1 = load<f32>(b1 + o), p2 = load<f32>(b2 + o), p3 = load<f32>(b3 + o);
    d0 += u * p0; d1 += u * p1; d2 += u * p2; d3 += u * p3;
    e0 += v * p0; e1 += v * p1; e2 += v * p2; e3 += v * p3;
  }
  const bstep: usize = bias != 0 ? 4 : 0;
  store<f32>(c0, start(c0, bias, accumulate) + d0); store<f32>(c1, start(c1, bias, accumulate) + e0);
  if (count > 1) { store<f32>(c0 + 4, start(c0 + 4, bias + bstep, accumulate) + d1); store<f32>(c1 + 4, start(c1 + 4, bias + bstep, accumulate) + e1); }
  if (count > 2) { store<f32>(c0 + 8, start(c0 + 8, bias + 2 * bstep, accumulate) + d2); store<f32>(c1 + 8, start(c1 + 8, bias + 2 * bstep, accumulate) + e2); }
  if (count > 3) { store<f32>(c0 + 12, start(c0 + 12, bias + 3 * bstep, accumulate) + d3); store<f32>(c1 + 12, start(c1 + 12, bias + 3 * bstep, accumulate) + e3); }
}
