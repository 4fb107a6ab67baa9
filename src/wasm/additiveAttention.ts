// Additive attention over the kernels: two projections (gemm_f32), the tanh scores
// (assembly/kernels/additive.ts), the masked softmax and the weighted sum of values.
import { planAdditive } from '../core/plans.js';
import { formatCall, fromData, type Tensor } from '../core/tensor.js';
import type { AdditiveOptions, AdditiveParams, OutputWithWeights } from '../core/types.js';
import { emptyResult } from '../core/validate.js';
import type { WasmContext } from './context.js';
import { gemm } from './matmul.js';
import { softmaxRowsAt } from './softmax.js';

export function additiveAttention(ctx: WasmContext, query: Tensor, key: Tensor, value: Tensor, params: AdditiveParams, options?: AdditiveOptions): OutputWithWeights {
  const p = planAdditive(query, key, value, params, options);
  const { B, Lq, Lk, Dv, h } = p;
  const { arena, parallel } = ctx;
  arena.checkOut(p.out);
  // nothing to compute, however many empty rows there are
  if (p.empty) return { output: emptyResult([B, Lq, Dv], p.out), ...(p.returnWeights ? { weights: emptyResult([B, Lq, Lk]) } : {}) };
  return arena.call(() => formatCall('additiveAttention', { query: p.query.shape, key: p.key.shape, value: p.value.shape }), () => {
    const pq = arena.input(p.query, 'query'), pk = arena.input(p.key, 'key'), pv = arena.input(p.value, 'value');
    const qp = arena.allocF32(B * Lq * h), kp = arena.allocF32(B * Lk * h);
    gemm(ctx, qp, pq, arena.input(p.Wq, 'params.Wq'), B * Lq, h, p.Dq, true);
    gemm(ctx, kp, pk, arena.input(p.Wk, 'params.Wk'), B * Lk, h, p.Dk, true);
    const scores = arena.allocF32(B * Lq * Lk);
    const wv = arena.input(p.wv, 'params.wv');
    // threads take shares of the B·Lq query rows in each step
    parallel.run('additive_scores_f32', B * Lq, Lk * h * 8, (_, r0, r1) => [scores, qp, kp, wv, B, Lq, Lk, h, r0, r1]);
    softmaxRowsAt(ctx, scores, B * Lq, Lk, p.rowLens ? arena.write(p.rowLens) : 0);
    const pout = arena.outputApart(p.out, p.query, p.key, p.value, p.Wq, p.Wk, p.wv) || arena.allocF32(B * Lq * Dv);
    parallel.run('weighted_rows_f32', B * Lq, Lk * Dv, (_, r0, r1) => [pout, scores, pv, B, Lq, Lk, Dv, r0, r1]);
    const result: OutputWithWeights = { output: arena.result(pout, B * Lq * Dv, [B, Lq, Dv], p.out) };
    if (p.returnWeights) result.weights = fromData(arena.read(scores, B * Lq * Lk), [B, Lq, Lk]);
    return result;
  });
}
