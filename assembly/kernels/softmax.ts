// Softmax along rows: plain (every entry counts) or masked by a valid length per row (d2l's masked_softmax).
import { softmaxInPlace, zero } from '../inline/rows';

/**
 * out[r, :] = softmax(x[r, 0 .. len_r)) followed by zeros; a row with len_r = 0 or whose max is
 * -Infinity is all zeros. `out` may equal `x` (in place).
 * @param out f32 [rows, n]
 * @param x f32 [rows, n]
 * @param lens i32 [rows / rowsPerLen] valid lengths in [0, n], or 0 for "all n"
 * @param rowsPerLen how many consecutive rows share one length (1 = one length per row)
 */
export function softmax_rows_f32(out: usize, x: usize, rows: i32, n: i32, lens: usize, rowsPerLen: i32): void {
  const rowBytes = <usize>n << 2;
  for (let r = 0; r < rows; r++) {
    const o = out + <usize>r * rowBytes;
    const len = lens == 0 ? n : load<i32>(lens + (<usize>(r / rowsPerLen) << 2));
    if (o != x + <usize>r * rowBytes) memory.copy(o, x + <usize>r * rowBytes, <usize>len << 2);
    if (!softmaxInPlace(o, len)) zero(o, len);
    zero(o + (<usize>len << 2), n - len);
  }
}
