// What turns raw scores into the softmax's inputs, shared by the row and the fused attention kernels:
// softcapping and the user's mask.
import { tanh1, tanh4 } from './exp';

// must match src/core/scaledDotProductAttentionPlan.ts (exported by assembly/index.ts; createEngine compares them)
export const MASK_NONE: i32 = 0;
export const MASK_BOOLEAN: i32 = 1;
export const MASK_ADDITIVE: i32 = 2;

/** x = c · tanh(x / c) over n elements. */
// @ts-ignore: decorator
@inline export function softcapRow(x: usize, n: i32, c: f32): void {
  const vc = f32x4.splat(c), inv = f32x4.splat(1.0 / c);
  let t = 0;
  for (; t + 4 <= n; t += 4) {
    const o = <usize>t << 2;
    v128.store(x + o, f32x4.mul(tanh4(f32x4.mul(v128.load(x + o), inv)), vc));
  }
  for (; t < n; t++) {
    const o = <usize>t << 2;
    store<f32>(x + o, c * tanh1(load<f32>(x + o) / c));
  }
}

/**
 * Applies the mask to n scores s[t], whose mask elements are at at0 + t · stride (elements):
 * a boolean 0 makes the score -Infinity; an additive value times `unit` is added (unit = log2 e
 * where scores are kept in base 2).
 */
// @ts-ignore: decorator
@inline export function applyMask(s: usize, n: i32, mask: usize, kind: i32, at0: i32, stride: i32, unit: f32): void {
  for (let t = 0; t < n; t++) {
    const at = <usize>(at0 + t * stride);
    const st = s + (<usize>t << 2);
    if (kind == MASK_BOOLEAN) {
      if (load<u8>(mask + at) == 0) store<f32>(st, -Infinity);
    } else {
      store<f32>(st, load<f32>(st) + load<f32>(mask + (at << 2)) * unit);
    }
  }
}
