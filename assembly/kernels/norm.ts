// RMSNorm of rows: x / sqrt(mean(x²) + eps) · w, or · (1 + w) (Zhang & Sennrich 2019; Gemma's norms
// add 1 to the weight), as every decoder block and Qwen3's and Gemma 3's per-head query and key
// norms apply it.
//
// The mean of squares is summed in float64: float32 squares overflow above |x| = 1.8e19 and vanish
// below 1e-23, where the float64 definition (src/reference/rmsNorm.ts) still gives a unit-scale row.
// The factor 1 / sqrt(mean + eps) is then applied in two float32 steps, x · a · b with a a power of
// two, so that a factor outside float32's normal range (tiny rows with eps = 0, huge rows) is not
// rounded to Infinity or to a subnormal.

// @ts-ignore: decorator
@inline const BIG: f64 = 8.507059173023462e37; // 2^126
// @ts-ignore: decorator
@inline const SMALL: f64 = 1.1754943508222875e-38; // 2^-126
// @ts-ignore: decorator
@inline const SHIFT: f64 = 1.2676506002282294e30; // 2^100

/**
 * out[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) · w (· (1 + w) when unitOffset). A row holding
 * NaN is all NaN; in a row holding ±Infinity those entries are NaN and the others 0 (x · 1/∞); an
 * all-zero row with eps = 0 is NaN (0 · Infinity); all as in PyTorch.
 * @param out  f32 [rows, d]: x itself (in place), or apart from x and w
 * @param x    f32 [rows, d]
 * @param w    f32 [d]
 * @param eps  added to the mean of squares, >= 0
 * @param unitOffset 1: multiply by 1 + w (Gemma); 0: by w
 */
export function rms_norm_f32(out: usize, x: usize, w: usize, rows: i32, d: i32, eps: f64, unitOffset: i32): void {
  const rowBytes = <usize>d << 2;
  const offset = f32x4.splat(unitOffset ? <f32>1.0 : <f32>0.0), offset1: f32 = unitOffset ? 1.0 : 0.0;
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>r * rowBytes, o = out + <usize>r * rowBytes;
    const inv = 1.0 / Math.sqrt(sumOfSquares(xr, d) / <f64>d + eps);
    // inv = a · b, a a power of two that keeps b a normal float32 (unless inv is 0, Infinity or NaN)
    const a: f64 = inv >= BIG ? SHIFT : inv < SMALL ? 1.0 / SHIFT : 1.0;
    const a1 = <f32>a, b1 = <f32>(inv / a);
    const av = f32x4.splat(a1), bv = f32x4.splat(b1);
    let c = 0;
    for (; c + 4 <= d; c += 4) {
      const at = <usize>c << 2;
      const wv = f32x4.add(v128.load(w + at), offset);
      v128.store(o + at, f32x4.mul(f32x4.mul(f32x4.mul(v128.load(xr + at), av), bv), wv));
    }
    for (; c < d; c++) {
      const at = <usize>c << 2;
      store<f32>(o + at, load<f32>(xr + at) * a1 * b1 * (load<f32>(w + at) + offset1));
    }
  }
}

/** Σ x[c]² over d floats at row, in float64: four lanes of two accumulators, then the tail. */
// @ts-ignore: decorator
@inline function sumOfSquares(row: usize, d: i32): f64 {
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0), s2 = f64x2.splat(0), s3 = f64x2.splat(0);
  let c = 0;
  for (; c + 8 <= d; c += 8) {
    const at = <usize>c << 2;
    const v = v128.load(row + at), u = v128.load(row + at, 16);
    const v0 = f64x2.promote_low_f32x4(v), v1 = f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1));
    const u0 = f64x2.promote_low_f32x4(u), u1 = f64x2.promote_low_f32x4(v128.shuffle<f32>(u, u, 2, 3, 0, 1));
    s0 = f64x2.add(s0, f64x2.mul(v0, v0));
    s1 = f64x2.add(s1, f64x2.mul(v1, v1));
    s2 = f64x2.add(s2, f64x2.mul(u0, u0));
    s3 = f64x2.add(s3, f64x2.mul(u1, u1));
  }
  const s = f64x2.add(f64x2.add(s0, s1), f64x2.add(s2, s3));
  let sum = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
  for (; c < d; c++) {
    const v = <f64>load<f32>(row + (<usize>c << 2));
    sum += v * v;
  }
  return sum;
}

/**
 * The grouped-query layer's per-head query and key norm, in place: rms_norm_f32(x, x, w, n, d, eps, 0).
 * @param x     f32 [n, d], normalized in place
 * @param w     f32 [d]: the weight of each feature
 * @param eps   added to the mean of squares
 */
export function rms_norm_rows_f32(x: usize, n: i32, d: i32, w: usize, eps: f32): void {
  rms_norm_f32(x, x, w, n, d, <f64>eps, 0);
}
