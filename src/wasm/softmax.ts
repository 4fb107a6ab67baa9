// Thin wrapper over assembly/kernels/softmax.ts: softmax and maskedSoftmax, computed in place.
import { planMaskedSoftmax, planSoftmax } from '../core/plans.js';
import { fromData, type Tensor } from '../core/tensor.js';
import type { WasmContext } from './context.js';

export function softmax({ kernels, arena }: WasmContext, x: Tensor): Tensor {
  const { rows, n } = planSoftmax(x);
  return arena.scoped(() => {
    const px = arena.write(x.data);
    kernels.softmax_rows_f32(px, px, rows, n, 0, 1);
    return fromData(arena.read(px, x.data.length), x.shape);
  });
}

export function maskedSoftmax({ kernels, arena }: WasmContext, x: Tensor, validLens?: ArrayLike<number> | Tensor): Tensor {
  const { rows, n, rowLens } = planMaskedSoftmax(x, validLens);
  return arena.scoped(() => {
    const px = arena.write(x.data);
    kernels.softmax_rows_f32(px, px, rows, n, arena.write(rowLens), 1);
    return fromData(arena.read(px, x.data.length), x.shape);
  });
}
