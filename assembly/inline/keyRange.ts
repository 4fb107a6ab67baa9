// The contiguous key range [lo, hi) that causal, window and validLens leave to query i:
//
//   p  = causal == bottom-right ? i + validLen - lq : i + lpast   (the query's position on the key axis)
//   lo = max(0, p - left)                                         (left < 0: unbounded)
//   hi = min(validLen, causal ? p + 1 : validLen, p + right + 1)  (right < 0: unbounded)
//
// where validLen = validLens[b] (or lk). Must agree with keyAllowed() in
// src/reference/scaledDotProductAttention.ts.

// must match src/core/scaledDotProductAttentionPlan.ts (exported by assembly/index.ts; createEngine compares them)
export const CAUSAL_NONE: i32 = 0;
export const CAUSAL_TOP_LEFT: i32 = 1;
export const CAUSAL_BOTTOM_RIGHT: i32 = 2;

// @ts-ignore: decorator
@inline export function queryPosition(i: i32, causal: i32, validLen: i32, lq: i32, lpast: i32): i32 {
  return causal == CAUSAL_BOTTOM_RIGHT ? i + validLen - lq : i + lpast;
}

// @ts-ignore: decorator
@inline export function keyLo(p: i32, left: i32): i32 {
  return left >= 0 ? max(0, p - left) : 0;
}

// @ts-ignore: decorator
@inline export function keyHi(p: i32, causal: i32, validLen: i32, right: i32): i32 {
  let hi = validLen;
  if (causal != CAUSAL_NONE) hi = min(hi, p + 1);
  if (right >= 0) hi = min(hi, p + right + 1);
  return hi;
}
