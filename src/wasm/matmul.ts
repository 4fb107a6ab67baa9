// Thin wrapper over assembly/kernels/matmul.ts: same signature as the reference matmul.
import { planMatmul } from '../core/plans.js';
import { fromData, type Tensor } from '../core/tensor.js';
import type { MatmulOptions } from '../core/types.js';
import type { WasmContext } from './context.js';
import type { Arena } from './memory.js';
import type { Kernels } from './loader.js';

/** C[m, n] = A[m, k] · B (B [k, n], or [n, k] with transposeB) on pointers into the arena. */
export function gemm(kernels: Kernels, arena: Arena, c: number, a: number, b: number, m: number, n: number, k: number, transposeB: boolean): void {
  arena.scoped(() => kernels.gemm_f32(c, a, b, m, n, k, transposeB, arena.allocF32(kernels.gemm_scratch_f32(n, k))));
}

export function matmul({ kernels, arena }: WasmContext, a: Tensor, b: Tensor, options?: MatmulOptions): Tensor {
  const p = planMatmul(a, b, options);
  const { M, N, K } = p;
  return arena.scoped(() => {
    const pa = arena.write(a.data), pb = arena.write(b.data);
    const pc = arena.allocF32(p.batch * M * N);
    const scratch = arena.allocF32(kernels.gemm_scratch_f32(N, K));
    for (let z = 0; z < p.batch; z++) {
      kernels.gemm_f32(pc + z * M * N * 4, pa + p.aOffset(z) * 4, pb + p.bOffset(z) * 4, M, N, K, p.transposeB, scratch);
    }
    return fromData(arena.read(pc, p.batch * M * N), p.outputShape);
  });
}
