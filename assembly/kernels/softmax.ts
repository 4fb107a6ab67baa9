// Softmax along rows: plain (every entry counts) or masked by a valid length per row (d2l's masked_softmax).
import { expShiftSum, nextRowMax, rowMax, scale, softmaxRow, zero } from '../inline/rows';

/**
 * out[r, :] = softmax(x[r, 0 .. len_r)) followed by zeros; a row with len_r = 0 or whose max is
 * -Infinity is all zeros. `out` may equal `x` (in place); otherwise the two must not overlap.
 * Each row is read twice and written twice, the second time while it is in cache: its max (taken
 * during the previous row's exp pass, see expShiftSum), then exp, store and sum, then the scale.
 * @param out f32 [rows, n]
 * @param x f32 [rows, n]
 * @param lens i32 [rows / rowsPerLen] valid lengths in [0, n], or 0 for "all n"
 * @param rowsPerLen how many consecutive rows share one length (1 = one length per row)
 */
export function softmax_rows_f32(out: usize, x: usize, rows: i32, n: i32, lens: usize, rowsPerLen: i32): void {
  const rowBytes = <usize>n << 2;
  let len = rows > 0 ? rowLen(0, n, lens, rowsPerLen) : 0;
  let m = rowMax(x, len);
  // the previous row's output, still to be scaled by alpha (during this row's exp)
  let z: usize = 0, nz = 0, alpha: f32 = 1;
  for (let r = 0; r < rows; r++) {
    const o = out + <usize>r * rowBytes, xr = x + <usize>r * rowBytes;
    const nextLen = r + 1 < rows ? rowLen(r + 1, n, lens, rowsPerLen) : 0;
    let nextMax: f32;
    if (m == -Infinity) {
      // nothing allowed, or only NaN and -Infinity (rowMax may skip NaN lanes)
      if (nz > 0) scale(z, alpha, nz);
      nz = 0;
      if (!softmaxRow(o, xr, len)) zero(o, len);
      nextMax = rowMax(xr + rowBytes, nextLen);
    } else {
      const s = expShiftSum(o, xr, m, len, xr + rowBytes, nextLen, z, nz, alpha);
      nextMax = nextLen > 0 ? nextRowMax : -Infinity;
      z = o; nz = len; alpha = 1.0 / s;
    }
    if (len < n) zero(o + (<usize>len << 2), n - len); // memory.fill is a call, even for 0 bytes
    len = nextLen;
    m = nextMax;
  }
  if (nz > 0) scale(z, alpha, nz);
}

// @ts-ignore: decorator
@inline function rowLen(r: i32, n: i32, lens: usize, rowsPerLen: i32): i32 {
  return lens == 0 ? n : load<i32>(lens + (<usize>(r / rowsPerLen) << 2));
}
