// Elementwise exp and tanh over arrays, by the same approximations the softmax and softcap use;
// exported so that their error bounds are tested directly (test/kernels/exp.test.ts).
import { exp1, exp2NonPositive4, exp2Shifted4, exp2Softmax4, exp4, expSoftmax4, shiftedExpMagic, tanh1, tanh4 } from '../inline/exp';

/** out[t] = e^x[t] over n f32 elements (out may equal x). */
export function exp_f32(out: usize, x: usize, n: i32): void {
  let t = 0;
  for (; t + 4 <= n; t += 4) v128.store(out + (<usize>t << 2), exp4(v128.load(x + (<usize>t << 2))));
  for (; t < n; t++) store<f32>(out + (<usize>t << 2), exp1(load<f32>(x + (<usize>t << 2))));
}

/** out[t] = tanh(x[t]) over n f32 elements (out may equal x). */
export function tanh_f32(out: usize, x: usize, n: i32): void {
  let t = 0;
  for (; t + 4 <= n; t += 4) v128.store(out + (<usize>t << 2), tanh4(v128.load(x + (<usize>t << 2))));
  for (; t < n; t++) store<f32>(out + (<usize>t << 2), tanh1(load<f32>(x + (<usize>t << 2))));
}

/** out[t] = e^x[t] over n f32 elements, x <= 0 (softmax's variant; out may equal x). */
export function exp_softmax_f32(out: usize, x: usize, n: i32): void {
  let t = 0;
  for (; t + 4 <= n; t += 4) v128.store(out + (<usize>t << 2), expSoftmax4(v128.load(x + (<usize>t << 2))));
  for (; t < n; t++) store<f32>(out + (<usize>t << 2), f32x4.extract_lane(expSoftmax4(f32x4.splat(load<f32>(x + (<usize>t << 2)))), 0));
}

/** out[t] = 2^x[t] over n f32 elements, x <= 0 (the fused attention's variant; out may equal x). */
export function exp2_nonpositive_f32(out: usize, x: usize, n: i32): void {
  let t = 0;
  for (; t + 4 <= n; t += 4) v128.store(out + (<usize>t << 2), exp2NonPositive4(v128.load(x + (<usize>t << 2))));
  for (; t < n; t++) store<f32>(out + (<usize>t << 2), f32x4.extract_lane(exp2NonPositive4(f32x4.splat(load<f32>(x + (<usize>t << 2)))), 0));
}

/** out[t] = 2^x[t] over n f32 elements, x <= 0 (the fused attention's weights; out may equal x). */
export function exp2_softmax_f32(out: usize, x: usize, n: i32): void {
  let t = 0;
  for (; t + 4 <= n; t += 4) v128.store(out + (<usize>t << 2), exp2Softmax4(v128.load(x + (<usize>t << 2))));
  for (; t < n; t++) store<f32>(out + (<usize>t << 2), f32x4.extract_lane(exp2Softmax4(f32x4.splat(load<f32>(x + (<usize>t << 2)))), 0));
}

/** out[t] = 2^(x[t] - m) over n f32 elements for an integer m, |m| <= 2^21 (the fused attention's one-pass weights; out may equal x). */
export function exp2_shifted_f32(out: usize, x: usize, n: i32, m: f32): void {
  const c = f32x4.splat(shiftedExpMagic(m)), lo = f32x4.splat(m - 127);
  let t = 0;
  for (; t + 4 <= n; t += 4) v128.store(out + (<usize>t << 2), exp2Shifted4(v128.load(x + (<usize>t << 2)), c, lo));
  for (; t < n; t++) store<f32>(out + (<usize>t << 2), f32x4.extract_lane(exp2Shifted4(f32x4.splat(load<f32>(x + (<usize>t << 2))), c, lo), 0));
}
