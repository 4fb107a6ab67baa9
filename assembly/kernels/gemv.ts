// Skinny matrix products C = A · B (or A · Bᵀ) for a few rows of A: decoding a token multiplies it
// by every weight matrix, and the cost is reading B once. Nothing is packed: B is streamed as it
// lies (inline/skinny.ts), each element of B loaded from memory once per call.
//
//   plain, B [k, n]:       per block of NB columns, C block starts at the bias (or 0); then for
//                          every 8 rows of B, every row of A adds a[i, p..p+8) · B[p..p+8, block]
//                          to its C row (which stays in L1; the 8 rows of B stay in L1 for the next
//                          row of A).
//   transposed, B [n, k]:  per 4 rows of B (columns of C), dot products with pairs of rows of A.
//
// Columns are independent: a call may cover any range of them (threads split N), and each element
// is computed the same way whatever the range (see inline/skinny.ts).
import { axpy1, axpy8, dot1x1, dot1x4, dot2x4 } from '../inline/skinny';

/** Columns of C per block in the plain layout for one row of A (longer streams through B). */
// @ts-ignore: decorator
@inline const NB: i32 = 4096;

/**
 * C[m, n] = A[m, k] · B (+ bias[n]), B [k, n] or, with transposeB, [n, k]; f32, row-major with
 * row strides ldc, lda, ldb in elements. `accumulate` adds to C instead (and ignores the bias).
 * C must not overlap A, B or the bias. Any m works; it is fast while B's traffic dominates.
 * @param bias f32 [n], or 0 for none
 */
export function gemv_f32(c: usize, a: usize, b: usize, bias: usize, m: i32, n: i32, k: i32, ldc: i32, lda: i32, ldb: i32, transposeB: bool, accumulate: bool): void {
  if (m <= 0 || n <= 0) return;
  const ldcb = <usize>ldc << 2, ldab = <usize>lda << 2, ldbb = <usize>ldb << 2;
  if (transposeB && m == 1) {
    // one row of B after the other: a single sequential stream
    for (let j = 0; j < n; j++) {
      dot1x1(c + (<usize>j << 2), bias != 0 ? bias + (<usize>j << 2) : 0, accumulate, a, b + <usize>j * ldbb, k);
    }
    return;
  }
  if (transposeB) {
    for (let j = 0; j < n; j += 4) {
      // a last group of fewer than 4 rows of B repeats its last row (its results are not stored)
      const count = min(4, n - j);
      const b0 = b + <usize>j * ldbb;
      const b1 = count > 1 ? b0 + ldbb : b0, b2 = count > 2 ? b1 + ldbb : b1, b3 = count > 3 ? b2 + ldbb : b2;
      const cj = c + (<usize>j << 2), bj: usize = bias != 0 ? bias + (<usize>j << 2) : 0;
      let i = 0;
      for (; i + 1 < m; i += 2) {
        const c0 = cj + <usize>i * ldcb, a0 = a + <usize>i * ldab;
        dot2x4(c0, c0 + ldcb, bj, accumulate, a0, a0 + ldab, b0, b1, b2, b3, count, k);
      }
      if (i < m) dot1x4(cj + <usize>i * ldcb, bj, accumulate, a + <usize>i * ldab, b0, b1, b2, b3, count, k);
    }
    return;
  }
  // one row of A reads the 8 rows of B once; more rows re-read them from L1 along with their C rows
  const nb = m == 1 ? NB : max(256, (8192 / (m + 8)) & ~63);
  for (let j0 = 0; j0 < n; j0 += nb) {
    const w = min(nb, n - j0);
    const cb = c + (<usize>j0 << 2), bb = b + (<usize>j0 << 2);
    if (!accumulate) {
      for (let i = 0; i < m; i++) {
        const row = cb + <usize>i * ldcb;
        if (bias != 0) memory.copy(row, bias + (<usize>j0 << 2), <usize>w << 2); else memory.fill(row, 0, <usize>w << 2);
      }
    }
    let p = 0;
    for (; p + 8 <= k; p += 8) {
      const bp = bb + <usize>p * ldbb;
      for (let i = 0; i < m; i++) axpy8(cb + <usize>i * ldcb, a + <usize>i * ldab + (<usize>p << 2), bp, ldbb, w);
    }
    for (; p < k; p++) {
      const bp = bb + <usize>p * ldbb;
      for (let i = 0; i < m; i++) axpy1(cb + <usize>i * ldcb, a + <usize>i * ldab + (<usize>p << 2), bp, w);
    }
  }
}
