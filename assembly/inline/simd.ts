// Private SIMD helpers shared by the kernels. All are @inline so that the hot loops stay flat.

/** a * b + c, four lanes. Fused where the build has relaxed SIMD; mul + add otherwise. */
// @ts-ignore: decorator
@inline export function madd4(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Sum of the four lanes. */
// @ts-ignore: decorator
@inline export function hsum4(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

/**
 * Max of the four lanes (a NaN lane may be ignored: callers detect NaN through the sum that follows).
 * By pmax and shuffles: V8 compiles f32.max to a sequence with data-dependent branches (NaN, ±0),
 * which slowed softmax rows down.
 */
// @ts-ignore: decorator
@inline export function hmax4(v: v128): f32 {
  const h = f32x4.pmax(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.pmax(h, v128.shuffle<f32>(h, h, 1, 0, 3, 2)), 0);
}

/** The four lane sums of a0 .. a3 as one vector, [sum a0, sum a1, sum a2, sum a3] (a transpose-add). */
// @ts-ignore: decorator
@inline export function sums4(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const u = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 4, 1, 5), v128.shuffle<f32>(a0, a1, 2, 6, 3, 7));
  const w = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 4, 1, 5), v128.shuffle<f32>(a2, a3, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(u, w, 0, 1, 4, 5), v128.shuffle<f32>(u, w, 2, 3, 6, 7));
}
