// Thin wrapper over assembly/kernels/softmax.ts: softmax and maskedSoftmax, threads taking shares
// of the rows.
import { planMaskedSoftmax, planSoftmax, type RowsPlan } from '../core/plans.js';
import { formatCall, fromData, type Tensor } from '../core/tensor.js';
import type { OutOptions } from '../core/types.js';
import { emptyResult } from '../core/validate.js';
import type { WasmContext } from './context.js';

/**
 * Softmax over `rows` rows of n floats at px into po (px itself by default: in place), with per-row
 * lengths (i32 pointer) or 0 for none. po and px are the same region or apart.
 */
export function softmaxRowsAt({ parallel }: WasmContext, px: number, rows: number, n: number, lens: number, po = px): void {
  // about 20 instructions an element (exp dominates): weigh a row as 8 multiply-adds an element
  parallel.run('softmax_rows_f32', rows, 8 * n, (_, r0, r1) => [po + r0 * n * 4, px + r0 * n * 4, r1 - r0, n, lens ? lens + r0 * 4 : 0, 1]);
}

/**
 * Bytes of the block of rows that a one-thread call on a plain x copies in, computes in place and
 * copies out before the next block: small enough to stay in L2 between the three passes, so that
 * only x and the result cross the memory bus (measured: bench/softmax-breakdown.js).
 */
const BLOCK_BYTES = 256 * 1024;

function softmaxRows(ctx: WasmContext, op: string, p: RowsPlan, lens: Int32Array | null): Tensor {
  const { arena } = ctx;
  arena.checkOut(p.out);
  // nothing to compute, however many empty rows x has
  if (p.rows * p.n === 0) return emptyResult(p.x.shape, p.out);
  return arena.call(() => formatCall(op, { x: p.x.shape }), () => {
    // no pass that can be avoided: the kernel reads x where it is (an engine tensor), and writes
    // into out where it is (an engine tensor); a plain x is copied in block by block (one thread)
    // or once, and computed in place over the copy, then copied out
    const count = p.rows * p.n;
    const copied = !arena.resident(p.x, 'x');
    const pl = lens ? arena.write(lens) : 0;
    const direct = arena.outputAt(p.out, p.x);
    // blocks write the result while later rows of x are still to be read: only into an out apart from x
    const blocks = copied && !direct && ctx.parallel.threads === 1 && 4 * count > BLOCK_BYTES;
    if (blocks && !(p.out && arena.overlapsPartly(p.out.checked, p.x))) return softmaxBlocks(ctx, p, pl);
    const px = arena.input(p.x, 'x');
    const po = direct || (copied ? px : arena.allocF32(count));
    softmaxRowsAt(ctx, px, p.rows, p.n, pl, po);
    return arena.result(po, count, p.x.shape, p.out);
  });
}

/** One thread, a plain x: block by block through one block of wasm memory, straight into the result. */
function softmaxBlocks({ kernels, arena }: WasmContext, p: RowsPlan, pl: number): Tensor {
  const { rows, n } = p, x = p.x.data;
  const blockRows = Math.max(1, Math.floor(BLOCK_BYTES / (4 * n)));
  const pb = arena.allocF32(Math.min(rows, blockRows) * n);
  const result = p.out?.checked.data ?? new Float32Array(rows * n);
  for (let r0 = 0; r0 < rows; r0 += blockRows) {
    const r1 = Math.min(rows, r0 + blockRows), count = (r1 - r0) * n;
    arena.f32(pb, count).set(x.subarray(r0 * n, r1 * n));
    kernels.softmax_rows_f32(pb, pb, r1 - r0, n, pl ? pl + r0 * 4 : 0, 1);
    result.set(arena.f32(pb, count), r0 * n);
  }
  return p.out?.tensor ?? fromData(result, p.x.shape);
}

export function softmax(ctx: WasmContext, x: Tensor, options?: OutOptions): Tensor {
  return softmaxRows(ctx, 'softmax', planSoftmax(x, options), null);
}

export function maskedSoftmax(ctx: WasmContext, x: Tensor, validLens?: ArrayLike<number> | Tensor, options?: OutOptions): Tensor {
  const p = planMaskedSoftmax(x, validLens, options);
  return softmaxRows(ctx, 'maskedSoftmax', p, p.rowLens);
}
