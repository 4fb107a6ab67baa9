// The pointwise functions of a decoder's MLP and logit softcap, four lanes each, built on exp4
// (within 1 ulp, see ./exp.ts). Each is written so that no intermediate turns a finite true value
// into NaN: large |x| saturates through e^±Infinity (0 or Infinity) instead of Infinity - Infinity.
import { exp4 } from './exp';

// @ts-ignore: decorator
@inline const SIGN_MASK: i32 = 0x80000000;
// -2·√(2/π) and -2·√(2/π)·0.044715: GELU-tanh's -2u = x·(A + B·x²)
// @ts-ignore: decorator
@inline const GELU_A: f32 = -1.5957691216057308;
// @ts-ignore: decorator
@inline const GELU_B: f32 = -0.07135481627260025;

/**
 * SiLU, x · sigmoid(x) = x / (1 + e^-x), as PyTorch computes it: relative error below 2e-7 wherever
 * the result is above 1e-36 in magnitude (1.4e-7 measured, test/ops/elementwise.test.ts). e^-x
 * overflows to Infinity below x = -88.7, giving -0 where the true value is below 3e-37 in magnitude; +Infinity gives +Infinity, -Infinity gives NaN
 * (-Infinity / Infinity, as torch.nn.functional.silu), NaN gives NaN.
 */
// @ts-ignore: decorator
@inline export function silu4(x: v128): v128 {
  return f32x4.div(x, f32x4.add(f32x4.splat(1.0), exp4(f32x4.neg(x))));
}

/**
 * GELU, tanh approximation (PyTorch's approximate='tanh', Gemma's gelu_pytorch_tanh):
 * 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³), computed as x / (1 + e^(-2u)), which is the
 * same function (1 + tanh(u) = 2 / (1 + e^(-2u))) without the cancellation of 1 + tanh(u) for
 * negative x. Relative error a few ulp plus the rounding of e^(-2u)'s argument, about |2u|·2^-24
 * relative: below 2e-5 wherever the result is above 1e-36 in magnitude (1.3e-5 measured at x = -9.8,
 * where the result is 1e-36; tested). e^(-2u) overflows near x = -10.1, giving -0 where the true value
 * is below 3e-38. x³ overflowing saturates to ±Infinity, so large x gives x and large negative x -0;
 * -Infinity gives NaN (-Infinity · 0 in PyTorch's form).
 */
// @ts-ignore: decorator
@inline export function geluTanh4(x: v128): v128 {
  const t = f32x4.mul(x, f32x4.add(f32x4.splat(GELU_A), f32x4.mul(f32x4.splat(GELU_B), f32x4.mul(x, x))));
  return f32x4.div(x, f32x4.add(f32x4.splat(1.0), exp4(t)));
}

/**
 * tanh(x) with a small relative error everywhere (exp.ts's tanh4 is accurate in absolute terms
 * only: its 1 - 2/(e^2x + 1) cancels near 0). Cephes' tanhf (S. L. Moshier): for |x| < 0.625 the odd
 * polynomial x + x³·P(x²), else 1 - 2 / (e^(2|x|) + 1) with the sign of x. Relative error below
 * 2e-7 over float32 (1.3e-7 measured through softcap, test/ops/elementwise.test.ts); ±Infinity give ±1,
 * NaN gives NaN, -0 gives -0.
 */
// @ts-ignore: decorator
@inline export function tanhPrecise4(x: v128): v128 {
  // on |x|, then the sign of x: exactly odd, and -0 stays -0
  const a = f32x4.abs(x);
  const z = f32x4.mul(a, a);
  let p = f32x4.splat(-5.70498872745e-3);
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(2.06390887954e-2));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(-5.37397155531e-2));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(1.33314422036e-1));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(-3.33332819422e-1));
  const small = f32x4.add(a, f32x4.mul(f32x4.mul(p, z), a));
  const one = f32x4.splat(1.0);
  const big = f32x4.sub(one, f32x4.div(f32x4.splat(2.0), f32x4.add(exp4(f32x4.add(a, a)), one)));
  const t = v128.bitselect(small, big, f32x4.lt(a, f32x4.splat(0.625)));
  return v128.or(t, v128.and(x, i32x4.splat(SIGN_MASK)));
}
