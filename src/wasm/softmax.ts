// Thin wrapper over assembly/kernels/softmax.ts: softmax and maskedSoftmax, computed in place,
// threads taking shares of the rows.
import { planMaskedSoftmax, planSoftmax, type RowsPlan } from '../core/plans.js';
import { formatCall, type Tensor } from '../core/tensor.js';
import type { OutOptions } from '../core/types.js';
import type { WasmContext } from './context.js';

/** Softmax in place over `rows` rows of n floats at px, with per-row lengths (i32 pointer) or 0 for none. */
export function softmaxRowsAt({ parallel }: WasmContext, px: number, rows: number, n: number, lens: number): void {
  // about 20 instructions an element (exp dominates): weigh a row as 8 multiply-adds an element
  parallel.run('softmax_rows_f32', rows, 8 * n, (_, r0, r1) => [px + r0 * n * 4, px + r0 * n * 4, r1 - r0, n, lens ? lens + r0 * 4 : 0, 1]);
}

function softmaxRows(ctx: WasmContext, op: string, p: RowsPlan, lens: Int32Array | null): Tensor {
  const { arena } = ctx;
  arena.checkOut(p.out);
  return arena.call(() => formatCall(op, { x: p.x.shape }), () => {
    const px = arena.copy(p.x, 'x'); // a copy: the kernel works in place
    softmaxRowsAt(ctx, px, p.rows, p.n, lens ? arena.write(lens) : 0);
    return arena.result(px, p.rows * p.n, p.x.shape, p.out);
  });
}

export function softmax(ctx: WasmContext, x: Tensor, options?: OutOptions): Tensor {
  return softmaxRows(ctx, 'softmax', planSoftmax(x, options), null);
}

export function maskedSoftmax(ctx: WasmContext, x: Tensor, validLens?: ArrayLike<number> | Tensor, options?: OutOptions): Tensor {
  const p = planMaskedSoftmax(x, validLens, options);
  return softmaxRows(ctx, 'maskedSoftmax', p, p.rowLens);
}
