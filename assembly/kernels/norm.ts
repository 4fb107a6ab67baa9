// RMSNorm of rows, in place: x / sqrt(mean(x²) + eps) · w (Zhang & Sennrich 2019), as Qwen3 and
// Gemma 3 apply it to every head's query and key.
import { hsum4 } from '../inline/simd';

/**
 * @param x     f32 [n, d], normalized in place
 * @param w     f32 [d]: the weight of each feature
 * @param eps   added to the mean of squares
 */
export function rms_norm_rows_f32(x: usize, n: i32, d: i32, w: usize, eps: f32): void {
  for (let r = 0; r < n; r++) {
    const row = x + (<usize>(r * d) << 2);
    let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0);
    let c = 0;
    for (; c + 8 <= d; c += 8) {
      const a = v128.load(row + (<usize>c << 2)), b = v128.load(row + (<usize>c << 2), 16);
      acc0 = f32x4.add(acc0, f32x4.mul(a, a));
      acc1 = f32x4.add(acc1, f32x4.mul(b, b));
    }
    let sq = hsum4(f32x4.add(acc0, acc1));
    for (; c < d; c++) { const v = load<f32>(row + (<usize>c << 2)); sq += v * v; }
    const inv = <f32>(1.0 / Math.sqrt(<f64>(sq / <f32>d + eps)));
    const vi = f32x4.splat(inv);
    c = 0;
    for (; c + 4 <= d; c += 4) {
      const o = <usize>c << 2;
      v128.store(row + o, f32x4.mul(f32x4.mul(v128.load(row + o), vi), v128.load(w + o)));
    }
    for (; c < d; c++) {
      const o = <usize>c << 2;
      store<f32>(row + o, load<f32>(row + o) * inv * load<f32>(w + o));
    }
  }
}
