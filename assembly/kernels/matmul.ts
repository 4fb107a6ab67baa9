// Matrix products on row-major f32 matrices.
//
// C = A · B with a 4×8 register tile: each k step loads one 8-wide row segment of B (two v128),
// splats four elements of A, and updates 8 accumulators (4 rows × 2 vectors), the most V8 keeps in
// registers on x86 without spilling:
//
//        B[k, j .. j+8)  = [ b0 | b1 ]
//   A[i+0, k]  ->  c00 c01
//   A[i+1, k]  ->  c10 c11
//   A[i+2, k]  ->  c20 c21
//   A[i+3, k]  ->  c30 c31
//
// Edge tiles: 4×4 and 4×1 columns, then single rows with the same column steps.
// C = A · Bᵀ (B stored [N, K]) computes rows of dot products along K, 4 rows of A against one row of B.
import { hsum4, madd4 } from '../inline/simd';
import { dot } from '../inline/rows';

// @ts-ignore: decorator
@inline function tile4x8(c: usize, a: usize, b: usize, n: i32, k: i32): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const lda = <usize>k << 2, ldb = <usize>n << 2;
  let pa = a, pb = b;
  for (let p = 0; p < k; p++) {
    const b0 = v128.load(pb), b1 = v128.load(pb, 16);
    const a0 = v128.load32_splat(pa), a1 = v128.load32_splat(pa + lda);
    const a2 = v128.load32_splat(pa + 2 * lda), a3 = v128.load32_splat(pa + 3 * lda);
    c00 = madd4(a0, b0, c00); c01 = madd4(a0, b1, c01);
    c10 = madd4(a1, b0, c10); c11 = madd4(a1, b1, c11);
    c20 = madd4(a2, b0, c20); c21 = madd4(a2, b1, c21);
    c30 = madd4(a3, b0, c30); c31 = madd4(a3, b1, c31);
    pa += 4; pb += ldb;
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(c + ldb, c10); v128.store(c + ldb, c11, 16);
  v128.store(c + 2 * ldb, c20); v128.store(c + 2 * ldb, c21, 16);
  v128.store(c + 3 * ldb, c30); v128.store(c + 3 * ldb, c31, 16);
}

// @ts-ignore: decorator
@inline function tile4x4(c: usize, a: usize, b: usize, n: i32, k: i32): void {
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
  const lda = <usize>k << 2, ldb = <usize>n << 2;
  let pa = a, pb = b;
  for (let p = 0; p < k; p++) {
    const b0 = v128.load(pb);
    c0 = madd4(v128.load32_splat(pa), b0, c0);
    c1 = madd4(v128.load32_splat(pa + lda), b0, c1);
    c2 = madd4(v128.load32_splat(pa + 2 * lda), b0, c2);
    c3 = madd4(v128.load32_splat(pa + 3 * lda), b0, c3);
    pa += 4; pb += ldb;
  }
  v128.store(c, c0); v128.store(c + ldb, c1); v128.store(c + 2 * ldb, c2); v128.store(c + 3 * ldb, c3);
}

/** One row of C: 8, then 4, then 1 columns at a time. */
// @ts-ignore: decorator
@inline function row1(c: usize, a: usize, b: usize, n: i32, k: i32): void {
  const ldb = <usize>n << 2;
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    let c0 = f32x4.splat(0), c1 = f32x4.splat(0);
    let pb = b + (<usize>j << 2);
    for (let p = 0; p < k; p++) {
      const av = v128.load32_splat(a + (<usize>p << 2));
      c0 = madd4(av, v128.load(pb), c0);
      c1 = madd4(av, v128.load(pb, 16), c1);
      pb += ldb;
    }
    v128.store(c + (<usize>j << 2), c0);
    v128.store(c + (<usize>j << 2), c1, 16);
  }
  for (; j + 4 <= n; j += 4) {
    let c0 = f32x4.splat(0);
    let pb = b + (<usize>j << 2);
    for (let p = 0; p < k; p++) {
      c0 = madd4(v128.load32_splat(a + (<usize>p << 2)), v128.load(pb), c0);
      pb += ldb;
    }
    v128.store(c + (<usize>j << 2), c0);
  }
  for (; j < n; j++) {
    let s: f32 = 0;
    let pb = b + (<usize>j << 2);
    for (let p = 0; p < k; p++) {
      s += load<f32>(a + (<usize>p << 2)) * load<f32>(pb);
      pb += ldb;
    }
    store<f32>(c + (<usize>j << 2), s);
  }
}

/**
 * C[m, n] = A[m, k] · B[k, n], all row-major and contiguous, f32. C must not overlap A or B.
 * No alignment needed (v128 loads are unaligned-safe).
 */
export function matmul_f32(c: usize, a: usize, b: usize, m: i32, n: i32, k: i32): void {
  const ldc = <usize>n << 2, lda = <usize>k << 2;
  let i = 0;
  for (; i + 4 <= m; i += 4) {
    const ci = c + <usize>i * ldc, ai = a + <usize>i * lda;
    let j = 0;
    for (; j + 8 <= n; j += 8) tile4x8(ci + (<usize>j << 2), ai, b + (<usize>j << 2), n, k);
    for (; j + 4 <= n; j += 4) tile4x4(ci + (<usize>j << 2), ai, b + (<usize>j << 2), n, k);
    for (; j < n; j++) {
      // last columns: four dot products down a column of B
      let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
      let pb = b + (<usize>j << 2);
      for (let p = 0; p < k; p++) {
        const bv = load<f32>(pb);
        const pa = ai + (<usize>p << 2);
        s0 += load<f32>(pa) * bv; s1 += load<f32>(pa + lda) * bv;
        s2 += load<f32>(pa + 2 * lda) * bv; s3 += load<f32>(pa + 3 * lda) * bv;
        pb += ldc; // B's row stride equals C's: both have n columns
      }
      const pc = ci + (<usize>j << 2);
      store<f32>(pc, s0); store<f32>(pc + ldc, s1); store<f32>(pc + 2 * ldc, s2); store<f32>(pc + 3 * ldc, s3);
    }
  }
  for (; i < m; i++) row1(c + <usize>i * ldc, a + <usize>i * lda, b, n, k);
}

/**
 * C[m, n] = A[m, k] · B[n, k]ᵀ, all row-major and contiguous, f32 (B is read along its rows, no transpose).
 * C must not overlap A or B.
 */
export function matmul_nt_f32(c: usize, a: usize, b: usize, m: i32, n: i32, k: i32): void {
  const ldc = <usize>n << 2, ld = <usize>k << 2;
  let i = 0;
  for (; i + 4 <= m; i += 4) {
    const a0 = a + <usize>i * ld;
    for (let j = 0; j < n; j++) {
      const bj = b + <usize>j * ld;
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      let t = 0;
      for (; t + 4 <= k; t += 4) {
        const o = <usize>t << 2;
        const bv = v128.load(bj + o);
        s0 = madd4(v128.load(a0 + o), bv, s0);
        s1 = madd4(v128.load(a0 + ld + o), bv, s1);
        s2 = madd4(v128.load(a0 + 2 * ld + o), bv, s2);
        s3 = madd4(v128.load(a0 + 3 * ld + o), bv, s3);
      }
      let r0 = hsum4(s0), r1 = hsum4(s1), r2 = hsum4(s2), r3 = hsum4(s3);
      for (; t < k; t++) {
        const o = <usize>t << 2;
        const bv = load<f32>(bj + o);
        r0 += load<f32>(a0 + o) * bv; r1 += load<f32>(a0 + ld + o) * bv;
        r2 += load<f32>(a0 + 2 * ld + o) * bv; r3 += load<f32>(a0 + 3 * ld + o) * bv;
      }
      const pc = c + <usize>i * ldc + (<usize>j << 2);
      store<f32>(pc, r0); store<f32>(pc + ldc, r1); store<f32>(pc + 2 * ldc, r2); store<f32>(pc + 3 * ldc, r3);
    }
  }
  for (; i < m; i++) {
    const ai = a + <usize>i * ld, ci = c + <usize>i * ldc;
    for (let j = 0; j < n; j++) store<f32>(ci + (<usize>j << 2), dot(ai, b + <usize>j * ld, k));
  }
}
