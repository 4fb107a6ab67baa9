// Thin wrapper over assembly/kernels/gemv.ts: products of a few rows of A with a large B (a decode
// step times a weight matrix), which read B once where it lies instead of packing it. matmul and
// the prepared layers reach it through gemm (./matmul.ts), which picks it from the shape.
import type { Checked } from '../core/validate.js';
import type { WasmContext } from './context.js';

/**
 * Rows of A up to which the skinny kernel beats the packed GEMM, per layout of B (bench, one thread,
 * interleaved; the figures are in the commit that set them): transposed B keeps the lead longer,
 * since its dot products reuse each load of B for two rows of A and four of B.
 */
export const SKINNY_ROWS = 4;
export const SKINNY_ROWS_TRANSPOSED = 16;

export function isSkinny(m: number, transposeB: boolean): boolean {
  return m <= (transposeB ? SKINNY_ROWS_TRANSPOSED : SKINNY_ROWS);
}

/** Thread shares of the columns start on multiples of this (whole SIMD vectors, see the kernel). */
const COLUMN_ALIGN = 16;

/**
 * C[m, n] = A[m, k] · B (+ bias[n]) on pointers into the arena, B [k, n] or [n, k] with transposeB
 * (rows of B packed: n or k floats apart); `bias` a pointer or 0; `accumulate` adds to C (no bias);
 * rows of C and A are `ldc` and `lda` floats apart. Threads take ranges of columns.
 */
export function gemv(ctx: WasmContext, c: number, a: number, b: number, m: number, n: number, k: number, transposeB: boolean, bias = 0, accumulate = false, ldc = n, lda = k): void {
  ctx.arena.scoped(() => {
    if (transposeB && (k * 4) % PAGE === 0 && n > 1) {
      // every row of B then starts at the same offset in a 4 KiB page; a row of A there too would
      // meet it in the same L1 sets on every load, which slows the product (bench/, K = 4096)
      a = shiftedCopy(ctx, a, m, k, lda, b + PAGE / 2);
      lda = k;
    }
    ctx.parallel.run('gemv_f32', n, m * k, (_t, j0, j1) => [
      c + j0 * 4, a, b + (transposeB ? j0 * k : j0) * 4, bias === 0 ? 0 : bias + j0 * 4,
      m, j1 - j0, k, ldc, lda, transposeB ? k : n, transposeB ? 1 : 0, accumulate ? 1 : 0,
    ], COLUMN_ALIGN);
  });
}

const PAGE = 4096;

/** A copy of A's m rows (k floats, lda apart), packed, starting at the same offset in a 4 KiB page as `like`. */
function shiftedCopy({ arena }: WasmContext, a: number, m: number, k: number, lda: number, like: number): number {
  const base = arena.alloc(m * k * 4 + PAGE);
  const at = base + (((like - base) % PAGE) + PAGE) % PAGE;
  const bytes = new Uint8Array(arena.memory.buffer);
  for (let i = 0; i < m; i++) bytes.copyWithin(at + i * k * 4, a + i * lda * 4, a + (i * lda + k) * 4);
  return at;
}

/** Floats of B copied into wasm memory at a time when B is streamed in (it stays in L2 for the kernel). */
const CHUNK_FLOATS = 64 * 1024;

/**
 * Whether a skinny product with B outside engine memory should stream B in chunks (copy a chunk,
 * multiply it while it is in cache) instead of copying all of it first: B large enough to miss
 * the caches.
 */
export function streamsB(ctx: WasmContext, m: number, n: number, k: number, transposeB: boolean, b: Checked): boolean {
  return isSkinny(m, transposeB) && n * k > 4 * CHUNK_FLOATS && !ctx.arena.resident(b, 'b');
}

/**
 * C[m, n] = A[m, k] · B with B the k·n floats of `b` from `offset` (a JavaScript array): copied in
 * chunks of whole rows of B into one scratch buffer, each multiplied before the next is copied.
 * Chunks hold a multiple of 16 rows, so the results are bit-identical to gemv over all of B.
 */
export function gemvStreamed(ctx: WasmContext, c: number, a: number, b: Float32Array, offset: number, m: number, n: number, k: number, transposeB: boolean): void {
  const { arena } = ctx;
  const rowLength = transposeB ? k : n, rows = transposeB ? n : k;
  const perChunk = Math.max(16, Math.floor(CHUNK_FLOATS / rowLength / 16) * 16);
  arena.scoped(() => {
    const scratch = arena.allocF32(perChunk * rowLength);
    const view = arena.f32(scratch, perChunk * rowLength); // no allocation below: the memory cannot grow
    for (let r0 = 0; r0 < rows; r0 += perChunk) {
      const count = Math.min(perChunk, rows - r0);
      view.set(b.subarray(offset + r0 * rowLength, offset + (r0 + count) * rowLength));
      if (transposeB) gemv(ctx, c + r0 * 4, a, scratch, m, count, k, true, 0, false, n, k);
      else gemv(ctx, c, a + r0 * 4, scratch, m, n, count, false, 0, r0 > 0, n, k);
    }
  });
}
