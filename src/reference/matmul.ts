// Matrix product, the readable definition: C[..., i, j] = sum_k A[..., i, k] · B[..., k, j]
// (B[..., j, k] with transposeB), leading dimensions broadcast, float64 accumulation.
import { planMatmul } from '../core/plans.js';
import { fromData, type Tensor } from '../core/tensor.js';
import type { MatmulOptions } from '../core/types.js';
import { deliver } from '../core/validate.js';

export function matmul(a: Tensor, b: Tensor, options?: MatmulOptions): Tensor {
  const p = planMatmul(a, b, options);
  const { M, N, K } = p;
  const out = new Float32Array(p.batch * M * N);
  const A = p.a.data, Bm = p.b.data;
  // an empty result returns at once, however many empty matrices it holds
  for (let z = 0; z < p.batch && !p.empty; z++) {
    const aOff = p.aOffset(z), bOff = p.bOffset(z), cOff = z * M * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let sum = 0;
        for (let k = 0; k < K; k++) {
          const bkj = p.transposeB ? Bm[bOff + j * K + k] : Bm[bOff + k * N + j];
          sum += A[aOff + i * K + k] * bkj;
        }
        out[cOff + i * N + j] = sum;
      }
    }
  }
  return deliver(fromData(out, p.outputShape), p.out);
}
