// Vectorized exp and tanh for float32.
//
// exp4: exp(x) = 2^n · exp(r), n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2], with ln 2
// split in two parts (Cody–Waite) so that r is exact, and exp(r) by the degree-6 minimax polynomial
// of Cephes' expf (S. L. Moshier). Rounding uses the add-magic-number trick (fast in V8, unlike
// f32x4.nearest). Error, measured against float64 Math.exp in test/kernels/exp.test.ts: within 1 ulp for x
// in [-87.3, 88], within 5 ulp in (88, 88.72] where n is held at 127. Below -87.33 the result is
// flushed to 0 (the true value is subnormal, < 1.2e-38); above 88.72 it is +Infinity; NaN gives NaN.
// The softmax rows use expSoftmax4 instead (x <= 0, sized to the 1e-4 tolerance), the fused
// attention kernel its base-2 form exp2Softmax4 for the weights and exp2NonPositive4 for the
// rescaling factors.
import { madd4 } from './simd';

// @ts-ignore: decorator
@inline const LOG2E: f32 = 1.44269504088896341;
// @ts-ignore: decorator
@inline const LN2_HI: f32 = 0.693359375;
// @ts-ignore: decorator
@inline const LN2_LO: f32 = -2.12194440e-4;
// @ts-ignore: decorator
@inline const ROUND_MAGIC: f32 = 12582912.0; // 1.5 · 2^23: adding it rounds to an integer
// @ts-ignore: decorator
@inline const EXP_LO: f32 = -87.33654475;
// @ts-ignore: decorator
@inline const EXP_HI: f32 = 88.72283905;

/**
 * c0·r^5 + c1·r^4 + … + c5 by Horner's rule, for exp4 and exp2NonPositive4: multiplies and adds
 * unfused, as they have always been computed (madd4 would fuse them on the relaxed build).
 */
// @ts-ignore: decorator
@inline function horner5(r: v128, c0: f32, c1: f32, c2: f32, c3: f32, c4: f32, c5: f32): v128 {
  let p = f32x4.splat(c0);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(c1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(c2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(c3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(c4));
  return f32x4.add(f32x4.mul(p, r), f32x4.splat(c5));
}

/** e^r for r = x - n·ln 2 (Cody–Waite, so that r is exact), by Cephes' degree-6 polynomial. */
// @ts-ignore: decorator
@inline function expReduced(x: v128, n: v128): v128 {
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LO)));
  const p = horner5(r, 1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1);
  return f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r), f32x4.splat(1.0));
}

/** e^x, four lanes. */
// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  // clamp so that n stays in [-126, 127] (2^n is then a normal float); the ends are fixed up below.
  // For x in (88, 88.72] n stays 127 and r grows to 0.69, where the polynomial is still accurate.
  const xc = f32x4.pmax(f32x4.pmin(x, f32x4.splat(EXP_HI)), f32x4.splat(EXP_LO));
  const magic = f32x4.splat(ROUND_MAGIC);
  const n = f32x4.sub(f32x4.add(f32x4.mul(f32x4.pmin(xc, f32x4.splat(88.0)), f32x4.splat(LOG2E)), magic), magic);
  const er = expReduced(xc, n);
  // 2^n: put n + 127 in the exponent bits
  const pow2n = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  let y = f32x4.mul(er, pow2n);
  y = v128.bitselect(f32x4.splat(0.0), y, f32x4.lt(x, f32x4.splat(EXP_LO)));
  y = v128.bitselect(f32x4.splat(Infinity), y, f32x4.gt(x, f32x4.splat(EXP_HI)));
  return v128.bitselect(x, y, f32x4.ne(x, x)); // NaN in, NaN out
}

/**
 * 2^x for x <= 0 (and -Infinity, NaN), four lanes: the fused attention kernel's softmax, whose scores
 * are scaled by log2(e) up front so that the range reduction is exact and short: n = round(x),
 * r = x - n in [-1/2, 1/2], 2^r by its Taylor polynomial of degree 6 (ln(2)^k / k!; the next term
 * is below 1.3e-7 of the result). Within 3 ulp over [-126, 0] (2.9 measured), tested; below -126
 * it is 0. Attention weights need far less (the tolerance is 1e-4); softmax() keeps the 1 ulp exp.
 */
// @ts-ignore: decorator
@inline export function exp2NonPositive4(x: v128): v128 {
  const xc = f32x4.pmax(x, f32x4.splat(-126.0)); // NaN stays NaN
  const magic = f32x4.splat(ROUND_MAGIC);
  const t = f32x4.add(xc, magic);
  const r = f32x4.sub(xc, f32x4.sub(t, magic));
  const p = horner5(r, 1.5403530393381608e-4, 1.3333558146428443e-3, 9.618129107628477e-3, 5.550410866482158e-2, 2.402265069591007e-1, 6.931471805599453e-1);
  const er = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0));
  const pow2n = i32x4.add(i32x4.shl(t, 23), i32x4.splat(127 << 23));
  return v128.bitselect(f32x4.splat(0.0), f32x4.mul(er, pow2n), f32x4.lt(x, f32x4.splat(-126.0)));
}

/**
 * e^x for x <= 0 (and -Infinity, NaN), four lanes, sized to softmax's tolerance (1e-4 absolute on
 * weights <= 1) rather than to float32's last bit: x·log2(e) = n + r with n = round, r in [-1/2, 1/2],
 * and 2^r by a degree-4 polynomial fitted for least maximum relative error on [-1/2, 1/2] (Lawson's
 * iteration in float64; fit error 2.6e-6). Error bound, measured against float64 Math.exp in
 * test/kernels/exp.test.ts (both builds): relative error below 3.5e-6 over [-10, 0] and below 7e-6 over
 * [-87.3, 0] (6.4e-6 measured), so a softmax weight is within about 1.4e-5 of itself, 7x inside
 * the tolerance. Cheaper than exp4 by two multiply-adds, the Cody–Waite split and the range checks:
 * the rounding of x·log2(e) costs a relative |x|·2^-24·ln 2 in the result, which is tiny exactly
 * where |x| is large. Below x·log2(e) = -126.5 the result is exactly 0 (n = -127 leaves the exponent
 * bits 0, so no compare is needed; -Infinity gives 0); NaN gives NaN.
 */
// @ts-ignore: decorator
@inline export function expSoftmax4(x: v128): v128 {
  return exp2Softmax4(f32x4.mul(x, f32x4.splat(LOG2E)));
}

/** 2^r for r in [-1/2, 1/2], four lanes: expSoftmax4's degree-4 fit (relative error 2.6e-6). */
// @ts-ignore: decorator
@inline function exp2Fraction(r: v128): v128 {
  let p = madd4(f32x4.splat(9.570101877639584e-3), r, f32x4.splat(5.5917861782476576e-2));
  p = madd4(p, r, f32x4.splat(2.4024744841446682e-1));
  p = madd4(p, r, f32x4.splat(6.931218145594340e-1));
  p = madd4(p, r, f32x4.splat(9.999992614376441e-1));
  return p;
}

/**
 * 2^x for x <= 0 (and -Infinity, NaN), four lanes, by expSoftmax4's polynomial: the fused attention
 * kernel's softmax, whose scores are in base 2 already. Relative error below 7e-6 over [-126, 0]
 * (tested); exactly 0 below -126.5 and for -Infinity; NaN gives NaN. Four multiply-adds, where
 * exp2NonPositive4 takes six and a compare.
 */
// @ts-ignore: decorator
@inline export function exp2Softmax4(x: v128): v128 {
  const t = f32x4.pmax(x, f32x4.splat(-127.0)); // NaN stays NaN
  // adding ROUND_MAGIC + 127 rounds t to n and leaves n + 127 in the low bits of tm
  const magic = f32x4.splat(ROUND_MAGIC + 127.0);
  const tm = f32x4.add(t, magic);
  const r = f32x4.sub(t, f32x4.sub(tm, magic));
  // 2^n: (bits of tm) << 23 is (n + 127) << 23, the exponent field; n = -127 gives +0
  return f32x4.mul(exp2Fraction(r), i32x4.shl(tm, 23));
}

/**
 * 2^(x - m) for an integer m with |m| <= 2^21, by exp2Softmax4's polynomial, given c = ROUND_MAGIC +
 * 127 - m and lo = m - 127 (splatted; shiftedExpMagic gives c): the subtraction is folded into the
 * rounding, since adding c to x rounds it to an integer n' and leaves n' - m + 127 in the low bits,
 * and r = x - n' is exact. One operation fewer than exp2Softmax4(x - m), and x - m is never rounded.
 * For x - m in [-127, 8] (the fused kernel's lazy running max lets weights reach 2^8); below, 0
 * (x is clamped to lo, as exp2Softmax4 clamps); NaN gives NaN.
 */
// @ts-ignore: decorator
@inline export function exp2Shifted4(x: v128, c: v128, lo: v128): v128 {
  const t = f32x4.pmax(x, lo); // NaN stays NaN
  const tm = f32x4.add(t, c);
  const r = f32x4.sub(t, f32x4.sub(tm, c));
  return f32x4.mul(exp2Fraction(r), i32x4.shl(tm, 23));
}

/** The c of exp2Shifted4 for the integer m. */
// @ts-ignore: decorator
@inline export function shiftedExpMagic(m: f32): f32 {
  return ROUND_MAGIC + 127.0 - m;
}

/** e^x for one value, by the same approximation as exp4 (scalar tails agree with SIMD bodies). */
// @ts-ignore: decorator
@inline export function exp1(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}

/**
 * tanh(x) = 1 - 2 / (e^(2x) + 1), four lanes. Absolute error below 2.5e-7 (the subtraction loses
 * relative accuracy near 0, which is harmless where the result is scaled and added to scores).
 * ±Infinity give ±1, NaN gives NaN.
 */
// @ts-ignore: decorator
@inline export function tanh4(x: v128): v128 {
  const e = exp4(f32x4.add(x, x));
  const one = f32x4.splat(1.0);
  return f32x4.sub(one, f32x4.div(f32x4.splat(2.0), f32x4.add(e, one)));
}

// @ts-ignore: decorator
@inline export function tanh1(x: f32): f32 {
  return f32x4.extract_lane(tanh4(f32x4.splat(x)), 0);
}
