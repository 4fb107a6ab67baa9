// Thin wrapper over assembly/kernels/activation.ts: the residual add, the gated MLP's activation and
// the logit softcap, threads taking shares of the elements (of the rows for gatedActivation).

import { planAdd, planGatedActivation, planSoftcap } from '../core/elementwisePlan.js';
import type { GatedActivationOptions } from '../core/modelTypes.js';
import { formatCall, fromData, type Tensor } from '../core/tensor.js';
import type { OutOptions } from '../core/types.js';
import type { WasmContext } from './context.js';

/** Shares of a flat array start on multiples of this many elements (64 bytes: whole vectors and cache lines). */
const ALIGN = 16;

export function add(ctx: WasmContext, a: Tensor, b: Tensor, options?: OutOptions): Tensor {
  const p = planAdd(a, b, options);
  const { arena, parallel } = ctx;
  arena.checkOut(p.out);
  if (p.n === 0) return p.out?.tensor ?? fromData(new Float32Array(0), p.a.shape);
  return arena.call(() => formatCall('add', { a: p.a.shape, b: p.b.shape }), () => {
    // out may be a or b itself (a residual add in place): each element is read before it is written
    const copiedA = !arena.resident(p.a, 'a'), copiedB = !arena.resident(p.b, 'b');
    const pa = arena.input(p.a, 'a'), pb = arena.input(p.b, 'b');
    const direct = arena.outputAt(p.out, p.a) && arena.outputAt(p.out, p.b);
    const po = direct || (copiedA ? pa : copiedB ? pb : arena.allocF32(p.n));
    parallel.run('add_f32', p.n, 1, (_, t0, t1) => [po + t0 * 4, pa + t0 * 4, pb + t0 * 4, t1 - t0], ALIGN);
    return arena.result(po, p.n, p.a.shape, p.out);
  });
}

export function gatedActivation(ctx: WasmContext, x: Tensor, options?: GatedActivationOptions): Tensor {
  const p = planGatedActivation(x, options);
  const { arena, parallel } = ctx;
  arena.checkOut(p.out);
  const count = p.rows * p.i;
  if (p.empty) return p.out?.tensor ?? fromData(new Float32Array(0), p.outputShape);
  return arena.call(() => formatCall('gatedActivation', { x: p.x.shape }), () => {
    const { i } = p;
    const px = arena.input(p.x, 'x');
    // rows are half as wide as x's: writing over x would overwrite later rows before they are read
    const po = arena.outputApart(p.out, p.x) || arena.allocF32(count);
    const kernel = p.activation === 'silu' ? 'gated_silu_f32' : 'gated_gelu_tanh_f32';
    // exp and a division an element: weigh it as 8 multiply-adds
    parallel.run(kernel, p.rows, 8 * i, (_, r0, r1) => [po + r0 * i * 4, px + r0 * 2 * i * 4, r1 - r0, i]);
    return arena.result(po, count, p.outputShape, p.out);
  });
}

export function softcap(ctx: WasmContext, x: Tensor, cap: number, options?: OutOptions): Tensor {
  const p = planSoftcap(x, cap, options);
  const { arena, parallel } = ctx;
  arena.checkOut(p.out);
  if (p.n === 0) return p.out?.tensor ?? fromData(new Float32Array(0), p.x.shape);
  return arena.call(() => formatCall('softcap', { x: p.x.shape }), () => {
    const copied = !arena.resident(p.x, 'x');
    const px = arena.input(p.x, 'x');
    const po = arena.outputAt(p.out, p.x) || (copied ? px : arena.allocF32(p.n));
    // exp, two divisions and a polynomial an element: weigh it as 8 multiply-adds
    parallel.run('softcap_f32', p.n, 8, (_, t0, t1) => [po + t0 * 4, px + t0 * 4, t1 - t0, p.cap], ALIGN);
    return arena.result(po, p.n, p.x.shape, p.out);
  });
}
