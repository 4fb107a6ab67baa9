// Rotary position embeddings over rows of d features (src/core/rotaryEmbeddingPlan.ts has the formula):
//   (a, b) -> (a·cos − b·sin, b·cos + a·sin) for each of the rot/2 pairs; features past rot are copied.
//
//   halves (Llama, NeoX):  a = x[0 .. rot/2),  b = x[rot/2 .. rot)   four pairs per v128 step
//   interleaved (GPT-J):   a = x[0, 2, 4, …],  b = x[1, 3, 5, …]     two pairs per v128 step
//
// The angles come in as tables: row r turns by cos/sin row tableRow[r] ([*, rot/2] floats each).
import { madd4 } from '../inline/simd';

/**
 * @param out    f32 [n, d] (may be x itself)
 * @param x      f32 [n, d]: row r at x + r·xStride floats
 * @param n      rows
 * @param d      features per row; rot (even, <= d) of them are turned
 * @param interleaved  0: halves; 1: pairs (2i, 2i+1)
 * @param cos,sin  f32 [*, rot/2]
 * @param tableRow i32 [n]: the table row of each row
 * @param xStride,outStride  floats between rows (d for contiguous rows)
 */
export function rotary_f32(out: usize, x: usize, n: i32, d: i32, rot: i32, interleaved: i32, cos: usize, sin: usize, tableRow: usize, xStride: i32, outStride: i32): void {
  const half = rot >> 1;
  for (let r = 0; r < n; r++) {
    const xr = x + (<usize>(r * xStride) << 2), or = out + (<usize>(r * outStride) << 2);
    const t = <usize>(load<i32>(tableRow + (<usize>r << 2)) * half) << 2;
    const c = cos + t, s = sin + t;
    if (interleaved == 0) {
      let i = 0;
      for (; i + 4 <= half; i += 4) {
        const o = <usize>i << 2, ob = <usize>(i + half) << 2;
        const a = v128.load(xr + o), b = v128.load(xr + ob), vc = v128.load(c + o), vs = v128.load(s + o);
        v128.store(or + o, f32x4.sub(f32x4.mul(a, vc), f32x4.mul(b, vs)));
        v128.store(or + ob, madd4(a, vs, f32x4.mul(b, vc)));
      }
      for (; i < half; i++) {
        const o = <usize>i << 2, ob = <usize>(i + half) << 2;
        const a = load<f32>(xr + o), b = load<f32>(xr + ob), vc = load<f32>(c + o), vs = load<f32>(s + o);
        store<f32>(or + o, a * vc - b * vs);
        store<f32>(or + ob, b * vc + a * vs);
      }
    } else {
      let i = 0;
      for (; i + 2 <= half; i += 2) {
        // (a0, b0, a1, b1) with (c0, c0, c1, c1) and (s0, s0, s1, s1): out = x·c + swap(x)·(−s, s, −s, s)
        const o = <usize>i << 3;
        const v = v128.load(xr + o);
        const cc = v128.load64_splat(c + (<usize>i << 2)), ss = v128.load64_splat(s + (<usize>i << 2));
        const c2 = v128.shuffle<f32>(cc, cc, 0, 0, 1, 1), s2 = v128.shuffle<f32>(ss, ss, 0, 0, 1, 1);
        const swapped = v128.shuffle<f32>(v, v, 1, 0, 3, 2);
        const signed = f32x4.mul(s2, f32x4(-1, 1, -1, 1));
        v128.store(or + o, f32x4.add(f32x4.mul(v, c2), f32x4.mul(swapped, signed)));
      }
      for (; i < half; i++) {
        const o = <usize>i << 3;
        const a = load<f32>(xr + o), b = load<f32>(xr + o, 4);
        const vc = load<f32>(c + (<usize>i << 2)), vs = load<f32>(s + (<usize>i << 2));
        store<f32>(or + o, a * vc - b * vs);
        store<f32>(or + o, b * vc + a * vs, 4);
      }
    }
    if (or != xr) for (let k = rot; k < d; k++) store<f32>(or + (<usize>k << 2), load<f32>(xr + (<usize>k << 2)));
  }
}
