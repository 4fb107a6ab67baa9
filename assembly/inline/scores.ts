// What turns raw scores into the softmax's inputs, shared by the attention kernels: softcapping (row,
// fused and paged), the user's mask (row and fused) and ALiBi's distance penalty (fused and paged).
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

/**
 * ALiBi over scores t0 .. t1 of keys j0 + t: s[t] -= slope · |p − (j0 + t)|, p the query's position
 * (see: Press et al., "Train Short, Test Long", 2022).
 */
// @ts-ignore: decorator
@inline export function alibiRow(s: usize, t0: i32, t1: i32, slope: f32, p: i32, j0: i32): void {
  for (let t = t0; t < t1; t++) {
    const at = s + (<usize>t << 2);
    store<f32>(at, load<f32>(at) - slope * <f32>abs(p - (j0 + t)));
  }
}
