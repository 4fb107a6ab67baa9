// Weight matrices packed once into the GEMM's panel layout (gemm_pack_f32 in
// assembly/kernels/matmul.ts), for the prepared layers: a product with them packs nothing per call
// and reads the weights front to back as one sequential stream, which a one-token forward needs
// to run at memory speed (an unpacked [N, K] read row after row, or 8 rows of a [K, N]
// at a time, streams slower than one run through memory).
import type { WasmContext } from './context.js';

/** Columns per panel; must match NR in assembly/kernels/matmul.ts (test/gemv.test.ts checks). */
export const PANEL = 16;

/** Bytes a packed weight W [n, k] takes (n rounded up to whole panels). */
export function packedBytes({ kernels }: WasmContext, n: number, k: number): number {
  return kernels.gemm_packed_size_f32(n, k) * 4;
}

/** Packs W [n, k] (nn.Linear's [out, in]: the B of A·Wᵀ) from `data` into the block at `dst`. */
export function packWeight({ kernels, arena }: WasmContext, dst: number, data: Float32Array, n: number, k: number): void {
  arena.scoped(() => kernels.gemm_pack_f32(dst, arena.write(data), n, k, 1));
}

/**
 * Up to this many rows of A, threads split the columns (ranges of panels), so that a decode step
 * runs on every thread; above it, pairs of rows, as gemm does.
 */
const COLUMN_SPLIT_ROWS = 16;

/** C[m, n] = A[m, k] · Wᵀ (+ bias[n]) with W packed by packWeight; pointers into the arena, bias 0 for none. */
export function gemmPacked({ kernels, arena, parallel }: WasmContext, c: number, a: number, w: number, m: number, n: number, k: number, bias = 0): void {
  const panels = Math.ceil(n / PANEL);
  arena.scoped(() => {
    const scratch = arena.perThread(kernels.gemm_packed_scratch_f32(), parallel.threads);
    if (m <= COLUMN_SPLIT_ROWS) {
      parallel.run('gemm_packed_f32', panels, m * k * PANEL, (t, p0, p1) => [
        c + p0 * PANEL * 4, a, w, bias === 0 ? 0 : bias + p0 * PANEL * 4,
        m, Math.min(n, p1 * PANEL) - p0 * PANEL, k, n, panels, p0, scratch(t),
      ]);
    } else {
      parallel.run('gemm_packed_f32', m, n * k, (t, r0, r1) => [c + r0 * n * 4, a + r0 * k * 4, w, bias, r1 - r0, n, k, n, panels, 0, scratch(t)], 2);
    }
  });
}
