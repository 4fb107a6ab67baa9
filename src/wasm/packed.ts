// Weight matrices packed once into the GEMM's panel layout (gemm_pack_f32 in
// assembly/kernels/matmul.ts), for the prepared layers: a product with them packs nothing per call
// and reads the weights front to back as one sequential stream, which a one-token forward needs
// to run at memory speed (an unpacked [N, K] read row after row, or 8 rows of a [K, N]
// at a time, streams slower than one run through memory).
import type { Checked } from '../core/validate.js';
import type { WasmContext } from './context.js';

/** Columns per panel; must match NR in assembly/kernels/matmul.ts (test/kernels/gemv.test.ts checks). */
export const PANEL = 16;

/** Bytes a packed weight W [n, k] takes (n rounded up to whole panels). */
export function packedBytes({ kernels }: WasmContext, n: number, k: number): number {
  return kernels.gemm_packed_size_f32(n, k) * 4;
}

/**
 * Packs W [n, k] (nn.Linear's [out, in]: the B of A·Wᵀ) from `c` (read in place when it is an
 * engine tensor) into the block at `dst`; `describe` names the call for a memory-limit error.
 */
export function packWeight({ kernels, arena }: WasmContext, dst: number, c: Checked, name: string, n: number, k: number, describe: () => string): void {
  arena.call(describe, () => kernels.gemm_pack_f32(dst, arena.input(c, name), n, k, 1));
}

/** A held block of engine memory ('weights') holding W [n, k] = `c`, packed; freed again if packing fails. */
export function holdPacked(ctx: WasmContext, c: Checked, name: string, describe: () => string): number {
  const [n, k] = c.shape;
  const ptr = ctx.arena.hold(packedBytes(ctx, n, k), 'weights', describe);
  try {
    packWeight(ctx, ptr, c, name, n, k, describe);
  } catch (error) {
    ctx.arena.free(ptr);
    throw error;
  }
  return ptr;
}

/**
 * Up to this many rows of A, threads split the columns (ranges of panels), so that a decode step
 * runs on every thread; above it, pairs of rows, as gemm does.
 */
const COLUMN_SPLIT_ROWS = 16;

/** Bytes gemmPacked allocates (every thread's scratch), released when it returns. */
export function gemmPackedBytes({ kernels, arena, parallel }: WasmContext): number {
  return arena.perThreadBytes(kernels.gemm_packed_scratch_f32(), parallel.threads);
}

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
