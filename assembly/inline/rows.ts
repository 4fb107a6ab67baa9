// Row primitives shared by the kernels: dot product, weighted accumulation, softmax over a range.
// Pointers are byte addresses of f32 arrays; lengths count elements.
import { expSoftmax4 } from './exp';
import { hmax4, hsum4, madd4, sums4 } from './simd';

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
 * out[0 .. dv) = sum_j w[j] · v[j, 0 .. dv) over n rows of v (vStride floats apart), skipping rows
 * of zero weight (see weightedSum). dv == 1 goes through weightedSum, vectorized over j; otherwise 32 columns at
 * a time stay in 8 v128 accumulators while the rows stream by, then 4 columns, then single ones.
 * `accumulate` adds to out instead, in the order one call over all the rows would: a run of rows
 * after another (the KV view's blocks) gives the bits one run of them would.
 */
// @ts-ignore: decorator
@inline export function weightedRows(out: usize, w: usize, v: usize, n: i32, dv: i32, vStride: i32, accumulate: bool = false): void {
  if (dv == 1 && vStride == 1 && !accumulate) {
    store<f32>(out, weightedSum(w, v, n));
    return;
  }
  const ldv = <usize>vStride << 2;
  let c = 0;
  for (; c + 32 <= dv; c += 32) {
    const o = out + (<usize>c << 2), z = f32x4.splat(0);
    let a0 = z, a1 = z, a2 = z, a3 = z, a4 = z, a5 = z, a6 = z, a7 = z;
    if (accumulate) {
      a0 = v128.load(o); a1 = v128.load(o, 16); a2 = v128.load(o, 32); a3 = v128.load(o, 48);
      a4 = v128.load(o, 64); a5 = v128.load(o, 80); a6 = v128.load(o, 96); a7 = v128.load(o, 112);
    }
    let vr = v + (<usize>c << 2);
    for (let j = 0; j < n; j++) {
      const wj = load<f32>(w + (<usize>j << 2));
      if (wj != 0) {
        const x = f32x4.splat(wj);
        a0 = madd4(x, v128.load(vr), a0); a1 = madd4(x, v128.load(vr, 16), a1);
        a2 = madd4(x, v128.load(vr, 32), a2); a3 = madd4(x, v128.load(vr, 48), a3);
        a4 = madd4(x, v128.load(vr, 64), a4); a5 = madd4(x, v128.load(vr, 80), a5);
        a6 = madd4(x, v128.load(vr, 96), a6); a7 = madd4(x, v128.load(vr, 112), a7);
      }
      vr += ldv;
    }
    v128.store(o, a0); v128.store(o, a1, 16); v128.store(o, a2, 32); v128.store(o, a3, 48);
    v128.store(o, a4, 64); v128.store(o, a5, 80); v128.store(o, a6, 96); v128.store(o, a7, 112);
  }
  for (; c + 4 <= dv; c += 4) {
    let a = accumulate ? v128.load(out + (<usize>c << 2)) : f32x4.splat(0);
    let vr = v + (<usize>c << 2);
    for (let j = 0; j < n; j++) {
      const wj = load<f32>(w + (<usize>j << 2));
      if (wj != 0) a = madd4(f32x4.splat(wj), v128.load(vr), a);
      vr += ldv;
    }
    v128.store(out + (<usize>c << 2), a);
  }
  for (; c < dv; c++) {
    let a: f32 = accumulate ? load<f32>(out + (<usize>c << 2)) : 0;
    let vr = v + (<usize>c << 2);
    for (let j = 0; j < n; j++) {
      const wj = load<f32>(w + (<usize>j << 2));
      if (wj != 0) a += wj * load<f32>(vr);
      vr += ldv;
    }
    store<f32>(out + (<usize>c << 2), a);
  }
}

/**
 * s[j] = scale · (q · k_j) for keys j in [0, n) of k (rows of e floats, kStride floats apart): four keys at a time share
 * each load of q, and their four accumulators are reduced together by a transpose-add.
 */
// @ts-ignore: decorator
@inline export function scoreKeys(s: usize, q: usize, k: usize, n: i32, e: i32, kStride: i32, scale_: f32): void {
  const ld = <usize>kStride << 2;
  const e4 = e & ~3;
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const k0 = k + <usize>j * ld, k1 = k0 + ld, k2 = k1 + ld, k3 = k2 + ld;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let t = 0; t < e4; t += 4) {
      const o = <usize>t << 2;
      const qv = v128.load(q + o);
      a0 = madd4(qv, v128.load(k0 + o), a0); a1 = madd4(qv, v128.load(k1 + o), a1);
      a2 = madd4(qv, v128.load(k2 + o), a2); a3 = madd4(qv, v128.load(k3 + o), a3);
    }
    let r = sums4(a0, a1, a2, a3);
    if (e4 < e) {
      let t0: f32 = 0, t1: f32 = 0, t2: f32 = 0, t3: f32 = 0;
      for (let t = e4; t < e; t++) {
        const o = <usize>t << 2, qt = load<f32>(q + o);
        t0 += qt * load<f32>(k0 + o); t1 += qt * load<f32>(k1 + o);
        t2 += qt * load<f32>(k2 + o); t3 += qt * load<f32>(k3 + o);
      }
      r = f32x4.add(r, f32x4(t0, t1, t2, t3));
    }
    v128.store(s + (<usize>j << 2), f32x4.mul(r, f32x4.splat(scale_)));
  }
  for (; j < n; j++) store<f32>(s + (<usize>j << 2), dot(q, k + <usize>j * ld, e) * scale_);
}

/** x[t] *= alpha over n elements. */
// @ts-ignore: decorator
@inline export function scale(x: usize, alpha: f32, n: i32): void {
  const va = f32x4.splat(alpha);
  let t = 0;
  for (; t + 16 <= n; t += 16) {
    const o = x + (<usize>t << 2);
    v128.store(o, f32x4.mul(v128.load(o), va)); v128.store(o, f32x4.mul(v128.load(o, 16), va), 16);
    v128.store(o, f32x4.mul(v128.load(o, 32), va), 32); v128.store(o, f32x4.mul(v128.load(o, 48), va), 48);
  }
  for (; t + 4 <= n; t += 4) {
    const o = x + (<usize>t << 2);
    v128.store(o, f32x4.mul(v128.load(o), va));
  }
  for (; t < n; t++) store<f32>(x + (<usize>t << 2), load<f32>(x + (<usize>t << 2)) * alpha);
}

/** Max over n elements (NaN lanes may be skipped; the sum of exps that follows carries NaN). */
// @ts-ignore: decorator
@inline export function rowMax(x: usize, n: i32): f32 {
  let m0 = f32x4.splat(-Infinity), m1 = m0, m2 = m0, m3 = m0;
  let t = 0;
  for (; t + 16 <= n; t += 16) {
    const o = x + (<usize>t << 2);
    m0 = f32x4.pmax(m0, v128.load(o)); m1 = f32x4.pmax(m1, v128.load(o, 16));
    m2 = f32x4.pmax(m2, v128.load(o, 32)); m3 = f32x4.pmax(m3, v128.load(o, 48));
  }
  for (; t + 4 <= n; t += 4) m0 = f32x4.pmax(m0, v128.load(x + (<usize>t << 2)));
  let m = hmax4(f32x4.pmax(f32x4.pmax(m0, m1), f32x4.pmax(m2, m3)));
  for (; t < n; t++) m = max<f32>(m, load<f32>(x + (<usize>t << 2)));
  return m;
}

/** The second result of expShiftSum: the max of its y (module state, one per instance and thread). */
export let nextRowMax: f32 = -Infinity;

/**
 * out[t] = exp(x[t] - m) over n elements (out may equal x). Returns the sum. NaN anywhere (or
 * m = +Infinity) makes the sum NaN, so that the whole row comes out NaN after normalizing.
 * see: XNNPACK's f32-raddstoreexpminusmax (exp, store and sum in one pass)
 *
 * On the side, for the softmax kernel's pipeline over rows (ny = nz = 0 for a lone row): the max of
 * the next row y[0 .. ny) (as rowMax) goes to nextRowMax, and the previous row's output z[0 .. nz)
 * is scaled by alpha, so that the next row's loads from memory and the previous row's scale (in
 * cache) overlap this row's exp arithmetic. The exp sum is accumulated in the same order whatever
 * y and z are, so a row's result does not depend on its neighbours, nor on how threads split rows.
 */
// @ts-ignore: decorator
@inline export function expShiftSum(out: usize, x: usize, m: f32, n: i32, y: usize, ny: i32, z: usize, nz: i32, alpha: f32): f32 {
  // one sum and one max accumulator, each step's four vectors added (maxed) pairwise first: with
  // the polynomial's constants, more live v128 values than x64's 16 registers spill in V8
  const vm = f32x4.splat(m);
  let sum = f32x4.splat(0), mx = f32x4.splat(-Infinity);
  const both = min(n, ny) & ~15, zs = min(n, nz) & ~15;
  const va = f32x4.splat(alpha);
  let t = 0;
  // four independent exp chains per step: the polynomial is a long dependent chain
  for (; t + 16 <= n; t += 16) {
    if (t < both) {
      const j = y + (<usize>t << 2);
      mx = f32x4.pmax(mx, f32x4.pmax(f32x4.pmax(v128.load(j), v128.load(j, 16)), f32x4.pmax(v128.load(j, 32), v128.load(j, 48))));
    }
    if (t < zs) {
      const k = z + (<usize>t << 2);
      v128.store(k, f32x4.mul(v128.load(k), va)); v128.store(k, f32x4.mul(v128.load(k, 16), va), 16);
      v128.store(k, f32x4.mul(v128.load(k, 32), va), 32); v128.store(k, f32x4.mul(v128.load(k, 48), va), 48);
    }
    const i = x + (<usize>t << 2), o = out + (<usize>t << 2);
    const e0 = expSoftmax4(f32x4.sub(v128.load(i), vm));
    const e1 = expSoftmax4(f32x4.sub(v128.load(i, 16), vm));
    const e2 = expSoftmax4(f32x4.sub(v128.load(i, 32), vm));
    const e3 = expSoftmax4(f32x4.sub(v128.load(i, 48), vm));
    v128.store(o, e0); v128.store(o, e1, 16); v128.store(o, e2, 32); v128.store(o, e3, 48);
    sum = f32x4.add(sum, f32x4.add(f32x4.add(e0, e1), f32x4.add(e2, e3)));
  }
  for (; t + 4 <= n; t += 4) {
    const e0 = expSoftmax4(f32x4.sub(v128.load(x + (<usize>t << 2)), vm));
    v128.store(out + (<usize>t << 2), e0);
    sum = f32x4.add(sum, e0);
  }
  let s = hsum4(sum);
  for (; t < n; t++) {
    const e = f32x4.extract_lane(expSoftmax4(f32x4.splat(load<f32>(x + (<usize>t << 2)) - m)), 0);
    store<f32>(out + (<usize>t << 2), e);
    s += e;
  }
  if (nz > zs) scale(z + (<usize>zs << 2), alpha, nz - zs);
  if (ny > 0) {
    // the rest of y, as rowMax
    let u = both;
    for (; u + 16 <= ny; u += 16) {
      const j = y + (<usize>u << 2);
      mx = f32x4.pmax(mx, f32x4.pmax(f32x4.pmax(v128.load(j), v128.load(j, 16)), f32x4.pmax(v128.load(j, 32), v128.load(j, 48))));
    }
    for (; u + 4 <= ny; u += 4) mx = f32x4.pmax(mx, v128.load(y + (<usize>u << 2)));
    let mm = hmax4(mx);
    for (; u < ny; u++) mm = max<f32>(mm, load<f32>(y + (<usize>u << 2)));
    nextRowMax = mm;
  }
  return s;
}

/**
 * out[0 .. n) = softmax(x[0 .. n)) in two passes over x: the max; then exp, store and sum fused;
 * then a scale of out while it is still in cache. out may equal x. Returns false (and writes
 * nothing) when the max is -Infinity, i.e. no entry is allowed: the caller writes zeros. A row of
 * only NaN and -Infinity becomes NaN.
 */
// @ts-ignore: decorator
@inline export function softmaxRow(out: usize, x: usize, n: i32): bool {
  const m = rowMax(x, n);
  if (m == -Infinity) {
    // rowMax may skip NaN lanes; rare path, so a plain scan
    for (let t = 0; t < n; t++) {
      if (isNaN(load<f32>(x + (<usize>t << 2)))) {
        for (let u = 0; u < n; u++) store<f32>(out + (<usize>u << 2), NaN);
        return true;
      }
    }
    return false;
  }
  scale(out, 1.0 / expShiftSum(out, x, m, n, 0, 0, 0, 0, 1), n);
  return true;
}

/** Softmax in place over x[0 .. n); see softmaxRow. */
// @ts-ignore: decorator
@inline export function softmaxInPlace(x: usize, n: i32): bool {
  return softmaxRow(x, x, n);
}

/** x[0 .. n) = 0. */
// @ts-ignore: decorator
@inline export function zero(x: usize, n: i32): void {
  memory.fill(x, 0, <usize>n << 2);
}
