// Multi-head attention with the parameters of PyTorch nn.MultiheadAttention (batch-first), the
// readable composition over an engine's matmul and scaledDotProductAttention:
//
//   q = query Wqᵀ + bq    [B, Lq, E]        k = key Wkᵀ + bk   [B, Lk, E]       v = value Wvᵀ + bv
//   (add_bias_kv: append biasK / biasV as one more key position; add_zero_attn: append a zero one)
//   split heads: [B, L, E] -> [B, H, L, E/H]
//   o_h = softmax(q_h k_hᵀ / sqrt(E/H) + mask) v_h                         [B, H, Lq, E/H]
//   output = concat_h(o_h) Woᵀ + bo                                        [B, Lq, E]
//
// The wasm engine runs the same steps inside wasm memory (src/wasm/multiHeadAttention.ts); both
// validate through src/core/multiHeadAttentionPlan.ts.

import { disposeSymbol } from '../core/dispose.js';
import { averageHeads, copyParams, emptyMultiHead, LAYER_FORWARD, type MultiHeadOp, type MultiHeadPlan, planLayerForward, planLayerParams, planMultiHead, type ReadParams } from '../core/multiHeadAttentionPlan.js';
import { fromData, type Tensor } from '../core/tensor.js';
import type { AttentionOptions, AttentionResult, Implementation, KVCache, MatmulOptions, MultiHeadAttentionLayer, MultiHeadOptions, MultiHeadParams, OutputWithWeights } from '../core/types.js';
import { deliver } from '../core/validate.js';
import { isReferenceCache, type ReferenceKVCache } from './kvCache.js';

/** The two ops multi-head attention is built from. */
export interface MultiHeadOps {
  matmul(a: Tensor, b: Tensor, options?: MatmulOptions): Tensor;
  scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, options?: AttentionOptions): AttentionResult;
}

/** x Wᵀ + b over the last axis (nn.Linear), on `ops`' matmul: the projections of the attention layers. */
export function linear(ops: Pick<MultiHeadOps, 'matmul'>, x: Tensor, W: Tensor, bias: Tensor | null): Tensor {
  const y = ops.matmul(x, W, { transposeB: true });
  if (bias) {
    const n = bias.data.length;
    for (let i = 0; i < y.data.length; i++) y.data[i] += bias.data[i % n];
  }
  return y;
}

/** [B, L, E] with `extra` rows appended per batch: [B, L + extra.length, E]. */
function appendRows(x: Tensor, extra: Float32Array[]): Tensor {
  const [B, L, E] = x.shape;
  const L2 = L + extra.length;
  const out = new Float32Array(B * L2 * E);
  for (let b = 0; b < B; b++) {
    out.set(x.data.subarray(b * L * E, (b + 1) * L * E), b * L2 * E);
    extra.forEach((row, r) => out.set(row, (b * L2 + L + r) * E));
  }
  return fromData(out, [B, L2, E]);
}

/** [B, L, H·D] <-> [B, H, L, D]. */
function splitHeads(x: Tensor, H: number): Tensor {
  const [B, L, E] = x.shape;
  const D = E / H;
  const out = new Float32Array(x.data.length);
  for (let b = 0; b < B; b++)
    for (let l = 0; l < L; l++)
      for (let h = 0; h < H; h++)
        out.set(x.data.subarray(((b * L + l) * H + h) * D, ((b * L + l) * H + h + 1) * D), ((b * H + h) * L + l) * D);
  return fromData(out, [B, H, L, D]);
}

function mergeHeads(x: Tensor): Tensor {
  const [B, H, L, D] = x.shape;
  const out = new Float32Array(x.data.length);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let l = 0; l < L; l++)
        out.set(x.data.subarray(((b * H + h) * L + l) * D, ((b * H + h) * L + l + 1) * D), ((b * L + l) * H + h) * D);
  return fromData(out, [B, L, H * D]);
}

/** multiHeadAttention, and selfAttention with `op` 'selfAttention' (its messages name it). */
export function multiHeadAttentionWith(ops: MultiHeadOps, query: Tensor, key: Tensor, value: Tensor, params: MultiHeadParams, options?: MultiHeadOptions, op: MultiHeadOp = 'multiHeadAttention'): OutputWithWeights {
  return compose(ops, planMultiHead(op, query, key, value, params, options), undefined);
}

/** The composition over a validated plan; with a KV cache (a prepared layer's forward) the new heads' keys and values join it. */
function compose(ops: MultiHeadOps, plan: MultiHeadPlan, cache: KVCache | undefined): OutputWithWeights {
  // nothing to compute, however many empty rows there are
  if (plan.empty) return emptyMultiHead(plan, cache?.length);
  const { q, k, v, B, Lq, H, proj, Wo, bo, extraK, extraV, masking, needWeights, averageWeights } = plan;
  const qp = linear(ops, q, proj.Wq, proj.bq);
  let kp = linear(ops, k, proj.Wk, proj.bk);
  let vp = linear(ops, v, proj.Wv, proj.bv);
  if (extraK.length > 0) { kp = appendRows(kp, extraK); vp = appendRows(vp, extraV); }
  const attn = ops.scaledDotProductAttention(splitHeads(qp, H), splitHeads(kp, H), splitHeads(vp, H), {
    ...masking, returnWeights: needWeights, ...(cache ? { cache } : {}),
  });
  const output = linear(ops, mergeHeads(attn.output), Wo, bo);

  const result: OutputWithWeights = { output: deliver(output, plan.out) };
  if (needWeights && attn.weights) {
    result.weights = averageWeights ? averageHeads(attn.weights.data, B, H, Lq, attn.weights.shape[3]) : attn.weights;
  }
  return result;
}

/** A prepared layer over `ops`: params validated and copied once; forward runs the composition. */
export function layerWith(ops: MultiHeadOps, params: MultiHeadParams): MultiHeadAttentionLayer {
  const { E, kdim, vdim, plan: prepared } = planLayerParams(params);
  let kept: ReadParams | null = copyParams(prepared.params);
  const live = () => {
    if (kept === null) throw new Error('qkv: this multi-head attention layer has been disposed');
    return kept;
  };
  const layer: Implementation<MultiHeadAttentionLayer> = {
    embedDim: E,
    numHeads: prepared.H,
    forward(query, key, value, options) {
      const plan = planLayerForward(live(), { E, kdim, vdim }, query, key, value, options, (c) => {
        if (!isReferenceCache(c)) throw new TypeError(`${LAYER_FORWARD}: options.cache must come from this engine (engine.createKVCache)`);
      });
      const cache = plan.cache as ReferenceKVCache | undefined;
      // a forward that fails after its keys joined the cache leaves the cache as it was
      return cache ? cache.atomically(() => compose(ops, plan, cache)) : compose(ops, plan, undefined);
    },
    dispose() { kept = null; },
    [disposeSymbol]() { kept = null; },
  };
  return layer as MultiHeadAttentionLayer;
}
