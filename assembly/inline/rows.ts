// Row primitives shared by the kernels: dot product, weighted accumulation, softmax over a range.
// Pointers are byte addresses of f32 arrays; lengths count elements.
import { expNonPositive4 } from './exp';
import { hmax4, hsum4, madd4 } from './simd';

/** sum_t a[t] · b[t] over n elements: four independent accumulators, then a 4-wide loop, then a scalar tail. */
// @ts-ignore: decorator
@inline export function dot(a: usize, b: usize, n: i32): f32 {
  let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0), acc2 = f32x4.splat(0), acc3 = f32x4.splat(0);
  let t = 0;
  for (; t + 16 <= n; t += 16) {
    const o = <usize>t << 2;
    acc0 = madd4(v128.load(a + o), v128.load(b + o), acc0);
    acc1 = madd4(v128.load(a + o, 16), v128.load(b + o, 16), acc1);
    acc2 = madd4(v128.load(a + o, 32), v128.load(b + o, 32), acc2);
    acc3 = madd4(v128.load(a + o, 48), v128.load(b + o, 48), acc3);
  }
  for (; t + 4 <= n; t += 4) {
    const o = <usize>t << 2;
    acc0 = madd4(v128.load(a + o), v128.load(b + o), acc0);
  }
  let s = hsum4(f32x4.add(f32x4.add(acc0, acc1), f32x4.add(acc2, acc3)));
  for (; t < n; t++) s += load<f32>(a + (<usize>t << 2)) * load<f32>(b + (<usize>t << 2));
  return s;
}

/**
 * sum_t w[t] · v[t] over n elements, where a zero weight contributes nothing even when v[t] is NaN
 * or infinite (a key that the softmax gave no weight must not leak into the output).
 */
// @ts-ignore: decorator
@inline export function weightedSum(w: usize, v: usize, n: i32): f32 {
  const zero4 = f32x4.splat(0);
  let acc0 = zero4, acc1 = zero4;
  let t = 0;
  for (; t + 8 <= n; t += 8) {
    const o = <usize>t << 2;
    const w0 = v128.load(w + o), w1 = v128.load(w + o, 16);
    acc0 = f32x4.add(acc0, v128.bitselect(zero4, f32x4.mul(w0, v128.load(v + o)), f32x4.eq(w0, zero4)));
    acc1 = f32x4.add(acc1, v128.bitselect(zero4, f32x4.mul(w1, v128.load(v + o, 16)), f32x4.eq(w1, zero4)));
  }
  for (; t + 4 <= n; t += 4) {
    const o = <usize>t << 2;
    const w0 = v128.load(w + o);
    acc0 = f32x4.add(acc0, v128.bitselect(zero4, f32x4.mul(w0, v128.load(v + o)), f32x4.eq(w0, zero4)));
  }
  let s = hsum4(f32x4.add(acc0, acc1));
  for (; t < n; t++) {
    const wt = load<f32>(w + (<usize>t << 2));
    if (wt != 0) s += wt * load<f32>(v + (<usize>t << 2));
  }
  return s;
}

/**
 * out[0 .. dv) = sum_j w[j] · v[j, 0 .. dv) over n rows of v, skipping rows of zero weight
 * (see weightedSum). One row of weights: dv == 1 goes through weightedSum, vectorized over j.
 */
// @ts-ignore: decorator
@inline export function weightedRows(out: usize, w: usize, v: usize, n: i32, dv: i32): void {
  if (dv == 1) {
    store<f32>(out, weightedSum(w, v, n));
    return;
  }
  zero(out, dv);
  for (let j = 0; j < n; j++) {
    const wj = load<f32>(w + (<usize>j << 2));
    if (wj != 0) axpy(out, wj, v + <usize>j * (<usize>dv << 2), dv);
  }
}

/** out[t] += alpha · x[t] over n elements. */
// @ts-ignore: decorator
@inline export function axpy(out: usize, alpha: f32, x: usize, n: i32): void {
  const va = f32x4.splat(alpha);
  let t = 0;
  for (; t + 8 <= n; t += 8) {
    const o = <usize>t << 2;
    v128.store(out + o, madd4(va, v128.load(x + o), v128.load(out + o)));
    v128.store(out + o, madd4(va, v128.load(x + o, 16), v128.load(out + o, 16)), 16);
  }
  for (; t + 4 <= n; t += 4) {
    const o = <usize>t << 2;
    v128.store(out + o, madd4(va, v128.load(x + o), v128.load(out + o)));
  }
  for (; t < n; t++) {
    const o = <usize>t << 2;
    store<f32>(out + o, load<f32>(out + o) + alpha * load<f32>(x + o));
  }
}

/** x[t] *= alpha over n elements. */
// @ts-ignore: decorator
@inline export function scale(x: usize, alpha: f32, n: i32): void {
  const va = f32x4.splat(alpha);
  let t = 0;
  for (; t + 4 <= n; t += 4) {
    const o = <usize>t << 2;
    v128.store(x + o, f32x4.mul(v128.load(x + o), va));
  }
  for (; t < n; t++) store<f32>(x + (<usize>t << 2), load<f32>(x + (<usize>t << 2)) * alpha);
}

/** Max over n elements (NaN lanes may be skipped; the sum of exps that follows carries NaN). */
// @ts-ignore: decorator
@inline export function rowMax(x: usize, n: i32): f32 {
  let m0 = f32x4.splat(-Infinity), m1 = f32x4.splat(-Infinity);
  let t = 0;
  for (; t + 8 <= n; t += 8) {
    const o = <usize>t << 2;
    m0 = f32x4.pmax(m0, v128.load(x + o));
    m1 = f32x4.pmax(m1, v128.load(x + o, 16));
  }
  for (; t + 4 <= n; t += 4) m0 = f32x4.pmax(m0, v128.load(x + (<usize>t << 2)));
  let m = hmax4(f32x4.pmax(m0, m1));
  for (; t < n; t++) m = max<f32>(m, load<f32>(x + (<usize>t << 2)));
  return m;
}

/**
 * In place over n elements: x[t] = exp(x[t] - m). Returns the sum. NaN anywhere (or m = +Infinity)
 * makes the sum NaN, so that the whole row comes out NaN after normalizing.
 */
// @ts-ignore: decorator
@inline export function expShiftSum(x: usize, m: f32, n: i32): f32 {
  const vm = f32x4.splat(m);
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
  let t = 0;
  for (; t + 8 <= n; t += 8) {
    const o = <usize>t << 2;
    const e0 = expNonPositive4(f32x4.sub(v128.load(x + o), vm));
    const e1 = expNonPositive4(f32x4.sub(v128.load(x + o, 16), vm));
    v128.store(x + o, e0);
    v128.store(x + o, e1, 16);
    s0 = f32x4.add(s0, e0);
    s1 = f32x4.add(s1, e1);
  }
  for (; t + 4 <= n; t += 4) {
    const o = <usize>t << 2;
    const e0 = expNonPositive4(f32x4.sub(v128.load(x + o), vm));
    v128.store(x + o, e0);
    s0 = f32x4.add(s0, e0);
  }
  let s = hsum4(f32x4.add(s0, s1));
  for (; t < n; t++) {
    const o = <usize>t << 2;
    const e = f32x4.extract_lane(expNonPositive4(f32x4.splat(load<f32>(x + o) - m)), 0);
    store<f32>(x + o, e);
    s += e;
  }
  return s;
}

/**
 * Softmax in place over x[0 .. n). Returns false (and leaves x untouched) when the max is -Infinity,
 * i.e. no entry is allowed: the caller writes zeros. A row of only NaN and -Infinity becomes NaN.
 */
// @ts-ignore: decorator
@inline export function softmaxInPlace(x: usize, n: i32): bool {
  const m = rowMax(x, n);
  if (m == -Infinity) {
    // rowMax may skip NaN lanes; rare path, so a plain scan
    for (let t = 0; t < n; t++) {
      if (isNaN(load<f32>(x + (<usize>t << 2)))) {
        for (let u = 0; u < n; u++) store<f32>(x + (<usize>u << 2), NaN);
        return true;
      }
    }
    return false;
  }
  const s = expShiftSum(x, m, n);
  scale(x, 1.0 / s, n);
  return true;
}

/** x[0 .. n) = 0. */
// @ts-ignore: decorator
@inline export function zero(x: usize, n: i32): void {
  memory.fill(x, 0, <usize>n << 2);
}
