// The pointwise layers of a decoder block: the residual add, the gated MLP's activation (SiLU or
// GELU-tanh of the gate times the up projection) and the logit softcap. Each output element is one
// function of its inputs, the same in the SIMD body and the scalar tail (the tail runs the four-lane
// function on a splat), so results do not depend on how threads split the work.
//
// Gated rows (the gate's I features, then the up projection's I, as a fused gate_up projection
// writes them):
//
//   x   row r: | gate 0 .. I-1 | up 0 .. I-1 |      (2I floats)
//   out row r: | act(gate j) · up j          |      (I floats)
import { geluTanh4, silu4, tanhPrecise4 } from '../inline/activation';

/**
 * out[t] = a[t] + b[t] over n floats. out may equal a or b (a residual add in place); otherwise it
 * must not overlap either.
 */
export function add_f32(out: usize, a: usize, b: usize, n: i32): void {
  let t = 0;
  for (; t + 8 <= n; t += 8) {
    const o = <usize>t << 2;
    const s0 = f32x4.add(v128.load(a + o), v128.load(b + o));
    const s1 = f32x4.add(v128.load(a + o, 16), v128.load(b + o, 16));
    v128.store(out + o, s0);
    v128.store(out + o, s1, 16);
  }
  for (; t < n; t++) {
    const o = <usize>t << 2;
    store<f32>(out + o, load<f32>(a + o) + load<f32>(b + o));
  }
}

/**
 * out[r, j] = silu(x[r, j]) · x[r, i + j], silu(g) = g / (1 + e^-g) (see inline/activation.ts).
 * @param out f32 [rows, i], apart from x
 * @param x   f32 [rows, 2i]
 */
export function gated_silu_f32(out: usize, x: usize, rows: i32, i: i32): void {
  for (let r = 0; r < rows; r++) {
    const g = x + (<usize>r * <usize>i << 3), u = g + (<usize>i << 2), o = out + (<usize>r * <usize>i << 2);
    let j = 0;
    for (; j + 4 <= i; j += 4) {
      const at = <usize>j << 2;
      v128.store(o + at, f32x4.mul(silu4(v128.load(g + at)), v128.load(u + at)));
    }
    for (; j < i; j++) {
      const at = <usize>j << 2;
      store<f32>(o + at, f32x4.extract_lane(silu4(f32x4.splat(load<f32>(g + at))), 0) * load<f32>(u + at));
    }
  }
}

/**
 * out[r, j] = gelu_tanh(x[r, j]) · x[r, i + j] (see inline/activation.ts).
 * @param out f32 [rows, i], apart from x
 * @param x   f32 [rows, 2i]
 */
export function gated_gelu_tanh_f32(out: usize, x: usize, rows: i32, i: i32): void {
  for (let r = 0; r < rows; r++) {
    const g = x + (<usize>r * <usize>i << 3), u = g + (<usize>i << 2), o = out + (<usize>r * <usize>i << 2);
    let j = 0;
    for (; j + 4 <= i; j += 4) {
      const at = <usize>j << 2;
      v128.store(o + at, f32x4.mul(geluTanh4(v128.load(g + at)), v128.load(u + at)));
    }
    for (; j < i; j++) {
      const at = <usize>j << 2;
      store<f32>(o + at, f32x4.extract_lane(geluTanh4(f32x4.splat(load<f32>(g + at))), 0) * load<f32>(u + at));
    }
  }
}

/**
 * out[t] = cap · tanh(x[t] / cap) over n floats (Gemma 2's final logit softcap); ±Infinity give
 * ±cap, NaN gives NaN. x / cap is taken as x · (1 / cap), exact to float32 rounding for cap in
 * [2^-126, 2^126] (the wrapper's range). out may equal x; otherwise the two must not overlap.
 */
export function softcap_f32(out: usize, x: usize, n: i32, cap: f32): void {
  const c = f32x4.splat(cap), inv = f32x4.splat(<f32>1.0 / cap);
  let t = 0;
  for (; t + 4 <= n; t += 4) {
    const o = <usize>t << 2;
    v128.store(out + o, f32x4.mul(c, tanhPrecise4(f32x4.mul(v128.load(x + o), inv))));
  }
  for (; t < n; t++) {
    const o = <usize>t << 2;
    store<f32>(out + o, f32x4.extract_lane(f32x4.mul(c, tanhPrecise4(f32x4.mul(f32x4.splat(load<f32>(x + o)), inv))), 0));
  }
}
