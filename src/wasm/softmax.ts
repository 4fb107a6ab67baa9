// Thin wrapper over assembly/kernels/softmax.ts: softmax and maskedSoftmax, threads taking shares
// of the rows.
import { planMaskedSoftmax, planSoftmax } from '../core/plans.js';
import type { Tensor } from '../core/tensor.js';
import type { OutOptions } from '../core/types.js';
import { checkOut } from '../core/validate.js';
import type { WasmContext } from './context.js';

/**
 * Softmax over `rows` rows of n floats at px into po (px itself by default: in place), with per-row
 * lengths (i32 pointer) or 0 for none. po and px are the same region or apart.
 */
export function softmaxRowsAt({ parallel }: WasmContext, px: number, rows: number, n: number, lens: number, po = px): void {
  // about 20 instructions an element (exp dominates): weigh a row as 8 multiply-adds an element
  parallel.run('softmax_rows_f32', rows, 8 * n, (_, r0, r1) => [po + r0 * n * 4, px + r0 * n * 4, r1 - r0, n, lens ? lens + r0 * 4 : 0, 1]);
}

function softmaxRows(ctx: WasmContext, x: Tensor, rows: number, n: number, lens: Int32Array | null, out: Tensor | undefined): Tensor {
  const { arena } = ctx;
  return arena.scoped(() => {
    // no pass that can be avoided: the kernel reads x where it is (an engine tensor) or from its one
    // copy in, and writes into out where it is (an engine tensor), else over that copy (in place),
    // else into a block of its own; only then is the result copied out
    const copied = x.data.buffer !== arena.memory.buffer;
    const px = arena.input(x.data);
    const po = arena.outputAt(out, px, x.data.byteLength) || (copied ? px : arena.allocF32(x.data.length));
    softmaxRowsAt(ctx, px, rows, n, lens ? arena.write(lens) : 0, po);
    return arena.result(po, x.data.length, x.shape, out);
  });
}

export function softmax(ctx: WasmContext, x: Tensor, options?: OutOptions): Tensor {
  const { rows, n } = planSoftmax(x);
  return softmaxRows(ctx, x, rows, n, null, checkOut('softmax', options, x.shape));
}

export function maskedSoftmax(ctx: WasmContext, x: Tensor, validLens?: ArrayLike<number> | Tensor, options?: OutOptions): Tensor {
  const { rows, n, rowLens } = planMaskedSoftmax(x, validLens);
  return softmaxRows(ctx, x, rows, n, rowLens, checkOut('maskedSoftmax', options, x.shape));
}
