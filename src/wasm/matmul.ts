// Thin wrapper over assembly/kernels/matmul.ts: same signature as the reference matmul.
import { planMatmul } from '../core/plans.js';
import { fromData, type Tensor } from '../core/tensor.js';
import type { MatmulOptions } from '../core/types.js';
import type { WasmContext } from './context.js';

export function matmul({ kernels, arena }: WasmContext, a: Tensor, b: Tensor, options?: MatmulOptions): Tensor {
  const p = planMatmul(a, b, options);
  const { M, N, K } = p;
  return arena.scoped(() => {
    const pa = arena.write(a.data), pb = arena.write(b.data);
    const pc = arena.allocF32(p.batch * M * N);
    const kernel = p.transposeB ? kernels.matmul_nt_f32 : kernels.matmul_f32;
    for (let z = 0; z < p.batch; z++) {
      kernel(pc + z * M * N * 4, pa + p.aOffset(z) * 4, pb + p.bOffset(z) * 4, M, N, K);
    }
    return fromData(arena.read(pc, p.batch * M * N), p.outputShape);
  });
}
