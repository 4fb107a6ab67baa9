// Thin wrapper over assembly/kernels/matmul.ts: same signature as the reference matmul.
import { planMatmul } from '../core/plans.js';
import { formatCall, fromData, type Tensor } from '../core/tensor.js';
import type { MatmulOptions } from '../core/types.js';
import type { WasmContext } from './context.js';
import { gemv, gemvStreamed, isSkinny, streamsB } from './gemv.js';

/**
 * C[m, n] = A[m, k] · B (+ bias[n]) (B [k, n], or [n, k] with transposeB) on pointers into the
 * arena; `bias` is a pointer or 0. A few rows of A take the skinny kernel (./gemv.ts), which reads B
 * once as it lies; otherwise threads take pairs of rows of C (each packs B into its own scratch).
 */
export function gemm(ctx: WasmContext, c: number, a: number, b: number, m: number, n: number, k: number, transposeB: boolean, bias = 0): void {
  if (isSkinny(m, transposeB)) {
    gemv(ctx, c, a, b, m, n, k, transposeB, bias);
    return;
  }
  const { kernels, arena, parallel } = ctx;
  arena.scoped(() => {
    const scratch = arena.perThread(kernels.gemm_scratch_f32(n, k), parallel.threads);
    parallel.run('gemm_f32', m, n * k, (t, r0, r1) => [c + r0 * n * 4, a + r0 * k * 4, b, r1 - r0, n, k, transposeB ? 1 : 0, bias, scratch(t)], 2);
  });
}

export function matmul(ctx: WasmContext, a: Tensor, b: Tensor, options?: MatmulOptions): Tensor {
  const p = planMatmul(a, b, options);
  const { M, N, K } = p;
  const { arena } = ctx;
  arena.checkOut(p.out);
  if (p.empty) return p.out ? p.out.tensor : fromData(new Float32Array(0), p.outputShape);
  return arena.call(() => formatCall('matmul', { a: p.a.shape, b: p.b.shape }), () => {
    // a large B outside engine memory in a skinny product is copied in chunk by chunk as it is used
    const streamed = streamsB(ctx, M, N, K, p.transposeB, p.b);
    const pa = arena.input(p.a, 'a'), pb = streamed ? 0 : arena.input(p.b, 'b');
    // straight into out when it is an engine tensor apart from a and b
    const pc = arena.outputApart(p.out, p.a, p.b) || arena.allocF32(p.batch * M * N);
    for (let z = 0; z < p.batch; z++) {
      if (streamed) gemvStreamed(ctx, pc + z * M * N * 4, pa + p.aOffset(z) * 4, p.b.data, p.bOffset(z), M, N, K, p.transposeB);
      else gemm(ctx, pc + z * M * N * 4, pa + p.aOffset(z) * 4, pb + p.bOffset(z) * 4, M, N, K, p.transposeB);
    }
    return arena.result(pc, p.batch * M * N, p.outputShape, p.out);
  });
}
