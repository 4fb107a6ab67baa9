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

/** Max of the four lanes (a NaN lane may be ignored: callers detect NaN through the sum that follows). */
// @ts-ignore: decorator
@inline export function hmax4(v: v128): f32 {
  const a = max<f32>(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1));
  const b = max<f32>(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3));
  return max<f32>(a, b);
}
