// The grouped-query attention block (Llama, Mistral, Qwen, Gemma), the readable composition over an
// engine's matmul, rmsNorm and batchAttention, in Hugging Face layout (y = x Wᵀ + b):
//
//   q = x Wqᵀ + bq  [T, Hq·D] -> [T, Hq, D]     k = x Wkᵀ + bk  [T, Hkv, D]     v = x Wvᵀ + bv  [T, Hkv, D]
//   q, k = RMSNorm per head (qNormWeight, kNormWeight): x / sqrt(mean(x²) + eps) · w      (Qwen3, Gemma 3)
//   o = batchAttention(q, k, v, { sequences, queryLens, rotary, scale, softcap, window, sinks, alibiSlopes })
//   output = o [T, Hq·D] Woᵀ + bo  [T, E]
//
// The wasm engine runs the same steps inside wasm memory (src/wasm/groupedQueryAttention.ts).

import { disposeSymbol } from '../core/dispose.js';
import { copyGroupedQuery, type GroupedQueryPlan, planGroupedQuery, planGroupedQueryForward } from '../core/groupedQueryAttentionPlan.js';
import type { RmsNormOptions } from '../core/modelTypes.js';
import type { BatchAttentionOptions, GroupedQueryAttentionLayer, GroupedQueryParams } from '../core/servingTypes.js';
import { fromData, type Tensor } from '../core/tensor.js';
import type { MatmulOptions } from '../core/types.js';
import { type Checked, deliver } from '../core/validate.js';
import { isReferencePool } from './kvPool.js';
import { linear } from './multiHeadAttention.js';

export interface GroupedQueryOps {
  matmul(a: Tensor, b: Tensor, options?: MatmulOptions): Tensor;
  batchAttention(query: Tensor, key: Tensor, value: Tensor, options: BatchAttentionOptions): { output: Tensor };
  rmsNorm(x: Tensor, weight: Tensor, options?: RmsNormOptions): Tensor;
}

/** x Wᵀ + b, reshaped to `shape`. */
const projection = (ops: GroupedQueryOps, x: Tensor, W: Checked, b: Checked | null, shape: number[]): Tensor => fromData(linear(ops, x, W, b).data, shape);

/** RMSNorm of each head's D features of `t` [T, H, D], in place (the engine's rmsNorm over [T·H, D]). */
function normHeads(ops: GroupedQueryOps, t: Tensor, w: Checked, eps: number): void {
  const rows = fromData(t.data, [t.data.length / w.data.length, w.data.length]);
  ops.rmsNorm(rows, w, { eps, out: rows });
}

export function groupedQueryLayer(ops: GroupedQueryOps, params: GroupedQueryParams): GroupedQueryAttentionLayer {
  let layer: GroupedQueryPlan | null = copyGroupedQuery(planGroupedQuery(params));
  return {
    forward(x, options) {
      if (layer === null) throw new Error('qkv: this grouped-query attention layer has been disposed');
      const L = layer;
      const f = planGroupedQueryForward(L, x, options, isReferencePool);
      const { T } = f;
      const q = projection(ops, f.x, L.Wq, L.bq, [T, L.Hq, L.D]);
      const k = projection(ops, f.x, L.Wk, L.bk, [T, L.Hkv, L.D]);
      const v = projection(ops, f.x, L.Wv, L.bv, [T, L.Hkv, L.D]);
      if (L.qNorm) normHeads(ops, q, L.qNorm, L.normEps);
      if (L.kNorm) normHeads(ops, k, L.kNorm, L.normEps);
      const o = ops.batchAttention(q, k, v, { ...L.attention, sequences: f.batch.sequences, queryLens: f.batch.queryLens });
      const output = projection(ops, fromData(o.output.data, [T, L.Hq * L.D]), L.Wo, L.bo, [T, L.E]);
      return { output: deliver(output, f.out) };
    },
    dispose() { layer = null; },
    [disposeSymbol]() { layer = null; },
  };
}


