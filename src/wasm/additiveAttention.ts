// Additive attention over the kernels: two projections (gemm_f32), the tanh scores
// (assembly/kernels/additive.ts), the masked softmax and the weighted sum of values.
import { planAdditive } from '../core/plans.js';
import { checkOut } from '../core/validate.js';
import { fromData, type Tensor } from '../core/tensor.js';
import type { AdditiveOptions, AdditiveParams, OutputWithWeights } from '../core/types.js';
import type { WasmContext } from './context.js';
import { gemm } from './matmul.js';
import { softmaxRowsAt } from './softmax.js';

export function additiveAttention(ctx: WasmContext, query: Tensor, key: Tensor, value: Tensor, params: AdditiveParams, options?: AdditiveOptions): OutputWithWeights {
  const p = planAdditive(query, key, value, params, options);
  const { B, Lq, Lk, Dv, h } = p;
  const { kernels, arena, parallel } = ctx;
  return arena.scoped(() => {
    const out = checkOut('additiveAttention', options, [B, Lq, Dv]);
    const pq = arena.input(query.data), pk = arena.input(key.data), pv = arena.input(value.data);
    const qp = arena.allocF32(B * Lq * h), kp = arena.allocF32(B * Lk * h);
    gemm(ctx, qp, pq, arena.input(p.Wq.data), B * Lq, h, p.Dq, true);
    gemm(ctx, kp, pk, arena.input(p.Wk.data), B * Lk, h, p.Dk, true);
    const scores = arena.allocF32(B * Lq * Lk);
    const wv = arena.input(p.wv.data);
    // threads take shares of the B·Lq query rows in each step
    parallel.run('additive_scores_f32', B * Lq, Lk * h * 8, (_, r0, r1) => [scores, qp, kp, wv, B, Lq, Lk, h, r0, r1]);
    softmaxRowsAt(ctx, scores, B * Lq, Lk, p.rowLens ? arena.write(p.rowLens) : 0);
    const pout = arena.allocF32(B * Lq * Dv);
    parallel.run('weighted_rows_f32', B * Lq, Lk * Dv, (_, r0, r1) => [pout, scores, pv, B, Lq, Lk, Dv, r0, r1]);
    const result: OutputWithWeights = { output: arena.result(pout, B * Lq * Dv, [B, Lq, Dv], out) };
    if (p.returnWeights) result.weights = fromData(arena.read(scores, B * Lq * Lk), [B, Lq, Lk]);
    return result;
  });
}
