// Scaled squared distances of one query to every key: s_j = c · ||q - k_j||², shared by the kernel
// regression kernels (the forward pass and the gradient). Keys are rows of d floats.
import { hsum4, madd4 } from './simd';

/** s[j] = c · ||q - k_j||² for j in [0, m); d == 1 (the essay's case) is vectorized over j. */
// @ts-ignore: decorator
@inline export function distanceScores(s: usize, q: usize, k: usize, m: i32, d: i32, c: f32): void {
  if (d == 1) scoresScalarKeys(s, load<f32>(q), k, m, c);
  else for (let j = 0; j < m; j++) store<f32>(s + (<usize>j << 2), c * squaredDistance(q, k + <usize>j * (<usize>d << 2), d));
}

/** One-dimensional keys: s_j = c · (q - k_j)², four keys at a time. */
// @ts-ignore: decorator
@inline function scoresScalarKeys(s: usize, qv: f32, k: usize, m: i32, c: f32): void {
  const vq = f32x4.splat(qv), vc = f32x4.splat(c);
  let j = 0;
  for (; j + 4 <= m; j += 4) {
    const o = <usize>j << 2;
    const diff = f32x4.sub(vq, v128.load(k + o));
    v128.store(s + o, f32x4.mul(vc, f32x4.mul(diff, diff)));
  }
  for (; j < m; j++) {
    const diff = qv - load<f32>(k + (<usize>j << 2));
    store<f32>(s + (<usize>j << 2), c * diff * diff);
  }
}

/** ||a - b||² over d elements. */
// @ts-ignore: decorator
@inline function squaredDistance(a: usize, b: usize, d: i32): f32 {
  let acc = f32x4.splat(0);
  let t = 0;
  for (; t + 4 <= d; t += 4) {
    const o = <usize>t << 2;
    const diff = f32x4.sub(v128.load(a + o), v128.load(b + o));
    acc = madd4(diff, diff, acc);
  }
  let s = hsum4(acc);
  for (; t < d; t++) {
    const diff = load<f32>(a + (<usize>t << 2)) - load<f32>(b + (<usize>t << 2));
    s += diff * diff;
  }
  return s;
}
