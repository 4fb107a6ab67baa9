// Thin wrapper over assembly/kernels/norm.ts: RMSNorm of rows, threads taking shares of the rows.

import type { RmsNormOptions } from '../core/modelTypes.js';
import { planRmsNorm } from '../core/rmsNormPlan.js';
import { formatCall, fromData, type Tensor } from '../core/tensor.js';
import type { WasmContext } from './context.js';

export function rmsNorm(ctx: WasmContext, x: Tensor, weight: Tensor, options?: RmsNormOptions): Tensor {
  const p = planRmsNorm(x, weight, options);
  const { arena, parallel } = ctx;
  arena.checkOut(p.out);
  if (p.empty) return p.out?.tensor ?? fromData(new Float32Array(0), p.x.shape);
  return arena.call(() => formatCall('rmsNorm', { x: p.x.shape, weight: p.weight.shape }), () => {
    // x and w are read where they are (engine tensors) or copied in once; the kernel writes into
    // out where it is (an engine tensor, x itself included), else over the copy of x, else apart
    const { rows, d } = p, count = rows * d;
    const pw = arena.input(p.weight, 'weight');
    const copied = !arena.resident(p.x, 'x');
    const px = arena.input(p.x, 'x');
    const direct = arena.outputAt(p.out, p.x) && arena.outputApart(p.out, p.weight);
    const po = direct || (copied ? px : arena.allocF32(count));
    // two passes over the row (squares, then the scaled product): weigh a row as 3 multiply-adds an element
    parallel.run('rms_norm_f32', rows, 3 * d, (_, r0, r1) => [po + r0 * d * 4, px + r0 * d * 4, pw, r1 - r0, d, p.eps, p.unitOffset ? 1 : 0]);
    return arena.result(po, count, p.x.shape, p.out);
  });
}
