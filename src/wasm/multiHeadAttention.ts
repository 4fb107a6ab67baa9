// Multi-head attention inside wasm memory: the steps of src/reference/multiHeadAttention.ts with no
// round trip through JavaScript between them and no head split or merge. The projections land in
// [B, L, E] buffers, which the attention kernels read in place as [B, L, H, D] through their layout
// strides, and they write the heads' outputs straight into the [B, Lq, E] input of the output projection.
// A prepared layer (engine.createMultiHeadAttention) holds its weights in engine memory across calls.

import { disposeSymbol } from '../core/dispose.js';
import { averageHeads, copyParams, emptyMultiHead, LAYER_FORWARD, type MultiHeadOp, type MultiHeadPlan, planLayerForward, planLayerParams, planMultiHead } from '../core/multiHeadAttentionPlan.js';
import { CAUSAL_BOTTOM_RIGHT, CAUSAL_NONE, MASK_ADDITIVE, MASK_BOOLEAN, MASK_NONE, parseCausal } from '../core/scaledDotProductAttentionPlan.js';
import { formatCall, fromData, type Tensor } from '../core/tensor.js';
import type { Implementation, MultiHeadAttentionLayer, MultiHeadOptions, MultiHeadParams, OutputWithWeights } from '../core/types.js';
import type { Checked, Out } from '../core/validate.js';
import { type AttentionProbe, probeOf } from './attentionCall.js';
import { planAttentionRun, runAttention } from './attentionRun.js';
import type { WasmContext } from './context.js';
import { engineCache, type WasmKVCache } from './kvCache.js';
import { gemm } from './matmul.js';
import { gemmPacked, holdPacked } from './packed.js';

/**
 * Where the projection weights and biases are in engine memory (0 = no bias); `packed`: the
 * weights are in the GEMM's panel layout (./packed.ts), else as given ([out, in]).
 */
interface WeightPointers { wq: number; wk: number; wv: number; wo: number; bq: number; bk: number; bv: number; bo: number; packed: boolean }

/**
 * Writes the params' weights with `weight` and biases with `put` (per call: the arena, as given;
 * per layer: held blocks, weights packed).
 */
function placeWeights(p: MultiHeadPlan, weight: (c: Checked, name: string) => number, put: (c: Checked, name: string) => number, packed: boolean): WeightPointers {
  const bias = (b: Checked | null, name: string) => (b ? put(b, name) : 0);
  return {
    wq: weight(p.proj.Wq, 'params: the query projection'), wk: weight(p.proj.Wk, 'params: the key projection'),
    wv: weight(p.proj.Wv, 'params: the value projection'), wo: weight(p.Wo, 'params.outProjWeight'),
    bq: bias(p.proj.bq, 'params: the query bias'), bk: bias(p.proj.bk, 'params: the key bias'),
    bv: bias(p.proj.bv, 'params: the value bias'), bo: bias(p.bo, 'params.outProjBias'), packed,
  };
}

function run(ctx: WasmContext, p: MultiHeadPlan, w: WeightPointers, cache: WasmKVCache | null, target: Out | undefined, probe: AttentionProbe | undefined): OutputWithWeights {
  // nothing to compute, however many empty rows there are
  if (p.empty) return emptyMultiHead(p, cache?.length);
  // a call that fails after appending to the cache (the memory limit) leaves the cache as it was
  return cache ? cache.atomically(() => runOnce(ctx, p, w, cache, target, probe)) : runOnce(ctx, p, w, null, target, probe);
}

function runOnce(ctx: WasmContext, p: MultiHeadPlan, w: WeightPointers, cache: WasmKVCache | null, target: Out | undefined, probe: AttentionProbe | undefined): OutputWithWeights {
  const { B, Lq, Lk, E, H, kdim, vdim, extraK, extraV } = p;
  const D = E / H, extra = extraK.length, L2 = Lk + extra;
  const { arena } = ctx;
  // out[rows, n] = x[rows, k] · Wᵀ + b
  const project = (out: number, x: number, weight: number, rows: number, n: number, k: number, bias: number) => {
    if (w.packed) gemmPacked(ctx, out, x, weight, rows, n, k, bias);
    else gemm(ctx, out, x, weight, rows, n, k, true, bias);
  };
  return arena.call(() => formatCall(p.op, { query: p.q.shape, key: p.k.shape, value: p.v.shape }), () => {
    // inputs: self-attention passes one tensor three times, copied once
    const pq = arena.input(p.q, 'query');
    const pk = p.k === p.q ? pq : arena.input(p.k, 'key');
    const pv = p.v === p.q ? pq : p.v === p.k ? pk : arena.input(p.v, 'value');
    const qp = arena.allocF32(B * Lq * E), kp = arena.allocF32(B * L2 * E), vp = arena.allocF32(B * L2 * E);
    project(qp, pq, w.wq, B * Lq, E, E, w.bq);
    if (extra === 0) {
      project(kp, pk, w.wk, B * Lk, E, kdim, w.bk);
      project(vp, pv, w.wv, B * Lk, E, vdim, w.bv);
    } else {
      // the appended positions follow each batch's keys
      for (let b = 0; b < B; b++) {
        project(kp + b * L2 * E * 4, pk + b * Lk * kdim * 4, w.wk, Lk, E, kdim, w.bk);
        project(vp + b * L2 * E * 4, pv + b * Lk * vdim * 4, w.wv, Lk, E, vdim, w.bv);
        for (let r = 0; r < extra; r++) {
          arena.f32(kp + ((b * L2 + Lk + r) * E) * 4, E).set(extraK[r]);
          arena.f32(vp + ((b * L2 + Lk + r) * E) * 4, E).set(extraV[r]);
        }
      }
    }
    // keys and values as [B, L, H, D] views of the projections, or the cache's [B, H, capacity, D]
    let keys = kp, values = vp, Ltotal = L2;
    let kvLayout = [L2 * E, D, E];
    let causalKind = p.masking.causal === undefined ? CAUSAL_NONE : parseCausal('causal', p.masking.causal);
    if (cache) {
      const at = (buffer: number) => (b: number, h: number, l: number) => buffer + ((b * Lk + l) * E + h * D) * 4;
      cache.appendFrom(Lk, at(kp), at(vp));
      ({ k: keys, v: values } = cache.pointers());
      Ltotal = cache.length;
      kvLayout = [H * cache.capacity * D, cache.capacity * D, D];
      if (p.masking.causal === undefined) causalKind = CAUSAL_BOTTOM_RIGHT;
    }
    const mask = p.masking.mask;
    const Hm = mask ? mask.shape[1] : 1;
    const heads = arena.allocF32(B * Lq * E);
    const pw = p.needWeights ? arena.allocF32(B * H * Lq * Ltotal) : 0;
    runAttention(ctx, planAttentionRun(ctx, {
      out: heads, weights: pw, q: qp, k: keys, v: values, mask: mask ? arena.write(mask.data) : 0, validLens: null,
      B, Hq: H, Hkv: H, Lq, Lk: Ltotal, E: D, Ev: D, scale: 1 / Math.sqrt(D), softcap: 0,
      maskKind: mask ? (mask.data instanceof Uint8Array ? MASK_BOOLEAN : MASK_ADDITIVE) : MASK_NONE,
      // the combined mask is [B, Hm, Lq, L2], contiguous
      maskStrides: [Hm * Lq * L2, Hm > 1 ? Lq * L2 : 0, L2, 1],
      causalKind, Lpast: Ltotal - L2, windowLeft: -1, windowRight: -1,
      layout: { q: [Lq * E, D, E], k: kvLayout, v: kvLayout, out: [Lq * E, D, E] }, probe,
    }));
    // the output projection writes straight into an engine-tensor out apart from the inputs (nothing
    // after it can fail: its scratch is taken before it writes)
    const out = arena.outputApart(target, p.q, p.k, p.v) || arena.allocF32(B * Lq * E);
    project(out, heads, w.wo, B * Lq, E, E, w.bo);
    const result: OutputWithWeights = { output: arena.result(out, B * Lq * E, [B, Lq, E], target) };
    if (pw) {
      const weights = arena.read(pw, B * H * Lq * Ltotal);
      result.weights = p.averageWeights ? averageHeads(weights, B, H, Lq, Ltotal) : fromData(weights, [B, H, Lq, Ltotal]);
    }
    return result;
  });
}

/** multiHeadAttention, and selfAttention with `op` 'selfAttention' (its messages name it). */
export function multiHeadAttention(ctx: WasmContext, query: Tensor, key: Tensor, value: Tensor, params: MultiHeadParams, options?: MultiHeadOptions, op: MultiHeadOp = 'multiHeadAttention'): OutputWithWeights {
  const p = planMultiHead(op, query, key, value, params, options);
  ctx.arena.checkOut(p.out);
  if (p.empty) return emptyMultiHead(p); // not even the weights copied in
  const input = (c: Checked, name: string) => ctx.arena.input(c, name);
  return ctx.arena.call(() => formatCall(op, { query: p.q.shape, key: p.k.shape, value: p.v.shape }), () => run(ctx, p, placeWeights(p, input, input, false), null, p.out, probeOf(options)));
}

/**
 * A layer whose weights are copied into held blocks of engine memory once, packed into the GEMM's
 * panels: every forward then reads each weight once, front to back, and packs nothing (a
 * one-token forward is four matrix-vector products, bound by reading the weights).
 */
export function createLayer(context: () => WasmContext, params: MultiHeadParams): MultiHeadAttentionLayer {
  const { plan: prepared, ...widths } = planLayerParams(params);
  const ctx = context();
  const held: number[] = [];
  let weights: WeightPointers | null;
  try {
    const describe = (c: Checked, name: string) => () => formatCall('createMultiHeadAttention', { [name]: c.shape });
    weights = placeWeights(prepared, (c, name) => {
      const ptr = holdPacked(ctx, c, name, describe(c, name));
      held.push(ptr);
      return ptr;
    }, (c, name) => {
      const ptr = ctx.arena.holdCopy(c, 'weights', describe(c, name));
      held.push(ptr);
      return ptr;
    }, true);
  } catch (error) {
    held.forEach((b) => ctx.arena.free(b));
    throw error;
  }
  // the forward plan reads the params' shapes and options, and biasK/biasV's data; its weights are
  // the held copies, so no JavaScript copy of them is kept (E = 4096 would keep 256 MiB)
  const shapes = copyParams(prepared.params, ['biasK', 'biasV']);
  const layer: Implementation<MultiHeadAttentionLayer> = {
    embedDim: widths.E,
    numHeads: prepared.H,
    forward(query, key, value, options) {
      if (weights === null) throw new Error('qkv: this multi-head attention layer has been disposed');
      const c = context();
      const p = planLayerForward(shapes, widths, query, key, value, options, (cache) => engineCache(c.arena, cache, LAYER_FORWARD));
      const cache = p.cache === undefined ? null : (p.cache as WasmKVCache);
      c.arena.checkOut(p.out);
      return run(c, p, weights, cache, p.out, probeOf(options));
    },
    dispose() {
      if (weights === null) return;
      held.forEach((b) => ctx.arena.free(b));
      weights = null;
    },
    [disposeSymbol]: () => layer.dispose(),
  };
  return layer as MultiHeadAttentionLayer;
}
